"""Weight penalties, by Keras's names: Dense(64, kernel_regularizer=regularizers.l2(0.01)).

A regularizer adds a penalty on a weight w to the loss, so its gradient joins w's gradient.
Each is a small object with the two side by side:

    __call__(w)  -> the penalty, a float          gradient(w) -> d penalty / d w, shaped like w
    L1(l1)       penalty = l1 * sum |w|           gradient = l1 * sign(w)   (0 at w = 0, the kink)
    L2(l2)       penalty = l2 * sum w^2           gradient = 2 * l2 * w
    L1L2(l1, l2) both added

L2 counts sum w^2, not sum w^2 / 2, as Keras does: the gradient carries the 2 (plain SGD's
"weight decay" d is l2 = d / 2). The layer adds the gradient where it computes its weights'
gradients (Layer.add_regularization_gradients) and reports the penalties with
Layer.regularization_loss(); the model adds those to the loss it trains on and reports.

Defaults as Keras: l1() and l2() have 0.01; the names 'l1', 'l2', 'l1_l2' give 0.01 (both, for
'l1_l2'); l1_l2() has 0.01 and 0.01 as in Keras 2 (Keras 3's l1_l2 is the class L1L2, whose
defaults are 0.0: give the factors explicitly to read the same everywhere).
"""
from minicnn.backend import get_array_module
from minicnn.utils.checks import check_number


class Regularizer:
    """A penalty on one weight: penalty = self(w) (a float), gradient(w) (an array like w)."""

    def __call__(self, w):
        raise NotImplementedError

    def gradient(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class L1(Regularizer):
    """penalty = l1 * sum |w|; gradient = l1 * sign(w), 0 where w = 0. Pulls weights to exactly 0."""

    def __init__(self, l1=0.01):
        self.l1 = check_number(l1, "l1", "L1", low=0)

    def __call__(self, w):
        xp = get_array_module(w)
        return self.l1 * float(xp.abs(w).sum())

    def gradient(self, w):
        xp = get_array_module(w)
        return self.l1 * xp.sign(w)

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """penalty = l2 * sum w^2; gradient = 2 * l2 * w. Pulls large weights in the most."""

    def __init__(self, l2=0.01):
        self.l2 = check_number(l2, "l2", "L2", low=0)

    def __call__(self, w):
        return self.l2 * float((w * w).sum())

    def gradient(self, w):
        return (2 * self.l2) * w

    def get_config(self):
        return {"l2": self.l2}


class L1L2(Regularizer):
    """Both penalties: l1 * sum |w| + l2 * sum w^2; gradient l1 * sign(w) + 2 * l2 * w."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check_number(l1, "l1", "L1L2", low=0)
        self.l2 = check_number(l2, "l2", "L1L2", low=0)

    def __call__(self, w):
        return L1(self.l1)(w) + L2(self.l2)(w)

    def gradient(self, w):
        return L1(self.l1).gradient(w) + L2(self.l2).gradient(w)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


# Function-style names, as Keras writes them: kernel_regularizer=regularizers.l2(0.001)
def l1(l1=0.01):
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """L1L2 with Keras 2's defaults (0.01 each); the class L1L2() defaults to 0.0 each."""
    return L1L2(l1, l2)


_BY_NAME = {"l1": l1, "l2": l2, "l1_l2": l1_l2}
_CLASSES = {cls.__name__: cls for cls in (L1, L2, L1L2)}


def get(identifier):
    """A regularizer from None (no penalty), a name ('l1', 'l2', 'l1_l2'; the class names too),
    a saved config {"class_name": "L2", "config": {"l2": 0.01}} or a regularizer object."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in _BY_NAME:
            return _BY_NAME[identifier.lower()]()
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        cls, config = _CLASSES.get(identifier["class_name"]), identifier["config"]
        if cls is not None and isinstance(config, dict):
            return cls.from_config(config)
    if callable(identifier):
        raise TypeError(f"minicnn needs a regularizer with a gradient, got the function {identifier!r}; "
                        "use minicnn.regularizers.L1, L2 or L1L2, or subclass Regularizer "
                        "(__call__ and gradient)")
    raise ValueError(f"unknown regularizer {identifier!r}; expected None, one of {sorted(_BY_NAME)} "
                     "or a minicnn.regularizers object such as l2(0.01)")


def serialize(regularizer):
    """What get() rebuilds the regularizer from: None, or {"class_name": ..., "config": ...}."""
    if regularizer is None:
        return None
    if type(regularizer) not in _CLASSES.values():
        raise ValueError(f"only the built-in regularizers {sorted(_CLASSES)} can be saved, got {regularizer!r}")
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}

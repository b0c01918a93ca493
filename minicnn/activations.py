"""Activation functions by name: linear, relu, leaky_relu, elu, selu, sigmoid, tanh, softmax.

Each is a small object with two methods side by side:
    forward(z)           -> y = f(z)
    backward(dy, z, y)   -> dz = dy * f'(z)   (softmax: the Jacobian-vector product)
`z` is the pre-activation and `y` the output saved by the forward pass.

Two LeakyReLU defaults, both Keras's: the LeakyReLU *layer* (minicnn.layers.LeakyReLU()) has
negative_slope 0.3, the *activation* by name (Dense(..., activation="leaky_relu")) has 0.2.
Give the slope explicitly to avoid the question: LeakyReLU(alpha=0.1) as the lab does, or
activation=activations.LeakyReLU(0.1).
"""
import math

from minicnn import kernels
from minicnn.backend import get_array_module


class Activation:
    name = None

    def forward(self, z):
        raise NotImplementedError

    def backward(self, dy, z, y):
        raise NotImplementedError

    def __call__(self, z):
        return self.forward(z)

    def __repr__(self):
        return f"<activation {self.name}>"


class Linear(Activation):
    """f(z) = z. The default of Dense and Conv2D."""
    name = "linear"

    def forward(self, z):
        return z

    def backward(self, dy, z, y):
        return dy


class ReLU(Activation):
    """f(z) = max(z, 0); f'(z) = 1 where z > 0, else 0."""
    name = "relu"

    def forward(self, z):
        xp = get_array_module(z)
        return xp.maximum(z, 0)

    def backward(self, dy, z, y):
        return dy * (z > 0)


class LeakyReLU(Activation):
    """f(z) = z if z > 0 else negative_slope * z; f'(z) = 1 or negative_slope.

    The default slope is 0.2, Keras's for activation="leaky_relu"; the LeakyReLU *layer*
    defaults to 0.3, also as in Keras (layers/advanced_activations.py).
    """
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        self.negative_slope = float(negative_slope)

    @property
    def alpha(self):
        """Keras 2's name for negative_slope."""
        return self.negative_slope

    def forward(self, z):
        return kernels.leaky_relu_forward(z, self.negative_slope)

    def backward(self, dy, z, y):
        return kernels.leaky_relu_backward(dy, z, self.negative_slope)


class ELU(Activation):
    """f(z) = z if z > 0 else alpha * (exp(z) - 1); f'(z) = 1, or alpha * exp(z) = y + alpha.

    Smooth where ReLU bends, and negative outputs (down to -alpha) keep the mean near 0.
    Keras's default alpha is 1.0 (activation 'elu' and the ELU layer).
    """
    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, z):
        xp = get_array_module(z)
        # expm1(z) = exp(z) - 1, exact for small z; min(z, 0) keeps exp from overflowing where z > 0
        return xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0)))

    def backward(self, dy, z, y):
        xp = get_array_module(z)
        return dy * xp.where(z > 0, 1, y + self.alpha)


class SELU(ELU):
    """f(z) = scale * elu(z, alpha) with Keras's constants (alpha ~ 1.6733, scale ~ 1.0507);
    f'(z) = scale, or y + scale * alpha where z <= 0.

    With lecun_normal weights the two constants keep activations at mean 0 and variance 1
    (Klambauer et al., 2017, "Self-Normalizing Neural Networks").
    """
    name = "selu"
    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946

    def __init__(self):
        super().__init__(alpha=self.ALPHA)

    def forward(self, z):
        return self.SCALE * super().forward(z)

    def backward(self, dy, z, y):
        xp = get_array_module(z)
        return dy * xp.where(z > 0, self.SCALE, y + self.SCALE * self.ALPHA)


class Sigmoid(Activation):
    """f(z) = 1 / (1 + exp(-z)); f'(z) = y (1 - y)."""
    name = "sigmoid"

    def forward(self, z):
        xp = get_array_module(z)
        return 0.5 * (xp.tanh(0.5 * z) + 1)  # the same function, without overflow in exp

    def backward(self, dy, z, y):
        return dy * y * (1 - y)


class Tanh(Activation):
    """f(z) = tanh(z); f'(z) = 1 - y^2."""
    name = "tanh"

    def forward(self, z):
        xp = get_array_module(z)
        return xp.tanh(z)

    def backward(self, dy, z, y):
        return dy * (1 - y * y)


class Softmax(Activation):
    """y_i = exp(z_i) / sum_j exp(z_j) over the last axis.

    backward: dz = y * (dy - sum(dy * y)). Followed by cross-entropy, the model skips
    this step and uses the fused, exact form dz = (y - target) / N (SoftmaxCrossEntropy in
    plan.py; docs/derivations/softmax_cross_entropy.md shows the two agree). A Softmax whose
    backward was replaced (a patch, a subclass) is not skipped: the plan then runs it.
    """
    name = "softmax"

    def forward(self, z):
        xp = get_array_module(z)
        shifted = z - z.max(axis=-1, keepdims=True)  # exp never overflows
        e = xp.exp(shifted)
        return e / e.sum(axis=-1, keepdims=True)

    def backward(self, dy, z, y):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


_BY_NAME = {"linear": Linear, "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "selu": SELU,
            "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax}


def _non_negative(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def get(identifier):
    """An activation object from a name, None (linear), a saved config or an activation object.

    A saved config is what serialize() wrote: a name, {"name": "leaky_relu", "negative_slope": 0.1}
    (files from minicnn 0.1 say "alpha") or {"name": "elu", "alpha": 0.5}.
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if callable(identifier) and getattr(identifier, "__module__", None) == __name__ and \
            getattr(identifier, "__name__", None) in _BY_NAME:
        return _BY_NAME[identifier.__name__]()      # activation=minicnn.activations.relu, as Keras takes it
    if isinstance(identifier, dict) and identifier.get("name") == "leaky_relu" and len(identifier) == 2:
        slope = identifier.get("negative_slope", identifier.get("alpha"))
        if _non_negative(slope):
            return LeakyReLU(slope)
    if isinstance(identifier, dict) and set(identifier) == {"name", "alpha"} and identifier["name"] == "elu":
        if _non_negative(identifier["alpha"]):
            return ELU(identifier["alpha"])
    raise ValueError(
        f"unknown activation {identifier!r}; expected one of {sorted(_BY_NAME)}"
    )


def serialize(activation):
    """What get() rebuilds the activation from: its name, with the slope for leaky_relu
    and alpha for an elu whose alpha is not Keras's default 1.0."""
    if isinstance(activation, LeakyReLU):
        return {"name": activation.name, "negative_slope": activation.negative_slope}
    if type(activation) is ELU and activation.alpha != 1.0:
        return {"name": activation.name, "alpha": activation.alpha}
    return activation.name


# Function-style access, as in keras.activations.relu(x). On an array: the values. On the output
# of Input(...) or of a layer (a functional model, x = activations.relu(x)): the Activation layer
# that applies it, as Keras does.
def _apply(activation, x):
    from minicnn.layers.base import SymbolicTensor   # minicnn.layers imports this module: import here
    if isinstance(x, SymbolicTensor):
        from minicnn.layers.core import Activation as ActivationLayer
        return ActivationLayer(activation)(x)
    return activation.forward(x)


def linear(x):
    return _apply(Linear(), x)


def relu(x):
    return _apply(ReLU(), x)


def leaky_relu(x, negative_slope=0.2):
    """LeakyReLU with Keras's default 0.2 for the function (the LeakyReLU layer's default is 0.3)."""
    return _apply(LeakyReLU(negative_slope), x)


def elu(x, alpha=1.0):
    return _apply(ELU(alpha), x)


def selu(x):
    return _apply(SELU(), x)


def sigmoid(x):
    return _apply(Sigmoid(), x)


def tanh(x):
    return _apply(Tanh(), x)


def softmax(x):
    return _apply(Softmax(), x)


# Keras activations minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = ("swish", "silu", "gelu", "softplus", "softsign", "hard_sigmoid", "hard_silu", "hard_swish",
                  "mish", "exponential", "relu6", "log_softmax", "celu", "glu", "sparsemax", "tanh_shrink")


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("activations", name, NOT_IN_MINICNN)

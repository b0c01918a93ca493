"""Optimizers: Adam and SGD (with momentum and Nesterov), computed as Keras 3 computes them.

`apply_gradients(zip(grads, params))` updates each parameter array in place, so a
layer's `params` dict keeps pointing at the trained values. Per-parameter slots
(Adam's m and v, SGD's velocity) live in lists aligned with the parameters.
"""
import math

from minicnn import kernels
from minicnn.backend import get_array_module
from minicnn.utils.checks import check_bool, check_number


class Optimizer:
    name = None
    slot_names = ()  # the per-parameter state this optimizer keeps

    def __init__(self, learning_rate=0.001, lr=None):
        if lr is not None:  # the Keras 2 spelling, used by older tutorials
            learning_rate = lr
        self.learning_rate = check_number(learning_rate, "learning_rate", type(self).__name__,
                                          low=0, include_low=False)
        self.iterations = 0   # how many updates have been applied
        self.slots = {}       # slot name -> list of arrays, one per parameter
        # Set by the model: a weak reference to the one model compiled with this optimizer
        # (Model.compile), and which of its weights the slots belong to (Model.train_step).
        self.owner = None
        self.slots_for = None

    def build(self, params):
        """Create the slots (zeros like each parameter) on first use."""
        for slot in self.slot_names:
            self.slots[slot] = [get_array_module(p).zeros_like(p) for p in params]

    def apply_gradients(self, grads_and_params):
        """Update every parameter in place from its gradient; then count one iteration."""
        pairs = list(grads_and_params)
        params = [p for _, p in pairs]
        if not self.slots and self.slot_names:
            self.build(params)
        self._check_slots(params)
        for index, (grad, param) in enumerate(pairs):
            if param.shape != grad.shape:
                raise ValueError(
                    f"{type(self).__name__}: gradient of shape {grad.shape} for a parameter of shape {param.shape}"
                )
            self.update(index, param, grad)
        self.iterations += 1

    def _check_slots(self, params):
        if not self.fits(params):
            raise ValueError(f"{type(self).__name__}: this optimizer holds state ({', '.join(self.slots)}) for "
                             f"{len(next(iter(self.slots.values())))} other parameter arrays, got {len(params)}; "
                             "a new set of parameters needs a new optimizer")

    def fits(self, params):
        """True when the slots (if any yet) are one per parameter, of the same shapes."""
        return all(len(arrays) == len(params) and all(a.shape == p.shape for a, p in zip(arrays, params))
                   for arrays in self.slots.values())

    def slot_problem(self, name, array):
        """What is wrong with `array` as the value of slot `name` (None: nothing); load_model asks."""
        return None

    def update(self, index, param, grad):
        raise NotImplementedError

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    # --- state, for saving and resuming -------------------------------------------
    def get_state(self):
        """(iterations, {slot: [arrays]}) for save files."""
        return self.iterations, self.slots

    def set_state(self, iterations, slots):
        self.iterations = int(iterations)
        self.slots = {name: list(arrays) for name, arrays in slots.items()}
        self.slots_for = None   # the caller vouches for the order: the model's trainable weights


class SGD(Optimizer):
    """Stochastic gradient descent.

    plain:     param -= lr * grad
    momentum:  v = momentum * v - lr * grad;  param += v
    nesterov:  v = momentum * v - lr * grad;  param += momentum * v - lr * grad
    """
    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.momentum = check_number(momentum, "momentum", "SGD", low=0, high=1)
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        self.slot_names = ("velocity",) if self.momentum else ()

    def update(self, index, param, grad):
        lr = param.dtype.type(self.learning_rate)
        if not self.momentum:
            param -= lr * grad
            return
        v = self.slots["velocity"][index]
        v *= param.dtype.type(self.momentum)
        v -= lr * grad
        if self.nesterov:
            param += param.dtype.type(self.momentum) * v - lr * grad
        else:
            param += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), in Keras's form, with t = iterations + 1:

        m = m + (1 - beta_1) * (grad - m)
        v = v + (1 - beta_2) * (grad^2 - v)
        param -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

    The bias corrections are folded into the step size; epsilon (1e-7) is not corrected.
    """
    name = "adam"
    slot_names = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1 = check_number(beta_1, "beta_1", "Adam", low=0, high=1, include_high=False)
        self.beta_2 = check_number(beta_2, "beta_2", "Adam", low=0, high=1, include_high=False)
        self.epsilon = check_number(epsilon, "epsilon", "Adam", low=0, include_low=False)

    def step_size(self):
        """lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) for the coming update t = iterations + 1."""
        t = self.iterations + 1
        return self.learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)

    def update(self, index, param, grad):
        m, v = self.slots["m"][index], self.slots["v"][index]
        kernels.adam_update(param, grad, m, v, self.step_size(), self.beta_1, self.beta_2, self.epsilon)

    def slot_problem(self, name, array):
        if name == "v" and (array < 0).any():   # a running mean of squared gradients
            return "holds negative values; Adam's v averages squared gradients and is never negative"
        return None

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_BY_NAME = {"adam": Adam, "sgd": SGD}


def get(identifier):
    """An optimizer from a name ('adam', 'sgd') or an Optimizer object."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    raise ValueError(f"unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} or an Optimizer object")

"""Activation functions by name: linear, relu, leaky_relu, sigmoid, tanh, softmax.

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


_BY_NAME = {"linear": Linear, "relu": ReLU, "leaky_relu": LeakyReLU,
            "sigmoid": Sigmoid, "tanh": Tanh, "softmax": Softmax}


def get(identifier):
    """An activation object from a name, None (linear), a saved config or an activation object.

    A saved config is what serialize() wrote: a name, or {"name": "leaky_relu", "negative_slope": 0.1}
    (files from minicnn 0.1 say "alpha").
    """
    if identifier is None:
        return Linear()
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict) and identifier.get("name") == "leaky_relu" and len(identifier) == 2:
        slope = identifier.get("negative_slope", identifier.get("alpha"))
        if isinstance(slope, (int, float)) and not isinstance(slope, bool) and math.isfinite(slope) and slope >= 0:
            return LeakyReLU(slope)
    raise ValueError(
        f"unknown activation {identifier!r}; expected one of {sorted(_BY_NAME)}"
    )


def serialize(activation):
    """What get() rebuilds the activation from: its name, with the slope for leaky_relu."""
    if isinstance(activation, LeakyReLU):
        return {"name": activation.name, "negative_slope": activation.negative_slope}
    return activation.name


# Function-style access, as in keras.activations.relu(x).
def linear(x):
    return Linear().forward(x)


def relu(x):
    return ReLU().forward(x)


def leaky_relu(x, negative_slope=0.2):
    """LeakyReLU with Keras's default 0.2 for the function (the LeakyReLU layer's default is 0.3)."""
    return LeakyReLU(negative_slope).forward(x)


def sigmoid(x):
    return Sigmoid().forward(x)


def tanh(x):
    return Tanh().forward(x)


def softmax(x):
    return Softmax().forward(x)

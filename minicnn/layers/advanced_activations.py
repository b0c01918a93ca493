"""Activation layers with their own arguments: LeakyReLU, ReLU, ELU, Softmax and PReLU.

(Keras 2 kept them in keras.layers.advanced_activations; the lab imports them from there.)
"""
import numbers

from minicnn import activations, regularizers
from minicnn import initializers as init_module
from minicnn.backend import get_array_module
from minicnn.layers.base import Layer
from minicnn.layers.core import Activation
from minicnn.utils.checks import check_number


class LeakyReLU(Activation):
    """y = x if x > 0 else negative_slope * x; dx = dy or negative_slope * dy.

    Accepts `negative_slope` (Keras 3) or `alpha` (Keras 2, the lab); default 0.3 as Keras.
    """

    def __init__(self, negative_slope=None, alpha=None, **kwargs):
        if negative_slope is not None and alpha is not None and negative_slope != alpha:
            raise ValueError(
                f"LeakyReLU: give negative_slope or alpha, not both (got {negative_slope!r} and {alpha!r})"
            )
        slope = next((s for s in (negative_slope, alpha) if s is not None), 0.3)
        slope = check_number(slope, "negative_slope", "LeakyReLU", low=0)
        super().__init__(activations.LeakyReLU(slope), **kwargs)

    @property
    def negative_slope(self):
        return self.activation.negative_slope

    @property
    def alpha(self):
        """Keras 2's name for negative_slope (the lab writes LeakyReLU(alpha=0.1))."""
        return self.negative_slope

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, "negative_slope": self.negative_slope}


class ReLU(Activation):
    """y = max(x, 0); dx = dy where x > 0."""

    def __init__(self, **kwargs):
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


class ELU(Activation):
    """y = x if x > 0 else alpha * (exp(x) - 1); dx = dy, or dy * (y + alpha). Keras's alpha: 1.0."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(activations.ELU(check_number(alpha, "alpha", "ELU", low=0)), **kwargs)

    @property
    def alpha(self):
        return self.activation.alpha

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, "alpha": self.alpha}


class Softmax(Activation):
    """y = softmax(x) over the last axis: y_i = exp(x_i) / sum_j exp(x_j); the layer form of
    Activation('softmax'), with the same backward dx = y * (dy - sum(dy * y)).

    As the last layer before a cross-entropy, the model fuses it with the loss, as it does
    Activation('softmax') (minicnn/plan.py). Keras's `axis` may only name the last axis here.
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__("softmax", **kwargs)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ValueError(f"Softmax: axis must be an int (the last axis, -1), got {axis!r}")
        self.axis = int(axis)

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1):
            raise ValueError(f"layer {self.name!r} (Softmax): minicnn computes softmax over the last axis "
                             f"only (axis=-1, or {len(input_shape) - 1} for input shape {tuple(input_shape)}), "
                             f"got axis={self.axis}")
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return {**config, "axis": self.axis}


class PReLU(Layer):
    """Leaky ReLU whose slope is learned: y = x if x > 0 else alpha * x, one alpha per input unit.

    x (N, *S) -> y (N, *S); alpha has shape S, with 1 on each of `shared_axes` (counted as
    in x: shared_axes=[1, 2] gives one alpha per channel of an (N, H, W, C) image), broadcast
    over those axes. Keras's alpha_initializer 'zeros' starts it as a ReLU.
    backward: dx = dy where x > 0, else alpha * dy
              d_alpha = sum over the batch and the shared axes of dy * min(x, 0)
              (d y / d alpha = x where x <= 0, and 0 where x > 0).
    """
    cached = ("x",)

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = init_module.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        axes = [shared_axes] if isinstance(shared_axes, numbers.Integral) else shared_axes
        if axes is not None and not (isinstance(axes, (tuple, list)) and all(
                isinstance(a, numbers.Integral) and not isinstance(a, bool) and a >= 1 for a in axes)):
            raise ValueError(f"PReLU: shared_axes must be None, or an axis >= 1 (axis 0 is the batch) "
                             f"or a list of them such as [1, 2], got {shared_axes!r}")
        self.shared_axes = None if axes is None else sorted({int(a) for a in axes})

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if axis >= len(input_shape):
                raise ValueError(f"layer {self.name!r} (PReLU): shared axis {axis} does not exist in "
                                 f"input shape {tuple(input_shape)}")
            shape[axis - 1] = 1
        self.add_weight("alpha", shape, self.alpha_initializer)
        super().build(input_shape)

    def forward(self, x, training=False):
        xp = get_array_module(x)
        self.x = x                                                   # (N, *S)
        return xp.where(x > 0, x, self.params["alpha"] * x)          # alpha (*S, shared axes 1) broadcasts

    def backward(self, dy):
        xp = get_array_module(dy)
        x, alpha = self.x, self.params["alpha"]
        d_alpha = (dy * xp.minimum(x, 0)).sum(axis=0)                # (*S): summed over the batch
        shared = tuple(axis - 1 for axis in self.shared_axes or ())
        self.grads["alpha"] = d_alpha.sum(axis=shared, keepdims=True) if shared else d_alpha   # alpha's shape
        self.add_regularization_gradients()                          # + d penalty / d alpha, if any
        return xp.where(x > 0, dy, alpha * dy)                       # dx (N, *S)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": init_module.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "shared_axes": self.shared_axes}

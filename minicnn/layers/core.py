"""Dense, Flatten, Dropout, Activation, Reshape and Rescaling."""
import math
import numbers

from minicnn import activations, backend, kernels, regularizers
from minicnn import initializers as init_module
from minicnn.backend import get_array_module
from minicnn.layers.base import ActivationMixin, Layer
from minicnn.utils.checks import check_bool, check_int, check_number


class Dense(ActivationMixin, Layer):
    """Fully connected layer: y = f(x @ kernel + bias).

    x (N, in), kernel (in, units), bias (units,) -> y (N, units).
    forward:  z = x @ kernel + bias (linear), y = activation(z)
    backward: dz = activation'(z) * dy, then (backward_linear)
              d_kernel = x^T @ dz, d_bias = sum_N dz, dx = dz @ kernel^T;
              with kernel_regularizer / bias_regularizer, plus the penalty's gradient
              (d_kernel += 2 * l2 * kernel for l2(l2): minicnn/regularizers.py).
    forward and backward themselves come from ActivationMixin (layers/base.py).
    """
    cached = ActivationMixin.cached + ("x",)

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int(units, "units", "Dense")
        self.activation = activations.get(activation)
        self.use_bias = check_bool(use_bias, "use_bias", "Dense")
        self.kernel_initializer = init_module.get(kernel_initializer)
        self.bias_initializer = init_module.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"layer {self.name!r} (Dense) expects input of rank 2 (batch, features), got shape "
                f"{tuple(input_shape)}; add a Flatten() layer before it"
            )
        self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def linear(self, x):
        self.x = x                               # x: (N, in), kept for backward
        z = x @ self.params["kernel"]            # z: (N, units)
        if self.use_bias:
            z += self.params["bias"]
        return z

    def backward_linear(self, dz):
        # dz: (N, units)
        self.grads["kernel"] = self.x.T @ dz     # (in, units)
        if self.use_bias:
            self.grads["bias"] = kernels.sum_rows(dz)  # (units,): dz summed over the batch
        self.add_regularization_gradients()      # + d penalty / d weight, if a regularizer is set
        if not self.input_gradient:
            return None
        return dz @ self.params["kernel"].T      # dx: (N, in)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": init_module.serialize(self.kernel_initializer),
                "bias_initializer": init_module.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C); backward reshapes the gradient back."""
    cached = ("x_shape",)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))   # Python ints: no int64 wrap-around

    def forward(self, x, training=False):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability `rate` and
    scale the survivors by 1 / (1 - rate), so inference needs no rescaling.

    forward: y = x * mask, mask = (u >= rate) / (1 - rate); backward: dx = dy * mask.
    Set `fixed_mask` to an array to reuse one mask (gradient checks, demonstrations).
    """
    cached = ("mask",)

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_number(rate, "rate", "Dropout", low=0, high=1, include_high=False)
        if noise_shape is not None:
            raise ValueError("Dropout: noise_shape is not supported by minicnn; leave it None")
        if seed is not None:  # one generator for all draws keeps checkpoints resumable exactly
            raise ValueError(f"Dropout: a per-layer seed is not supported (got seed={seed!r}); "
                             "minicnn.utils.set_random_seed(seed) seeds every dropout mask")
        self.fixed_mask = None

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self.mask = None
            return x
        xp = get_array_module(x)
        if self.fixed_mask is not None:
            self.mask = self.fixed_mask
            return x * self.mask
        u = backend.random_uniform(xp, x.shape, x.dtype)           # one uniform number per unit
        y, self.mask = kernels.dropout_forward(x, u, self.rate)     # mask = (u >= rate) / (1 - rate)
        return y

    def backward(self, dy):
        return dy if self.mask is None else dy * self.mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class Activation(ActivationMixin, Layer):
    """Apply an activation by name: Activation('softmax'), Activation('relu')..."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def linear(self, x):
        return x                                 # no linear part: z = x

    def backward_linear(self, dz):
        return dz

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Reshape(Layer):
    """(N, *input) -> (N, *target_shape), the same values in the same (row-major) order.

    One entry of target_shape may be -1: it takes the size that keeps the number of values,
    as in Keras (Reshape((-1, 1)) turns (N, 784) into (N, 784, 1)).
    backward: dx = dy reshaped back to the input's shape.
    """
    cached = ("x_shape",)

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        sizes = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else None
        if (not sizes or not all(isinstance(size, numbers.Integral) and not isinstance(size, bool)
                                 and (size > 0 or size == -1) for size in sizes)
                or sizes.count(-1) > 1):
            raise ValueError(f"Reshape: target_shape must be a tuple of positive ints with at most one -1, "
                             f"such as (7, 7, 16) or (-1, 1), got {target_shape!r}")
        self.target_shape = tuple(int(size) for size in sizes)

    def compute_output_shape(self, input_shape):
        """(batch,) + target_shape, its -1 resolved; a ValueError when the sizes do not match."""
        values = math.prod(input_shape[1:])
        known = math.prod(size for size in self.target_shape if size != -1)
        if -1 in self.target_shape and values % known == 0:
            shape = tuple(values // known if size == -1 else size for size in self.target_shape)
        elif -1 not in self.target_shape and values == known:
            shape = self.target_shape
        else:
            raise ValueError(f"layer {self.name!r} (Reshape) cannot reshape an input of shape "
                             f"{tuple(input_shape)} ({values} values per sample) into {self.target_shape}")
        return (input_shape[0],) + shape

    def build(self, input_shape):
        self.output_sample_shape = self.compute_output_shape(input_shape)[1:]   # fails early
        super().build(input_shape)

    def forward(self, x, training=False):
        self.x_shape = x.shape
        return x.reshape((x.shape[0],) + self.output_sample_shape)

    def backward(self, dy):
        return dy.reshape(self.x_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Rescaling(Layer):
    """y = x * scale + offset, e.g. Rescaling(1 / 255) for pixels in [0, 255]. No weights.

    backward: dx = scale * dy (the offset does not depend on x).
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_number(scale, "scale", "Rescaling")
        self.offset = check_number(offset, "offset", "Rescaling")

    def forward(self, x, training=False):
        if x.dtype.kind != "f":           # uint8 pixels: to floatx, as Keras casts them (not float64)
            x = x.astype(backend.floatx())
        return x * self.scale + self.offset

    def backward(self, dy):
        return dy * self.scale

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}

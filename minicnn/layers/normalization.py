"""BatchNormalization (Keras's defaults: momentum 0.99, epsilon 1e-3, axis -1)."""
from minicnn import initializers as init_module
from minicnn.backend import get_array_module
from minicnn.layers.base import Layer
from minicnn.utils.checks import check_number


class BatchNormalization(Layer):
    """Normalise each channel (the last axis) over the batch, then scale and shift.

    training:  mean, var over all axes but the last (biased var, as Keras);
               xhat = (x - mean) / sqrt(var + eps); y = gamma * xhat + beta;
               moving stats <- momentum * moving + (1 - momentum) * batch stats.
    inference: the same with the moving mean and variance.
    backward (training), m values per channel:
               dxhat = dy * gamma
               dx = (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)) / (m * sqrt(var + eps))
               d_gamma = sum(dy * xhat), d_beta = sum(dy)
    """

    cached = ("xhat", "inv_std", "training_mode")

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int) or not (axis == -1 or axis > 0):
            raise ValueError(f"BatchNormalization: axis must be the channel axis (-1), got {axis!r}")
        self.axis = axis
        self.momentum = check_number(momentum, "momentum", "BatchNormalization", low=0, high=1)
        self.epsilon = check_number(epsilon, "epsilon", "BatchNormalization", low=0, include_low=False)
        self.center = center
        self.scale = scale
        self.initializers = {"gamma": init_module.get(gamma_initializer),
                             "beta": init_module.get(beta_initializer),
                             "moving_mean": init_module.get(moving_mean_initializer),
                             "moving_variance": init_module.get(moving_variance_initializer)}

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1):
            raise ValueError(
                f"layer {self.name!r} (BatchNormalization) normalises the last axis only "
                f"(axis=-1 or {len(input_shape) - 1}), got axis={self.axis}"
            )
        channels = (input_shape[-1],)
        if self.scale:
            self.add_weight("gamma", channels, self.initializers["gamma"])
        if self.center:
            self.add_weight("beta", channels, self.initializers["beta"])
        self.add_weight("moving_mean", channels, self.initializers["moving_mean"], trainable=False)
        self.add_weight("moving_variance", channels, self.initializers["moving_variance"], trainable=False)
        super().build(input_shape)

    def forward(self, x, training=False):
        xp = get_array_module(x)
        axes = tuple(range(x.ndim - 1))  # every axis but the channels
        if training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            keep = x.dtype.type(self.momentum)
            self.state["moving_mean"][...] = keep * self.state["moving_mean"] + (1 - keep) * mean
            self.state["moving_variance"][...] = keep * self.state["moving_variance"] + (1 - keep) * var
        else:
            mean, var = self.state["moving_mean"], self.state["moving_variance"]
        self.training_mode = training
        self.inv_std = 1 / xp.sqrt(var + x.dtype.type(self.epsilon))  # (C,)
        self.xhat = (x - mean) * self.inv_std                         # same shape as x
        y = self.xhat
        if self.scale:
            y = y * self.params["gamma"]
        if self.center:
            y = y + self.params["beta"]
        return y

    def backward(self, dy):
        axes = tuple(range(dy.ndim - 1))
        xhat = self.xhat
        if self.scale:
            self.grads["gamma"] = (dy * xhat).sum(axis=axes)
        if self.center:
            self.grads["beta"] = dy.sum(axis=axes)
        dxhat = dy * self.params["gamma"] if self.scale else dy
        if not self.training_mode:  # moving statistics are constants
            return dxhat * self.inv_std
        m = dy.size // dy.shape[-1]
        return (m * dxhat - dxhat.sum(axis=axes) - xhat * (dxhat * xhat).sum(axis=axes)) * (self.inv_std / m)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}

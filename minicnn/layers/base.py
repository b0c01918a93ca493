"""The layer contract that every minicnn layer follows.

    build(input_shape)         create the parameters (input_shape has None as batch axis)
    forward(x, training=False) return y; keep what backward needs (self._x, self._col...)
    backward(dy)               return dx; fill self.grads (same keys as self.params)

`params` hold the trainable weights (kernel, bias, gamma, beta); `state` holds the
weights a layer updates itself (BatchNormalization's moving_mean / moving_variance).
"""
import numbers
import re

from minicnn import backend, kernels
from minicnn import initializers as init_module
from minicnn.utils.checks import check_bool

_name_counts = {}


def unique_name(base):
    """conv2d, conv2d_1, conv2d_2, ... as Keras names layers."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def reset_names():
    """Start layer names from scratch (backend.clear_session in Keras)."""
    _name_counts.clear()


def snake_case(class_name):
    """Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, LeakyReLU -> leaky_re_lu (Keras's rule)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _positive_ints(values):
    """True for a tuple or list of ints > 0 (bools are not sizes)."""
    return isinstance(values, (tuple, list)) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in values)


def as_pair(value, argument, layer):
    """3 -> (3, 3); (3, 2) stays. Each entry must be a positive int."""
    pair = (value, value) if isinstance(value, numbers.Integral) else value
    if not _positive_ints(pair) or len(pair) != 2:
        raise ValueError(f"{layer}: {argument} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_padding(padding, layer):
    name = padding.lower() if isinstance(padding, str) else padding
    if name not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}")
    return name


def check_shape(shape, argument, layer):
    """A sample shape such as (28, 28, 1): a tuple or list of positive ints."""
    if not _positive_ints(shape) or not shape:
        raise ValueError(f"{layer}: {argument} must be a tuple of positive ints such as (28, 28, 1), "
                         f"got {shape!r}")
    return tuple(int(size) for size in shape)


class SymbolicTensor:
    """What `Input(shape)` and a layer called on it return: a shape and the chain of layers."""

    def __init__(self, shape, layers=()):
        self.shape = tuple(shape)
        self.layers = list(layers)

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape}>"


class Layer:
    """Base class: naming, parameter bookkeeping, weights I/O and shape checks."""

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None, dtype=None):
        who = type(self).__name__
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{who}: name must be a string, got {name!r}")
        self.trainable = check_bool(trainable, "trainable", who)
        self.name = name or unique_name(snake_case(who))
        self.params = {}   # name -> array, trained by the optimizer
        self.grads = {}    # name -> array, filled by backward()
        self.state = {}    # name -> array, updated by the layer itself
        # False on a model's first layer: nothing needs d loss / d image, so Conv2D and
        # Dense skip computing it (for Conv2D that saves a matrix product and a col2im).
        self.input_gradient = True
        self.built = False
        self.input_shape = None
        # Keras lets the first layer say what comes in: input_shape=(28, 28, 1)
        if batch_input_shape is not None:
            if not isinstance(batch_input_shape, (tuple, list)):
                raise ValueError(f"{who}: batch_input_shape must be a tuple such as (None, 28, 28, 1), "
                                 f"got {batch_input_shape!r}")
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is not None:
            input_shape = check_shape(input_shape, "input_shape", who)
        self.declared_input_shape = (None,) + input_shape if input_shape is not None else None

    # --- parameters ------------------------------------------------------------------
    def add_weight(self, name, shape, initializer, trainable=True):
        """Create a weight (NumPy, floatx) as a param (trainable) or as state."""
        value = init_module.get(initializer)(tuple(shape))
        if trainable:
            self.params[name] = value
            self.grads[name] = init_module.zeros(shape, dtype=value.dtype)
        else:
            self.state[name] = value
        return value

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.built = True

    def count_params(self):
        """Number of weights, trainable and not (Keras's 'Param #')."""
        return sum(int(w.size) for w in self.weights)

    @property
    def weights(self):
        """All weights in Keras's order: params first, then state."""
        return list(self.params.values()) + list(self.state.values())

    def get_weights(self):
        """The weights as NumPy arrays, in Keras's order and shapes."""
        return [backend.to_numpy(w).copy() for w in self.weights]

    def set_weights(self, weights):
        """Copy arrays into the weights (in place, so optimizers keep their references)."""
        current = self.weights
        if len(weights) != len(current):
            raise ValueError(
                f"layer {self.name!r} expects {len(current)} weight arrays, got {len(weights)}"
            )
        xp = backend.get_array_module(*current) if current else None
        for target, value, key in zip(current, weights, list(self.params) + list(self.state)):
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"layer {self.name!r}: weight {key!r} has shape {tuple(target.shape)}, "
                    f"got an array of shape {tuple(value.shape)}"
                )
            target[...] = xp.asarray(value, dtype=target.dtype)

    def to(self, device):
        """Move params, grads and state to 'cpu' or 'gpu'."""
        for store in (self.params, self.grads, self.state):
            for key in store:
                store[key] = backend.to_device(store[key], device)
        return self

    # --- shapes and config -------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        """JSON-able constructor arguments; `type(layer)(**config)` rebuilds the layer."""
        return {"name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def check_input_shape(self, shape):
        """Raise a clear ValueError if `shape` (batch axis included) does not fit the layer."""
        expected = self.input_shape
        if expected is None:
            return
        if len(shape) != len(expected):
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) expects input of rank {len(expected)} "
                f"with shape {expected}, got rank {len(shape)} with shape {tuple(shape)}"
            )
        for want, got in zip(expected[1:], shape[1:]):
            if want is not None and want != got:
                raise ValueError(
                    f"layer {self.name!r} ({type(self).__name__}) expects input shape {expected}, "
                    f"got {tuple(shape)}"
                )

    # --- calling -----------------------------------------------------------------------
    def __call__(self, x, training=False):
        """layer(x): build on first use, check the shape, run forward.

        Called on a SymbolicTensor (from `Input`), it records the layer for `Model`.
        """
        if isinstance(x, SymbolicTensor):
            if not self.built:
                self.build(x.shape)
            else:
                self.check_input_shape(x.shape)
            return SymbolicTensor(self.compute_output_shape(x.shape), x.layers + [self])
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))
        self.check_input_shape(x.shape)
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def window_geometry(layer, input_shape, window, strides, padding):
    """Pads (top, bottom, left, right) and output size (OH, OW) of a sliding window
    (a conv kernel or a pooling window) over an NHWC input shape."""
    (kh, kw), (sh, sw) = window, strides
    top, bottom = kernels.padding_amounts(input_shape[1], kh, sh, padding)
    left, right = kernels.padding_amounts(input_shape[2], kw, sw, padding)
    oh = kernels.output_size(input_shape[1], kh, sh, top, bottom)
    ow = kernels.output_size(input_shape[2], kw, sw, left, right)
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}): window {tuple(window)} does not fit "
            f"input {tuple(input_shape[1:3])} with padding {padding!r}"
        )
    return (top, bottom, left, right), (oh, ow)

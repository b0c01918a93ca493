"""The layer contract that every minicnn layer follows.

    build(input_shape)         create the parameters (input_shape has None as batch axis);
                               Conv2D and MaxPooling2D also make their `window` (kernels.Window)
    forward(x, training=False) return y; keep what backward needs (self.x, self.col...: the
                               names listed in `cached`, which forget() drops)
    backward(dy)               return dx; fill self.grads (same keys as self.params)

Layers with an activation (Dense, Conv2D, Activation) write their linear part,
linear(x) -> z and backward_linear(dz) -> dx, and ActivationMixin adds the activation.

`params` hold the trainable weights (kernel, bias, gamma, beta); `state` holds the
weights a layer updates itself (BatchNormalization's moving_mean / moving_variance).
A param `key` may have a penalty, the layer's attribute `<key>_regularizer` (Keras's names:
kernel_regularizer, bias_regularizer): see regularization_loss and add_regularization_gradients.
"""
import contextlib
import inspect
import math
import numbers
import re
import threading

import numpy as np

from minicnn import backend, kernels
from minicnn import initializers as init_module
from minicnn.utils import checks
from minicnn.utils.checks import allocate, check_bool, check_int

_name_counts = {}


# --- how many weight values building may create (load_model sets a budget) -------------------
class WeightBudgetExceeded(ValueError):
    """Building would create more weight values than the budget allows (see weight_budget)."""


_budget = threading.local()   # .left: values add_weight may still create; .source: who set it


@contextlib.contextmanager
def weight_budget(values, source):
    """Within the block (in this thread), add_weight refuses to create more than `values` weight
    values in all, before allocating anything. load_model builds a saved architecture under the
    budget of the arrays its file holds, so that a small file cannot declare gigabytes of weights."""
    previous = vars(_budget).copy()
    _budget.left, _budget.source = int(values), source
    try:
        yield
    finally:
        vars(_budget).clear()
        vars(_budget).update(previous)


def _charge(layer, name, shape):
    """Take the values of one new weight from the budget (if any), or raise WeightBudgetExceeded."""
    left = getattr(_budget, "left", None)
    if left is None:
        return
    values = math.prod(shape)
    if values > left:
        raise WeightBudgetExceeded(
            f"layer {layer.name!r} ({type(layer).__name__}) would create weight {name!r} of shape {shape} "
            f"({values} values), but {_budget.source} hold at most {left} more values")
    _budget.left = left - values


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
    """What `Input(shape)` and a layer called on it return, for a functional model: the
    shape, the layer that made it (None for an Input) and the tensors it was called on.
    `x + y` records an Add layer (a skip connection)."""

    def __init__(self, shape, layer=None, inputs=(), name=None):
        self.shape = tuple(shape)
        self.layer = layer
        self.inputs = list(inputs)
        self.name = name if name is not None else getattr(layer, "name", None)

    def __add__(self, other):
        from minicnn.layers.functional import Add
        return Add()([self, other])

    __radd__ = __add__

    def __array__(self, *args, **kwargs):
        raise TypeError("a SymbolicTensor (from Input(...) and layers called on it) holds no numbers: it only "
                        "records how a functional model is wired; NumPy functions cannot run on it (np.maximum(x, 0)); "
                        "use minicnn layers instead (Activation('relu')(x), or minicnn.activations.relu(x))")

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape}>"


# Keras layer arguments that minicnn does not support, each with the value(s) that change nothing
# and are accepted (Keras's default). Given another value, a layer raises a TypeError saying so;
# a name neither here nor among the layer's own arguments is a typo, refused as Python would.
KERAS_ARGUMENTS = {
    "activity_regularizer": (None,), "kernel_regularizer": (None,), "bias_regularizer": (None,),
    "kernel_constraint": (None,), "bias_constraint": (None,), "alpha_constraint": (None,),
    "alpha_regularizer": (None,), "beta_regularizer": (None,), "gamma_regularizer": (None,),
    "beta_constraint": (None,), "gamma_constraint": (None,), "lora_rank": (None,), "weights": (None,),
    "batch_size": (None,), "autocast": (True,), "dynamic": (False,), "data_format": ("channels_last", None),
    "dilation_rate": (1, (1, 1), [1, 1]), "groups": (1,), "renorm": (False,), "synchronized": (False,),
    "virtual_batch_size": (None,), "adjustment": (None,), "fused": (None,), "sparse": (False, None),
    "ragged": (False,), "max_value": (None,), "threshold": (0, 0.0), "negative_slope": (0, 0.0),
}


def refuse_arguments(who, kwargs):
    """Keras's layer arguments at their defaults (kernel_constraint=None, data_format='channels_last')
    are accepted; at another value a TypeError names the argument and the layer; other names are typos."""
    checks.refuse_arguments(who, kwargs, KERAS_ARGUMENTS)


class Layer:
    """Base class: naming, parameter bookkeeping, weights I/O and shape checks.

    Keras's arguments of every layer: name, trainable, input_shape (or input_dim for a vector,
    or batch_input_shape) and dtype (accepted; floatx decides). Others: see refuse_arguments.
    """

    def __init__(self, name=None, trainable=True, input_shape=None, batch_input_shape=None, dtype=None,
                 input_dim=None, **kwargs):
        who = type(self).__name__
        refuse_arguments(who, kwargs)
        if input_dim is not None:   # Keras 2: Dense(64, input_dim=784) means input_shape=(784,)
            input_dim = check_int(input_dim, "input_dim", who)
            same = isinstance(input_shape, (tuple, list)) and tuple(input_shape) == (input_dim,)
            if input_shape is not None and not same:
                raise ValueError(f"{who}: give input_shape or input_dim, not both "
                                 f"(got {input_shape!r} and {input_dim!r})")
            input_shape = (input_dim,)
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
        """Create a weight (NumPy, floatx) as a param (trainable) or as state.

        A shape too large for memory is a MemoryError that names the layer and the size."""
        shape = tuple(int(size) for size in shape)
        if any(size < 0 for size in shape):
            raise ValueError(f"layer {self.name!r} ({type(self).__name__}): weight {name!r} "
                             f"would have the negative shape {shape}")
        _charge(self, name, shape)
        who = f"layer {self.name!r} ({type(self).__name__}), weight {name!r}"
        value = allocate(lambda: init_module.get(initializer)(shape), shape, backend.floatx(), who)
        if trainable:
            self.params[name] = value
            self.grads[name] = allocate(lambda: init_module.zeros(shape, dtype=value.dtype), shape,
                                        value.dtype, who + " (its gradient)")
        else:
            self.state[name] = value
        return value

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.built = True

    # --- weight penalties (kernel_regularizer=..., minicnn/regularizers.py) --------------------
    def regularizer_of(self, key):
        """The penalty on param `key`: the attribute `<key>_regularizer` (kernel_regularizer...), or None."""
        return getattr(self, f"{key}_regularizer", None)

    def regularization_loss(self):
        """The sum of the penalties on this layer's params as a float, e.g. l2 * sum(kernel^2);
        0.0 when none. The model adds it to the loss. A frozen layer (trainable=False) adds 0.0,
        as in Keras 3: its weights do not move, so their penalty is left out."""
        total = 0.0
        for key, w in self.params.items():
            regularizer = self.regularizer_of(key)
            if regularizer is not None and self.trainable:
                total += float(regularizer(w))
        return total

    def add_regularization_gradients(self):
        """grads[key] += d penalty / d params[key] for every param with a penalty (none when the
        layer is frozen, as regularization_loss). Backward calls it once, after it has set the
        grads: the penalty is part of the loss, so its gradient is part of the gradient."""
        for key, w in self.params.items():
            regularizer = self.regularizer_of(key)
            if regularizer is not None and self.trainable:
                self.grads[key] = self.grads[key] + regularizer.gradient(w)

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
        """Copy arrays into the weights (in place, so optimizers keep their references).

        Every array is checked first (count, shape, numbers that fit the weight's dtype): a call
        that raises changes no weight."""
        assign_weights(self.check_weights(weights))

    def check_weights(self, weights):
        """[(weight, new value)] for set_weights, each value checked and converted to the
        weight's dtype and device; a ValueError or TypeError naming the layer and the weight."""
        current = self.weights
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
            raise TypeError(f"layer {self.name!r}: set_weights expects a list of arrays, got {type(weights).__name__}")
        if len(weights) != len(current):
            raise ValueError(
                f"layer {self.name!r} expects {len(current)} weight arrays, got {len(weights)}"
            )
        pairs = []
        for target, value, key in zip(current, weights, list(self.params) + list(self.state)):
            where = f"layer {self.name!r}: weight {key!r}"
            value = _weight_array(value, where)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"{where} has shape {tuple(target.shape)}, got an array of shape {tuple(value.shape)}")
            _check_range(value, target.dtype, where)
            value = backend.to_device(value, backend.device_of(target)).astype(target.dtype, copy=False)
            pairs.append((target, value))
        return pairs

    def to(self, device):
        """Move params, grads and state to 'cpu' or 'gpu' (all of them, or none if a copy fails)."""
        stores = (self.params, self.grads, self.state)
        moved = [{key: backend.to_device(array, device) for key, array in store.items()} for store in stores]
        for store, arrays in zip(stores, moved):
            store.update(arrays)
        return self

    def unbuild(self):
        """Forget the weights and the input shape: the layer is as it was before build."""
        self.params, self.grads, self.state = {}, {}, {}
        self.built, self.input_shape = False, None

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

    # --- what forward keeps for backward ---------------------------------------------------
    cached = ()   # names of the attributes forward sets for backward (see forget)

    def forget(self):
        """Drop what the last forward kept for backward, so that no later backward can pair
        stale arrays with fresh ones (the step plan calls this on layers it runs fused)."""
        for name in self.cached:
            if name in vars(self):
                setattr(self, name, None)

    # --- calling -----------------------------------------------------------------------
    takes_list = False   # True for layers called on a list of tensors (Add)

    def __call__(self, x, training=False):
        """layer(x): build on first use, check the shape, run forward.

        Called on a SymbolicTensor (from `Input`), it records the call for `Model`.
        """
        many = isinstance(x, (list, tuple))
        if many != self.takes_list:
            what = "a list of tensors, e.g. layer([x, y])" if self.takes_list else "one tensor, not a list"
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}) is called on {what}")
        items = list(x) if many else [x]
        if all(isinstance(item, SymbolicTensor) for item in items):
            shapes = [item.shape for item in items] if many else items[0].shape
            if not self.built:
                self.build(shapes)
            else:
                self.check_input_shape(shapes)
            return SymbolicTensor(self.compute_output_shape(shapes), self, items)
        if any(isinstance(item, SymbolicTensor) for item in items):
            raise TypeError(f"layer {self.name!r} ({type(self).__name__}): cannot mix symbolic tensors (from "
                            "Input) and arrays in one call")
        shapes = [(None,) + tuple(item.shape[1:]) for item in items]
        if not self.built:
            self.build(shapes if many else shapes[0])
        self.check_input_shape([tuple(item.shape) for item in items] if many else x.shape)
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    # --- Keras's call() ------------------------------------------------------------------
    def call(self, inputs, training=None):
        """Keras's name for the forward pass: the layer's own forward (training=None is False).

        A subclass may override call() to change how its layer is called, as Keras scripts do:

            class MCDropout(Dropout):                    # Monte-Carlo dropout
                def call(self, inputs):
                    return super().call(inputs, training=True)

        minicnn then runs that call() as the forward pass, and the layer's own backward after it
        (here Dropout's: dx = dy * mask). That is right only when call() returns what the layer's
        own computation returned, which forward checks on every batch; a call() that computes
        something else (super().call(x) * 2, or super().call(x * 2)) is refused with an error, since
        minicnn has no backward for it; a change made to the result in place (y *= 2) is not caught.
        A subclass that writes its own backward may write call() as its forward.
        """
        forward = getattr(type(self), "forward_beneath_call", type(self).forward)
        self.call_input = inputs
        self.call_result = forward(self, inputs, training=bool(training))
        return self.call_result

    def __init_subclass__(cls, **kwargs):
        """A subclass that overrides call(): its forward becomes `call`, as described there."""
        super().__init_subclass__(**kwargs)
        if "call" not in vars(cls):
            return
        if "forward" in vars(cls):
            raise TypeError(f"{cls.__name__} defines both forward() and call(); minicnn runs forward(x, training) "
                            "as the forward pass: keep one of them")
        if cls.backward is Layer.backward:
            raise TypeError(
                f"minicnn cannot train {cls.__name__}: its call() computes the output, but minicnn needs the "
                "backward pass too, which it cannot derive from call(). Write forward(x, training) and "
                "backward(dy) (see README, 'Learn by writing it'), or subclass a minicnn layer and end call() "
                "in super().call(...)")
        cls.forward_beneath_call = getattr(cls, "forward_beneath_call", cls.forward)
        cls.forward = _forward_through_call
        # call() is the forward pass of a class that writes its own backward: nothing to check
        cls.call_is_checked = not any("backward" in vars(klass) for klass in cls.__mro__
                                      if not klass.__module__.startswith("minicnn."))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _forward_through_call(self, x, training=False):
    """The forward pass of a layer whose class overrides call() (see Layer.call)."""
    self.call_input = self.call_result = None
    takes_training = "training" in inspect.signature(self.call).parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(self.call).parameters.values())
    y = self.call(x, training=training) if takes_training else self.call(x)
    if type(self).call_is_checked and (y is not self.call_result or self.call_input is not x):
        raise NotImplementedError(
            f"{type(self).__name__}.call() (layer {self.name!r}) computes something besides "
            f"{type(self).__mro__[1].__name__}'s own computation: it changes the input before super().call(...) "
            "or returns something else than its result, and minicnn has no backward pass for that; end call() "
            "in `return super().call(inputs, ...)`, or write forward(x, training) and backward(dy) instead")
    return y


def _weight_array(value, where):
    """`value` (an array, a list, a CuPy array) as an array of real numbers, or a TypeError."""
    if not backend.is_gpu_array(value):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{where}: cannot read the new value as an array ({error})") from None
    if value.dtype.kind not in "iuf":
        raise TypeError(f"{where}: expects an array of real numbers, got dtype {value.dtype}")
    return value


def _check_range(value, dtype, where):
    """Finite values must stay finite in `dtype` (1e39 would become inf in float32); NaN and inf
    are copied as given, so that get_weights / set_weights round-trips even a diverged model."""
    if value.dtype.kind != "f" or value.dtype.itemsize <= np.dtype(dtype).itemsize:
        return
    xp = backend.get_array_module(value)
    finite = value[xp.isfinite(value)]
    largest = float(xp.abs(finite).max()) if finite.size else 0.0
    limit = float(np.finfo(dtype).max)
    if largest > limit:
        raise ValueError(f"{where} is {np.dtype(dtype).name}, which reaches {limit:.4g}; "
                         f"got values up to {largest:g}")


def assign_weights(pairs):
    """Copy each checked new value into its weight (pairs from Layer.check_weights)."""
    for target, value in pairs:
        target[...] = value


def sliding_window(layer, input_shape, size, strides, padding):
    """The kernels.Window of a layer's kernel or pooling window over an NHWC input shape;
    a clear error naming the layer when it does not fit."""
    try:
        return kernels.Window.over(input_shape[1:3], size, strides, padding)
    except ValueError as error:
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}): {error}") from None


def check_window(layer, x):
    """x must have the height and width the layer's window was built for."""
    window = layer.window
    if tuple(x.shape[1:3]) != (window.h, window.w):
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) was built for images of "
                         f"{(window.h, window.w)}, got input of shape {tuple(x.shape)}")


class ActivationMixin:
    """For layers with an `activation` argument: y = f(z), z the layer's linear part.

    The layer writes `linear(x)` -> z and `backward_linear(dz)` -> dx; this adds
    forward(x) = f(linear(x)) and backward(dy) = backward_linear(f'(z) * dy).
    After forward, `z` and `y` hold the pre-activation and the output (backward needs them).
    When softmax meets cross-entropy, the step plan calls linear and backward_linear
    itself and computes softmax and its gradient with the loss (minicnn/plan.py).
    """
    cached = ("z", "y")

    def forward(self, x, training=False):
        return self.apply_activation(self.linear(x))

    def apply_activation(self, z):
        self.z = z
        self.y = self.activation.forward(z)
        return self.y

    def backward(self, dy):
        dz = self.activation.backward(dy, self.z, self.y)    # dz = f'(z) * dy
        return self.backward_linear(dz)

"""Look inside a model: what every layer receives, returns and sends back, and how long it takes.

    records = trace(model, x, y)     one LayerRecord per layer: input, output, gradients, params
    print(stats_table(stats(records)))   per-layer mean, std, share below 0, gradient norms
    print(profile(model, x, y).table())  per-layer forward / backward milliseconds
    fit(..., callbacks=[GradientNormLogger()])   each layer's gradient norm after every batch

How it works: for the length of one call, each layer's `forward` and `backward` are wrapped
(an attribute on the layer object hides the class's method) so that every call is seen on its
way through `Model.compute_gradients`, the same code that `fit` runs. Afterwards the wrappers
are removed, and the weights, optimizer state and random generator are put back as they were:
tracing or profiling never changes a model.
"""
import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from minicnn import backend
from minicnn.callbacks import Callback

RECTIFIERS = ("relu", "leaky_relu")   # activations with a kink at 0: we count the units below it


# --- watching layers --------------------------------------------------------------------------
def clock(device):
    """time.perf_counter(), once the GPU has finished the work queued so far.

    CuPy launches kernels asynchronously: without the synchronize, the clock would stop
    before the GPU has done the work it is meant to time.
    """
    backend.synchronize(device)
    return time.perf_counter()


@contextlib.contextmanager
def _observed(targets, observe, device):
    """Wrap obj.method for every (obj, method) in targets, for the duration of the block.

    After each call, observe(obj, method, argument, result, seconds) is told what went in,
    what came out and how long it took.
    """
    def wrap(obj, method):
        original = getattr(obj, method)

        def observed_call(argument, *args, **kwargs):
            start = clock(device)
            result = original(argument, *args, **kwargs)
            observe(obj, method, argument, result, clock(device) - start)
            return result
        return observed_call

    try:
        for obj, method in targets:
            setattr(obj, method, wrap(obj, method))
        yield
    finally:
        for obj, method in targets:
            if method in vars(obj):
                delattr(obj, method)   # the class's method shows through again


def _layer_methods(model):
    """(layer, method) pairs the model calls in a training step.

    When softmax fuses with the cross-entropy, the model calls the last layer's
    backward_preactivation instead of its backward (see Model.compute_gradients).
    """
    pairs = [(layer, name) for layer in model.layers for name in ("forward", "backward")]
    if model.loss is not None and model._fused_softmax():
        pairs[-1] = (model.layers[-1], "backward_preactivation")
    return pairs


@contextlib.contextmanager
def _unchanged(model):
    """Put weights, layer state, optimizer state and the random generator back after the block."""
    weights = model.get_weights()
    optimizer = model.optimizer
    if optimizer is not None:
        iterations = optimizer.iterations
        slots = {name: [a.copy() for a in arrays] for name, arrays in optimizer.slots.items()}
    rng_state = backend.get_rng_state()
    try:
        yield
    finally:
        model.set_weights(weights)
        if optimizer is not None:
            optimizer.set_state(iterations, slots)
        backend.set_rng_state(rng_state)


def _batch(model, x, y, what):
    """x (and y) checked by the model and moved to its device, in its float type."""
    if y is not None:
        model._check_compiled(what)
    x, y = model._prepare(x, y, what)
    return model._to_batch(x), (model._target_batch(y) if y is not None else None)


def _numpy_copy(array):
    return None if array is None else np.array(backend.to_numpy(array))


def label_width(items, minimum=32):
    """Width of a table's first column, 'name (Type)', for layers (or records, stats, timings)."""
    return max([minimum] + [len(f"{i.name} ({getattr(i, 'type', type(i).__name__)})") + 2 for i in items])


def l2_norm(arrays):
    """sqrt(sum of squares) over every entry of every array, computed in float64."""
    return math.sqrt(sum(float((a.astype("float64") ** 2).sum()) for a in arrays))


# --- trace ------------------------------------------------------------------------------------
@dataclass
class LayerRecord:
    """What one layer saw in one batch. NumPy arrays; None where nothing was computed.

    input (N, ...) -> output (N, ...); preactivation: z before a non-linear activation;
    grad_output = dL/d output, grad_input = dL/d input, grads[name] = dL/d params[name].
    A last layer whose softmax is fused with the cross-entropy never receives dL/d output:
    dL/dz = (p - y) / N enters it directly, and is kept as grad_preactivation.
    """
    index: int
    name: str
    type: str
    activation: str = None            # 'leaky_relu', 'softmax'...; None for layers without one
    input: np.ndarray = None
    output: np.ndarray = None
    preactivation: np.ndarray = None
    grad_output: np.ndarray = None
    grad_preactivation: np.ndarray = None
    grad_input: np.ndarray = None
    params: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    return activation.name if activation is not None else None


def trace(model, x, y=None, training=True):
    """Run one batch through `model` and keep what every layer received and returned.

    Without y: the forward pass only (input, output, preactivation). With y (a compiled
    model): also the backward pass of one training step, without the weight update, so
    every record gets grad_output, grad_input and grads (the first layer's grad_input is
    d loss / d image). When softmax fuses with cross-entropy, the last layer gets
    grad_preactivation = dL/dz instead of grad_output (see LayerRecord).
    Returns [LayerRecord] in layer order; the model is left as it was.
    """
    xb, yb = _batch(model, x, y, "trace")
    records = {id(layer): LayerRecord(i, layer.name, type(layer).__name__, _activation_name(layer))
               for i, layer in enumerate(model.layers)}

    def observe(layer, method, argument, result, seconds):
        record = records[id(layer)]
        if method == "forward":
            record.input, record.output = _numpy_copy(argument), _numpy_copy(result)
            z = getattr(layer, "_z", None)
            if record.activation not in (None, "linear"):
                record.preactivation = record.input if z is argument else _numpy_copy(z)
            record.params = {key: _numpy_copy(value) for key, value in layer.params.items()}
        else:  # backward (or backward_preactivation): it has just filled layer.grads
            gradient = "grad_output" if method == "backward" else "grad_preactivation"
            setattr(record, gradient, _numpy_copy(argument))
            record.grad_input = _numpy_copy(result)
            record.grads = {key: _numpy_copy(value) for key, value in layer.grads.items()}

    with _unchanged(model), model.layer_by_layer():   # each layer's own forward and backward runs
        if yb is None:
            with _observed([(layer, "forward") for layer in model.layers], observe, model.device):
                model.forward(xb, training=training)
        else:
            with _observed(_layer_methods(model), observe, model.device):
                model.compute_gradients(xb, yb, training=training, input_gradient=True)
    return [records[id(layer)] for layer in model.layers]


# --- statistics -------------------------------------------------------------------------------
@dataclass
class LayerStats:
    """Summary numbers of one LayerRecord (see stats)."""
    name: str
    type: str
    output_shape: tuple
    mean: float                  # of the output
    std: float
    negative_share: float = None     # share of pre-activations < 0 (ReLU / LeakyReLU layers only)
    grad_output_norm: float = None   # ||dL/d output||
    grad_preactivation_norm: float = None   # ||dL/dz||, a last layer with softmax fused into the loss
    grad_input_norm: float = None    # ||dL/d input||
    grad_norm: float = None          # ||dL/d params||, all of the layer's parameters together
    weight_norm: float = None        # ||params||
    grad_norms: dict = field(default_factory=dict)   # name -> ||dL/d params[name]||
    problems: list = field(default_factory=list)     # 'NaN or inf in ...', 'all-zero ...'


def stats(records):
    """Per-layer statistics of trace(...) records: [LayerStats].

    Going from the last layer to the first, grad_output_norm shows whether gradients
    vanish (shrink towards 0) or explode (grow by orders of magnitude) on their way back.
    """
    return [_layer_stats(record) for record in records]


def _layer_stats(record):
    out = record.output.astype(np.float64)
    result = LayerStats(record.name, record.type, tuple(out.shape), float(out.mean()), float(out.std()))
    if record.activation in RECTIFIERS and record.preactivation is not None:
        result.negative_share = float(np.mean(record.preactivation < 0))
    for attribute, array in [("grad_output_norm", record.grad_output), ("grad_input_norm", record.grad_input),
                             ("grad_preactivation_norm", record.grad_preactivation)]:
        if array is not None:
            setattr(result, attribute, l2_norm([array]))
    if record.grads:
        result.grad_norms = {key: l2_norm([g]) for key, g in record.grads.items()}
        result.grad_norm = l2_norm(record.grads.values())
    if record.params:
        result.weight_norm = l2_norm(record.params.values())
    named = {"output": record.output, "grad_output": record.grad_output,
             "grad_preactivation": record.grad_preactivation, **record.grads}
    for what, array in named.items():
        if array is not None and not np.isfinite(array).all():
            result.problems.append(f"NaN or inf in {what}")
    for key, grad in record.grads.items():
        if not grad.any():
            result.problems.append(f"all-zero gradient of {key}")
    return result


def _number(value, spec):
    return "-" if value is None else format(value, spec)


def _gradient_cell(s):
    if s.grad_output_norm is None and s.grad_preactivation_norm is not None:
        return f"{s.grad_preactivation_norm:.2e}*"
    return _number(s.grad_output_norm, "11.2e")


def stats_table(layer_stats):
    """The statistics as a text table, one row per layer, and how the gradient changes on its way back.

    A fused softmax layer shows ||dL/dz|| marked '*' in the |dL/dout| column (it never receives dL/d output).
    """
    width = label_width(layer_stats)
    header = (f"{'layer (type)':<{width}}{'output shape':<20}{'mean':>9}{'std':>9}{'< 0':>7}"
              f"{'|dL/dout|':>11}{'|dL/dW|':>11}{'|W|':>9}")
    lines = [header, "-" * len(header)]
    for s in layer_stats:
        share = None if s.negative_share is None else 100 * s.negative_share
        row = (f"{s.name + ' (' + s.type + ')':<{width}}{str(s.output_shape):<20}{s.mean:>9.3f}{s.std:>9.3f}"
               f"{_number(share, '6.1f') + ('%' if share is not None else ''):>7}"
               f"{_gradient_cell(s):>11}{_number(s.grad_norm, '11.2e'):>11}"
               f"{_number(s.weight_norm, '9.2f'):>9}")
        lines.append(row + "".join(f"  WARNING: {p}" for p in s.problems))
    if any(s.grad_output_norm is None and s.grad_preactivation_norm is not None for s in layer_stats):
        lines.append("* ||dL/dz||: softmax is fused with the cross-entropy, dL/dz = (p - y) / N enters that layer")
    flowing = [s for s in layer_stats if s.grad_output_norm]
    if len(flowing) > 1:
        last, first = flowing[-1], flowing[0]
        lines.append(f"|dL/dout| on its way back, from {last.name} to {first.name}: {last.grad_output_norm:.2e} -> "
                     f"{first.grad_output_norm:.2e} (x{first.grad_output_norm / last.grad_output_norm:.2g})")
    return "\n".join(lines)


# --- gradient norms during training -----------------------------------------------------------
class GradientNormLogger(Callback):
    """Each layer's gradient norm ||dL/d params|| after every training batch: fit(..., callbacks=[logger]).

    batch_norms[layer name]: one value per batch; epoch_norms[layer name]: the mean of each
    epoch's values; epoch_ends: how many batches had run when each epoch ended. Values
    accumulate over several fit calls. plotting.plot_gradient_norms draws them.
    """

    def __init__(self):
        super().__init__()
        self.batch_norms = {}
        self.epoch_norms = {}
        self.epoch_ends = []
        self._batches = 0
        self._epoch_start = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._batches

    def on_train_batch_end(self, batch, logs=None):
        for layer in self.model.layers:
            if layer.grads:
                self.batch_norms.setdefault(layer.name, []).append(l2_norm(layer.grads.values()))
        self._batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if self._batches == self._epoch_start:
            return
        for name, values in self.batch_norms.items():
            self.epoch_norms.setdefault(name, []).append(float(np.mean(values[self._epoch_start:])))
        self.epoch_ends.append(self._batches)


# --- time profile -----------------------------------------------------------------------------
@dataclass
class LayerTiming:
    """Mean milliseconds per training step that one layer spent in forward and in backward."""
    name: str
    type: str
    forward_ms: float
    backward_ms: float
    share: float = 0.0          # (forward + backward) / the whole step

    @property
    def total_ms(self):
        return self.forward_ms + self.backward_ms


@dataclass
class Profile:
    """Where the time of a training step goes (means over `steps` steps, in milliseconds)."""
    device: str
    batch_size: int
    steps: int
    layers: list
    optimizer_ms: float
    step_ms: float

    @property
    def other_ms(self):
        """The loss, the data moves and Python's own work: the step less layers and optimizer."""
        return self.step_ms - self.optimizer_ms - sum(t.total_ms for t in self.layers)

    def table(self):
        """A text table: one row per layer, then the optimizer, the rest and the whole step."""
        width = label_width(self.layers)
        header = f"{'layer (type)':<{width}}{'forward ms':>12}{'backward ms':>13}{'total ms':>10}{'share':>8}"
        lines = [f"time per training step, layer by layer (fit fuses conv + activation + pooling, which is faster): "
                 f"batch {self.batch_size}, {self.device}, mean of {self.steps} steps",
                 header, "-" * len(header)]

        def row(label, forward, backward, total):
            return (f"{label:<{width}}{_number(forward, '12.3f'):>12}{_number(backward, '13.3f'):>13}"
                    f"{total:>10.3f}{100 * total / self.step_ms:>7.1f}%")
        for t in self.layers:
            lines.append(row(f"{t.name} ({t.type})", t.forward_ms, t.backward_ms, t.total_ms))
        lines.append(row("optimizer update", None, None, self.optimizer_ms))
        lines.append(row("other (loss, Python)", None, None, self.other_ms))
        lines.append(row("whole step", None, None, self.step_ms))
        return "\n".join(lines)


def profile(model, x, y, steps=5, warmup=1):
    """Time each layer's forward and backward pass over `steps` training steps on (x, y).

    `warmup` steps run first, untimed (compilation, caches). On the GPU the clock is read
    only after the GPU has finished (see clock). Every timed call waits for the device, so
    the layer times add up to the step; the weights are put back afterwards.
    The steps run layer by layer, so that each layer's time shows: fit runs Conv2D ->
    LeakyReLU -> MaxPooling2D fused into one step (fusion.py), which is faster than the
    sum of those three rows.
    Returns a Profile; print(profile(...).table()).
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"profile: steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    model._check_compiled("profile")
    xb, yb = _batch(model, x, y, "profile")
    seconds = {(id(layer), kind): 0.0 for layer in model.layers for kind in ("forward", "backward")}
    seconds["optimizer"] = 0.0
    timing = False      # off during the warm-up steps

    def observe(obj, method, argument, result, elapsed):
        if not timing:
            return
        if obj is model.optimizer:
            seconds["optimizer"] += elapsed
        else:
            seconds[(id(obj), "forward" if method == "forward" else "backward")] += elapsed

    step_seconds = 0.0
    targets = _layer_methods(model) + [(model.optimizer, "apply_gradients")]
    # layer by layer (no fusion), so each layer's own time shows; fused steps are faster (fusion.py)
    with _unchanged(model), model.layer_by_layer(), _observed(targets, observe, model.device):
        for step in range(warmup + steps):
            timing = step >= warmup
            start = clock(model.device)
            model._train_step(xb, yb)
            if timing:
                step_seconds += clock(model.device) - start

    def ms(value):
        return 1000 * value / steps
    step_ms = ms(step_seconds)
    layers = [LayerTiming(layer.name, type(layer).__name__, ms(seconds[(id(layer), "forward")]),
                          ms(seconds[(id(layer), "backward")])) for layer in model.layers]
    for t in layers:
        t.share = t.total_ms / step_ms
    return Profile(model.device, len(xb), steps, layers, ms(seconds["optimizer"]), step_ms)


__all__ = ["trace", "LayerRecord", "stats", "LayerStats", "stats_table", "GradientNormLogger",
           "profile", "Profile", "LayerTiming", "clock", "l2_norm", "label_width"]

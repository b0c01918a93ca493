"""Look inside a model: what every layer receives, returns and sends back, and how long it takes.

    records = trace(model, x, y)     one LayerRecord per layer: input, output, gradients, params
    print(stats_table(stats(records)))   per-layer mean, std, share below 0, gradient norms
    print(profile(model, x, y).table())  per-layer forward / backward milliseconds
    fit(..., callbacks=[GradientNormLogger()])   each layer's gradient norm after every batch

How it works: trace and profile pass an observer (minicnn.plan.Observer) to
`Model.compute_gradients` / `Model.train_step`, the same code that `fit` runs; the plan
tells it about every step's forward and backward. trace runs layer by layer (each step
one layer), profile runs the plan fit runs (fused steps as one row) unless asked for
layer_by_layer. Afterwards the weights, optimizer state and random generator are put
back as they were: tracing or profiling never changes a model.
"""
import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from minicnn import backend
from minicnn.callbacks import Callback
from minicnn.plan import ConvActivationPool, Observer, SoftmaxCrossEntropy

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
    return model.prepare_batch(x, y, what)


def _numpy_copy(array):
    """A NumPy copy of an array (or of each array of a list: the inputs of an Add layer)."""
    if isinstance(array, (list, tuple)):
        return [_numpy_copy(item) for item in array]
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


class _Recorder(Observer):
    """Fills one LayerRecord per layer from what the plan's steps receive and return."""

    def __init__(self, records):
        self.records = records       # id(layer) -> LayerRecord

    def after_forward(self, step, x, y):
        [layer] = step.layers        # layer by layer: one layer per step
        record = self.records[id(layer)]
        record.input, record.output = _numpy_copy(x), _numpy_copy(y)
        if record.activation not in (None, "linear"):
            z = layer.z              # what ActivationMixin keeps
            record.preactivation = record.input if z is x else _numpy_copy(z)
        record.params = {key: _numpy_copy(value) for key, value in layer.params.items()}

    def after_backward(self, step, dy, dx):
        [layer] = step.layers
        record = self.records[id(layer)]
        gradient = "grad_preactivation" if isinstance(step, SoftmaxCrossEntropy) else "grad_output"
        setattr(record, gradient, _numpy_copy(dy))
        record.grad_input = _numpy_copy(dx)
        record.grads = {key: _numpy_copy(value) for key, value in layer.grads.items()}


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
    observers = [_Recorder(records)]
    with _unchanged(model), model.layer_by_layer():   # each layer's own forward and backward runs
        if yb is None:
            model.forward(xb, training=training, observers=observers)
        else:
            model.compute_gradients(xb, yb, training=training, input_gradient=True, observers=observers)
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
            setattr(result, attribute, l2_norm(array if isinstance(array, list) else [array]))
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
    """Mean milliseconds per training step that one step (a layer, or a fused run of layers)
    spent in forward and in backward."""
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
    layers: list                # LayerTiming, one per step
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
        lines = [f"time per training step, step by step ('fused': conv + activation + pooling as one step): "
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


class _Timer(Observer):
    """Adds up the seconds of every step's forward and backward, and of the optimizer update."""

    def __init__(self, device):
        self.device = device
        self.on = False                # off during the warm-up steps
        self.seconds = {}              # (id(step), 'forward' / 'backward') or 'optimizer' -> seconds
        self._start = None

    def _begin(self, *args):
        self._start = clock(self.device)

    def _end(self, key):
        if self.on:
            self.seconds[key] = self.seconds.get(key, 0.0) + clock(self.device) - self._start

    before_forward = before_backward = before_update = _begin

    def after_forward(self, step, x, y):
        self._end((id(step), "forward"))

    def after_backward(self, step, dy, dx):
        self._end((id(step), "backward"))

    def after_update(self, optimizer):
        self._end("optimizer")


def _step_type(step):
    return "fused" if isinstance(step, ConvActivationPool) else type(step.layers[0]).__name__


def profile(model, x, y, steps=5, warmup=1, layer_by_layer=False):
    """Time each step's forward and backward pass over `steps` training steps on (x, y).

    The steps are those fit runs: a fused Conv2D -> LeakyReLU -> MaxPooling2D is one row
    (type 'fused'). With layer_by_layer=True every layer runs, and is timed, on its own.
    `warmup` steps run first, untimed (compilation, caches). On the GPU the clock is read
    only after the GPU has finished (see clock). Every timed call waits for the device, so
    the step times add up to the training step; the weights are put back afterwards.
    Returns a Profile; print(profile(...).table()).
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"profile: steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    if y is None:
        raise ValueError("profile: y (the targets) is required")
    xb, yb = _batch(model, x, y, "profile")
    timer = _Timer(model.device)
    step_seconds = 0.0
    fused = contextlib.nullcontext() if not layer_by_layer else model.layer_by_layer()
    with _unchanged(model), fused:
        plan = model.plan
        for step in range(warmup + steps):
            timer.on = step >= warmup
            start = clock(model.device)
            model.train_step(xb, yb, observers=[timer])
            if timer.on:
                step_seconds += clock(model.device) - start

    def ms(value):
        return 1000 * value / steps
    step_ms = ms(step_seconds)
    rows = [LayerTiming(step.name, _step_type(step), ms(timer.seconds.get((id(step), "forward"), 0.0)),
                        ms(timer.seconds.get((id(step), "backward"), 0.0))) for step in plan.steps]
    for t in rows:
        t.share = t.total_ms / step_ms
    return Profile(model.device, len(xb), steps, rows, ms(timer.seconds.get("optimizer", 0.0)), step_ms)


__all__ = ["trace", "LayerRecord", "stats", "LayerStats", "stats_table", "GradientNormLogger",
           "profile", "Profile", "LayerTiming", "clock", "l2_norm", "label_width"]

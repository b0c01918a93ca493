"""Numerical gradient checking: compare backward() with central differences.

For a scalar function L of an array a, the central difference
    dL/da_i ~ (L(a + eps e_i) - L(a - eps e_i)) / (2 eps)
is accurate to O(eps^2). Run it in float64 (backend.set_floatx('float64')):
in float32 the rounding error swamps the comparison.

The reported error of an array is the largest elementwise difference, relative to
the largest gradient entry of that array:
    error = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|, GRADIENT_FLOOR)
A correct backward pass gives about 1e-9 in float64; a wrong one, 1e-2 or more.
Central differences carry rounding noise of about 1e-10 (a few ulps of L, over 2 eps). Relative
to a tiny gradient that noise would look like an error, so the denominator is never below
GRADIENT_FLOOR: an array whose gradients are all small (a bias before BatchNormalization has
gradient exactly 0) must then match within GRADIENT_FLOOR * tolerance = 1e-9, absolutely.
A gradient holding NaN or inf gives the error NaN, and `passed` never passes a NaN or infinite error.

    check_layer(layer, x)      a layer: L = sum(layer(x) * R) for a fixed random R
    check_loss(loss, y, p)     a loss: L = loss(y, p)
    check_model(model, x, y)   a whole compiled model: L = the model's loss
    check_layers(model, x, y)  every layer of a model on its own, each on the input it receives
                               in the model: the layer whose own backward is wrong is the one that fails
Each returns {name: error} for the input ('x') and every parameter (check_layers: one such dict
per layer), and prints a table when verbose=True.

Which code is checked. `fit` runs the model's step plan (minicnn/plan.py), where a Conv2D ->
LeakyReLU -> MaxPooling2D run is one fused step: its kernel never calls the three layers' own
backward methods. So check_model runs the model layer by layer by default (as
`with model.layer_by_layer():`), and checks the layers' own code, the code you read and change;
check_model(..., fused=True) checks the plan exactly as fit runs it. The plan never fuses a layer
whose code was changed (plan.replaced), so a changed layer is checked either way.

Kinks. ReLU and LeakyReLU bend at 0, max-pooling switches winner where two values tie. A
perturbation of eps moves a pre-activation by about eps times a weight or an input of order 1, so
find_kinks flags pre-activations within KINK_RADIUS * eps = 3 eps of 0, and pooling windows whose
two largest values lie within 2 * KINK_RADIUS * eps = 6 eps of each other (each may move). There
the two evaluations of a central difference can land on both sides of the kink, and the numerical
gradient is an average of two slopes: a large error can be the kink, not a bug. Only the arrays
that feed such a layer (its own and those of the layers before it) can be disturbed. The command
rechecks those on another batch before it blames a kink: a kink moves with the input, a bug stays.

From the command line, a per-layer table for the lab's baseline (or a saved model) in float64:

    python -m minicnn.gradcheck                          # the lab's layers, batch 2, 28x28
    python -m minicnn.gradcheck --per-layer              # also each layer on its own
    python -m minicnn.gradcheck --fused                  # the fused plan, as fit runs it
    python -m minicnn.gradcheck --model fashion_model_baseline.h5py --max-elements 50
"""
import argparse
import contextlib
import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from minicnn import backend, inspection, kernels, losses
from minicnn.inspection import label_width
from minicnn.lab import lab_model
from minicnn.layers import Dropout, MaxPooling2D
from minicnn.models import Sequential, load_model
from minicnn.plan import SoftmaxCrossEntropy

DEFAULT_EPS = 1e-6
R_STREAM = 0x5EED  # second word of the seed that draws the projection R
DEFAULT_TOLERANCE = 1e-6   # a correct backward pass gives ~1e-9 in float64
# A perturbation of eps moves a unit by about eps times a weight or an input of order 1: flag
# what lies within KINK_RADIUS such steps of a kink (a few, to be safe).
KINK_RADIUS = 3
GRADIENT_FLOOR = 1e-3      # smallest denominator of the relative error (see above)


def passed(error, tolerance=DEFAULT_TOLERANCE):
    """True when a relative error is finite and below tolerance: NaN and inf never pass."""
    return math.isfinite(error) and error < tolerance


def check_eps(eps):
    """eps as a float, or a ValueError: a finite-difference step is a finite number > 0."""
    try:
        value = float(eps)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"eps (the finite-difference step) must be a finite number > 0, such as "
                         f"{DEFAULT_EPS:g}; got {eps!r}")
    return value


def _relative_error(analytic, numeric):
    """The error of one array (see the module notes); NaN when either gradient holds NaN or inf."""
    if not (np.isfinite(analytic).all() and np.isfinite(numeric).all()):
        return math.nan
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0), GRADIENT_FLOOR)
    return float(np.abs(analytic - numeric).max(initial=0.0) / scale)


def _sample(size, max_elements, rng):
    """Which flat indices to check: all, or a random sample of max_elements."""
    if max_elements is None or size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, max_elements, replace=False))


def numerical_gradient(f, array, eps=DEFAULT_EPS, indices=None):
    """Central differences of the scalar f() w.r.t. `array`, perturbed in place.

    Returns a flat float64 array over `indices` (all elements by default).
    """
    eps = check_eps(eps)
    flat = array.reshape(-1)  # a view: writing to it changes `array`
    indices = np.arange(flat.size) if indices is None else indices
    grad = np.empty(len(indices))
    for k, i in enumerate(indices):
        original = flat[i].item()
        flat[i] = original + eps
        plus = float(f())
        flat[i] = original - eps
        minus = float(f())
        flat[i] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad


def _compare(named_arrays, analytic_grads, f, eps, max_elements, seed):
    """Error per name, between analytic_grads[name] and the numerical gradient of f."""
    rng = np.random.default_rng(seed)
    errors = {}
    for name, array in named_arrays.items():
        indices = _sample(array.size, max_elements, rng)
        numeric = numerical_gradient(f, array, eps, indices)
        analytic = backend.to_numpy(analytic_grads[name]).reshape(-1)[indices].astype(np.float64)
        errors[name] = _relative_error(analytic, numeric)
    return errors


def _require_float64(*arrays):
    for a in arrays:
        if a.dtype != np.float64:
            raise TypeError(
                f"gradient checks need float64 arrays, got {a.dtype}; call "
                "minicnn.backend.set_floatx('float64') before building the layer or model"
            )


def _check(layer, x, loss, backward, eps, max_elements, seed):
    """The errors of one layer: backward() -> d loss / d x and the layer's grads, against
    central differences of loss() w.r.t. x and each of the layer's params (x is perturbed in place)."""
    layer.input_gradient = True        # a model's first layer skips dx in training; here we check it
    dx = backward()
    if isinstance(x, list):            # a layer with several inputs (Add): x0, x1, ...
        inputs, dx = {f"x{i}": a for i, a in enumerate(x)}, {f"x{i}": d for i, d in enumerate(dx)}
    else:
        inputs, dx = {"x": x}, {"x": dx}
    analytic = {**dx, **{k: v.copy() for k, v in layer.grads.items()}}
    return _compare({**inputs, **layer.params}, analytic, loss, eps, max_elements, seed)


def check_layer(layer, x, training=True, eps=DEFAULT_EPS, max_elements=None, seed=0, verbose=False):
    """Check layer.backward against central differences at input x (float64).

    The scalar checked is L = sum(layer.forward(x) * R), R a fixed random array,
    so dL/dy = R is what backward receives. A layer with several inputs (Add) takes a list x.
    """
    eps = check_eps(eps)
    many = isinstance(x, (list, tuple))
    inputs = [a.copy() for a in x] if many else [x.copy()]
    x = inputs if many else inputs[0]
    shapes = [tuple(a.shape) for a in inputs]
    if not layer.built:
        layer.build([(None,) + s[1:] for s in shapes] if many else (None,) + shapes[0][1:])
    _require_float64(*inputs, *layer.params.values())
    xp = backend.get_array_module(inputs[0])
    # R's own random stream: drawn from `seed` alone, R could equal a test input made with the same seed
    rng = np.random.default_rng((seed, R_STREAM))
    r = xp.asarray(rng.standard_normal(layer.compute_output_shape(shapes if many else shapes[0])))

    def loss():     # the layer's weight penalty (kernel_regularizer...) is part of what backward differentiates
        return (layer.forward(x, training=training) * r).sum() + layer.regularization_loss()

    def backward():
        layer.forward(x, training=training)
        return layer.backward(r)

    errors = _check(layer, x, loss, backward, eps, max_elements, seed)
    if verbose:
        print_table(errors, title=f"gradient check: {layer.name} ({type(layer).__name__})")
    return errors


def _check_softmax_step(step, x, y, loss_function, eps, max_elements, seed):
    """The last layer when its softmax meets the cross-entropy, checked as the model runs it:
    L = the loss of softmax(linear(x)); backward receives d loss / d z = (p - y) / N."""
    x = x.copy()

    def loss():
        step.forward(x)
        return loss_function.forward_from_logits(y, step.z) + step.layer.regularization_loss()

    def backward():
        p = step.forward(x)
        return step.backward(loss_function.gradient_from_logits(y, p))

    return _check(step.layer, x, loss, backward, eps, max_elements, seed)


def check_loss(loss, y_true, y_pred, from_logits=False, eps=DEFAULT_EPS, verbose=False):
    """Check a loss's gradient w.r.t. y_pred (probabilities, or logits if from_logits)."""
    y_pred = y_pred.copy()
    _require_float64(y_pred)
    if from_logits:
        def f():
            return loss.forward_from_logits(y_true, y_pred)
        xp = backend.get_array_module(y_pred)
        shifted = xp.exp(y_pred - y_pred.max(axis=-1, keepdims=True))
        analytic = loss.gradient_from_logits(y_true, shifted / shifted.sum(axis=-1, keepdims=True))
    else:
        def f():
            return loss.forward(y_true, y_pred)
        analytic = loss.gradient(y_true, y_pred)
    errors = _compare({"y_pred": y_pred}, {"y_pred": analytic}, f, check_eps(eps), None, 0)
    if verbose:
        print_table(errors, title=f"gradient check: loss {loss.name}")
    return errors


def _plan(model, fused):
    """The plan fit runs (fused), or every layer on its own."""
    return contextlib.nullcontext() if fused else model.layer_by_layer()


def check_model(model, x, y, training=True, eps=DEFAULT_EPS, max_elements=None, seed=0, verbose=False,
                fused=False):
    """Check every parameter gradient (and d loss / d x) of a compiled model at (x, y).

    Layer by layer by default, so that every layer's own backward runs (see the module notes);
    fused=True checks the plan as fit runs it. With max_elements, each array checks a random
    sample of its entries (big models). Layers with randomness (Dropout) must have a fixed mask,
    or pass training=False.
    """
    eps = check_eps(eps)
    x = x.copy()
    if not model.built:
        model.build((None,) + tuple(x.shape[1:]))
    params = {f"{layer.name}/{key}": layer.params[key] for layer, key in model.trainable_params()}
    _require_float64(x, *params.values())

    def f():
        return model.compute_loss(x, y, training=training)

    with _plan(model, fused):
        _, _, dx = model.compute_gradients(x, y, training=training)
        analytic = {"x": dx, **{f"{layer.name}/{key}": layer.grads[key].copy()
                                for layer, key in model.trainable_params()}}
        errors = _compare({"x": x, **params}, analytic, f, eps, max_elements, seed)
    if verbose:
        print_table(errors, title=f"gradient check: model {model.name}"
                                  f" ({'fused, as fit runs it' if fused else 'layer by layer'})")
    return errors


def check_layers(model, x, y, training=True, eps=DEFAULT_EPS, max_elements=None, seed=0, verbose=False):
    """Check each layer of a compiled model on its own, on the input it receives in the model.

    One forward pass, layer by layer (inspection.trace), gives every layer's input; then each layer
    is checked there as check_layer does. The last layer, when its softmax meets the cross-entropy,
    is checked with the loss, as the model runs it: its backward receives (p - y) / N.
    A wrong backward makes only its own layer fail here, whereas in check_model it spoils every
    array before it too. Returns {layer name: {'x' or a parameter name: error}}, in layer order.
    """
    eps = check_eps(eps)
    records = inspection.trace(model, backend.to_numpy(x), training=training)
    with model.layer_by_layer():
        steps = model.plan.steps          # one per layer
    errors = {}
    for layer, step, record in zip(model.layers, steps, records):
        x_in = (backend.to_device(record.input, model.device) if not isinstance(record.input, list)
                else [backend.to_device(a, model.device) for a in record.input])
        if isinstance(step, SoftmaxCrossEntropy):
            errors[layer.name] = _check_softmax_step(step, x_in, y, model.loss, eps, max_elements, seed)
        else:
            errors[layer.name] = check_layer(layer, x_in, training, eps, max_elements, seed)
    if verbose:
        for layer in model.layers:
            print_table(errors[layer.name], title=f"gradient check: {layer.name} ({type(layer).__name__}) "
                                                  "on its own, on its input in the model")
    return errors


def print_table(errors, title="gradient check", tolerance=DEFAULT_TOLERANCE):
    """Print `name  max relative error  ok/FAIL`, one row per checked array."""
    width = max([len(name) for name in errors] + [len("array")])
    print(title)
    print(f"{'array':<{width}}  {'max rel. error':>14}  status")
    for name, error in errors.items():
        print(f"{name:<{width}}  {error:>14.3e}  {'ok' if passed(error, tolerance) else 'FAIL'}")


# --- kinks ------------------------------------------------------------------------------------
@dataclass
class Kink:
    """How many of a layer's inputs sit near a kink, out of how many, and what they are."""
    count: int
    total: int
    what: str

    def __str__(self):
        return f"{self.count} of {self.total} {self.what}"


def pool_gaps(layer, x):
    """For every window of a MaxPooling2D layer over x (N, H, W, C): largest minus second-largest value.

    Returns (N*OH*OW, C). The padding cells never count: x is shifted so that every real value
    is >= 1, above the 0s that im2col pads with.
    """
    ph, pw = layer.pool_size
    shifted = x - x.min() + 1
    col = kernels.reference.im2col(shifted, layer.window)                  # (N*OH*OW, PH*PW*C)
    windows = np.sort(col.reshape(len(col), ph * pw, -1), axis=1)          # each window, ascending
    return windows[:, -1] - windows[:, -2]


def find_kinks(model, x, eps=DEFAULT_EPS, training=True):
    """{layer name: Kink} for the layers whose inputs at x sit near a kink (see the module notes).

    ReLU / LeakyReLU (as a layer or as a layer's activation): pre-activations with |z| < KINK_RADIUS * eps.
    MaxPooling2D: windows whose two largest values differ by less than 2 * KINK_RADIUS * eps
    (each of the two can move by KINK_RADIUS * eps). The values come from one forward pass.
    """
    eps = check_eps(eps)
    found = {}
    for record in inspection.trace(model, x, training=training):
        layer = model.layers[record.index]
        if record.activation in inspection.RECTIFIERS:
            z = record.preactivation
            near = int(np.count_nonzero(np.abs(z) < KINK_RADIUS * eps))
            kink = Kink(near, z.size, f"pre-activations within {KINK_RADIUS * eps:.0e} of 0")
        elif isinstance(layer, MaxPooling2D) and layer.pool_size != (1, 1):
            gaps = pool_gaps(layer, record.input)
            near = int(np.count_nonzero(gaps < 2 * KINK_RADIUS * eps))
            kink = Kink(near, gaps.size,
                        f"pooling windows with a near-tie (top two within {2 * KINK_RADIUS * eps:.0e})")
        else:
            continue
        if kink.count:
            found[record.name] = kink
    return found


def feeds_a_kink(model, name, kinks):
    """True when the array `name` of check_model ('x' or 'layer/key') feeds a layer of `kinks`:
    it belongs to that layer or to one before it, so its central differences may cross the kink."""
    index = {layer.name: i for i, layer in enumerate(model.layers)}
    own = 0 if name == "x" else index[name.rsplit("/", 1)[0]]
    return any(index[kink] >= own for kink in kinks)


# --- the command line -------------------------------------------------------------------------
def lab_baseline(image_size=28, channels=1, classes=10):
    """The lab's baseline network (minicnn.lab), compiled as the lab does, at image_size."""
    return lab_model(input_shape=(image_size, image_size, channels), num_classes=classes)


def as_float64(model):
    """A float64 copy of a model: the same layers (config) and the same weights, compiled with its loss."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        copy = Sequential([type(layer).from_config(layer.get_config()) for layer in model.layers],
                          name=model.name)
        copy.build(model.input_shape)
    finally:
        backend.set_floatx(previous)
    copy.set_weights(model.get_weights())   # cast into the float64 arrays
    loss = type(model.loss)(**model.loss.get_config()) if model.loss is not None else "categorical_crossentropy"
    copy.compile(optimizer="sgd", loss=loss)
    return copy


def fix_dropout_masks(model, x_shape, rng):
    """Give every Dropout layer a fixed random mask, so that the checked function is deterministic."""
    shape = tuple(x_shape)
    for layer in model.layers:
        if isinstance(layer, Dropout):
            keep = rng.random(shape) >= layer.rate
            layer.fixed_mask = keep / (1 - layer.rate)
        shape = layer.compute_output_shape(shape)


def random_batch(model, batch, rng):
    """Inputs uniform in [0, 1) like rescaled pixels, and random targets that fit the model's loss."""
    x = rng.random((batch,) + tuple(model.input_shape[1:]))
    labels = rng.integers(0, model.output_shape[-1], batch)
    if isinstance(model.loss, losses.SparseCategoricalCrossentropy):
        return x, labels
    return x, np.eye(model.output_shape[-1])[labels]


@dataclass
class Checks:
    """What the command found on one batch."""
    seed: int
    x: np.ndarray
    errors: dict                # check_model: {'x' or 'layer/key': error}
    layer_errors: dict          # check_layers: {layer name: {'x' or key: error}}, or None when not run
    kinks: dict                 # find_kinks: {layer name: Kink}


def run_checks(model, args, seed, per_layer):
    """check_model on a random batch drawn with `seed`, find_kinks, and check_layers when asked
    for or when an array fails."""
    rng = np.random.default_rng(seed)
    x, y = random_batch(model, args.batch, rng)
    fix_dropout_masks(model, x.shape, rng)
    max_elements = args.max_elements or None
    errors = check_model(model, x, y, eps=args.eps, max_elements=max_elements, seed=seed, fused=args.fused)
    layer_errors = None
    if per_layer or not all(map(passed, errors.values())):
        layer_errors = check_layers(model, x, y, eps=args.eps, max_elements=max_elements, seed=seed)
    return Checks(seed, x, errors, layer_errors, find_kinks(model, x, eps=args.eps))


def near_kinks(model, checks):
    """The arrays that a kink may disturb: (names of check_model, (layer, key) of check_layers).

    In the whole model, the arrays that feed a layer with inputs near a kink; checked on its own,
    the arrays of a layer that itself has inputs near a kink.
    """
    in_model = {name for name in checks.errors if feeds_a_kink(model, name, checks.kinks)}
    in_layers = {(layer, key) for layer, errors in (checks.layer_errors or {}).items()
                 for key in errors if layer in checks.kinks}
    return in_model, in_layers


def kink_suspects(model, checks):
    """The failing arrays of near_kinks: those that a kink could explain."""
    in_model, in_layers = near_kinks(model, checks)
    return ({name for name in in_model if not passed(checks.errors[name])},
            {(layer, key) for layer, key in in_layers if not passed(checks.layer_errors[layer][key])})


def recheck(model, suspects, again):
    """What the checks on another batch (`again`) say of kink_suspects: for each, 'kink' (it passes
    there: the failure was the kink), 'bug' (it fails there, with no kink near) or 'unsure' (it
    fails there, near a kink again). Returns ({name: verdict}, {(layer, key): verdict})."""
    near = near_kinks(model, again)

    def verdict(error, near_again):
        return "kink" if passed(error) else "unsure" if near_again else "bug"
    return ({name: verdict(error, name in near[0]) for name, error in again.errors.items() if name in suspects[0]},
            {(layer, key): verdict(error, (layer, key) in near[1])
             for layer, errors in (again.layer_errors or {}).items() for key, error in errors.items()
             if (layer, key) in suspects[1]})


def _status(error, verdict):
    return "ok" if passed(error) else "kink" if verdict == "kink" else "FAIL"


def _table(rows, width, max_elements):
    """rows: (label, array, shape, error, status) -> the table's lines, header first."""
    header = f"{'layer (type)':<{width}}{'array':<8}{'shape':<18}{'checked':>8}{'max rel. error':>16}  status"
    lines = [header, "-" * (len(header) + 6)]
    for label, key, shape, error, status in rows:
        if key is None:       # a layer without parameters
            lines.append(f"{label:<{width}}-")
            continue
        size = math.prod(shape)
        checked = size if max_elements is None else min(size, max_elements)
        lines.append(f"{label:<{width}}{key:<8}{str(tuple(shape)):<18}{checked:>8}{error:>16.3e}  {status}")
    return lines


def _label(layer):
    return f"{layer.name} ({type(layer).__name__})"


def layer_table(model, checks, max_elements, verdicts=None):
    """The whole-model check as a text table: each array's largest relative error, and kink warnings.
    verdicts (from recheck): 'kink' marks an array whose failure was a kink."""
    verdicts = verdicts or {}
    rows = [("(the input)", "x", checks.x.shape, checks.errors["x"], _status(checks.errors["x"], verdicts.get("x")))]
    warnings = {}
    for layer in model.layers:
        label = _label(layer)
        for key, value in layer.params.items():
            error = checks.errors[f"{layer.name}/{key}"]
            rows.append((label, key, value.shape, error, _status(error, verdicts.get(f"{layer.name}/{key}"))))
            label = ""
        if label:
            rows.append((label, None, None, None, None))
        if layer.name in checks.kinks:
            warnings[len(rows) + 1] = f"  WARNING: {checks.kinks[layer.name]}"      # +1: after the header lines
    lines = _table(rows, label_width(model.layers), max_elements)
    return "\n".join(line + warnings.get(i, "") for i, line in enumerate(lines))


def own_table(model, checks, max_elements, verdicts=None):
    """check_layers as a text table: every layer on its own, its input ('x') and its parameters."""
    rows, shape, verdicts = [], checks.x.shape, verdicts or {}
    for layer in model.layers:
        errors = checks.layer_errors[layer.name]
        arrays = {"x": shape, **{key: value.shape for key, value in layer.params.items()}}
        for i, (key, array_shape) in enumerate(arrays.items()):
            error = errors[key]
            rows.append((_label(layer) if i == 0 else "", key, array_shape, error,
                         _status(error, verdicts.get((layer.name, key)))))
        shape = layer.compute_output_shape(shape)
    return "\n".join(["each layer on its own, on the input it receives in the model (gradcheck.check_layers):"]
                     + _table(rows, label_width(model.layers), max_elements))


def one_line(error):
    """An exception's message on one line."""
    return " ".join(str(error).split()) or type(error).__name__


def finite_positive(text):
    """argparse type of --eps: a finite number > 0."""
    try:
        return check_eps(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, such as {DEFAULT_EPS:g}; got {text!r}") \
            from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m minicnn.gradcheck",
        description="Check every layer's backward pass against central differences, in float64.")
    parser.add_argument("--model", help="a saved model (model.save); default: the lab's baseline, freshly built")
    parser.add_argument("--image-size", type=int, default=28, help="image side of the lab's baseline (default 28)")
    parser.add_argument("--batch", type=int, default=2, help="images in the checked batch (default 2)")
    parser.add_argument("--max-elements", type=int, default=20,
                        help="entries checked per array, a random sample (default 20; 0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, the batch and the sample (default 0)")
    parser.add_argument("--eps", type=finite_positive, default=DEFAULT_EPS,
                        help=f"finite-difference step, a finite number > 0 (default {DEFAULT_EPS:g})")
    parser.add_argument("--per-layer", action="store_true",
                        help="also check each layer on its own, on the input it receives in the model "
                             "(done anyway when an array fails: it names the layer whose backward is wrong)")
    parser.add_argument("--fused", action="store_true",
                        help="check the plan as fit runs it (Conv2D -> LeakyReLU -> MaxPooling2D fused into "
                             "one step) instead of every layer's own backward")
    args = parser.parse_args(argv)
    for option in ("image_size", "batch"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.max_elements < 0:
        parser.error("--max-elements must be >= 0")
    if args.model and not os.path.isfile(args.model):
        parser.error(f"--model: no such file: {args.model}")
    return args


def main(argv=None):
    """The command line: print the tables; exit status 0 when every array passes, 1 when one fails,
    2 for bad arguments or a model file that cannot be read."""
    args = parse_args(argv)
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        backend.set_random_seed(args.seed)
        try:
            model = as_float64(load_model(args.model)) if args.model else lab_baseline(args.image_size)
        except (ValueError, OSError) as error:    # saving.ModelFileError is a ValueError
            print(f"python -m minicnn.gradcheck: error: --model: {one_line(error)}", file=sys.stderr)
            return 2
        checks = run_checks(model, args, args.seed, args.per_layer)
        suspects = kink_suspects(model, checks)
        verdicts = ({}, {})
        if any(suspects):      # a kink moves with the input, a bug stays: check another batch
            again = run_checks(model, args, args.seed + 1, bool(suspects[1]))
            verdicts = recheck(model, suspects, again)
    finally:
        backend.set_floatx(previous)
    return report(model, checks, args, verdicts)


KINK_NOTES = {   # what recheck's verdicts mean, said after the tables ({names}, {again} filled in)
    "kink": "kink: {names} failed on this batch, next to inputs near a kink (WARNING), and passed on {again}. "
            "A central difference across a kink averages two slopes: it was the kink, not a bug.",
    "bug": "{names}: near a kink on this batch, but failing on {again} too, with no kink near there: not the kink.",
    "unsure": "{names}: failing near a kink on this batch and on {again}: a kink that stays where it is "
              "(a filter of zeros has pre-activations 0 for every input) or a bug.",
}


def kink_notes(verdicts, seed):
    """The paragraphs of KINK_NOTES that recheck's verdicts call for."""
    names = {verdict: [name for name, v in verdicts[0].items() if v == verdict]
             + [f"{layer}/{key} on its own" for (layer, key), v in verdicts[1].items() if v == verdict]
             for verdict in KINK_NOTES}
    return [KINK_NOTES[verdict].format(names=", ".join(found), again=f"another batch (--seed {seed + 1})")
            for verdict, found in names.items() if found]


def report(model, checks, args, verdicts=({}, {})):
    """Print the tables and what they mean; return the exit status. verdicts: from recheck."""
    max_elements = args.max_elements or None
    entries = "every entry" if max_elements is None else f"up to {max_elements} entries"
    how = ("the plan as fit runs it, with its fused steps (--fused)" if args.fused else
           "layer by layer, so every layer's own backward runs (--fused: the plan as fit runs it)")
    print(f"gradient check of model {model.name!r} in float64: input {tuple(checks.x.shape)}, eps {args.eps:g}, "
          f"{entries} of each array,\nrun {how}")
    print(layer_table(model, checks, max_elements, verdicts[0]))
    if checks.layer_errors is not None:
        print("\n" + own_table(model, checks, max_elements, verdicts[1]))
    for note in kink_notes(verdicts, args.seed):
        print("\n" + note)
    failing = [name for name, error in checks.errors.items() if not passed(error) and verdicts[0].get(name) != "kink"]
    failing_own = {}        # layer name -> the verdicts of its failing arrays (None: no kink near)
    for layer, errors in (checks.layer_errors or {}).items():
        for key, error in errors.items():
            if not passed(error) and verdicts[1].get((layer, key)) != "kink":
                failing_own.setdefault(layer, set()).add(verdicts[1].get((layer, key)))
    if checks.kinks and not any(verdicts) and not failing and not failing_own:
        print(f"\nnote: {len(checks.kinks)} layer(s) have inputs near a kink (WARNING above); every array passed, "
              "so they did not disturb this check.")
    if any(math.isnan(error) for error in checks.errors.values()):
        print("\nAn error of nan: a gradient (analytic or numerical) holds NaN or inf; that never passes.")
    if failing or failing_own:
        print(f"\nFAIL: {len(failing)} of {len(checks.errors)} arrays of the model disagree with central "
              f"differences (relative error >= {DEFAULT_TOLERANCE:g}, or not finite)")
        print(blame(model, failing_own))
        return 1
    agree = sum(map(passed, checks.errors.values()))
    which = f"all {agree}" if agree == len(checks.errors) else f"{agree} of {len(checks.errors)}"
    kinks_only = " (the others failed only at a kink)" if agree < len(checks.errors) else ""
    own = ""
    if checks.layer_errors is not None:
        own_ok = all(passed(error) for errors in checks.layer_errors.values() for error in errors.values())
        own = (", and so does every layer on its own" if own_ok else
               ", and on its own every layer passes or fails only at a kink")
    print(f"\nok: {which} arrays agree with central differences (relative error < {DEFAULT_TOLERANCE:g})"
          f"{kinks_only}{own}")
    return 0


def blame(model, failing_own):
    """Which layers' own backward is wrong, from {layer name: verdicts of its failing arrays} (check_layers)."""
    wrong = [_label(layer) for layer in model.layers if failing_own.get(layer.name, {"unsure"}) != {"unsure"}]
    if wrong:
        one = len(wrong) == 1
        return (f"Checked on its own, on the input it receives in the model, the backward pass{'' if one else 'es'} "
                f"of {', '.join(wrong)} {'is' if one else 'are'} wrong. In the whole model the arrays before a wrong "
                "layer fail too: its gradient flows back through them.")
    if failing_own:
        return "The layers that fail on their own fail only next to a kink that stays (see above)."
    return ("Every layer passes on its own, on its input in the model: look at what joins them "
            "(the fused steps with --fused, the loss).")


if __name__ == "__main__":
    raise SystemExit(main())

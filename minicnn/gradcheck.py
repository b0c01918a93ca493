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

    check_layer(layer, x)      a layer: L = sum(layer(x) * R) for a fixed random R
    check_loss(loss, y, p)     a loss: L = loss(y, p)
    check_model(model, x, y)   a whole compiled model: L = the model's loss
Each returns {name: error} for the input ('x') and every parameter, and prints a
table when verbose=True.

Kinks. ReLU and LeakyReLU bend at 0, max-pooling switches winner where two values tie.
When a pre-activation sits within a step eps of 0, or a pooling window's two largest values
within 2 eps of each other, the two central-difference evaluations land on different sides of
the kink and the numerical gradient is an average of two slopes: a large error there is the
kink, not a bug. find_kinks counts such places, layer by layer.

From the command line, a per-layer table for the lab's baseline (or a saved model) in float64:

    python -m minicnn.gradcheck                          # the lab's layers, batch 2, 28x28
    python -m minicnn.gradcheck --model fashion_model_baseline.h5py --max-elements 50
"""
import argparse
import os
from dataclasses import dataclass

import numpy as np

from minicnn import backend, inspection, kernels, losses
from minicnn.inspection import label_width
from minicnn.lab import lab_model
from minicnn.layers import Dropout, MaxPooling2D
from minicnn.models import Sequential, load_model

DEFAULT_EPS = 1e-6
R_STREAM = 0x5EED  # second word of the seed that draws the projection R
DEFAULT_TOLERANCE = 1e-6   # a correct backward pass gives ~1e-9 in float64
# A perturbation of eps moves a unit by about eps times a weight or an input of order 1: flag
# what lies within KINK_RADIUS such steps of a kink (a few, to be safe).
KINK_RADIUS = 3
GRADIENT_FLOOR = 1e-3      # smallest denominator of the relative error (see above)


def _relative_error(analytic, numeric):
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


def check_layer(layer, x, training=True, eps=DEFAULT_EPS, max_elements=None, seed=0, verbose=False):
    """Check layer.backward against central differences at input x (float64).

    The scalar checked is L = sum(layer.forward(x) * R), R a fixed random array,
    so dL/dy = R is what backward receives.
    """
    x = x.copy()
    if not layer.built:
        layer.build((None,) + tuple(x.shape[1:]))
    _require_float64(x, *layer.params.values())
    xp = backend.get_array_module(x)
    # R's own random stream: drawn from `seed` alone, R could equal a test input made with the same seed
    rng = np.random.default_rng((seed, R_STREAM))
    r = xp.asarray(rng.standard_normal(layer.compute_output_shape(x.shape)))

    def f():
        return (layer.forward(x, training=training) * r).sum()

    layer.forward(x, training=training)
    dx = layer.backward(r)
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads.items()}}
    errors = _compare({"x": x, **layer.params}, analytic, f, eps, max_elements, seed)
    if verbose:
        print_table(errors, title=f"gradient check: {layer.name} ({type(layer).__name__})")
    return errors


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
    errors = _compare({"y_pred": y_pred}, {"y_pred": analytic}, f, eps, None, 0)
    if verbose:
        print_table(errors, title=f"gradient check: loss {loss.name}")
    return errors


def check_model(model, x, y, training=True, eps=DEFAULT_EPS, max_elements=None, seed=0, verbose=False):
    """Check every parameter gradient (and d loss / d x) of a compiled model at (x, y).

    With max_elements, each array checks a random sample of its entries (big models).
    Layers with randomness (Dropout) must have a fixed mask, or pass training=False.
    """
    x = x.copy()
    if not model.built:
        model.build((None,) + tuple(x.shape[1:]))
    params = {f"{layer.name}/{key}": layer.params[key] for layer, key in model.trainable_params()}
    _require_float64(x, *params.values())

    def f():
        return model.compute_loss(x, y, training=training)

    _, _, dx = model.compute_gradients(x, y, training=training)
    analytic = {"x": dx, **{f"{layer.name}/{key}": layer.grads[key].copy() for layer, key in model.trainable_params()}}
    errors = _compare({"x": x, **params}, analytic, f, eps, max_elements, seed)
    if verbose:
        print_table(errors, title=f"gradient check: model {model.name}")
    return errors


def print_table(errors, title="gradient check", tolerance=DEFAULT_TOLERANCE):
    """Print `name  max relative error  ok/FAIL`, one row per checked array."""
    width = max([len(name) for name in errors] + [len("array")])
    print(title)
    print(f"{'array':<{width}}  {'max rel. error':>14}  status")
    for name, error in errors.items():
        status = "ok" if error < tolerance else "FAIL"
        print(f"{name:<{width}}  {error:>14.3e}  {status}")


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


def layer_table(model, x, errors, kinks, max_elements, eps, tolerance=DEFAULT_TOLERANCE):
    """Per-layer text table: each checked array's largest relative error, and kink warnings."""
    width = label_width(model.layers)
    header = f"{'layer (type)':<{width}}{'array':<8}{'shape':<18}{'checked':>8}{'max rel. error':>16}  status"
    lines = [f"gradient check of model {model.name!r} in float64: input {tuple(x.shape)}, eps {eps:g}, "
             f"{'every entry' if max_elements is None else f'up to {max_elements} entries'} of each array",
             header, "-" * (len(header) + 6)]

    def row(label, key, array, error):
        checked = array.size if max_elements is None else min(array.size, max_elements)
        status = "ok" if error < tolerance else "FAIL"
        return f"{label:<{width}}{key:<8}{str(tuple(array.shape)):<18}{checked:>8}{error:>16.3e}  {status}"

    lines.append(row("(the input)", "x", x, errors["x"]))
    for layer in model.layers:
        label = f"{layer.name} ({type(layer).__name__})"
        for key, value in layer.params.items():
            lines.append(row(label, key, value, errors[f"{layer.name}/{key}"]))
            label = ""
        if label:   # a layer without parameters
            lines.append(f"{label:<{width}}-")
        if layer.name in kinks:
            lines[-1] += f"  WARNING: {kinks[layer.name]}"
    return "\n".join(lines)


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
    parser.add_argument("--eps", type=float, default=DEFAULT_EPS,
                        help=f"finite-difference step (default {DEFAULT_EPS:g})")
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
    """The command line: print the per-layer table; exit status 0 when every array passes, else 1."""
    args = parse_args(argv)
    previous = backend.floatx()
    backend.set_floatx("float64")
    try:
        backend.set_random_seed(args.seed)
        model = as_float64(load_model(args.model)) if args.model else lab_baseline(args.image_size)
        rng = np.random.default_rng(args.seed)
        x, y = random_batch(model, args.batch, rng)
        fix_dropout_masks(model, x.shape, rng)
        max_elements = args.max_elements or None
        errors = check_model(model, x, y, eps=args.eps, max_elements=max_elements, seed=args.seed)
        kinks = find_kinks(model, x, eps=args.eps)
    finally:
        backend.set_floatx(previous)
    print(layer_table(model, x, errors, kinks, max_elements, args.eps))
    failed = [name for name, error in errors.items() if error >= DEFAULT_TOLERANCE]
    if kinks and failed:
        print(f"\nWARNING: {len(kinks)} layer(s) have inputs near a kink. A central difference across a kink "
              "averages two slopes, so a large error in an array that feeds such a layer may be the kink, "
              "not a bug. Run again with another --seed: a kink moves with the input, a bug stays.")
    elif kinks:
        print(f"\nnote: {len(kinks)} layer(s) have inputs near a kink (WARNING above); every array passed, "
              "so they did not disturb this check.")
    if failed:
        print(f"\nFAIL: {len(failed)} of {len(errors)} arrays have a relative error >= {DEFAULT_TOLERANCE:g}")
        return 1
    print(f"\nok: all {len(errors)} arrays agree with central differences (relative error < {DEFAULT_TOLERANCE:g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

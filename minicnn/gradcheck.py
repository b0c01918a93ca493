"""Numerical gradient checking: compare backward() with central differences.

For a scalar function L of an array a, the central difference
    dL/da_i ~ (L(a + eps e_i) - L(a - eps e_i)) / (2 eps)
is accurate to O(eps^2). Run it in float64 (backend.set_floatx('float64')):
in float32 the rounding error swamps the comparison.

The reported error of an array is the largest elementwise difference, relative to
the largest gradient entry of that array:
    error = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|)
A correct backward pass gives about 1e-9 in float64; a wrong one, 1e-2 or more.

    check_layer(layer, x)      a layer: L = sum(layer(x) * R) for a fixed random R
    check_loss(loss, y, p)     a loss: L = loss(y, p)
    check_model(model, x, y)   a whole compiled model: L = the model's loss
Each returns {name: error} for the input ('x') and every parameter, and prints a
table when verbose=True.
"""
import numpy as np

from minicnn import backend

DEFAULT_EPS = 1e-6
R_STREAM = 0x5EED  # second word of the seed that draws the projection R


def _relative_error(analytic, numeric):
    scale = max(np.abs(analytic).max(initial=0.0), np.abs(numeric).max(initial=0.0))
    if scale == 0:
        return 0.0
    return float(np.abs(analytic - numeric).max() / scale)


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
    model._ensure_built(x)
    params = {f"{layer.name}/{key}": layer.params[key] for layer, key in model.trainable_params()}
    _require_float64(x, *params.values())

    def f():
        return model._loss_value(y, model.forward(x, training=training))

    _, _, dx = model.compute_gradients(x, y, training=training)
    analytic = {"x": dx, **{f"{layer.name}/{key}": layer.grads[key].copy() for layer, key in model.trainable_params()}}
    errors = _compare({"x": x, **params}, analytic, f, eps, max_elements, seed)
    if verbose:
        print_table(errors, title=f"gradient check: model {model.name}")
    return errors


def print_table(errors, title="gradient check", tolerance=1e-6):
    """Print `name  max relative error  ok/FAIL`, one row per checked array."""
    width = max([len(name) for name in errors] + [len("array")])
    print(title)
    print(f"{'array':<{width}}  {'max rel. error':>14}  status")
    for name, error in errors.items():
        status = "ok" if error < tolerance else "FAIL"
        print(f"{name:<{width}}  {error:>14.3e}  {status}")

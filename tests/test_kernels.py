"""Tests for minicnn/kernels: reference.py, cpu.py (Numba) and the dispatcher in __init__.py.

  (a) reference kernels == naive loops written here, one output pixel at a time;
  (b) cpu kernels == reference kernels, in float32 and float64;
  (c) col2im is the adjoint of im2col, and maxpool_backward of maxpool_forward's routing;
  (d) the dispatcher picks cpu.py by default, reference.py when forced or when Numba is missing.

Shapes are drawn by hypothesis: small images, windows 1-4, strides 1-3 (so windows
overlap, touch or leave gaps), padding 'valid' or 'same'. Values are either random
floats or small integers with many repeats, so max-pooling meets plenty of ties.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn import kernels
from conftest import window_cases
from minicnn.kernels import Window, reference

try:
    from minicnn.kernels import cpu
except ImportError:   # no Numba: the reference tests still run
    cpu = None
needs_numba = pytest.mark.skipif(cpu is None, reason="Numba is not installed")

BOTH_MODULES = pytest.mark.parametrize("module_name", ["reference", pytest.param("cpu", marks=needs_numba)])
REPO_ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=40, deadline=None)   # deadline=None: the first example pays the JIT compile


# --- naive loops: the definitions, one output pixel at a time --------------------
# Window cell (i, j) of output pixel (a, b) reads input row a*SH - top + i, column b*SW - left + j;
# outside the image it is padding (kernels/window.py).
def _input_cell(window, a, b, i, j):
    """(row, column) of window cell (i, j) at output pixel (a, b), and whether it is inside the image."""
    r, s = a * window.sh - window.top + i, b * window.sw - window.left + j
    return r, s, 0 <= r < window.h and 0 <= s < window.w


def naive_im2col(x, window):
    n, c = x.shape[0], x.shape[3]
    rows = []
    for img in range(n):
        for a in range(window.oh):
            for b in range(window.ow):
                patch = np.zeros((window.kh, window.kw, c), dtype=x.dtype)
                for i in range(window.kh):
                    for j in range(window.kw):
                        r, s, inside = _input_cell(window, a, b, i, j)
                        if inside:
                            patch[i, j] = x[img, r, s]
                rows.append(patch.ravel())
    return np.array(rows, dtype=x.dtype).reshape(n * window.oh * window.ow, window.kh * window.kw * c)


def naive_col2im(col, window, x_shape):
    n, c = x_shape[0], x_shape[3]
    col = col.reshape(n, window.oh, window.ow, window.kh, window.kw, c)
    dx = np.zeros(x_shape, dtype=col.dtype)
    for img in range(n):
        for a in range(window.oh):
            for b in range(window.ow):
                for i in range(window.kh):
                    for j in range(window.kw):
                        r, s, inside = _input_cell(window, a, b, i, j)
                        if inside:
                            dx[img, r, s] += col[img, a, b, i, j]
    return dx


def naive_maxpool_forward(x, window):
    n, c = x.shape[0], x.shape[3]
    y = np.empty((n, window.oh, window.ow, c), dtype=x.dtype)
    argmax = np.empty((n, window.oh, window.ow, c), dtype=np.int32)
    for img in range(n):
        for a in range(window.oh):
            for b in range(window.ow):
                for ch in range(c):
                    best, best_cell = -np.inf, 0
                    for i in range(window.kh):
                        for j in range(window.kw):
                            r, s, inside = _input_cell(window, a, b, i, j)
                            if inside and x[img, r, s, ch] > best:
                                best, best_cell = x[img, r, s, ch], i * window.kw + j
                    y[img, a, b, ch], argmax[img, a, b, ch] = best, best_cell
    return y, argmax


def naive_maxpool_backward(dy, argmax, window):
    n, oh, ow, c = dy.shape
    dx = np.zeros((n, window.h, window.w, c), dtype=dy.dtype)
    for img in range(n):
        for a in range(oh):
            for b in range(ow):
                for ch in range(c):
                    i, j = divmod(int(argmax[img, a, b, ch]), window.kw)
                    r, s, inside = _input_cell(window, a, b, i, j)
                    if inside:
                        dx[img, r, s, ch] += dy[img, a, b, ch]
    return dx


# --- drawn cases -------------------------------------------------------------------
def _col_shape(x_shape, window):
    return (x_shape[0] * window.oh * window.ow, window.kh * window.kw * x_shape[3])


def _pool_output_shape(x_shape, window):
    return (x_shape[0], window.oh, window.ow, x_shape[3])


def same_window(h, size, stride):
    """The window of a square size x size kernel moved by stride over an h x h image, 'same' padding."""
    return Window.over((h, h), (size, size), (stride, stride), "same")


# --- (a) reference == naive loops -------------------------------------------------
@FAST
@given(window_cases())
def test_reference_im2col_col2im_match_naive_loops(case):
    x, window = case
    col = reference.im2col(x, window)
    np.testing.assert_array_equal(col, naive_im2col(x, window))
    dcol = np.random.default_rng(0).standard_normal(col.shape)
    np.testing.assert_allclose(reference.col2im(dcol, window), naive_col2im(dcol, window, x.shape),
                               rtol=1e-12, atol=1e-12)


@FAST
@given(window_cases())
def test_reference_maxpool_matches_naive_loops(case):
    x, window = case
    y, argmax = reference.maxpool_forward(x, window)
    y_naive, argmax_naive = naive_maxpool_forward(x, window)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)
    assert argmax.dtype == np.int32
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(reference.maxpool_backward(dy, argmax, window),
                               naive_maxpool_backward(dy, argmax, window), rtol=1e-12, atol=1e-12)


# --- (b) cpu == reference -----------------------------------------------------------
@needs_numba
@FAST
@given(window_cases(), st.sampled_from([np.float32, np.float64]))
def test_cpu_im2col_col2im_match_reference(case, dtype):
    x, window = case
    x = x.astype(dtype)
    col = cpu.im2col(x, window)
    assert col.dtype == dtype and col.shape == _col_shape(x.shape, window)
    np.testing.assert_array_equal(col, reference.im2col(x, window))

    dcol = np.random.default_rng(0).standard_normal(col.shape).astype(dtype)
    dx = cpu.col2im(dcol, window)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12   # sums of up to 16 terms, added in another order
    np.testing.assert_allclose(dx, reference.col2im(dcol, window), rtol=tol, atol=tol)


@needs_numba
@FAST
@given(window_cases(), st.sampled_from([np.float32, np.float64]))
def test_cpu_maxpool_matches_reference(case, dtype):
    x, window = case
    x = x.astype(dtype)
    y, argmax = cpu.maxpool_forward(x, window)
    y_ref, argmax_ref = reference.maxpool_forward(x, window)
    assert y.dtype == dtype and argmax.dtype == np.int32
    assert y.shape == argmax.shape == _pool_output_shape(x.shape, window)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)   # same winner, ties included

    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx = cpu.maxpool_backward(dy, argmax, window)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx, reference.maxpool_backward(dy, argmax, window), rtol=tol, atol=tol)


@needs_numba
@FAST
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4), st.sampled_from([np.float32, np.float64]),
       st.floats(0, 1), st.integers(0, 2**16))
def test_cpu_elementwise_kernels_match_reference(shape, dtype, alpha, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape).astype(dtype)
    z.reshape(-1)[0] = 0  # the kink itself: z = 0 takes the alpha branch in both
    dy = rng.standard_normal(shape).astype(dtype)
    y = cpu.leaky_relu_forward(z, alpha)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, reference.leaky_relu_forward(z, alpha))
    np.testing.assert_array_equal(cpu.leaky_relu_backward(dy, z, alpha), reference.leaky_relu_backward(dy, z, alpha))

    rows = dy.reshape(dy.shape[0], -1)
    total = cpu.sum_rows(rows)
    assert total.dtype == dtype and total.shape == (rows.shape[1],)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(total, reference.sum_rows(rows), rtol=tol, atol=tol)

    states = []
    for module in (cpu, reference):
        param, m, v = z.copy(), dy.copy() * 0.1, np.abs(dy) * 0.01
        module.adam_update(param, dy, m, v, 1e-3, 0.9, 0.999, 1e-7)
        states.append((param, m, v))
    for ours, theirs in zip(*states):
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)


@needs_numba
def test_cpu_adam_refuses_non_contiguous_state():
    param = np.zeros((4, 4), np.float32)[:, ::2]
    with pytest.raises(ValueError, match="contiguous"):
        cpu.adam_update(param, np.ones_like(param), np.zeros_like(param), np.zeros_like(param), 1e-3, 0.9, 0.999, 1e-7)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_matches_reference_on_the_lab_shapes(dtype):
    """The Fashion-MNIST lab: 3x3 'same' convolutions, 2x2 'same' pooling, 7 -> 4 at the end."""
    rng = np.random.default_rng(3)
    for h, c in [(28, 1), (14, 32), (7, 64)]:
        x = rng.standard_normal((4, h, h, c)).astype(dtype)
        window = same_window(h, 3, 1)
        col = cpu.im2col(x, window)
        np.testing.assert_array_equal(col, reference.im2col(x, window))
        np.testing.assert_allclose(cpu.col2im(col, window), reference.col2im(col, window), rtol=1e-5)
    for h, c in [(28, 32), (14, 64), (7, 128)]:
        x = rng.standard_normal((4, h, h, c)).astype(dtype)
        window = same_window(h, 2, 2)
        y, argmax = cpu.maxpool_forward(x, window)
        y_ref, argmax_ref = reference.maxpool_forward(x, window)
        assert y.shape == (4, (h + 1) // 2, (h + 1) // 2, c)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)
        np.testing.assert_array_equal(cpu.maxpool_backward(y, argmax, window),
                                      reference.maxpool_backward(y, argmax, window))


@BOTH_MODULES
def test_maxpool_padding_never_wins_and_ties_go_to_the_first_cell(module_name):
    module = reference if module_name == "reference" else cpu
    x = np.full((1, 3, 3, 1), -5.0, dtype=np.float32)   # all equal, and below the 0 a zero-pad would give
    window = same_window(3, 2, 2)                       # 3 -> 2, pad bottom/right
    assert window.pads == (0, 1, 0, 1)
    y, argmax = module.maxpool_forward(x, window)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, -5.0)
    np.testing.assert_array_equal(argmax, 0)            # the first cell of every window


@needs_numba
def test_cpu_maxpool_treats_nan_and_inf_like_reference():
    x = np.array([[np.nan, 1.0, -np.inf], [np.inf, np.nan, 2.0], [-np.inf, -np.inf, np.nan]])
    x = x.reshape(1, 3, 3, 1)
    for window in [Window.over((3, 3), (2, 2), (1, 1), "valid"), same_window(3, 2, 1), same_window(3, 3, 1)]:
        y, argmax = cpu.maxpool_forward(x, window)
        y_ref, argmax_ref = reference.maxpool_forward(x, window)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)


@needs_numba
def test_cpu_kernels_accept_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)[:, ::-1, :, ::2]   # a strided view
    conv = Window.over((6, 5), (3, 3), (1, 1), "same")
    np.testing.assert_array_equal(cpu.im2col(x, conv), reference.im2col(x, conv))
    pool = Window.over((6, 5), (2, 2), (1, 2), "same")
    y, argmax = cpu.maxpool_forward(x, pool)
    y_ref, argmax_ref = reference.maxpool_forward(x, pool)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dcol = rng.standard_normal((60, 18)).astype(np.float32).T.copy().T   # Fortran order
    np.testing.assert_allclose(cpu.col2im(dcol, conv), reference.col2im(dcol, conv), rtol=1e-5)


# --- (c) adjoints ---------------------------------------------------------------------
@BOTH_MODULES
@FAST
@given(window_cases())
def test_col2im_is_the_adjoint_of_im2col(module_name, case):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col transposed."""
    module = reference if module_name == "reference" else cpu
    x, window = case
    c = np.random.default_rng(5).standard_normal(_col_shape(x.shape, window))
    lhs = np.vdot(module.im2col(x, window), c)
    rhs = np.vdot(x, module.col2im(c, window))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@BOTH_MODULES
@FAST
@given(window_cases())
def test_maxpool_backward_is_the_adjoint_of_the_routing(module_name, case):
    """y = P x picks the winners (P fixed by argmax); backward must be P^T: <P x, g> == <x, P^T g>."""
    module = reference if module_name == "reference" else cpu
    x, window = case
    y, argmax = module.maxpool_forward(x, window)
    g = np.random.default_rng(6).standard_normal(y.shape)
    dx = module.maxpool_backward(g, argmax, window)
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, dx), rel=1e-12, abs=1e-12)


# --- (d) the dispatcher ------------------------------------------------------------
@needs_numba
def test_dispatcher_uses_cpu_kernels_by_default_and_reference_when_forced():
    x = np.zeros((1, 4, 4, 1), dtype=np.float32)
    previous = kernels.use_kernels("auto")
    try:
        assert kernels.implementation(x) is cpu
        assert kernels.use_reference_kernels(True) == "auto"      # returns the choice it replaced
        assert kernels.kernel_choice() == "reference"
        assert kernels.implementation(x) is reference
        col = kernels.im2col(x, Window.over((4, 4), (2, 2), (1, 1), "valid"))   # runs through reference.py
        assert col.shape == (9, 4)
        kernels.use_reference_kernels(False)
        assert kernels.kernel_choice() == "auto" and kernels.implementation(x) is cpu
    finally:
        kernels.use_kernels(previous)


def test_use_kernels_refuses_an_unknown_choice():
    with pytest.raises(ValueError, match="reference"):
        kernels.use_kernels("fast")
    assert kernels.kernel_choice() in kernels.CHOICES


def _run_python(code, **env):
    """Run code in a fresh interpreter (module-level settings are read at import)."""
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@needs_numba
def test_env_variable_forces_the_reference_kernels():
    code = """
        import numpy as np
        from minicnn import kernels
        print(kernels.implementation(np.zeros(3)).__name__)
    """
    assert _run_python(code, MINICNN_KERNELS="reference") == "minicnn.kernels.reference"
    assert _run_python(code, MINICNN_KERNELS="") == "minicnn.kernels.cpu"


def test_dispatcher_falls_back_to_reference_without_numba():
    code = """
        import sys
        sys.modules["numba"] = None          # makes `import numba` raise ImportError
        import numpy as np
        from minicnn import kernels
        print(kernels.implementation(np.zeros(3)).__name__)
    """
    assert _run_python(code, MINICNN_KERNELS="") == "minicnn.kernels.reference"


@needs_numba
@FAST
@given(st.lists(st.integers(1, 7), min_size=1, max_size=4), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.9]), st.integers(0, 2**16))
def test_cpu_dropout_matches_reference(shape, dtype, rate, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    u = rng.random(shape, dtype=dtype)
    u.flat[0] = dtype(rate)                       # a uniform exactly at the threshold is kept
    y, mask = cpu.dropout_forward(x, u, rate)
    y_ref, mask_ref = reference.dropout_forward(x, u, rate)
    assert y.dtype == mask.dtype == dtype
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert mask.flat[0] == dtype(1.0 / (1.0 - rate))

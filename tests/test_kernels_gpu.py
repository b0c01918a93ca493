"""Tests for minicnn/kernels/gpu.py: the CUDA kernels (Numba) against reference.py.

Without a GPU the kernels run in Numba's CUDA simulator on NumPy arrays (tests/conftest.py
sets NUMBA_ENABLE_CUDASIM=1 where no CUDA GPU is found). The simulator runs one Python
thread per CUDA thread, so the shapes drawn here are tiny (N <= 2, H, W <= 7, C <= 3) and
the examples few. Windows 1-3 and strides 1-3 (so windows overlap, touch or leave gaps),
padding 'valid' or 'same', float32 and float64; values are random floats or small integers
(many ties), and for the pooling kernels some inf, -inf and NaN, as a diverging run makes.

What must be equal to the last bit (np.array_equal): everything that only copies, compares
or adds in reference.py's order: im2col, col2im, max-pooling, the fused forward and dz,
LeakyReLU and dropout. Sums in another order (d_bias, sum_rows) and the Adam step are
checked within a tolerance stated next to each check.
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

import minicnn.kernels.reference as reference
from conftest import window_cases
from minicnn import kernels
from minicnn.kernels.window import Window

gpu = pytest.importorskip(
    "minicnn.kernels.gpu",
    reason="minicnn.kernels.gpu needs numba-cuda, and a CUDA GPU or NUMBA_ENABLE_CUDASIM=1 (the simulator)")

REPO_ROOT = Path(__file__).resolve().parents[1]
FEW = settings(max_examples=15, deadline=None)   # the simulator is slow: few, tiny examples
DTYPES = st.sampled_from([np.float32, np.float64])


# --- drawn cases -------------------------------------------------------------------
@st.composite
def tiny_window_cases(draw, special_values=False):
    """conftest's window_cases, tiny (the simulator runs one Python thread per CUDA thread),
    in float32 or float64."""
    x, window = draw(window_cases(max_side=7, max_batch=2, max_channels=3, max_window=3,
                                  special_values=special_values))
    return x.astype(draw(DTYPES)), window


def random_like(shape, dtype, seed=0):
    """Standard normal numbers in dtype: gradients whose sums depend on the order of addition."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def sum_tolerance(a, dtype):
    """Tolerances for comparing two float64 sums of the rows of `a` added in different orders.

    Each float64 total is off from the exact sum by at most about M * 2**-53 * sum(|a|) (far below
    1e-12 * sum(|a|) here), and rounding it to float32 can then land one float32 step (relative
    6e-8) away from the other's: rtol 1e-6 for float32, 1e-12 for float64, plus that atol.
    """
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    return dict(rtol=rtol, atol=1e-12 * float(np.abs(a.astype(np.float64)).sum()))


# --- im2col and col2im ---------------------------------------------------------------
@FEW
@given(tiny_window_cases())
def test_im2col_and_col2im_equal_reference(case):
    x, window = case
    col = gpu.im2col(x, window)
    assert col.dtype == x.dtype
    np.testing.assert_array_equal(col, reference.im2col(x, window))
    dcol = random_like(col.shape, x.dtype)   # random floats: a pixel's sum depends on the order
    dx = gpu.col2im(dcol, window)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx, reference.col2im(dcol, window))


# --- max-pooling ---------------------------------------------------------------------
@FEW
@given(tiny_window_cases(special_values=True))
def test_maxpool_forward_and_backward_equal_reference(case):
    x, window = case
    y, argmax = gpu.maxpool_forward(x, window)
    y_ref, argmax_ref = reference.maxpool_forward(x, window)
    assert y.dtype == x.dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref)          # NaN never wins a window, so y has no NaN
    np.testing.assert_array_equal(argmax, argmax_ref)   # the same winners, ties included
    dy = random_like(y.shape, x.dtype, seed=1)
    dx = gpu.maxpool_backward(dy, argmax, window)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    np.testing.assert_array_equal(dx, reference.maxpool_backward(dy, argmax_ref, window))


# --- Conv2D's bias + LeakyReLU + max-pooling, fused -----------------------------------
@FEW
@given(tiny_window_cases(special_values=True), st.booleans(), st.sampled_from([0.0, 0.1, 0.3, 1.0]))
def test_fused_kernels_equal_reference(case, with_bias, slope):
    z, window = case
    bias = np.array([-1.0, 0.0, 2.0][:z.shape[-1]], dtype=z.dtype) if with_bias else None
    y, argmax = gpu.bias_leaky_maxpool_forward(z, bias, slope, window)
    y_ref, argmax_ref = reference.bias_leaky_maxpool_forward(z, bias, slope, window)
    assert y.dtype == z.dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(y, y_ref, strict=True)
    np.testing.assert_array_equal(argmax, argmax_ref)

    dy = random_like(y.shape, z.dtype, seed=2)
    dz, d_bias = gpu.bias_leaky_maxpool_backward(dy, y, argmax, slope, window)
    dz_ref, d_bias_ref = reference.bias_leaky_maxpool_backward(dy, y_ref, argmax_ref, slope, window)
    assert dz.dtype == d_bias.dtype == z.dtype and dz.shape == z.shape and d_bias.shape == (z.shape[-1],)
    np.testing.assert_array_equal(dz, dz_ref)        # the same gather order as reference.py's sums
    # d_bias: float64 totals of dz added in another order than the reference's (see sum_tolerance)
    np.testing.assert_allclose(d_bias, d_bias_ref, **sum_tolerance(dz_ref.reshape(-1, z.shape[-1]), z.dtype))


def test_overlapping_windows_with_ties_by_hand():
    """Pool 3: with stride 1 and 2 the windows overlap; equal maxima: the first cell wins."""
    for dtype in (np.float32, np.float64):
        # stride 1 over 4x4: the two 5s of row 0 tie; both top windows pick (0, 1), the first
        x = np.zeros((1, 4, 4, 1), dtype)
        x[0, 0, 1:3, 0] = 5
        window = Window.over((4, 4), (3, 3), (1, 1), "valid")            # 2x2 windows
        y, argmax = gpu.maxpool_forward(x, window)
        np.testing.assert_array_equal(y[0, :, :, 0], [[5, 5], [0, 0]])
        np.testing.assert_array_equal(argmax[0, :, :, 0], [[1, 0], [0, 0]])   # cell i*3 + j of each window
        dy = np.array([1, 2, 4, 8], dtype).reshape(1, 2, 2, 1)
        expected = np.zeros((4, 4), dtype)
        expected[0, 1] = 1 + 2                   # won both top windows: their gradients add up
        expected[1, 0], expected[1, 1] = 4, 8    # the all-zero windows: their first cell wins
        dx = gpu.maxpool_backward(dy, argmax, window)
        np.testing.assert_array_equal(dx[0, :, :, 0], expected)
        np.testing.assert_array_equal(dx, reference.maxpool_backward(dy, argmax, window))

        # stride 2 over 5x5: every window holds (2, 2), a 9; (2, 4), another 9, loses its tie
        x = np.zeros((1, 5, 5, 1), dtype)
        x[0, 2, 2, 0] = x[0, 2, 4, 0] = 9
        window = Window.over((5, 5), (3, 3), (2, 2), "valid")            # 2x2 windows, sharing row/column 2
        for slope in (None, 0.1):                # plain max-pooling, then the fused kernels
            if slope is None:
                y, argmax = gpu.maxpool_forward(x, window)
                dx = gpu.maxpool_backward(dy, argmax, window)
            else:
                y, argmax = gpu.bias_leaky_maxpool_forward(x, None, slope, window)
                dx, d_bias = gpu.bias_leaky_maxpool_backward(dy, y, argmax, slope, window)
                np.testing.assert_array_equal(d_bias, [15])
            np.testing.assert_array_equal(y, 9)
            np.testing.assert_array_equal(argmax[0, :, :, 0], [[8, 6], [2, 0]])   # always pixel (2, 2)
            expected = np.zeros((5, 5), dtype)
            expected[2, 2] = 1 + 2 + 4 + 8
            np.testing.assert_array_equal(dx[0, :, :, 0], expected)
            assert y.dtype == dx.dtype == dtype and argmax.dtype == np.int32


def test_a_tie_made_by_rounding_the_slope_product():
    """Two different negative float32 values whose products with the slope round to the same float32:
    the comparison must see the rounded products (a tie: the first cell wins), as reference.py does."""
    slope = np.float32(0.3)
    first = -np.random.default_rng(0).random(1000).astype(np.float32) - 0.5
    second = np.nextafter(first, np.float32(0))                      # the next float32 towards 0
    k = np.flatnonzero(slope * first == slope * second)[0]
    z = np.array([first[k], second[k]], np.float32).reshape(1, 1, 2, 1)
    window = Window.over((1, 2), (1, 2), (1, 1), "valid")
    y, argmax = gpu.bias_leaky_maxpool_forward(z, None, 0.3, window)
    np.testing.assert_array_equal(argmax, 0)
    np.testing.assert_array_equal(y, slope * first[k])

def test_a_window_won_by_its_padding_passes_nothing():
    """A window of -inf keeps cell 0, here a padding cell: its gradient reaches neither dz nor the bias."""
    z = np.full((1, 1, 2, 1), -np.inf, np.float32)
    window = Window.over((1, 2), (1, 3), (1, 1), "same")    # one padding column each side
    assert (window.left, window.right) == (1, 1)
    y, argmax = gpu.bias_leaky_maxpool_forward(z, None, 0.1, window)
    np.testing.assert_array_equal(y, -np.inf)
    np.testing.assert_array_equal(argmax, 0)                 # [pad, -inf, -inf] and [-inf, -inf, pad]
    dz, d_bias = gpu.bias_leaky_maxpool_backward(np.ones_like(y), y, argmax, 0.1, window)
    np.testing.assert_array_equal(dz.ravel(), np.float32([0.1, 0.0]))
    np.testing.assert_array_equal(d_bias, np.float32([0.1]))


# --- elementwise ---------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # 0 * inf, in both
@FEW
@given(tiny_window_cases(special_values=True), st.sampled_from([0.0, 0.1, 0.3]))
def test_leaky_relu_equals_reference(case, slope):
    z, _ = case
    y = gpu.leaky_relu_forward(z, slope)
    assert y.dtype == z.dtype
    np.testing.assert_array_equal(y, reference.leaky_relu_forward(z, slope), strict=True)
    dy = random_like(z.shape, z.dtype, seed=3)
    dz = gpu.leaky_relu_backward(dy, z, slope)
    assert dz.dtype == z.dtype
    np.testing.assert_array_equal(dz, reference.leaky_relu_backward(dy, z, slope), strict=True)


@FEW
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), DTYPES,
       st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]), st.integers(0, 2**16))
def test_dropout_equals_reference(shape, dtype, rate, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    u = rng.random(shape, dtype=dtype)
    u.flat[0] = dtype(rate)                       # a uniform exactly at the threshold is kept
    y, mask = gpu.dropout_forward(x, u, rate)
    y_ref, mask_ref = reference.dropout_forward(x, u, rate)
    assert y.dtype == mask.dtype == dtype
    np.testing.assert_array_equal(mask, mask_ref, strict=True)
    np.testing.assert_array_equal(y, y_ref, strict=True)


@FEW
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), DTYPES, st.integers(0, 2**16))
def test_adam_update_equals_reference(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    param = rng.standard_normal(shape).astype(dtype)
    m, v = np.zeros_like(param), np.zeros_like(param)
    param_ref, m_ref, v_ref = param.copy(), m.copy(), v.copy()
    for step in range(3):
        grad = rng.standard_normal(shape).astype(dtype)
        gpu.adam_update(param, grad, m, v, 0.01, 0.9, 0.999, 1e-7)
        reference.adam_update(param_ref, grad, m_ref, v_ref, 0.01, 0.9, 0.999, 1e-7)
    assert param.dtype == m.dtype == v.dtype == dtype
    # The same operations in the same precision, but on a GPU the compiler may fuse a multiply
    # and the following add (one rounding instead of two): a few units in the last place over
    # three steps, so rtol 1e-5 in float32 (unit 6e-8) and 1e-13 in float64 (unit 1e-16).
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    for ours, theirs in [(param, param_ref), (m, m_ref), (v, v_ref)]:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=rtol * 1e-3)


def test_adam_update_refuses_non_contiguous_state():
    param = np.zeros((4, 6), np.float32)
    m, v, grad = np.zeros_like(param), np.zeros_like(param), np.ones_like(param)
    with pytest.raises(ValueError, match="contiguous"):
        gpu.adam_update(param[:, ::2], grad[:, ::2], m[:, ::2], v[:, ::2], 0.01, 0.9, 0.999, 1e-7)


# --- sum of rows -----------------------------------------------------------------------
@FEW
@given(st.integers(0, 60), st.integers(1, 4), DTYPES, st.integers(0, 2**16))
def test_sum_rows_equals_reference(rows, columns, dtype, seed):
    a = np.random.default_rng(seed).standard_normal((rows, columns)).astype(dtype)
    total = gpu.sum_rows(a)
    assert total.dtype == dtype and total.shape == (columns,)
    # float64 totals in another order than the reference's: see sum_tolerance
    np.testing.assert_allclose(total, reference.sum_rows(a), **sum_tolerance(a, dtype))


def test_sum_rows_adds_in_float64():
    """1 + 2**-24 + 2**-24 + ...: a float32 running sum would round every small term away."""
    a = np.full((1025, 1), 2.0**-24, np.float32)
    a[0, 0] = 1
    assert gpu.sum_rows(a)[0] == np.float32(1 + 1024 * 2.0**-24)


# --- inputs and dispatch -----------------------------------------------------------------
def test_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)[:, ::-1, :, ::2]   # a strided view
    window = Window.over((6, 5), (3, 3), (1, 2), "same")
    np.testing.assert_array_equal(gpu.im2col(x, window), reference.im2col(x, window))
    y, argmax = gpu.maxpool_forward(x, window)
    y_ref, argmax_ref = reference.maxpool_forward(x, window)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dcol = rng.standard_normal((2 * 6 * 3, 3 * 3 * 2)).astype(np.float32).T.copy().T   # Fortran order
    np.testing.assert_array_equal(gpu.col2im(dcol, window), reference.col2im(dcol, window))
    a = rng.standard_normal((3, 7)).astype(np.float64).T                  # (7, 3), Fortran order
    np.testing.assert_allclose(gpu.sum_rows(a), reference.sum_rows(a), rtol=1e-12)


def test_use_kernels_gpu_routes_numpy_arrays_through_gpu_py():
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    window = Window.over((4, 4), (2, 2), (2, 2), "valid")
    previous = kernels.use_kernels("gpu")
    try:
        assert kernels.implementation(x) is gpu
        y, argmax = kernels.maxpool_forward(x, window)
    finally:
        kernels.use_kernels(previous)
    np.testing.assert_array_equal(y, reference.maxpool_forward(x, window)[0])


def _run_python(code, **env):
    """Run code in a fresh interpreter (Numba reads NUMBA_ENABLE_CUDASIM when first imported)."""
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_fails_cleanly_without_numba():
    code = """
        import sys
        sys.modules["numba"] = None          # makes `import numba` raise ImportError
        try:
            import minicnn.kernels.gpu
        except ImportError:
            print("ImportError")
    """
    assert _run_python(code) == "ImportError"


def test_without_the_simulator_the_module_loads_only_where_numba_sees_a_gpu():
    """No GPU and no simulator: ImportError at import (so the dispatcher falls back), not at the first launch."""
    code = """
        from numba import cuda
        try:
            import minicnn.kernels.gpu
            print("loaded", cuda.is_available())
        except ImportError:
            print("ImportError", cuda.is_available())
    """
    assert _run_python(code, NUMBA_ENABLE_CUDASIM="0") in ("loaded True", "ImportError False")

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
from minicnn.kernels import padding_amounts, reference

try:
    from minicnn.kernels import cpu
except ImportError:   # no Numba: the reference tests still run
    cpu = None
needs_numba = pytest.mark.skipif(cpu is None, reason="Numba is not installed")

BOTH_MODULES = pytest.mark.parametrize("module_name", ["reference", pytest.param("cpu", marks=needs_numba)])
REPO_ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=40, deadline=None)   # deadline=None: the first example pays the JIT compile


# --- naive loops: the definitions, one output pixel at a time --------------------
def naive_im2col(x, kh, kw, stride, pads):
    n, h, w, c = x.shape
    top, bottom, left, right = pads
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (w + left + right - kw) // stride[1] + 1
    rows = []
    for img in range(n):
        for a in range(oh):
            for b in range(ow):
                patch = np.zeros((kh, kw, c), dtype=x.dtype)
                for i in range(kh):
                    for j in range(kw):
                        r, s = a * stride[0] - top + i, b * stride[1] - left + j
                        if 0 <= r < h and 0 <= s < w:
                            patch[i, j] = x[img, r, s]
                rows.append(patch.ravel())
    return np.array(rows, dtype=x.dtype).reshape(n * oh * ow, kh * kw * c)


def naive_col2im(col, x_shape, kh, kw, stride, pads):
    n, h, w, c = x_shape
    top, bottom, left, right = pads
    oh = (h + top + bottom - kh) // stride[0] + 1
    ow = (w + left + right - kw) // stride[1] + 1
    col = col.reshape(n, oh, ow, kh, kw, c)
    dx = np.zeros(x_shape, dtype=col.dtype)
    for img in range(n):
        for a in range(oh):
            for b in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        r, s = a * stride[0] - top + i, b * stride[1] - left + j
                        if 0 <= r < h and 0 <= s < w:
                            dx[img, r, s] += col[img, a, b, i, j]
    return dx


def naive_maxpool_forward(x, ph, pw, stride, pads):
    n, h, w, c = x.shape
    top, bottom, left, right = pads
    oh = (h + top + bottom - ph) // stride[0] + 1
    ow = (w + left + right - pw) // stride[1] + 1
    y = np.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = np.empty((n, oh, ow, c), dtype=np.int32)
    for img in range(n):
        for a in range(oh):
            for b in range(ow):
                for ch in range(c):
                    best, best_cell = -np.inf, 0
                    for i in range(ph):
                        for j in range(pw):
                            r, s = a * stride[0] - top + i, b * stride[1] - left + j
                            if 0 <= r < h and 0 <= s < w and x[img, r, s, ch] > best:
                                best, best_cell = x[img, r, s, ch], i * pw + j
                    y[img, a, b, ch], argmax[img, a, b, ch] = best, best_cell
    return y, argmax


def naive_maxpool_backward(dy, argmax, x_shape, ph, pw, stride, pads):
    top, _, left, _ = pads
    n, oh, ow, c = dy.shape
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for img in range(n):
        for a in range(oh):
            for b in range(ow):
                for ch in range(c):
                    i, j = divmod(int(argmax[img, a, b, ch]), pw)
                    r, s = a * stride[0] - top + i, b * stride[1] - left + j
                    if 0 <= r < x_shape[1] and 0 <= s < x_shape[2]:
                        dx[img, r, s, ch] += dy[img, a, b, ch]
    return dx


# --- drawn cases -------------------------------------------------------------------
@st.composite
def window_cases(draw):
    """(x, window, stride, pads): an image batch and a window geometry that fits it."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid":   # the window must fit in the image
        kh, kw = min(kh, h), min(kw, w)
    pads = padding_amounts(h, kh, sh, padding) + padding_amounts(w, kw, sw, padding)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.integers(-2, 3, size=(n, h, w, c)).astype(np.float64)   # many ties
    else:
        x = rng.standard_normal((n, h, w, c))
    return x, (kh, kw), (sh, sw), pads


def _col_shape(x_shape, window, stride, pads):
    n, h, w, c = x_shape
    oh = kernels.output_size(h, window[0], stride[0], pads[0], pads[1])
    ow = kernels.output_size(w, window[1], stride[1], pads[2], pads[3])
    return (n * oh * ow, window[0] * window[1] * c)


def _pool_output_shape(x_shape, window, stride, pads):
    n, h, w, c = x_shape
    return (n, kernels.output_size(h, window[0], stride[0], pads[0], pads[1]),
            kernels.output_size(w, window[1], stride[1], pads[2], pads[3]), c)


# --- (a) reference == naive loops -------------------------------------------------
@FAST
@given(window_cases())
def test_reference_im2col_col2im_match_naive_loops(case):
    x, (kh, kw), stride, pads = case
    col = reference.im2col(x, kh, kw, stride, pads)
    np.testing.assert_array_equal(col, naive_im2col(x, kh, kw, stride, pads))
    dcol = np.random.default_rng(0).standard_normal(col.shape)
    np.testing.assert_allclose(reference.col2im(dcol, x.shape, kh, kw, stride, pads),
                               naive_col2im(dcol, x.shape, kh, kw, stride, pads), rtol=1e-12, atol=1e-12)


@FAST
@given(window_cases())
def test_reference_maxpool_matches_naive_loops(case):
    x, (ph, pw), stride, pads = case
    y, argmax = reference.maxpool_forward(x, ph, pw, stride, pads)
    y_naive, argmax_naive = naive_maxpool_forward(x, ph, pw, stride, pads)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(argmax, argmax_naive)
    assert argmax.dtype == np.int32
    dy = np.random.default_rng(1).standard_normal(y.shape)
    np.testing.assert_allclose(reference.maxpool_backward(dy, argmax, x.shape, ph, pw, stride, pads),
                               naive_maxpool_backward(dy, argmax, x.shape, ph, pw, stride, pads),
                               rtol=1e-12, atol=1e-12)


# --- (b) cpu == reference -----------------------------------------------------------
@needs_numba
@FAST
@given(window_cases(), st.sampled_from([np.float32, np.float64]))
def test_cpu_im2col_col2im_match_reference(case, dtype):
    x, (kh, kw), stride, pads = case
    x = x.astype(dtype)
    col = cpu.im2col(x, kh, kw, stride, pads)
    assert col.dtype == dtype and col.shape == _col_shape(x.shape, (kh, kw), stride, pads)
    np.testing.assert_array_equal(col, reference.im2col(x, kh, kw, stride, pads))

    dcol = np.random.default_rng(0).standard_normal(col.shape).astype(dtype)
    dx = cpu.col2im(dcol, x.shape, kh, kw, stride, pads)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12   # sums of up to 16 terms, added in another order
    np.testing.assert_allclose(dx, reference.col2im(dcol, x.shape, kh, kw, stride, pads), rtol=tol, atol=tol)


@needs_numba
@FAST
@given(window_cases(), st.sampled_from([np.float32, np.float64]))
def test_cpu_maxpool_matches_reference(case, dtype):
    x, (ph, pw), stride, pads = case
    x = x.astype(dtype)
    y, argmax = cpu.maxpool_forward(x, ph, pw, stride, pads)
    y_ref, argmax_ref = reference.maxpool_forward(x, ph, pw, stride, pads)
    assert y.dtype == dtype and argmax.dtype == np.int32
    assert y.shape == argmax.shape == _pool_output_shape(x.shape, (ph, pw), stride, pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)   # same winner, ties included

    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx = cpu.maxpool_backward(dy, argmax, x.shape, ph, pw, stride, pads)
    assert dx.dtype == dtype and dx.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx, reference.maxpool_backward(dy, argmax, x.shape, ph, pw, stride, pads),
                               rtol=tol, atol=tol)


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
        pads = padding_amounts(h, 3, 1, "same") * 2
        col = cpu.im2col(x, 3, 3, (1, 1), pads)
        np.testing.assert_array_equal(col, reference.im2col(x, 3, 3, (1, 1), pads))
        np.testing.assert_allclose(cpu.col2im(col, x.shape, 3, 3, (1, 1), pads),
                                   reference.col2im(col, x.shape, 3, 3, (1, 1), pads), rtol=1e-5)
    for h, c in [(28, 32), (14, 64), (7, 128)]:
        x = rng.standard_normal((4, h, h, c)).astype(dtype)
        pads = padding_amounts(h, 2, 2, "same") * 2
        y, argmax = cpu.maxpool_forward(x, 2, 2, (2, 2), pads)
        y_ref, argmax_ref = reference.maxpool_forward(x, 2, 2, (2, 2), pads)
        assert y.shape == (4, (h + 1) // 2, (h + 1) // 2, c)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)
        np.testing.assert_array_equal(cpu.maxpool_backward(y, argmax, x.shape, 2, 2, (2, 2), pads),
                                      reference.maxpool_backward(y, argmax, x.shape, 2, 2, (2, 2), pads))


@BOTH_MODULES
def test_maxpool_padding_never_wins_and_ties_go_to_the_first_cell(module_name):
    module = reference if module_name == "reference" else cpu
    x = np.full((1, 3, 3, 1), -5.0, dtype=np.float32)   # all equal, and below the 0 a zero-pad would give
    y, argmax = module.maxpool_forward(x, 2, 2, (2, 2), (0, 1, 0, 1))   # 3 -> 2, pad bottom/right
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, -5.0)
    np.testing.assert_array_equal(argmax, 0)            # the first cell of every window


@needs_numba
def test_cpu_maxpool_treats_nan_and_inf_like_reference():
    x = np.array([[np.nan, 1.0, -np.inf], [np.inf, np.nan, 2.0], [-np.inf, -np.inf, np.nan]])
    x = x.reshape(1, 3, 3, 1)
    for pads in [(0, 0, 0, 0), (0, 1, 0, 1), (1, 1, 1, 1)]:
        y, argmax = cpu.maxpool_forward(x, 2, 2, (1, 1), pads)
        y_ref, argmax_ref = reference.maxpool_forward(x, 2, 2, (1, 1), pads)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, argmax_ref)


@needs_numba
def test_cpu_kernels_accept_non_contiguous_inputs():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)[:, ::-1, :, ::2]   # a strided view
    pads = (1, 1, 1, 1)
    np.testing.assert_array_equal(cpu.im2col(x, 3, 3, (1, 1), pads), reference.im2col(x, 3, 3, (1, 1), pads))
    y, argmax = cpu.maxpool_forward(x, 2, 2, (1, 2), pads)
    y_ref, argmax_ref = reference.maxpool_forward(x, 2, 2, (1, 2), pads)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    dcol = rng.standard_normal((60, 18)).astype(np.float32).T.copy().T   # Fortran order
    np.testing.assert_allclose(cpu.col2im(dcol, x.shape, 3, 3, (1, 1), pads),
                               reference.col2im(dcol, x.shape, 3, 3, (1, 1), pads), rtol=1e-5)


# --- (c) adjoints ---------------------------------------------------------------------
@BOTH_MODULES
@FAST
@given(window_cases())
def test_col2im_is_the_adjoint_of_im2col(module_name, case):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col transposed."""
    module = reference if module_name == "reference" else cpu
    x, (kh, kw), stride, pads = case
    c = np.random.default_rng(5).standard_normal(_col_shape(x.shape, (kh, kw), stride, pads))
    lhs = np.vdot(module.im2col(x, kh, kw, stride, pads), c)
    rhs = np.vdot(x, module.col2im(c, x.shape, kh, kw, stride, pads))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@BOTH_MODULES
@FAST
@given(window_cases())
def test_maxpool_backward_is_the_adjoint_of_the_routing(module_name, case):
    """y = P x picks the winners (P fixed by argmax); backward must be P^T: <P x, g> == <x, P^T g>."""
    module = reference if module_name == "reference" else cpu
    x, (ph, pw), stride, pads = case
    y, argmax = module.maxpool_forward(x, ph, pw, stride, pads)
    g = np.random.default_rng(6).standard_normal(y.shape)
    dx = module.maxpool_backward(g, argmax, x.shape, ph, pw, stride, pads)
    assert np.vdot(y, g) == pytest.approx(np.vdot(x, dx), rel=1e-12, abs=1e-12)


# --- (d) the dispatcher ------------------------------------------------------------
@needs_numba
def test_dispatcher_uses_cpu_kernels_by_default_and_reference_when_forced():
    x = np.zeros((1, 4, 4, 1), dtype=np.float32)
    previous = kernels._force_reference
    try:
        kernels.use_reference_kernels(False)
        assert kernels.implementation(x) is cpu
        kernels.use_reference_kernels(True)
        assert kernels.implementation(x) is reference
        col = kernels.im2col(x, 2, 2, (1, 1), (0, 0, 0, 0))   # runs through reference.py
        assert col.shape == (9, 4)
    finally:
        kernels.use_reference_kernels(previous)
    if not previous:
        assert kernels.implementation(x) is cpu


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

"""Tests for minicnn/kernels/winograd.py: Winograd F(2x2, 3x3) against the exact im2col path.

  (a) the matrices B^T, G, A^T compute F(2, 3), 1-D, exactly as the module docstring says;
  (b) forward, input gradient and kernel gradient == reference.im2col / col2im, in float64
      to 1e-10, on drawn shapes (3x3, stride 1, 'same' and 'valid', odd and even sides);
  (c) in float32 within winograd.float32_bound of the exact result, and on the lab's shapes
      (batch 64) also within 4x the im2col path's own float32 error (root mean square);
  (d) the compiled transforms (Numba) == the array transforms, bit for bit, and going through
      the batch in chunks changes nothing;
  (e) the two backward kernels are the adjoints of the forward; supports() and the errors.
"""
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO, load_script
from minicnn.kernels import Window, reference, winograd

FAST = settings(max_examples=30, deadline=None)   # deadline=None: the first example pays the JIT compile
TRANSFORMS = ["arrays"] + (["loops"] if winograd.numba is not None else [])
LAB_LAYERS = [((28, 28, 1), 32), ((14, 14, 32), 64), ((7, 7, 64), 128)]   # input (H, W, C), filters


@st.composite
def conv3x3_cases(draw, max_side=9, max_batch=3, max_channels=4):
    """(x, kernel, dz, window) in float64: a 3x3 stride-1 window, 'same' or 'valid', sides 1-9
    ('valid' from 3 on), odd and even; half the time small integers (exact sums)."""
    padding = draw(st.sampled_from(["same", "valid"]))
    low = 3 if padding == "valid" else 1
    h, w = draw(st.integers(low, max_side)), draw(st.integers(low, max_side))
    n, c, f = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels))
    window = Window.over((h, w), (3, 3), (1, 1), padding)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x, kernel, dz = (rng.integers(-3, 4, size=shape).astype(np.float64)
                         for shape in [(n, h, w, c), (3, 3, c, f), (n, window.oh, window.ow, f)])
    else:
        x, kernel, dz = (rng.standard_normal(shape)
                         for shape in [(n, h, w, c), (3, 3, c, f), (n, window.oh, window.ow, f)])
    return x, kernel, dz, window


def exact(x, kernel, dz, window):
    """(z, dx, d_kernel) by the im2col path, as Conv2D computes them (reference kernels)."""
    f = kernel.shape[3]
    col = reference.im2col(x, window)                                      # (N*OH*OW, 9C)
    z = (col @ kernel.reshape(-1, f)).reshape(x.shape[0], window.oh, window.ow, f)
    dx = reference.col2im(dz.reshape(-1, f) @ kernel.reshape(-1, f).T, window)
    d_kernel = (col.T @ dz.reshape(-1, f)).reshape(kernel.shape)
    return z, dx, d_kernel


def by_winograd(x, kernel, dz, window):
    return (winograd.conv3x3_forward(x, kernel, window), winograd.conv3x3_backward_input(dz, kernel, window),
            winograd.conv3x3_backward_kernel(x, dz, window))


def bounds(x, kernel, dz, window):
    """winograd.float32_bound for (z, dx, d_kernel), from the inputs' magnitudes."""
    x_max, k_max, dz_max = (float(np.abs(a).max()) for a in (x, kernel, dz))
    tiles = x.shape[0] * (-(-window.oh // 2)) * (-(-window.ow // 2))
    return (winograd.float32_bound(x_max, k_max, x.shape[3]),
            winograd.float32_bound(dz_max, k_max, kernel.shape[3]),
            winograd.float32_bound(x_max, dz_max, tiles, growth=winograd.KERNEL_GRADIENT_GROWTH))


@pytest.fixture(params=TRANSFORMS)
def transforms(request, monkeypatch):
    """Run the test with the array transforms and with the compiled ones."""
    monkeypatch.setattr(winograd, "TRANSFORMS", request.param)
    return request.param


# --- (a) the matrices ------------------------------------------------------------------------
def test_the_matrices_compute_f23_in_one_dimension():
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(4), rng.standard_normal(3)
    y = winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d))             # 4 multiplications
    np.testing.assert_allclose(y, [d[0:3] @ g, d[1:4] @ g], rtol=1e-12)     # 6 multiplications
    m = [(d[0] - d[2]) * g[0], (d[1] + d[2]) * g.sum() / 2, (d[2] - d[1]) * (g[0] - g[1] + g[2]) / 2,
         (d[1] - d[3]) * g[2]]                                               # the docstring's m0..m3
    np.testing.assert_allclose(y, [m[0] + m[1] + m[2], m[1] - m[2] - m[3]], rtol=1e-12)


def test_the_matrices_compute_f2x2_3x3_on_one_tile():
    rng = np.random.default_rng(1)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    B_T, G, A_T = winograd.B_T, winograd.G, winograd.A_T
    y = A_T @ ((G @ g @ G.T) * (B_T @ d @ B_T.T)) @ A_T.T                  # 16 multiplications
    direct = [[np.sum(d[a:a + 3, b:b + 3] * g) for b in range(2)] for a in range(2)]   # 36
    np.testing.assert_allclose(y, direct, rtol=1e-12)
    np.testing.assert_array_equal(winograd.G_G, np.kron(G, G))


# --- (b) float64: equal to the im2col path -----------------------------------------------------
@FAST
@given(conv3x3_cases())
def test_float64_equals_the_im2col_path(transforms, case):
    x, kernel, dz, window = case
    assert winograd.supports(window)
    for name, ours, theirs in zip(["forward", "input gradient", "kernel gradient"],
                                  by_winograd(x, kernel, dz, window), exact(x, kernel, dz, window)):
        assert ours.shape == theirs.shape and ours.dtype == np.float64, name
        scale = max(1.0, float(np.abs(theirs).max()))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10 * scale, err_msg=name)


@FAST
@given(conv3x3_cases())
def test_float32_stays_float32_and_within_the_bound(transforms, case):
    x, kernel, dz, window = case
    x32, kernel32, dz32 = (a.astype(np.float32) for a in (x, kernel, dz))
    truth = exact(*(a.astype(np.float64) for a in (x32, kernel32, dz32)), window)   # the float32 inputs, exactly
    for name, ours, theirs, bound in zip(["forward", "input gradient", "kernel gradient"],
                                         by_winograd(x32, kernel32, dz32, window), truth,
                                         bounds(x32, kernel32, dz32, window)):
        assert ours.dtype == np.float32, name
        error = float(np.abs(ours - theirs).max())
        assert error <= bound, f"{name}: max |Winograd - exact| = {error:.3g} > bound {bound:.3g}"


# --- (c) the lab's shapes in float32 ------------------------------------------------------------
def test_lab_shapes_in_float32_are_as_accurate_as_the_im2col_path():
    """Batch 64, the lab's three convolutions: within the worst-case bound, and, what matters for
    training, Winograd's float32 error (against float64) is within 4x the im2col path's own."""
    rng = np.random.default_rng(7)
    report = []
    for (h, w, c), f in LAB_LAYERS:
        window = Window.over((h, w), (3, 3), (1, 1), "same")
        x = rng.standard_normal((64, h, w, c)).astype(np.float32)
        kernel = (rng.standard_normal((3, 3, c, f)) / np.sqrt(9 * c)).astype(np.float32)
        dz = rng.standard_normal((64, h, w, f)).astype(np.float32)
        truth = exact(*(a.astype(np.float64) for a in (x, kernel, dz)), window)
        im2col_32 = exact(x, kernel, dz, window)
        for name, ours, theirs, exact_32, bound in zip(["forward", "input gradient", "kernel gradient"],
                                                       by_winograd(x, kernel, dz, window), truth, im2col_32,
                                                       bounds(x, kernel, dz, window)):
            rms_ours = np.sqrt(np.mean((ours - theirs) ** 2))
            rms_im2col = np.sqrt(np.mean((exact_32 - theirs) ** 2))
            report.append(f"{(h, w, c)}->{f} {name}: rms error Winograd {rms_ours:.2e}, im2col {rms_im2col:.2e}")
            assert ours.dtype == np.float32
            assert np.abs(ours - theirs).max() <= bound, report[-1]
            assert rms_ours <= 4 * rms_im2col, report[-1]
    print("\n".join(report))


# --- (d) compiled transforms and chunks -------------------------------------------------------
@pytest.mark.skipif(winograd.numba is None, reason="Numba is not installed")
@FAST
@given(conv3x3_cases())
def test_compiled_transforms_equal_the_array_transforms(case):
    x, kernel, dz = (a.astype(np.float32) for a in case[:3])
    window = case[3]
    results = {}
    for choice in ["arrays", "loops"]:
        previous, winograd.TRANSFORMS = winograd.TRANSFORMS, choice
        try:
            results[choice] = by_winograd(x, kernel, dz, window)
        finally:
            winograd.TRANSFORMS = previous
    for ours, theirs in zip(results["loops"], results["arrays"]):
        np.testing.assert_array_equal(ours, theirs)   # the same additions in the same order


def test_chunks_change_nothing(transforms, monkeypatch):
    rng = np.random.default_rng(3)
    window = Window.over((7, 6), (3, 3), (1, 1), "same")
    x, dz = rng.standard_normal((5, 7, 6, 3)), rng.standard_normal((5, 7, 6, 4))
    kernel = rng.standard_normal((3, 3, 3, 4))
    whole = by_winograd(x, kernel, dz, window)
    monkeypatch.setattr(winograd, "CHUNK_BYTES", 1)          # one image per chunk
    assert len(winograd._chunks(5, 16, 4, 8)) == 5
    chunked = by_winograd(x, kernel, dz, window)
    np.testing.assert_array_equal(chunked[0], whole[0])      # images are independent: bit for bit
    np.testing.assert_array_equal(chunked[1], whole[1])
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-12, atol=1e-12)   # a sum over the images


def test_non_contiguous_inputs(transforms):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 6, 10, 3))[:, ::-1, ::2, :]                # a strided view
    window = Window.over((6, 5), (3, 3), (1, 1), "same")
    kernel = rng.standard_normal((3, 3, 3, 2))
    dz = rng.standard_normal((2, 6, 10, 2))[:, :, ::2]
    for ours, theirs in zip(by_winograd(x, kernel, dz, window), exact(x, kernel, dz, window)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10)


# --- (e) adjoints, supports, errors ------------------------------------------------------------
@FAST
@given(conv3x3_cases())
def test_the_backward_kernels_are_the_adjoints_of_the_forward(case):
    """<conv(x, k), dz> == <x, backward_input(dz, k)> == <k, backward_kernel(x, dz)>."""
    x, kernel, dz, window = case
    z = winograd.conv3x3_forward(x, kernel, window)
    lhs = np.vdot(z, dz)
    scale = max(1.0, float(np.abs(z).sum() * np.abs(dz).max()))
    assert abs(lhs - np.vdot(x, winograd.conv3x3_backward_input(dz, kernel, window))) <= 1e-12 * scale
    assert abs(lhs - np.vdot(kernel, winograd.conv3x3_backward_kernel(x, dz, window))) <= 1e-12 * scale


def test_supports_only_3x3_stride_1():
    assert winograd.supports(Window.over((28, 28), (3, 3), (1, 1), "same"))
    assert winograd.supports(Window.over((5, 4), (3, 3), (1, 1), "valid"))
    assert not winograd.supports(Window.over((28, 28), (3, 3), (2, 2), "same"))
    assert not winograd.supports(Window.over((28, 28), (5, 5), (1, 1), "same"))
    assert not winograd.supports(Window.over((28, 28), (2, 2), (2, 2), "same"))
    x = np.zeros((1, 8, 8, 1))
    with pytest.raises(ValueError, match="3x3 window, stride 1"):
        winograd.conv3x3_forward(x, np.zeros((3, 3, 1, 1)), Window.over((8, 8), (3, 3), (2, 2), "same"))


def test_the_lab_model_windows_are_supported():
    from minicnn.lab import lab_model
    convs = [layer for layer in lab_model(compile=False).layers if type(layer).__name__ == "Conv2D"]
    assert len(convs) == 3 and all(winograd.supports(layer.window) for layer in convs)


def test_the_benchmark_runs(monkeypatch, capsys):
    bench = load_script(REPO / "benchmarks" / "bench_winograd.py")     # in this process: no second start-up
    monkeypatch.setattr(sys, "argv", ["bench_winograd.py", "--repeats", "1", "--warmup", "0", "--rounds", "1",
                                      "--batch", "2", "--layers", "conv2", "--chunk-kib", "64"])
    chunk_bytes = winograd.CHUNK_BYTES
    bench.main()
    assert winograd.CHUNK_BYTES == chunk_bytes                      # put back
    out = capsys.readouterr().out
    assert "conv2" in out and "backward kernel" in out and "ratio" in out

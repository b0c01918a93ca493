"""examples/conv_from_maths_to_code.py and examples/inside_the_layers.py, run as a learner runs them.

Both run in a subprocess in a quick mode; the tests check the numbers they print and write.
inside_the_layers.py needs Fashion-MNIST and is skipped where it is not installed (except in CI:
see conftest.needs_fashion_mnist).
"""
import json
import re

import numpy as np
import pytest

from conftest import REPO, load_example, needs_fashion_mnist, run_script
from minicnn import inspection, kernels
from minicnn.datasets import fashion_mnist
from minicnn.kernels import Window
from minicnn.models import load_model
from minicnn.utils import to_categorical
from snippets import blocks, same_shape

CONV_SCRIPT = REPO / "examples" / "conv_from_maths_to_code.py"
INSIDE_SCRIPT = REPO / "examples" / "inside_the_layers.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_IMAGES, TRACE_IMAGES, BATCH = 320, 64, 64       # 5 training batches
PARAM_LAYERS = ["conv2d", "conv2d_1", "conv2d_2", "dense", "dense_1"]
INSIDE_FIGURES = {"filters", "feature_maps", "activation_histograms", "gradient_histograms", "profile"}


# --- conv_from_maths_to_code.py ----------------------------------------------------------------------
def test_conv_example_prints_the_labs_shapes_and_three_equal_results(tmp_path):
    stdout = run_script(CONV_SCRIPT, "--output", tmp_path)
    for text, shape in [("col = im2col(x)", "(50176, 9)"), ("kernel.reshape(KH*KW*C, F)", "(9, 32)"),
                        ("z = col @ kernel + bias", "(50176, 32)"), ("y = z.reshape(N, OH, OW, F)", "(64, 28, 28, 32)"),
                        ("d_kernel = col.T @ dz, reshaped", "(3, 3, 1, 32)"), ("dx = col2im(dcol)", "(64, 28, 28, 1)")]:
        assert any(line.strip().startswith(text) and line.endswith(shape) for line in stdout.splitlines()), text
    assert "(12544, 288)" in stdout and "(3136, 576)" in stdout      # the lab's second and third layer
    assert "[ 1  2  3  5  6  7  9 10 11]" in stdout                   # the first window of the tiny image
    assert stdout.count("max |difference| from the loops = 0.0e+00   equal") == 12     # 6 forward, 6 backward
    assert "All equal: the loops over the formulas and the layer's backward" in stdout
    assert "All equal" in stdout and "DIFFERENT" not in stdout
    assert "[[4 6 6 6 6 4]\n [6 9 9 9 9 6]" in stdout                  # col2im(ones), 3x3 windows, 'same'
    # step 5 names the layers as a fresh session does, whatever models were built before
    assert re.search(r"^  conv2d\+leaky_re_lu\+max_pooling2d +ConvActivationPool$", stdout, flags=re.M)
    assert re.search(r"^  conv2d_2\+leaky_re_lu_2\+max_pooling2d_2 +ConvActivationPool$", stdout, flags=re.M)
    assert "with model.fusion = False: 13 steps, one per layer" in stdout
    assert "fused vs layer by layer: equal to the last bit" in stdout
    for figure in ("im2col.png", "col2im_ones.png"):
        assert (tmp_path / figure).read_bytes().startswith(PNG_SIGNATURE)
    [sample] = [block for block in blocks(REPO / "README.md")          # the README shows this output
                if block.note == "output of: python examples/conv_from_maths_to_code.py"]
    assert same_shape(sample.text, stdout), "README.md: the sample output of conv_from_maths_to_code.py is stale"


def test_conv_by_loops_on_a_hand_computed_example():
    conv = load_example("conv_from_maths_to_code")
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)                      # [[1,2,3],[4,5,6],[7,8,9]]
    kernel = np.zeros((2, 2, 1, 2))
    kernel[:, :, 0, 0] = 1                                            # filter 0: sum of the window
    kernel[0, 0, 0, 1], kernel[1, 1, 0, 1] = 1, -1                    # filter 1: top-left minus bottom-right
    y = conv.conv2d_loops(x, kernel, np.array([0.0, 10.0]), Window.over((3, 3), (2, 2), (1, 1), "valid"))
    np.testing.assert_array_equal(y[0, :, :, 0], [[12, 16], [24, 28]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[6, 6], [6, 6]])
    window = Window.over((3, 3), (2, 2), (2, 2), "same")
    assert window.pads == (0, 1, 0, 1)                                # zeros at the bottom/right
    padded = conv.conv2d_loops(x, kernel, np.zeros(2), window)
    np.testing.assert_array_equal(padded[0, :, :, 0], [[12, 9], [15, 9]])


@pytest.mark.parametrize("strides, padding", [((1, 1), "same"), ((2, 1), "same"), ((3, 3), "valid"),
                                              ((1, 2), "valid")])
def test_conv_three_ways_agree_on_real_numbers(strides, padding):
    conv = load_example("conv_from_maths_to_code")
    rng = np.random.default_rng(4)
    x, kernel, bias = rng.standard_normal((2, 7, 6, 3)), rng.standard_normal((3, 2, 3, 4)), rng.standard_normal(4)
    window = Window.over((7, 6), (3, 2), strides, padding)
    loops = conv.conv2d_loops(x, kernel, bias, window)
    for im2col in (kernels.reference.im2col, kernels.im2col):
        np.testing.assert_allclose(conv.conv2d_im2col(x, kernel, bias, window, im2col), loops, rtol=1e-12,
                                   atol=1e-12)


def integer_case(rng, strides, padding, shape=(2, 7, 6, 3), kernel_shape=(3, 2, 3, 4)):
    """Small-integer x, kernel, bias and dz for a convolution: every sum is exact in float64."""
    x = rng.integers(-4, 5, shape).astype(np.float64)
    kernel = rng.integers(-3, 4, kernel_shape).astype(np.float64)
    bias = rng.integers(-3, 4, kernel_shape[3]).astype(np.float64)
    window = Window.over(shape[1:3], kernel_shape[:2], strides, padding)
    dz = rng.integers(-4, 5, (shape[0], window.oh, window.ow, kernel_shape[3])).astype(np.float64)
    return x, kernel, bias, dz, window


@pytest.mark.parametrize("strides, padding", [((1, 1), "same"), ((2, 1), "same"), ((3, 3), "valid"),
                                              ((1, 2), "valid"), ((2, 2), "same")])
def test_conv_backward_by_loops_is_the_layers_to_the_last_bit(strides, padding):
    """d_kernel, d_bias and dx by loops over the formulas equal the layer's backward bit for bit."""
    conv = load_example("conv_from_maths_to_code")
    x, kernel, bias, dz, window = integer_case(np.random.default_rng(7), strides, padding)
    loops = conv.conv2d_backward_loops(x, kernel, dz, window)
    ways = [conv.conv2d_layer_backward(x, kernel, bias, dz, strides, padding),
            conv.conv2d_backward_im2col(x, kernel, dz, window, kernels.reference.im2col, kernels.reference.col2im),
            conv.conv2d_backward_im2col(x, kernel, dz, window, kernels.im2col, kernels.col2im)]
    for grads in ways:
        for got, want in zip(grads, loops):
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_conv_backward_loops_on_a_hand_computed_example():
    """One image 3x3, one 2x2 filter of ones, no padding: dz = 1 everywhere.
    d_kernel[i, j] sums the pixels that kernel cell (i, j) saw; dx counts the windows over each pixel."""
    conv = load_example("conv_from_maths_to_code")
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)                      # [[1,2,3],[4,5,6],[7,8,9]]
    kernel = np.ones((2, 2, 1, 1))
    window = Window.over((3, 3), (2, 2), (1, 1), "valid")
    d_kernel, d_bias, dx = conv.conv2d_backward_loops(x, kernel, np.ones((1, 2, 2, 1)), window)
    np.testing.assert_array_equal(d_kernel[:, :, 0, 0], [[1 + 2 + 4 + 5, 2 + 3 + 5 + 6],
                                                         [4 + 5 + 7 + 8, 5 + 6 + 8 + 9]])
    np.testing.assert_array_equal(d_bias, [4])                         # four output pixels
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


@pytest.mark.parametrize("strides, padding", [((1, 1), "same"), ((2, 2), "valid"), ((1, 1), "valid"),
                                              ((2, 2), "same")])
def test_windows_per_pixel_counts_the_windows_that_read_each_pixel(strides, padding):
    conv = load_example("conv_from_maths_to_code")
    counts = conv.windows_per_pixel(6, 5, (3, 3), strides, padding)
    window = Window.over((6, 5), (3, 3), strides, padding)
    image = np.arange(30.0).reshape(1, 6, 5, 1) + 1                    # every pixel a different value
    col = kernels.reference.im2col(image, window)
    expected = np.array([[np.count_nonzero(col == image[0, h, w, 0]) for w in range(5)] for h in range(6)])
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == window.oh * window.ow * 9 - np.count_nonzero(col == 0)   # padding cells dropped


# --- inside_the_layers.py ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inside_runs(tmp_path_factory):
    """The example twice: training quickly, then looking at the model that run saved (--model)."""
    trained = tmp_path_factory.mktemp("inside_trained")
    stdout = run_script(INSIDE_SCRIPT, "--quick", "--train-images", TRAIN_IMAGES, "--seed", "0", "--output", trained)
    loaded = tmp_path_factory.mktemp("inside_loaded")
    stdout_loaded = run_script(INSIDE_SCRIPT, "--quick", "--model", trained / "model.h5py", "--profile-steps", "1",
                               "--output", loaded)
    read = lambda folder: json.loads((folder / "results.json").read_text())   # noqa: E731
    return (trained, stdout, read(trained)), (loaded, stdout_loaded, read(loaded))


@needs_fashion_mnist
def test_inside_example_prints_every_table(inside_runs):
    (_, stdout, results), _ = inside_runs
    for heading in ["1. The model", "2. Trace one batch", "3. Figures", "4. Where the time", "5. Gradient check"]:
        assert f"=== {heading}" in stdout
    for s in results["stats"]:
        assert f"{s['name']} ({s['type']})" in stdout
    assert "|dL/dout| on its way back, from leaky_re_lu_3 to conv2d:" in stdout
    assert "whole step" in stdout and "ok: all 11 arrays agree" in stdout
    assert "'inputs < 0' is the share of that layer's inputs below 0" in stdout


@needs_fashion_mnist
def test_inside_example_records_the_gradient_norms_of_every_batch(inside_runs):
    (output, _, results), _ = inside_runs
    batches = -(-TRAIN_IMAGES // BATCH)
    assert list(results["gradient_norms"]) == PARAM_LAYERS
    assert all(len(v) == batches and all(n > 0 for n in v) for v in results["gradient_norms"].values())
    assert results["epoch_ends"] == [batches]
    assert set(results["figures"]) == INSIDE_FIGURES | {"gradient_norms"}
    for name in results["figures"].values():
        assert (output / name).read_bytes().startswith(PNG_SIGNATURE)


@needs_fashion_mnist
def test_inside_example_stats_are_those_of_the_saved_model_on_the_test_images(inside_runs):
    """Recompute the statistics here, from the saved model and the first 64 test images."""
    (output, _, results), _ = inside_runs
    model = load_model(output / "model.h5py")
    _, (test_X, test_Y) = fashion_mnist.load_data()
    x = test_X[:TRACE_IMAGES].reshape(-1, 28, 28, 1).astype("float32") / 255.
    expected = inspection.stats(inspection.trace(model, x, to_categorical(test_Y[:TRACE_IMAGES], 10)))
    assert [s["name"] for s in results["stats"]] == [s.name for s in expected]
    for got, want in zip(results["stats"], expected):
        assert got["output_shape"] == [TRACE_IMAGES] + list(want.output_shape[1:])
        for key in ("mean", "std", "negative_share", "grad_output_norm", "grad_norm", "weight_norm"):
            assert got[key] == pytest.approx(getattr(want, key), rel=1e-4, abs=1e-7), (got["name"], key)
    shares = [s["negative_share"] for s in results["stats"]]
    assert [share is not None for share in shares] == [s.type == "LeakyReLU" for s in expected]
    assert all(0 < share < 1 for share in shares if share is not None)


@needs_fashion_mnist
def test_inside_example_profile_adds_up(inside_runs):
    (_, stdout, results), _ = inside_runs
    fused, layer_by_layer = results["profile"], results["profile_layer_by_layer"]
    # as fit runs it: each conv block one fused row, then flatten, dense, leaky_re_lu, dense
    assert [t["type"] for t in fused["layers"]] == ["fused"] * 3 + ["Flatten", "Dense", "LeakyReLU", "Dense"]
    assert [t["name"] for t in layer_by_layer["layers"]] == [s["name"] for s in results["stats"]]
    for profile in (fused, layer_by_layer):
        assert (profile["batch_size"], profile["steps"], profile["device"]) == (TRACE_IMAGES, 2, "cpu")
        parts = sum(t["total_ms"] for t in profile["layers"]) + profile["optimizer_ms"] + profile["other_ms"]
        assert parts == pytest.approx(profile["step_ms"])
        for t in profile["layers"]:
            assert t["share"] == pytest.approx(t["total_ms"] / profile["step_ms"])
    assert "conv2d+leaky_re_lu+max_pooling2d (fused)" in stdout
    assert results["gradcheck_status"] == 0


@needs_fashion_mnist
def test_inside_example_on_a_saved_model_sees_the_same_numbers(inside_runs):
    (_, _, trained), (output, stdout, loaded) = inside_runs
    assert loaded["epochs"] == 0 and loaded["gradient_norms"] == {}
    assert "no gradient-norm curve" in stdout
    assert set(loaded["figures"]) == INSIDE_FIGURES
    for a, b in zip(trained["stats"], loaded["stats"]):
        for key in ("mean", "std", "negative_share", "grad_output_norm", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (a["name"], key)

"""MaxPooling2D: forward against plain loops, gradients, ties, overlapping windows, 'same' padding."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import distinct_values
from minicnn import gradcheck
from minicnn.kernels import Window
from minicnn.layers import MaxPooling2D


def naive_maxpool(x, pool, stride, padding):
    """The max of each window, padding -inf (never wins); pads and output size from kernels.Window."""
    n, h, w, c = x.shape
    window = Window.over((h, w), pool, stride, padding)
    top, bottom, left, right = window.pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    y = np.empty((n, window.oh, window.ow, c))
    for i in range(window.oh):
        for j in range(window.ow):
            cells = padded[:, i * stride[0]:i * stride[0] + pool[0], j * stride[1]:j * stride[1] + pool[1], :]
            y[:, i, j, :] = cells.max(axis=(1, 2))
    return y


pool_cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(1, 8), "w": st.integers(1, 8), "c": st.integers(1, 3),
    "ph": st.integers(1, 3), "pw": st.integers(1, 3), "sh": st.integers(1, 3), "sw": st.integers(1, 3),
    "padding": st.sampled_from(["valid", "same"]), "seed": st.integers(0, 2**16),
}).filter(lambda c: c["padding"] == "same" or (c["ph"] <= c["h"] and c["pw"] <= c["w"]))


@settings(max_examples=50)
@given(pool_cases)
def test_forward_matches_plain_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"])).astype(np.float32)
    layer = MaxPooling2D((case["ph"], case["pw"]), strides=(case["sh"], case["sw"]), padding=case["padding"])
    expected = naive_maxpool(x, (case["ph"], case["pw"]), (case["sh"], case["sw"]), case["padding"])
    y = layer(x)
    assert y.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_array_equal(y, expected)


@settings(max_examples=50)
@given(pool_cases)
def test_gradients_match_central_differences(float64, case):
    """Distinct inputs (no ties) so the max is differentiable; strides < pool overlap windows."""
    rng = np.random.default_rng(case["seed"])
    x = distinct_values(rng, (case["n"], case["h"], case["w"], case["c"]))
    layer = MaxPooling2D((case["ph"], case["pw"]), strides=(case["sh"], case["sw"]), padding=case["padding"])
    errors = gradcheck.check_layer(layer, x, eps=1e-4)
    assert errors["x"] < 1e-6, errors


def test_overlapping_windows_add_up_gradients():
    # 1x3 input, pool 2 stride 1: the middle cell wins both windows
    x = np.array([0.0, 5.0, 1.0]).reshape(1, 1, 3, 1)
    layer = MaxPooling2D((1, 2), strides=(1, 1))
    np.testing.assert_array_equal(layer(x).ravel(), [5.0, 5.0])
    dx = layer.backward(np.array([1.0, 10.0]).reshape(1, 1, 2, 1))
    np.testing.assert_array_equal(dx.ravel(), [0.0, 11.0, 0.0])


def test_a_tie_sends_the_gradient_to_the_first_cell_only():
    x = np.full((1, 2, 2, 1), 3.0)
    layer = MaxPooling2D((2, 2))
    layer(x)
    dx = layer.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx.ravel(), [1.0, 0.0, 0.0, 0.0])


def test_same_padding_pools_7_to_4_and_padding_never_wins():
    x = -np.arange(1, 50, dtype=np.float32).reshape(1, 7, 7, 1)  # all negative: padding 0 would win
    layer = MaxPooling2D((2, 2), padding="same")
    y = layer(x)
    assert y.shape == (1, 4, 4, 1)
    assert y[0, 3, 3, 0] == x[0, 6, 6, 0], "the corner window holds one real cell and three pads"
    assert (y < 0).all()
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.sum() == 16


def test_default_strides_equal_pool_size_and_padding_is_valid():
    layer = MaxPooling2D(pool_size=(2, 2))
    assert layer.strides == (2, 2) and layer.padding == "valid"
    assert layer.compute_output_shape((None, 7, 7, 3)) == (None, 3, 3, 3)


@pytest.mark.parametrize("kwargs", [{"pool_size": 0}, {"pool_size": (2, 2, 2)}, {"padding": "reflect"},
                                    {"strides": (0, 1)}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="MaxPooling2D"):
        MaxPooling2D(**kwargs)

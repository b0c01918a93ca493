"""Conv2D: forward against plain loops, backward against central differences."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import load_example
from minicnn import gradcheck
from minicnn.kernels import Window
from minicnn.layers import Conv2D

TOLERANCE = 1e-6


def naive_conv(x, kernel, bias, strides, padding):
    """Cross-correlation by plain loops over the formula: examples/conv_from_maths_to_code.py's, the one
    a learner reads; the window (pads, output size) from kernels.Window, the one home of that rule."""
    window = Window.over(x.shape[1:3], kernel.shape[:2], strides, padding)
    return load_example("conv_from_maths_to_code").conv2d_loops(x, kernel, bias, window)


conv_cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(1, 7), "w": st.integers(1, 7), "c": st.integers(1, 3),
    "filters": st.integers(1, 3), "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "sh": st.integers(1, 3), "sw": st.integers(1, 3), "padding": st.sampled_from(["valid", "same"]),
    "seed": st.integers(0, 2**16),
})


def _fits(case):
    return case["padding"] == "same" or (case["kh"] <= case["h"] and case["kw"] <= case["w"])


@settings(max_examples=40, deadline=None)
@given(conv_cases.filter(_fits))
def test_forward_matches_plain_loops(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"])).astype(np.float32)
    layer = Conv2D(case["filters"], (case["kh"], case["kw"]), strides=(case["sh"], case["sw"]),
                   padding=case["padding"])
    y = layer(x)
    expected = naive_conv(x.astype(np.float64), layer.params["kernel"].astype(np.float64),
                          layer.params["bias"].astype(np.float64), (case["sh"], case["sw"]), case["padding"])
    assert y.dtype == np.float32
    assert y.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(conv_cases.filter(_fits), st.sampled_from(["linear", "relu", "tanh"]))
def test_gradients_match_central_differences(float64, case, activation):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["h"], case["w"], case["c"]))
    layer = Conv2D(case["filters"], (case["kh"], case["kw"]), strides=(case["sh"], case["sw"]),
                   padding=case["padding"], activation=activation)
    layer.build((None,) + x.shape[1:])
    layer.params["bias"][...] = rng.standard_normal(case["filters"])  # non-zero bias exercises it
    if activation == "relu":  # keep pre-activations away from the kink at 0
        layer.params["bias"][...] += np.sign(layer.params["bias"]) * 5
    errors = gradcheck.check_layer(layer, x)
    assert all(gradcheck.passed(error, TOLERANCE) for error in errors.values()), errors   # NaN never passes


def test_same_padding_keeps_size_and_pads_like_keras():
    layer = Conv2D(4, 3, padding="same")
    assert layer.compute_output_shape((None, 28, 28, 1)) == (None, 28, 28, 4)
    assert Conv2D(4, 3, strides=2, padding="same").compute_output_shape((None, 7, 7, 1)) == (None, 4, 4, 4)
    # the layer's window, made at build: an even kernel pads one more cell after than before, as TensorFlow does
    even = Conv2D(1, 4, padding="same")
    even.build((None, 6, 6, 1))
    assert even.window.pads == (1, 2, 1, 2) and even.window.output_hw == (6, 6)
    assert Conv2D(4, 3).compute_output_shape((None, 28, 28, 1)) == (None, 26, 26, 4)


def test_weights_have_keras_shapes_and_order():
    layer = Conv2D(32, (3, 3), input_shape=(28, 28, 1))
    layer.build((None, 28, 28, 1))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 3, 1, 32) and bias.shape == (32,)
    assert layer.count_params() == 320
    assert not bias.any(), "biases start at zero"
    limit = np.sqrt(6 / (9 * 1 + 9 * 32))  # glorot_uniform
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    layer.set_weights([np.ones_like(kernel), np.arange(32, dtype=np.float32)])
    np.testing.assert_array_equal(layer.params["bias"], np.arange(32))


@pytest.mark.parametrize("kwargs, message", [
    ({"filters": 0, "kernel_size": 3}, "filters"),
    ({"filters": 4, "kernel_size": 0}, "kernel_size"),
    ({"filters": 4, "kernel_size": 3, "padding": "full"}, "padding"),
    ({"filters": 4, "kernel_size": 3, "strides": -1}, "strides"),
    ({"filters": 4, "kernel_size": 3, "activation": "swishy"}, "swishy"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(**kwargs)


def test_input_without_channel_axis_gets_a_hint():
    with pytest.raises(ValueError, match=r"reshape\(-1, 28, 28, 1\)"):
        Conv2D(4, 3)(np.zeros((2, 28, 28), np.float32))


def test_kernel_larger_than_valid_input_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        Conv2D(4, 5)(np.zeros((1, 3, 3, 1), np.float32))

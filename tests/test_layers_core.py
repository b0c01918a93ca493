"""Dense, Flatten, Dropout, Activation, LeakyReLU, ReLU."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import away_from_zero
from minicnn import gradcheck
from minicnn.layers import Activation, Dense, Dropout, Flatten, LeakyReLU, ReLU
from minicnn.layers.advanced_activations import LeakyReLU as LabLeakyReLU

TOLERANCE = 1e-6


@settings(max_examples=30)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6),
       st.sampled_from(["linear", "relu", "leaky_relu", "sigmoid", "tanh", "softmax"]), st.integers(0, 999))
def test_dense_gradients(float64, n, features, units, activation, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(units, activation=activation)
    layer.build((None, features))
    layer.params["bias"][...] = away_from_zero(rng, units)  # relu kinks stay away from the inputs
    x = away_from_zero(rng, (n, features)) * 0.1
    errors = gradcheck.check_layer(layer, x)
    assert all(gradcheck.passed(error, TOLERANCE) for error in errors.values()), errors   # NaN never passes


def test_dense_forward_is_a_matrix_product():
    layer = Dense(3)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    layer.build((None, 4))
    kernel = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer.set_weights([kernel, np.array([1, 2, 3], np.float32)])
    np.testing.assert_array_equal(layer(x), x @ kernel + [1, 2, 3])
    assert layer.count_params() == 15


def test_dense_refuses_images_with_a_hint():
    with pytest.raises(ValueError, match="Flatten"):
        Dense(4)(np.zeros((2, 3, 3, 1), np.float32))


@settings(max_examples=20)
@given(st.sampled_from([(2, 3), (2, 4, 4, 3), (1, 2, 2, 1)]), st.integers(0, 999))
def test_flatten_and_activation_layers_gradients(float64, shape, seed):
    x = away_from_zero(np.random.default_rng(seed), shape)
    for layer in (Flatten(), LeakyReLU(alpha=0.1), ReLU(), Activation("tanh"), Activation("softmax")):
        errors = gradcheck.check_layer(layer, x)
        assert errors["x"] < TOLERANCE, (layer, errors)


def test_flatten_shapes():
    x = np.zeros((5, 4, 4, 128), np.float32)
    layer = Flatten()
    assert layer(x).shape == (5, 2048)
    assert layer.compute_output_shape((None, 4, 4, 128)) == (None, 2048)
    assert layer.backward(np.ones((5, 2048), np.float32)).shape == x.shape


def test_leaky_relu_accepts_alpha_and_negative_slope_default_0_3():
    x = np.array([[-2.0, 0.0, 3.0]], np.float32)
    np.testing.assert_allclose(LabLeakyReLU(alpha=0.1)(x), [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(LeakyReLU(negative_slope=0.1)(x), [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(LeakyReLU()(x), [[-0.6, 0.0, 3.0]], rtol=1e-6)
    assert LeakyReLU(alpha=0.1).alpha == 0.1
    with pytest.raises(ValueError, match="not both"):
        LeakyReLU(alpha=0.1, negative_slope=0.2)
    assert LeakyReLU()(x).dtype == np.float32


def test_dropout_is_inverted_and_off_at_inference():
    x = np.ones((200, 500), np.float32)
    layer = Dropout(0.25)
    np.testing.assert_array_equal(layer(x, training=False), x)
    y = layer(x, training=True)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75)  # survivors are scaled up
    assert abs(y.mean() - 1.0) < 0.02               # so the expected activation is unchanged
    assert y.dtype == np.float32
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dy), 2.0 * y)  # same mask in backward


def test_dropout_gradient_with_a_fixed_mask(float64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 4, 2))
    layer = Dropout(0.4)
    layer.fixed_mask = (rng.random(x.shape) >= 0.4) / 0.6
    assert gradcheck.check_layer(layer, x)["x"] < TOLERANCE


def test_dropout_mask_is_its_definition_on_the_generators_numbers():
    """mask = (u >= rate) / (1 - rate), u drawn from minicnn's generator: what a checkpoint restores."""
    from minicnn import backend
    x = np.random.default_rng(3).standard_normal((5, 6, 6, 3)).astype(np.float32)
    backend.set_random_seed(11)
    u = backend.random_uniform(np, x.shape, np.float32)
    backend.set_random_seed(11)
    layer = Dropout(0.3)
    y = layer(x, training=True)
    mask = (u >= np.float32(0.3)) * np.float32(1 / 0.7)
    np.testing.assert_array_equal(y, x * mask)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), mask)


def test_dropout_masks_follow_the_seed():
    from minicnn import backend
    x = np.ones((4, 10), np.float32)
    backend.set_random_seed(7)
    first = Dropout(0.5)(x, training=True)
    backend.set_random_seed(7)
    np.testing.assert_array_equal(Dropout(0.5)(x, training=True), first)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True])
def test_dropout_rate_outside_0_1_is_refused(rate):
    with pytest.raises(ValueError, match="rate"):
        Dropout(rate)


@pytest.mark.parametrize("units", [0, -3, 2.5, None])
def test_dense_units_must_be_positive_int(units):
    with pytest.raises(ValueError, match="units"):
        Dense(units)


def test_dropout_refuses_a_per_layer_seed_and_says_what_to_use():
    with pytest.raises(ValueError, match="set_random_seed"):
        Dropout(0.5, seed=3)

"""Activation functions by name."""
import numpy as np
import pytest

from minicnn import activations


def test_values():
    z = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(activations.get("linear")(z), z)
    np.testing.assert_array_equal(activations.get("relu")(z), [[0, 0, 3]])
    np.testing.assert_allclose(activations.get("leaky_relu")(z), [[-0.4, 0, 3]])  # Keras's function default 0.2
    np.testing.assert_allclose(activations.get("sigmoid")(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(activations.get("tanh")(z), np.tanh(z))
    p = activations.get("softmax")(z)
    np.testing.assert_allclose(p, np.exp(z) / np.exp(z).sum())


def test_softmax_is_stable_for_huge_logits_and_keeps_float32():
    z = np.array([[1000.0, 0.0, -1000.0]], np.float32)
    p = activations.softmax(z)
    assert np.isfinite(p).all() and p.dtype == np.float32
    np.testing.assert_allclose(p, [[1, 0, 0]])


def test_none_means_linear_and_unknown_names_are_listed():
    assert isinstance(activations.get(None), activations.Linear)
    with pytest.raises(ValueError, match="softmax"):
        activations.get("softplus2")


def test_leaky_relu_has_one_slope_name_and_reads_old_configs():
    leaky = activations.LeakyReLU(negative_slope=0.1)
    assert leaky.negative_slope == leaky.alpha == 0.1                   # alpha: Keras 2's name, read only
    with pytest.raises(AttributeError):
        leaky.alpha = 0.5
    assert activations.serialize(leaky) == {"name": "leaky_relu", "negative_slope": 0.1}
    for config in ({"name": "leaky_relu", "negative_slope": 0.1}, {"name": "leaky_relu", "alpha": 0.1}):
        assert activations.get(config).negative_slope == 0.1
    with pytest.raises(ValueError, match="unknown activation"):
        activations.get({"name": "leaky_relu", "slope": 0.1})

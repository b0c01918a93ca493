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

"""gradcheck itself: it must catch a wrong backward pass and report clearly."""
import numpy as np
import pytest

from minicnn import gradcheck
from minicnn.layers import Dense


class WrongDense(Dense):
    """Dense whose input gradient forgets the transpose's scaling: a typical bug."""

    def backward_linear(self, dz):
        dx = super().backward_linear(dz)
        self.grads["bias"] = self.grads["bias"] * 2
        return dx * 1.01


def test_a_wrong_backward_is_caught(float64):
    x = np.random.default_rng(0).standard_normal((3, 4))
    errors = gradcheck.check_layer(WrongDense(2), x)
    assert errors["x"] > 1e-3 and errors["bias"] > 0.1 and errors["kernel"] < 1e-6


def test_print_table(float64, capsys):
    x = np.random.default_rng(0).standard_normal((3, 4))
    gradcheck.check_layer(WrongDense(2, name="wrong"), x, verbose=True)
    out = capsys.readouterr().out
    assert "wrong (WrongDense)" in out and "FAIL" in out and "kernel" in out


def test_float32_is_refused():
    with pytest.raises(TypeError, match="float64"):
        gradcheck.check_layer(Dense(2), np.zeros((2, 3), np.float32))


def test_numerical_gradient_of_a_known_function():
    a = np.array([1.0, 2.0, 3.0])
    grad = gradcheck.numerical_gradient(lambda: (a ** 3).sum(), a)
    np.testing.assert_allclose(grad, 3 * np.array([1.0, 2.0, 3.0]) ** 2, rtol=1e-8)

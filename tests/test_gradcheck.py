"""gradcheck itself: it must catch a wrong backward pass, say which layer it is in, and never pass
what it could not check (NaN, a nonsensical eps)."""
import re

import numpy as np
import pytest

from minicnn import activations, gradcheck, plan
from minicnn.layers import Conv2D, Dense, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential
from minicnn.utils import to_categorical


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


# --- nothing unfinite passes ------------------------------------------------------------------
class NaNDense(Dense):
    """A backward pass that returns NaN: its error is NaN, and NaN never passes."""

    def backward_linear(self, dz):
        return super().backward_linear(dz) * np.nan


def test_a_nan_gradient_is_a_failure(float64, capsys):
    x = np.random.default_rng(0).standard_normal((3, 4))
    errors = gradcheck.check_layer(NaNDense(2, name="nan_dense"), x, verbose=True)
    assert np.isnan(errors["x"]) and not gradcheck.passed(errors["x"])
    assert re.search(r"^x\s+nan\s+FAIL$", capsys.readouterr().out, flags=re.M)
    model = Sequential([Flatten(input_shape=(2, 2)), NaNDense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    errors = gradcheck.check_model(model, np.ones((2, 2, 2)), to_categorical([0, 1], 3))
    assert not gradcheck.passed(errors["x"])


@pytest.mark.parametrize("error, ok", [(0.0, True), (9e-7, True), (1e-6, False), (np.nan, False),
                                       (np.inf, False), (-np.inf, False)])
def test_passed_needs_a_finite_error_below_the_tolerance(error, ok):
    assert gradcheck.passed(error) is ok


@pytest.mark.parametrize("eps", [0, -1e-6, np.nan, np.inf, "x", None])
def test_a_nonsensical_eps_is_refused(float64, eps):
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(ValueError, match="eps"):
        gradcheck.check_layer(Dense(2), x, eps=eps)
    with pytest.raises(ValueError, match="finite number > 0"):
        gradcheck.numerical_gradient(lambda: x.sum(), x, eps=eps)


# --- which code is checked --------------------------------------------------------------------
def block_model(input_shape=(6, 6, 1)):
    """Conv2D -> LeakyReLU -> MaxPooling2D -> Dense softmax: fit fuses the first three into one step."""
    model = Sequential([Conv2D(3, 3, padding="same", input_shape=input_shape), LeakyReLU(alpha=0.1),
                        MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    return model


def batch(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 6, 6, 1)), to_categorical([0, 2], 3)


def failing_layers(errors_by_layer):
    """The names of the layers that fail in check_layers."""
    return [name for name, errors in errors_by_layer.items() if not all(map(gradcheck.passed, errors.values()))]


def identity_backward(self, dy, z, y):
    """LeakyReLU's backward with the derivative forgotten (the issue's example)."""
    return dy


@pytest.mark.parametrize("fused", [False, True])
def test_a_patched_class_backward_fails_check_model_fused_or_not(float64, monkeypatch, fused):
    model = block_model()
    x, y = batch()
    assert all(map(gradcheck.passed, gradcheck.check_model(model, x, y, fused=fused).values()))
    monkeypatch.setattr(activations.LeakyReLU, "backward", identity_backward)
    errors = gradcheck.check_model(model, x, y, fused=fused)
    assert errors["x"] > 1e-2 and errors[f"{model.layers[0].name}/kernel"] > 1e-2


def test_check_model_runs_layer_by_layer_unless_fused(float64, monkeypatch):
    """A wrong fused step (not a layer: the plan cannot see it) fails only check_model(fused=True)."""
    model = block_model()
    x, y = batch()
    backward = plan.ConvActivationPool.backward
    monkeypatch.setattr(plan.ConvActivationPool, "backward", lambda self, dy: 2 * backward(self, dy))
    assert all(map(gradcheck.passed, gradcheck.check_model(model, x, y).values()))
    errors = gradcheck.check_model(model, x, y, fused=True)
    assert not gradcheck.passed(errors["x"]) and gradcheck.passed(errors[f"{model.layers[0].name}/kernel"])
    assert model.fusion is True                       # the switch is put back


def test_check_layers_names_the_layer_whose_own_backward_is_wrong(float64):
    """With one layer's backward broken, check_model fails on every array before it; check_layers
    fails on that layer alone."""
    model = block_model()
    x, y = batch()
    conv, leaky, pool, flatten, dense = model.layers
    leaky.backward = lambda dy: dy                              # this object only
    whole = gradcheck.check_model(model, x, y)
    assert not gradcheck.passed(whole["x"]) and not gradcheck.passed(whole[f"{conv.name}/kernel"])
    assert gradcheck.passed(whole[f"{dense.name}/kernel"])
    own = gradcheck.check_layers(model, x, y)
    assert list(own) == [layer.name for layer in model.layers]
    assert failing_layers(own) == [leaky.name]
    assert set(own[conv.name]) == {"x", "kernel", "bias"} and set(own[leaky.name]) == {"x"}


def test_check_layers_checks_the_last_layer_as_the_model_runs_it(float64, monkeypatch):
    """The last layer runs as softmax + cross-entropy, its backward taking (p - y) / N: a wrong
    (p - y) / N is found there. A patched Softmax.backward is not skipped: the plan then runs it."""
    model = block_model()
    x, y = batch()
    assert failing_layers(gradcheck.check_layers(model, x, y)) == []
    monkeypatch.setattr(model.loss, "gradient_from_logits", lambda y_true, p: 2 * (p - y_true) / len(p))
    assert failing_layers(gradcheck.check_layers(model, x, y)) == [model.layers[-1].name]
    monkeypatch.undo()
    monkeypatch.setattr(activations.Softmax, "backward", lambda self, dy, z, y: dy)
    assert not any(isinstance(step, plan.SoftmaxCrossEntropy) for step in model.plan.steps)
    assert failing_layers(gradcheck.check_layers(model, x, y)) == [model.layers[-1].name]
    assert not gradcheck.passed(gradcheck.check_model(model, x, y)[f"{model.layers[-1].name}/kernel"])


def test_the_kink_radius_in_the_notes_is_the_codes():
    doc = " ".join(gradcheck.__doc__.split())
    radius = gradcheck.KINK_RADIUS
    assert f"KINK_RADIUS * eps = {radius} eps of 0" in doc
    assert f"2 * KINK_RADIUS * eps = {2 * radius} eps of each other" in doc
    find_kinks = " ".join(gradcheck.find_kinks.__doc__.split())
    assert "|z| < KINK_RADIUS * eps" in find_kinks and "2 * KINK_RADIUS * eps" in find_kinks


def test_an_array_feeds_a_kink_in_its_own_layer_or_a_later_one():
    model = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1), name="c"), LeakyReLU(name="l"), MaxPooling2D(name="p"),
                        Flatten(name="f"), Dense(3, activation="relu", name="d"), Dense(2, name="e")])
    kinks = {"p": gradcheck.Kink(1, 8, "near-ties")}
    assert gradcheck.feeds_a_kink(model, "x", kinks) and gradcheck.feeds_a_kink(model, "c/kernel", kinks)
    assert not gradcheck.feeds_a_kink(model, "d/kernel", kinks) and not gradcheck.feeds_a_kink(model, "e/bias", kinks)
    kinks = {"d": gradcheck.Kink(1, 6, "pre-activations")}       # Dense's own relu: its own arrays feed it
    assert gradcheck.feeds_a_kink(model, "d/bias", kinks) and not gradcheck.feeds_a_kink(model, "e/kernel", kinks)
    assert not gradcheck.feeds_a_kink(model, "c/kernel", {})

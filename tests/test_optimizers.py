"""Adam and SGD against values computed by hand from Keras's update rules."""
import math

import numpy as np
import pytest

from minicnn import optimizers


def run(optimizer, grads, start=1.0):
    param = np.array([start])
    for g in grads:
        optimizer.apply_gradients([(np.array([g]), param)])
    return param[0]


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    param, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate([0.5, -0.2], start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        param -= lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (math.sqrt(v) + eps)
    adam = optimizers.Adam(learning_rate=lr)
    assert run(adam, [0.5, -0.2]) == pytest.approx(param, rel=1e-12)
    assert adam.iterations == 2


def test_adam_first_step_moves_by_lr():
    # with bias correction the first step is lr * g / (|g| + eps): almost exactly lr
    assert run(optimizers.Adam(), [3.0]) == pytest.approx(1.0 - 0.001, rel=1e-6)


def test_adam_defaults_are_keras():
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)


def test_sgd_plain_momentum_nesterov_by_hand():
    assert run(optimizers.SGD(0.1), [2.0, 1.0]) == pytest.approx(1.0 - 0.2 - 0.1)
    # momentum: v = 0.9 v - lr g; p += v
    v1 = -0.2
    v2 = 0.9 * v1 - 0.1
    assert run(optimizers.SGD(0.1, momentum=0.9), [2.0, 1.0]) == pytest.approx(1.0 + v1 + v2)
    # nesterov: p += 0.9 v - lr g
    expected = 1.0 + (0.9 * v1 - 0.2) + (0.9 * v2 - 0.1)
    assert run(optimizers.SGD(0.1, momentum=0.9, nesterov=True), [2.0, 1.0]) == pytest.approx(expected)


def test_updates_happen_in_place_and_keep_dtype():
    param = np.ones(3, np.float32)
    same = param
    optimizers.Adam().apply_gradients([(np.ones(3, np.float32), param)])
    assert same is param and param.dtype == np.float32 and (param < 1).all()


def test_lookup_and_bad_hyperparameters():
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    with pytest.raises(ValueError, match="unknown optimizer 'ftrl'"):
        optimizers.get("ftrl")
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Adam(beta_1=1.0)
    assert optimizers.Adam(lr=0.01).learning_rate == 0.01  # the Keras 2 spelling

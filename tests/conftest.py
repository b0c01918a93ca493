"""Shared fixtures: float64 for gradient checks, a fresh seed for every test."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from minicnn import backend

# The float64 fixture only flips a global setting, so sharing it across hypothesis
# examples is safe; JIT compilation makes first examples slow, hence no deadline.
settings.register_profile("minicnn", suppress_health_check=[HealthCheck.function_scoped_fixture],
                          deadline=None)
settings.load_profile("minicnn")


@pytest.fixture
def float64():
    """Build layers and models in float64 for the duration of a test."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture(autouse=True)
def _seeded():
    backend.set_random_seed(1234)
    yield


def distinct_values(rng, shape):
    """Random values that are pairwise at least 0.01 apart: no ties, no kinks nearby."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * 0.01 + 0.003
    return values.reshape(shape)


def away_from_zero(rng, shape, gap=0.01):
    """Normal values pushed at least `gap` away from 0 (LeakyReLU's kink)."""
    values = rng.standard_normal(shape)
    return np.where(values >= 0, values + gap, values - gap)


def lab_model(dropout=False, input_shape=(28, 28, 1), num_classes=10):
    """The lab's baseline (356,234 parameters) or dropout model, compiled as the lab does."""
    from minicnn import losses, optimizers
    from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
    from minicnn.models import Sequential

    model = Sequential()
    model.add(Conv2D(32, kernel_size=(3, 3), activation="linear", input_shape=input_shape, padding="same"))
    model.add(LeakyReLU(alpha=0.1))
    model.add(MaxPooling2D((2, 2), padding="same"))
    if dropout:
        model.add(Dropout(0.25))
    model.add(Conv2D(64, (3, 3), activation="linear", padding="same"))
    model.add(LeakyReLU(alpha=0.1))
    model.add(MaxPooling2D(pool_size=(2, 2), padding="same"))
    if dropout:
        model.add(Dropout(0.25))
    model.add(Conv2D(128, (3, 3), activation="linear", padding="same"))
    model.add(LeakyReLU(alpha=0.1))
    model.add(MaxPooling2D(pool_size=(2, 2), padding="same"))
    if dropout:
        model.add(Dropout(0.4))
    model.add(Flatten())
    model.add(Dense(128, activation="linear"))
    model.add(LeakyReLU(alpha=0.1))
    if dropout:
        model.add(Dropout(0.3))
    model.add(Dense(num_classes, activation="softmax"))
    model.compile(loss=losses.categorical_crossentropy, optimizer=optimizers.Adam(), metrics=["accuracy"])
    return model


def toy_images(n=256, size=8, classes=3, seed=0):
    """A learnable toy problem: the class is where a bright square sits in the image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.uniform(0, 0.3, (n, size, size, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        column = label * (size // classes)
        x[i, 2:5, column:column + 2, 0] += 0.7
    return x, labels


def _fashion_mnist_found():
    from minicnn.datasets import fashion_mnist
    return fashion_mnist.find_data_dir() is not None


# Tests on the real data skip where it is not installed, except in CI (.ci/run sets
# MINICNN_REQUIRE_DATA=1 after installing it), where a missing dataset must fail loudly.
needs_fashion_mnist = pytest.mark.skipif(
    not os.environ.get("MINICNN_REQUIRE_DATA") and not _fashion_mnist_found(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist, or set MINICNN_DATA)")

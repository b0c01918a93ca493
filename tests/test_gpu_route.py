"""Whole training steps through the GPU kernels, on a machine without a GPU.

`kernels.use_kernels("gpu")` sends NumPy arrays through minicnn/kernels/gpu.py; where no
CUDA GPU is found, tests/conftest.py has set NUMBA_ENABLE_CUDASIM=1, so the CUDA kernels
and their launch code run in Numba's CUDA simulator. A small model with every layer kind
then trains step by step through them and must equal the reference kernels.
"""
import numpy as np
import pytest

from minicnn import backend, gradcheck, kernels
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential

gpu = pytest.importorskip("minicnn.kernels.gpu", reason="needs numba-cuda (pip install numba-cuda)")


def small_model(seed):
    """Conv2D -> LeakyReLU -> MaxPooling2D (fused), Conv2D(relu) -> BatchNormalization ->
    MaxPooling2D (overlapping, layer by layer), Dropout, Dense(softmax): tiny, for the simulator."""
    backend.set_random_seed(seed)
    model = Sequential([
        Conv2D(2, 3, padding="same", input_shape=(6, 6, 1)), LeakyReLU(alpha=0.1),
        MaxPooling2D(2, padding="same"),
        Conv2D(3, 2, activation="relu"), BatchNormalization(),
        MaxPooling2D(2, strides=1),
        Dropout(0.3), Flatten(), Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture
def kernels_chosen():
    """Put the kernel choice back after the test."""
    previous = kernels.kernel_choice()
    yield
    kernels.use_kernels(previous)


def train(choice, steps=3, seed=7):
    """A fresh small model trained `steps` batches with the kernels of `choice`; its weights and losses."""
    kernels.use_kernels(choice)
    model = small_model(seed)
    rng = np.random.default_rng(seed)
    x = rng.random((2, 6, 6, 1)).astype(np.float32)
    y = np.array([0, 2])
    backend.set_random_seed(seed)          # the same dropout masks for both runs
    losses = [model.train_on_batch(x, y)[0] for _ in range(steps)]
    return model.get_weights(), losses, model


def test_the_gpu_route_really_runs_gpu_py(kernels_chosen):
    kernels.use_kernels("gpu")
    assert kernels.implementation(np.zeros(1)) is gpu


def test_training_steps_through_the_gpu_kernels_equal_the_reference(kernels_chosen):
    weights_gpu, losses_gpu, model = train("gpu")
    assert [step.name.count("+") for step in model.plan.steps][:1] == [2]   # the fused step ran too
    weights_ref, losses_ref, _ = train("reference")
    np.testing.assert_allclose(losses_gpu, losses_ref, rtol=1e-6)
    for got, want in zip(weights_gpu, weights_ref):
        # float32: the bias sums add in another order, a last-bit difference at most per step
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_fit_evaluate_predict_through_the_gpu_kernels(kernels_chosen):
    kernels.use_kernels("gpu")
    model = small_model(3)
    rng = np.random.default_rng(3)
    x, y = rng.random((4, 6, 6, 1)), rng.integers(0, 3, 4)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    kernels.use_kernels("reference")
    expected = model.predict(x, verbose=0)
    kernels.use_kernels("gpu")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-7)


def test_a_gradient_check_passes_through_the_gpu_kernels(kernels_chosen, float64):
    kernels.use_kernels("gpu")
    model = small_model(11)
    rng = np.random.default_rng(11)
    x = rng.random((2, 6, 6, 1))
    y = np.array([1, 0])
    gradcheck.fix_dropout_masks(model, x.shape, rng)
    errors = gradcheck.check_model(model, x, y, max_elements=2, seed=11)   # the simulator is slow
    assert all(gradcheck.passed(error, 1e-6) for error in errors.values()), errors   # NaN never passes

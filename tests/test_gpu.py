"""On a real CUDA GPU: CuPy arrays, device moves, GPU kernels on CuPy, training on CPU and
GPU agreeing, gradient checks on the GPU. Every test here is marked `gpu` and skips,
with its reason shown, where CuPy or a GPU is missing (pytest -ra lists the skips).
Machines without a GPU test the GPU kernels in Numba's CUDA simulator instead
(tests/test_kernels_gpu.py, tests/test_gpu_route.py).
"""
import numpy as np
import pytest

from minicnn import backend, gradcheck, kernels
from minicnn.kernels import Window, reference
from minicnn.lab import lab_model
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential, load_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU; none found here")]

# float32 on two devices: the same maths in another order (cuBLAS vs OpenBLAS, fused
# multiply-adds), so results agree to a few float32 ulps per step, not bit for bit.
FLOAT32 = {"rtol": 2e-4, "atol": 2e-5}


def cupy():
    return backend.cupy


def small_model(seed, dropout=False):
    backend.set_random_seed(seed)
    layers = [Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), LeakyReLU(alpha=0.1),
              MaxPooling2D(2, padding="same"), Conv2D(6, 3, activation="relu"), BatchNormalization(),
              MaxPooling2D(2, strides=1), Flatten()]
    if dropout:
        layers.append(Dropout(0.3))
    layers.append(Dense(3, activation="softmax"))
    model = Sequential(layers)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype(np.float32), rng.integers(0, 3, n)


def test_to_gpu_and_back_moves_every_array():
    model = small_model(1)
    model.to("gpu")
    assert all(backend.is_gpu_array(w) for layer in model.layers for w in layer.weights)
    model.to("cpu")
    assert not any(backend.is_gpu_array(w) for layer in model.layers for w in layer.weights)


def test_training_steps_on_cpu_and_gpu_agree():
    x, y = data()
    cpu_model, gpu_model = small_model(2), small_model(2).to("gpu")
    for start in range(0, 16, 4):
        cpu_loss = cpu_model.train_on_batch(x[start:start + 4], y[start:start + 4])[0]
        gpu_loss = gpu_model.train_on_batch(x[start:start + 4], y[start:start + 4])[0]
        assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for got, want in zip(gpu_model.get_weights(), cpu_model.get_weights()):
        np.testing.assert_allclose(got, want, **FLOAT32)


def test_fit_evaluate_predict_take_numpy_and_give_numpy():
    x, y = data(64)
    model = small_model(3).to("gpu")
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    assert len(history.history["val_loss"]) == 2
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
    predictions = model.predict(x, verbose=0)
    assert isinstance(predictions, np.ndarray) and predictions.shape == (64, 3)


def test_the_lab_model_predicts_the_same_on_both_devices():
    model = lab_model()
    x = np.random.default_rng(4).random((8, 28, 28, 1)).astype(np.float32)
    on_cpu = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.to("gpu").predict(x, verbose=0), on_cpu, **FLOAT32)


def test_save_a_gpu_model_and_load_it(tmp_path):
    x, y = data()
    model = small_model(5).to("gpu")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m.h5py")
    loaded = load_model(tmp_path / "m.h5py")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), **FLOAT32)


def test_numpy_meets_cupy_gives_a_clear_error():
    model = small_model(6).to("gpu")
    with pytest.raises(TypeError, match="on the GPU and expects a CuPy"):
        model.forward(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(TypeError, match="mix of NumPy"):
        backend.get_array_module(np.zeros(1), cupy().zeros(1))


def test_dropout_on_the_gpu_drops_and_rescales():
    layer = Dropout(0.25)
    x = cupy().ones((200, 100), dtype=np.float32)
    y = backend.to_numpy(layer.forward(x, training=True))
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernels_on_cupy_equal_the_reference(dtype):
    gpu = pytest.importorskip("minicnn.kernels.gpu", reason="needs numba-cuda")
    rng = np.random.default_rng(7)
    x = rng.integers(-3, 4, (3, 9, 7, 5)).astype(dtype)          # small integers: many ties
    for size, strides, padding in [((3, 3), (1, 1), "same"), ((2, 2), (2, 2), "same"), ((3, 2), (2, 1), "valid")]:
        window = Window.over(x.shape[1:3], size, strides, padding)
        xg = cupy().asarray(x)
        np.testing.assert_array_equal(backend.to_numpy(gpu.im2col(xg, window)), reference.im2col(x, window))
        col = reference.im2col(x, window)
        np.testing.assert_array_equal(backend.to_numpy(gpu.col2im(cupy().asarray(col), window)),
                                      reference.col2im(col, window))
        y, argmax = gpu.maxpool_forward(xg, window)
        y_ref, argmax_ref = reference.maxpool_forward(x, window)
        np.testing.assert_array_equal(backend.to_numpy(y), y_ref)
        np.testing.assert_array_equal(backend.to_numpy(argmax), argmax_ref)
        np.testing.assert_array_equal(backend.to_numpy(gpu.maxpool_backward(y, argmax, window)),
                                      reference.maxpool_backward(y_ref, argmax_ref, window))


def test_a_gradient_check_on_the_gpu(float64):
    model = small_model(8, dropout=True).to("gpu")
    rng = np.random.default_rng(8)
    x, y = rng.random((2, 8, 8, 1)), np.array([0, 2])
    gradcheck.fix_dropout_masks(model, x.shape, rng)
    for layer in model.layers:
        if layer.__class__ is Dropout:
            layer.fixed_mask = cupy().asarray(layer.fixed_mask)
    xb, yb = model.prepare_batch(x, y)
    errors = gradcheck.check_model(model, xb, yb, max_elements=5, seed=8)
    assert all(gradcheck.passed(error, 1e-6) for error in errors.values()), errors   # NaN never passes


def test_the_kernels_dispatch_cupy_arrays_to_gpu_py():
    gpu = pytest.importorskip("minicnn.kernels.gpu", reason="needs numba-cuda")
    assert kernels.implementation(cupy().zeros(1)) is gpu

"""The array backend: floatx, device names, random seeds, NumPy/CuPy mixing."""
import numpy as np
import pytest

from minicnn import backend
from minicnn.layers import Dense
from minicnn.utils import to_categorical


def test_floatx_switch_and_validation(float64):
    assert backend.floatx() == "float64"
    assert Dense(2)(np.zeros((1, 3))).dtype == np.float64
    with pytest.raises(ValueError, match="float16"):
        backend.set_floatx("float16")


def test_layers_keep_float32_by_default():
    assert backend.floatx() == "float32"
    layer = Dense(2)
    assert layer(np.zeros((1, 3), np.float32)).dtype == np.float32


def test_cpu_arrays_use_numpy_and_device_names_are_checked():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.check_device("CPU") == "cpu"
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        backend.check_device("tpu")
    if not backend.gpu_available():
        with pytest.raises(RuntimeError, match="CuPy"):
            backend.check_device("gpu")


def test_seed_makes_weights_reproducible():
    backend.set_random_seed(3)
    a = Dense(4)
    a.build((None, 5))
    backend.set_random_seed(3)
    b = Dense(4)
    b.build((None, 5))
    np.testing.assert_array_equal(a.params["kernel"], b.params["kernel"])


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([2, 0]), [[0, 0, 1], [1, 0, 0]])
    assert to_categorical(np.array([9, 0], np.uint8)).shape == (2, 10)
    assert to_categorical([1], num_classes=4).dtype == np.float32
    with pytest.raises(ValueError, match="num_classes"):
        to_categorical([5], num_classes=3)
    with pytest.raises(ValueError, match="integer"):
        to_categorical([0.5])

"""BatchNormalization: training and inference, gradients, moving statistics, Keras order."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minicnn import gradcheck
from minicnn.layers.normalization import BatchNormalization


@settings(max_examples=30)
@given(st.sampled_from([(4, 3), (2, 3, 3, 2), (3, 5, 4, 1)]), st.booleans(), st.booleans(), st.integers(0, 999))
def test_gradients_in_training_and_inference(float64, shape, training, scale, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3 + 1
    layer = BatchNormalization(scale=scale)
    layer.build((None,) + shape[1:])
    if scale:
        layer.params["gamma"][...] = rng.uniform(0.5, 2, shape[-1])
    layer.params["beta"][...] = rng.standard_normal(shape[-1])
    layer.state["moving_variance"][...] = rng.uniform(0.5, 2, shape[-1])
    errors = gradcheck.check_layer(layer, x, training=training)
    assert all(gradcheck.passed(error, 1e-6) for error in errors.values()), errors   # NaN never passes


def test_training_normalises_and_updates_moving_statistics():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 5)) * 4 + 2).astype(np.float32)
    layer = BatchNormalization()
    y = layer(x, training=True)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), x.var(axis=0) / (x.var(axis=0) + 1e-3), rtol=1e-4)
    # Keras: moving = 0.99 * moving + 0.01 * batch statistic (biased variance)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.01 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.99 + 0.01 * x.var(axis=0), rtol=1e-5)


def test_inference_uses_moving_statistics():
    layer = BatchNormalization(epsilon=0.0001)
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    layer.build((None, 2))
    layer.set_weights([np.array([2.0, 1.0]), np.array([0.5, 0.0]),
                       np.array([1.0, 2.0]), np.array([4.0, 16.0])])
    expected = 2 * (x[:, :1] - 1) / np.sqrt(4.0001) + 0.5, (x[:, 1:] - 2) / np.sqrt(16.0001)
    np.testing.assert_allclose(layer(x), np.hstack(expected), rtol=1e-6)


def test_weights_in_keras_order():
    layer = BatchNormalization()
    layer.build((None, 4, 4, 8))
    assert list(layer.params) == ["gamma", "beta"] and list(layer.state) == ["moving_mean", "moving_variance"]
    assert [w.shape for w in layer.get_weights()] == [(8,)] * 4
    assert layer.count_params() == 32


@pytest.mark.parametrize("kwargs", [{"momentum": 1.5}, {"epsilon": 0}, {"axis": 0}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="BatchNormalization"):
        BatchNormalization(**kwargs)

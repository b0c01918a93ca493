"""Cross-entropy losses: values, stability, gradients, the fused softmax gradient."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minicnn import gradcheck, losses
from minicnn.activations import softmax


def test_values_against_hand_computation():
    y = np.array([[0, 1, 0], [1, 0, 0]], np.float32)
    p = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]], np.float32)
    expected = -(np.log(0.7) + np.log(0.5)) / 2
    assert losses.CategoricalCrossentropy()(y, p) == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p), [-np.log(0.7), -np.log(0.5)], rtol=1e-6)
    assert losses.SparseCategoricalCrossentropy()(np.array([1, 0]), p) == pytest.approx(expected, rel=1e-6)


def test_clipping_keeps_the_loss_finite():
    y = np.array([[1.0, 0.0]])
    loss = losses.CategoricalCrossentropy()(y, np.array([[0.0, 1.0]]))
    assert loss == pytest.approx(-np.log(losses.EPSILON))
    assert np.isfinite(losses.CategoricalCrossentropy().gradient(y, np.array([[0.0, 1.0]]))).all()


def test_from_logits_is_stable_for_huge_logits():
    y = np.array([[0.0, 1.0]])
    z = np.array([[800.0, -800.0]])
    assert losses.CategoricalCrossentropy().forward_from_logits(y, z) == pytest.approx(1600.0)


@settings(max_examples=30)
@given(st.integers(1, 6), st.integers(2, 6), st.integers(0, 999))
def test_gradients(n, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    one_hot = np.eye(k)[labels]
    p = softmax(rng.standard_normal((n, k)))
    z = rng.standard_normal((n, k)) * 3
    for loss, y in ((losses.CategoricalCrossentropy(), one_hot), (losses.SparseCategoricalCrossentropy(), labels)):
        assert gradcheck.check_loss(loss, y, p)["y_pred"] < 1e-6
        assert gradcheck.check_loss(loss, y, z, from_logits=True)["y_pred"] < 1e-6


def test_fused_gradient_is_p_minus_y_over_n():
    y = np.array([[0, 1, 0], [0, 0, 1]], np.float64)
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = softmax(z)
    np.testing.assert_allclose(losses.CategoricalCrossentropy().gradient_from_logits(y, p), (p - y) / 2)


def test_lookup_by_name_function_or_object():
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    assert isinstance(losses.get(losses.categorical_crossentropy), losses.CategoricalCrossentropy)
    assert isinstance(losses.get(losses.sparse_categorical_crossentropy), losses.SparseCategoricalCrossentropy)
    with pytest.raises(ValueError, match="categorical_crossentropy"):
        losses.get("hinge")

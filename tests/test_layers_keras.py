"""The layers, activations, initializers and regularizers Keras tutorials use (issue 18):
Softmax, ELU, PReLU, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, Reshape,
Rescaling; 'elu', 'selu', 'lecun_normal'; kernel_regularizer / bias_regularizer; and the errors
for Keras arguments minicnn does not support."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import away_from_zero, distinct_values, window_cases
from minicnn import activations, gradcheck, initializers, regularizers
from minicnn.layers import (ELU, Activation, AveragePooling2D, AvgPool2D, Conv2D, Dense, Flatten,
                            GlobalAveragePooling2D, GlobalAvgPool2D, GlobalMaxPool2D, GlobalMaxPooling2D,
                            MaxPooling2D, PReLU, Rescaling, Reshape, Softmax)
from minicnn.layers.base import reset_names
from minicnn.losses import CategoricalCrossentropy
from minicnn.models import Input, Sequential, load_model
from minicnn.plan import ConvActivationPool, SoftmaxCrossEntropy, make_plan

TOLERANCE = 1e-6
README = "see the Keras compatibility table in README.md"


def passes(errors):
    return all(gradcheck.passed(error, TOLERANCE) for error in errors.values())   # NaN never passes


# --- activations: elu, selu ---------------------------------------------------------------------
def test_elu_and_selu_values_are_keras():
    z = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_allclose(activations.elu(z), [[np.exp(-1) - 1, 0.0, 2.0]])
    np.testing.assert_allclose(activations.elu(z, alpha=0.5), [[0.5 * (np.exp(-1) - 1), 0.0, 2.0]])
    # tf.keras.activations.selu([-1., 0., 2.]) = [-1.1113307, 0., 2.101402]
    np.testing.assert_allclose(activations.selu(z), [[-1.1113307378125628, 0.0, 2.1014019747109609]], rtol=1e-12)
    assert activations.SELU.ALPHA == pytest.approx(1.6732632423543772)
    assert activations.SELU.SCALE == pytest.approx(1.0507009873554805)
    big = np.array([[1000.0, -1000.0]], np.float32)     # no overflow, no float64
    y = activations.selu(big)
    assert np.isfinite(y).all() and y.dtype == np.float32
    np.testing.assert_allclose(y, [[1050.7009873554805, -1.0507009873554805 * 1.6732632423543772]], rtol=1e-6)


@settings(max_examples=20)
@given(st.sampled_from([(3, 4), (2, 3, 3, 2)]), st.integers(0, 999))
def test_elu_selu_gradients(float64, shape, seed):
    x = away_from_zero(np.random.default_rng(seed), shape)
    for layer in (Activation("elu"), Activation("selu"), ELU(alpha=0.5), Activation(activations.ELU(2.0))):
        errors = gradcheck.check_layer(layer, x)
        assert passes(errors), (layer, errors)


def test_elu_selu_are_names_and_serialize():
    assert isinstance(activations.get("elu"), activations.ELU) and activations.get("elu").alpha == 1.0
    assert type(activations.get("selu")) is activations.SELU
    assert activations.serialize(activations.get("selu")) == "selu"
    assert activations.serialize(activations.ELU()) == "elu"
    assert activations.serialize(activations.ELU(0.5)) == {"name": "elu", "alpha": 0.5}
    assert activations.get({"name": "elu", "alpha": 0.5}).alpha == 0.5
    with pytest.raises(ValueError, match="unknown activation"):
        activations.get({"name": "elu", "alpha": -1})
    with pytest.raises(ValueError, match="alpha"):
        ELU(alpha=float("nan"))


def test_activation_functions_on_a_functional_tensor_become_layers():
    inputs = Input((4,))
    x = activations.selu(Dense(3)(inputs))
    assert x.shape == (None, 3)
    assert isinstance(x.layer, Activation) and x.layer.activation.name == "selu"


# --- initializers: lecun_normal, lecun_uniform, he_uniform -----------------------------------------
def test_lecun_initializers_have_keras_scales():
    fan_in = 400
    w = initializers.get("lecun_normal")((fan_in, 300))
    std = np.sqrt(1 / fan_in)
    assert w.dtype == np.float32
    assert abs(w.std() - std) < 0.02 * std                        # truncated, then rescaled to std
    assert np.abs(w).max() <= 2 * std / initializers.TRUNCATED_NORMAL_STD + 1e-7
    u = initializers.get("lecun_uniform")((fan_in, 300))
    assert np.abs(u).max() <= np.sqrt(3 / fan_in) and abs(u.std() - std) < 0.02 * std
    h = initializers.get("he_uniform")((fan_in, 300))
    assert np.abs(h).max() <= np.sqrt(6 / fan_in) and abs(h.std() - np.sqrt(2 / fan_in)) < 0.02 * np.sqrt(2 / fan_in)
    kernel = initializers.lecun_normal((3, 3, 8, 4))              # conv: fan_in = 3 * 3 * 8
    assert abs(kernel.std() - np.sqrt(1 / 72)) < 0.15 * np.sqrt(1 / 72)
    assert initializers.serialize(initializers.lecun_normal) == "lecun_normal"


# --- Softmax, PReLU ---------------------------------------------------------------------------------
def test_softmax_layer_is_activation_softmax_and_fuses_with_cross_entropy(float64):
    x = away_from_zero(np.random.default_rng(0), (3, 5))
    np.testing.assert_allclose(Softmax()(x), Activation("softmax")(x))
    assert passes(gradcheck.check_layer(Softmax(), x))
    layers = [Dense(4, input_shape=(5,)), Softmax()]
    plan = make_plan(layers, CategoricalCrossentropy())
    assert isinstance(plan.steps[-1], SoftmaxCrossEntropy)
    assert Softmax(axis=1).compute_output_shape((None, 5)) == (None, 5)
    Softmax(axis=1).build((None, 5))
    with pytest.raises(ValueError, match="last axis"):
        Softmax(axis=1).build((None, 4, 5))


@pytest.mark.parametrize("shared_axes, alpha_shape", [(None, (4, 4, 3)), ([1, 2], (1, 1, 3)), (3, (4, 4, 1))])
def test_prelu_gradients_and_alpha_shape(float64, shared_axes, alpha_shape):
    rng = np.random.default_rng(1)
    x = away_from_zero(rng, (2, 4, 4, 3))
    layer = PReLU(shared_axes=shared_axes)
    layer.build((None, 4, 4, 3))
    assert layer.params["alpha"].shape == alpha_shape
    np.testing.assert_array_equal(layer(x), np.maximum(x, 0))     # alpha starts at 0: a ReLU
    layer.params["alpha"][...] = rng.uniform(0.1, 0.5, alpha_shape)
    np.testing.assert_allclose(layer(x), np.where(x > 0, x, layer.params["alpha"] * x))
    errors = gradcheck.check_layer(layer, x)
    assert set(errors) == {"x", "alpha"} and passes(errors), errors


def test_prelu_refuses_bad_shared_axes():
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[0])
    with pytest.raises(ValueError, match="shared axis 4"):
        PReLU(shared_axes=[4]).build((None, 4, 4, 3))
    assert PReLU().name.startswith("p_re_lu")                     # Keras's name


# --- pooling ----------------------------------------------------------------------------------------
def naive_average_pool(x, window):
    """The mean of the real cells of each window: a loop over output cells, clipping at the edges."""
    n, h, w, c = x.shape
    y = np.empty((n, window.oh, window.ow, c))
    for a in range(window.oh):
        for b in range(window.ow):
            top, left = a * window.sh - window.top, b * window.sw - window.left
            rows = slice(max(top, 0), min(top + window.kh, h))
            columns = slice(max(left, 0), min(left + window.kw, w))
            y[:, a, b, :] = x[:, rows, columns, :].mean(axis=(1, 2))
    return y


def average_pool_for(window):
    padding = "valid" if window.pads == (0, 0, 0, 0) else "same"   # 'same' with no pads is 'valid'
    return AveragePooling2D(window.size, strides=window.strides, padding=padding)


@settings(max_examples=40)
@given(window_cases())
def test_average_pooling_matches_plain_loops(float64, case):
    x, window = case
    layer = average_pool_for(window)
    y = layer(x)
    assert layer.window == window
    assert y.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(y, naive_average_pool(x, window), rtol=1e-12, atol=1e-12)


@settings(max_examples=30)
@given(window_cases(max_side=6, max_batch=2, max_channels=2))
def test_average_pooling_gradients(float64, case):
    x, window = case
    assert passes(gradcheck.check_layer(average_pool_for(window), x))


def test_same_average_pooling_divides_by_the_real_cells():
    x = np.arange(49, dtype=np.float32).reshape(1, 7, 7, 1)
    layer = AvgPool2D(2, padding="same")
    y = layer(x)
    assert y.shape == (1, 4, 4, 1) and y.dtype == np.float32
    assert y[0, 3, 3, 0] == 48                                    # the corner: one real cell
    assert y[0, 0, 3, 0] == (6 + 13) / 2                          # the right edge: two
    assert y[0, 0, 0, 0] == (0 + 1 + 7 + 8) / 4
    dx = layer.backward(np.ones_like(y))
    assert dx[0, 6, 6, 0] == 1 and dx[0, 0, 6, 0] == 0.5 and dx[0, 0, 0, 0] == 0.25
    assert AveragePooling2D().strides == (2, 2) and AveragePooling2D().padding == "valid"
    with pytest.raises(ValueError, match="AveragePooling2D"):
        AveragePooling2D(0)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_gradients_and_shapes(float64, keepdims):
    x = distinct_values(np.random.default_rng(2), (2, 3, 4, 5))  # no ties: the max is differentiable
    for layer, reduce in ((GlobalAveragePooling2D(keepdims=keepdims), np.mean),
                          (GlobalMaxPooling2D(keepdims=keepdims), np.max)):
        y = layer(x)
        np.testing.assert_allclose(y, reduce(x, axis=(1, 2), keepdims=keepdims))
        assert y.shape == layer.compute_output_shape(x.shape) == ((2, 1, 1, 5) if keepdims else (2, 5))
        assert passes(gradcheck.check_layer(layer, x)), layer


def test_global_max_pooling_gives_a_tie_to_the_first_cell():
    layer = GlobalMaxPool2D()
    layer(np.full((1, 2, 2, 1), 3.0))
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1))).ravel(), [1, 0, 0, 0])
    assert GlobalAvgPool2D is GlobalAveragePooling2D
    assert GlobalAveragePooling2D().name.startswith("global_average_pooling2d")
    with pytest.raises(ValueError, match="rank 4"):
        GlobalAveragePooling2D()(np.zeros((2, 3)))


# --- Reshape, Rescaling -------------------------------------------------------------------------------
def test_reshape_resolves_minus_one_and_gradients(float64):
    x = np.random.default_rng(3).standard_normal((2, 4, 6))
    layer = Reshape((-1, 3))
    assert layer.compute_output_shape((None, 4, 6)) == (None, 8, 3)
    np.testing.assert_array_equal(layer(x), x.reshape(2, 8, 3))
    assert passes(gradcheck.check_layer(Reshape((3, 8)), x))
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((5, -1)).build((None, 4, 6))
    with pytest.raises(ValueError, match="cannot reshape"):
        Reshape((5, 5)).build((None, 4, 6))
    for bad in [(-1, -1), (0, 3), "3", (2.0,), ()]:
        with pytest.raises(ValueError, match="target_shape"):
            Reshape(bad)


def test_rescaling_values_and_gradients(float64):
    x = np.array([[0, 51, 255]], np.uint8)
    y = Rescaling(1 / 127.5, offset=-1)(x)
    assert y.dtype == np.float64                                  # floatx (float64 in this test), never more
    np.testing.assert_allclose(y, [[-1.0, -0.6, 1.0]])
    layer = Rescaling(0.5, offset=3.0)
    assert passes(gradcheck.check_layer(layer, np.random.default_rng(4).standard_normal((2, 3))))
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3))), np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="scale"):
        Rescaling("1/255")


# --- regularizers --------------------------------------------------------------------------------------
def test_regularizer_penalties_and_gradients_by_hand():
    w = np.array([[1.0, -2.0], [3.0, 0.0]])
    assert regularizers.L2(0.1)(w) == pytest.approx(0.1 * 14)
    np.testing.assert_allclose(regularizers.L2(0.1).gradient(w), 0.2 * w)
    assert regularizers.L1(0.1)(w) == pytest.approx(0.1 * 6)
    np.testing.assert_allclose(regularizers.L1(0.1).gradient(w), [[0.1, -0.1], [0.1, 0.0]])
    both = regularizers.l1_l2(l1=0.1, l2=0.01)
    assert both(w) == pytest.approx(0.6 + 0.14)
    np.testing.assert_allclose(both.gradient(w), [[0.12, -0.14], [0.16, 0.0]])
    assert isinstance(both(w), float)
    assert regularizers.L2(0.1).gradient(w.astype(np.float32)).dtype == np.float32


def test_regularizer_defaults_names_and_configs():
    assert regularizers.l2().l2 == regularizers.get("l2").l2 == 0.01
    assert regularizers.l1().l1 == regularizers.get("l1").l1 == 0.01
    assert regularizers.l1_l2().get_config() == regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}   # Keras's class defaults
    assert regularizers.get(None) is None
    for regularizer in (regularizers.l1(0.3), regularizers.l2(0.2), regularizers.l1_l2(0.1, 0.2)):
        rebuilt = regularizers.get(regularizers.serialize(regularizer))
        assert type(rebuilt) is type(regularizer) and rebuilt.get_config() == regularizer.get_config()
    with pytest.raises(ValueError, match="l2"):
        regularizers.l2(-0.1)
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.get("l3")
    with pytest.raises(TypeError, match="gradient"):
        regularizers.get(lambda w: 0.01 * (w ** 2).sum())


def regularized_gradient_check(layer, x, rng):
    """L = sum(layer(x) * R) + layer.regularization_loss(): its gradient against central differences."""
    r = rng.standard_normal(layer.compute_output_shape(x.shape))

    def loss():
        return float((layer.forward(x, training=True) * r).sum()) + layer.regularization_loss()

    layer.forward(x, training=True)
    dx = layer.backward(r)
    analytic = {"x": dx, **{key: grad.copy() for key, grad in layer.grads.items()}}
    for name, array in {"x": x, **layer.params}.items():
        numeric = gradcheck.numerical_gradient(loss, array).reshape(array.shape)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("make", [
    lambda: Dense(3, activation="tanh", kernel_regularizer=regularizers.l2(0.3), bias_regularizer="l1"),
    lambda: Dense(3, kernel_regularizer=regularizers.l1_l2(0.2, 0.1)),
    lambda: Conv2D(2, 3, padding="same", activation="tanh", kernel_regularizer=regularizers.l2(0.3),
                   bias_regularizer=regularizers.l1_l2(0.1, 0.2)),
    lambda: PReLU(alpha_regularizer=regularizers.l2(0.5)),
])
def test_regularized_layers_gradients_include_the_penalty(float64, make):
    rng = np.random.default_rng(5)
    layer = make()
    x = away_from_zero(rng, (2, 5) if isinstance(layer, Dense) else (2, 4, 4, 3)) * 0.5
    layer.build((None,) + x.shape[1:])
    for key, w in layer.params.items():                            # weights away from L1's kink at 0
        w[...] = away_from_zero(rng, w.shape, gap=0.05) * 0.5
    assert layer.regularization_loss() > 0
    regularized_gradient_check(layer, x, rng)


def test_regularization_loss_by_hand():
    layer = Dense(2, kernel_regularizer=regularizers.l2(0.1), bias_regularizer=regularizers.l1(0.5))
    layer.build((None, 2))
    layer.set_weights([np.array([[1.0, 2.0], [0.0, -1.0]]), np.array([-3.0, 1.0])])
    assert layer.regularization_loss() == pytest.approx(0.1 * 6 + 0.5 * 4)
    assert isinstance(layer.regularization_loss(), float)
    assert Dense(2).regularization_loss() == 0.0 and Flatten().regularization_loss() == 0.0
    layer.trainable = False                                        # frozen: no penalty (Keras 3)
    assert layer.regularization_loss() == 0.0
    conv = Conv2D(1, 1, kernel_regularizer="l2", use_bias=False)
    conv.build((None, 2, 2, 1))
    conv.set_weights([np.full((1, 1, 1, 1), 3.0)])
    assert conv.regularization_loss() == pytest.approx(0.01 * 9)


def test_fused_and_layer_by_layer_conv_agree_with_regularizers():
    """The fused Conv2D -> ReLU -> MaxPooling2D step adds the penalties' gradients as Conv2D's own backward does."""
    rng = np.random.default_rng(6)
    model = Sequential([Conv2D(3, 3, activation="relu", kernel_regularizer=regularizers.l2(0.5),
                               bias_regularizer=regularizers.l1(0.2), input_shape=(6, 6, 1)),
                        MaxPooling2D(2), Flatten(), Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.layers[0].set_weights([rng.standard_normal((3, 3, 1, 3)).astype(np.float32),
                                 np.array([0.3, -0.2, 0.1], np.float32)])
    x = rng.standard_normal((4, 6, 6, 1)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
    grads = {}
    for fusion in (True, False):
        model.fusion = fusion
        assert isinstance(model.plan.steps[0], ConvActivationPool) == fusion
        model.compute_gradients(x, y)
        grads[fusion] = {key: g.copy() for key, g in model.layers[0].grads.items()}
    for key in ("kernel", "bias"):
        np.testing.assert_allclose(grads[True][key], grads[False][key], rtol=1e-5, atol=1e-6)
    # the penalty's share is there: bias gradient minus the data's share is 0.2 * sign(bias)
    model.layers[0].bias_regularizer = None
    model.compute_gradients(x, y)
    np.testing.assert_allclose(grads[False]["bias"] - model.layers[0].grads["bias"], [0.2, -0.2, 0.2], rtol=1e-5)


# --- save and load -------------------------------------------------------------------------------------
def test_save_load_round_trip_with_the_new_layers(tmp_path):
    model = Sequential([
        Rescaling(1 / 255, input_shape=(8, 8, 1)),
        Conv2D(4, 3, padding="same", kernel_initializer="lecun_normal", kernel_regularizer=regularizers.l2(1e-3)),
        PReLU(alpha_initializer="he_uniform", shared_axes=[1, 2]),
        AveragePooling2D(3, strides=2, padding="same"),               # (4, 4, 4)
        Reshape((2, 2, 16)),
        GlobalAveragePooling2D(keepdims=True), GlobalMaxPooling2D(),  # (1, 1, 16), then (16,)
        Dense(8, activation="selu", kernel_initializer="lecun_uniform",
              bias_regularizer=regularizers.l1_l2(0.01, 0.02)),
        ELU(alpha=0.5), Dense(3, activation=activations.ELU(0.3)), Softmax(),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 255, (5, 8, 8, 1)).astype(np.float32)
    model.fit(x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]], epochs=1, verbose=0)
    path = tmp_path / "keras_layers.zip"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for a, b in zip(model.layers, loaded.layers):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    assert loaded.layers[1].kernel_regularizer.l2 == 1e-3
    assert loaded.layers[1].regularization_loss() == model.layers[1].regularization_loss() > 0


# --- Keras arguments minicnn does not support -------------------------------------------------------
def test_a_keras_argument_minicnn_lacks_is_named_with_the_layer():
    with pytest.raises(TypeError) as error:
        Dense(10, kernel_constraint="max_norm")
    assert str(error.value) == f"minicnn does not support the argument 'kernel_constraint' (in Dense); {README}"
    with pytest.raises(TypeError, match=r"'activity_regularizer' \(in Conv2D\)"):
        Conv2D(2, 3, activity_regularizer="l2")
    with pytest.raises(TypeError, match=r"'groups' \(in Conv2D\) other than groups=1 \(got 2\)"):
        Conv2D(2, 3, groups=2)
    with pytest.raises(TypeError, match=r"'data_format' \(in Flatten\) other than data_format='channels_last'"):
        Flatten(data_format="channels_first")
    with pytest.raises(TypeError, match=r"'autocast' \(in GlobalAveragePooling2D\)"):
        GlobalAveragePooling2D(autocast=False)


def test_a_typo_is_refused_as_python_would():
    with pytest.raises(TypeError) as error:
        Dense(10, unitz=3)
    assert str(error.value) == "Dense got an unexpected keyword argument 'unitz'"
    with pytest.raises(TypeError, match="AveragePooling2D got an unexpected keyword argument 'pool'"):
        AveragePooling2D(pool=2)


def test_keras_arguments_at_their_defaults_are_accepted():
    Dense(3, kernel_constraint=None, bias_constraint=None, activity_regularizer=None, autocast=True)
    Conv2D(2, 3, groups=1, dilation_rate=1, data_format="channels_last")
    Flatten(data_format="channels_last")
    assert Dense(3, input_dim=5).declared_input_shape == (None, 5)   # Keras 2's input_dim
    with pytest.raises(ValueError, match="not both"):
        Dense(3, input_dim=5, input_shape=(4,))
    with pytest.raises(ValueError, match="input_dim must be an int >= 1, got 0"):
        Dense(3, input_dim=0)


def test_a_refused_argument_uses_no_layer_name():
    reset_names()
    assert Dense(2).name == "dense"
    with pytest.raises(TypeError):
        Dense(2, kernel_constraint="unit_norm")
    assert Dense(2).name == "dense_1"

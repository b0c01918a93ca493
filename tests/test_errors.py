"""Bad input at the public API: a clear ValueError or TypeError that names the argument.

First one test per documented mistake, then hypothesis throwing malformed inputs at
fit, evaluate, predict, train_on_batch, compile and the layer constructors: only
minicnn's documented exceptions may come out, and what does come out is right.
"""
import datetime

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minicnn import losses, optimizers
from minicnn.callbacks import EarlyStopping
from minicnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten, LeakyReLU,
                            MaxPooling2D, ReLU)
from minicnn.models import Input, Sequential
from minicnn.utils import to_categorical

# What minicnn promises to raise (saving.ModelFileError is a ValueError).
DOCUMENTED = (ValueError, TypeError, RuntimeError)
# Tiny data: an example that takes this long has hung.
NO_HANG = settings(max_examples=60, deadline=datetime.timedelta(seconds=20))


def tiny_model(loss="categorical_crossentropy", input_shape=(4, 4, 1)):
    """Conv -> pool -> dense softmax over 3 classes, compiled; a few hundred parameters."""
    first = Conv2D(2, 3, padding="same", input_shape=input_shape) if input_shape else Conv2D(2, 3, padding="same")
    model = Sequential([first, LeakyReLU(alpha=0.1), MaxPooling2D(2), Flatten(), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss=loss, metrics=["accuracy"])
    return model


def tiny_data(n=6):
    rng = np.random.default_rng(0)
    return rng.random((n, 4, 4, 1), dtype=np.float32), to_categorical(np.arange(n) % 3, 3)


def call(model, method, x, y):
    """model.<method>(x, y) with the arguments each method takes."""
    if method == "fit":
        return model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    if method == "evaluate":
        return model.evaluate(x, y, verbose=0)
    if method == "train_on_batch":
        return model.train_on_batch(x, y)
    return model.predict(x)


WITH_TARGETS = ["fit", "evaluate", "train_on_batch"]


# --- shapes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", WITH_TARGETS + ["predict"])
def test_images_without_channel_axis_get_a_reshape_hint(method):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"expects x of shape \(None, 4, 4, 1\).*x\.reshape\(-1, 4, 4, 1\)"):
        call(tiny_model(), method, x[..., 0], y)


def test_unbuilt_conv_model_also_hints_at_the_channel_axis():
    with pytest.raises(ValueError, match=r"reshape\(-1, 28, 28, 1\)"):
        tiny_model(input_shape=None).predict(np.zeros((2, 28, 28), np.float32))


def test_one_sample_without_batch_axis_gets_a_hint():
    with pytest.raises(ValueError, match=r"x\[np\.newaxis\]"):
        tiny_model().predict(np.zeros((4, 4, 1), np.float32))


def test_wrong_sample_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(None, 4, 4, 1\), got \(2, 4, 4, 3\)"):
        tiny_model().predict(np.zeros((2, 4, 4, 3), np.float32))


@pytest.mark.parametrize("x", [np.zeros(5, np.float32), np.float32(1.0)])
def test_x_without_sample_axes(x):
    with pytest.raises(ValueError, match="batch axis"):
        tiny_model().predict(x)


@pytest.mark.parametrize("method", WITH_TARGETS)
def test_x_and_y_lengths_must_match(method):
    x, y = tiny_data()
    with pytest.raises(ValueError, match="same length, got 6 and 5"):
        call(tiny_model(), method, x, y[:5])


# --- labels that do not fit the loss --------------------------------------------------------
@pytest.mark.parametrize("method", WITH_TARGETS)
def test_integer_labels_with_categorical_loss_suggest_to_categorical(method):
    x, _ = tiny_data()
    with pytest.raises(ValueError, match="to_categorical.*sparse_categorical_crossentropy"):
        call(tiny_model(), method, x, np.arange(6) % 3)


def test_one_hot_labels_with_sparse_loss_suggest_categorical():
    x, y = tiny_data()
    with pytest.raises(ValueError, match="loss='categorical_crossentropy'"):
        tiny_model(loss="sparse_categorical_crossentropy").fit(x, y, verbose=0)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, 2, 3, 0, 1]), r"in \[0, 2\], got 0\.\.3"),
    (np.array([0, -1, 2, 0, 1, 2]), r"in \[0, 2\]"),
    (np.array([0., 1., 2.5, 0., 1., 2.]), r"expects class numbers, got fractional values such as 2\.5"),
])
def test_sparse_labels_must_be_class_indices(labels, message):
    x, _ = tiny_data()
    with pytest.raises(ValueError, match=message):
        tiny_model(loss="sparse_categorical_crossentropy").fit(x, labels, verbose=0)


@pytest.mark.parametrize("change", ["wrong classes", "negative", "not summing to 1", "all zero"])
def test_one_hot_rows_must_be_distributions(change):
    x, y = tiny_data()
    if change == "wrong classes":
        y, message = to_categorical(np.arange(6) % 3, 4), r"shape \(N, 3\)"
    else:
        y, message = y.copy(), "summing to 1"
        if change == "negative":
            y[0] = [1.5, -0.5, 0]
        elif change == "not summing to 1":
            y[0] = [1, 1, 0]
        else:
            y[0] = 0
    with pytest.raises(ValueError, match=message):
        tiny_model().fit(x, y, verbose=0)


def test_soft_labels_are_accepted():
    x, _ = tiny_data()
    model = tiny_model()
    before = model.get_weights()
    history = model.fit(x, np.full((6, 3), 1 / 3, np.float32), verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] >= np.log(3) - 0.5
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# --- values and dtypes ------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["x", "y", "x_val"])
def test_nan_and_inf_are_refused(bad, where):
    x, y = tiny_data()
    x_val, y_val = x.copy(), y.copy()
    {"x": x, "y": y, "x_val": x_val}[where][1, 0] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(the first at index \(1, 0"):
        tiny_model().fit(x, y, validation_data=(x_val, y_val), verbose=0)


def test_values_beyond_float32_are_refused():
    x, y = tiny_data()
    with pytest.raises(ValueError, match="float32's range"):
        tiny_model().fit(x.astype(np.float64) * 1e300, y, verbose=0)


@pytest.mark.parametrize("x", [
    np.zeros((0, 4, 4, 1), np.float32), np.zeros((2, 0, 4, 1), np.float32), [],
])
def test_empty_inputs(x):
    with pytest.raises(ValueError, match="empty"):
        tiny_model().predict(x)


@pytest.mark.parametrize("x", [
    np.full((2, 4, 4, 1), "a"), np.zeros((2, 4, 4, 1), complex), np.zeros((2, 4, 4, 1), bool),
    np.empty((2, 4, 4, 1), object), {"x": 1},
])
def test_non_numeric_dtypes_are_a_type_error(x):
    with pytest.raises(TypeError, match="dicts" if isinstance(x, dict) else "real numbers"):
        tiny_model().predict(x)


def test_ragged_lists_and_missing_arguments():
    with pytest.raises(ValueError, match="same shape"):
        tiny_model().predict([[1, 2], [3]])
    with pytest.raises(ValueError, match=r"y \(the targets\) is required"):
        tiny_model().fit(tiny_data()[0], verbose=0)


def test_python_lists_and_integer_images_work():
    x, y = tiny_data()
    assert tiny_model().predict(x.tolist()).shape == (6, 3)
    tiny_model().fit((x * 255).astype(np.uint8), y.tolist(), verbose=0)


# --- names and hyperparameters ----------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: Dense(3, activation="relu6"), "unknown activation 'relu6'"),
    (lambda: Activation("swish"), "unknown activation 'swish'"),
    (lambda: Conv2D(2, 3, padding="full"), "padding must be 'valid' or 'same', got 'full'"),
    (lambda: MaxPooling2D(2, padding=None), "padding must be"),
    (lambda: Dense(3, kernel_initializer="orthogonal"), "unknown initializer"),
    (lambda: BatchNormalization(gamma_initializer="twos"), "unknown initializer"),
    (lambda: optimizers.get("ftrl"), "unknown optimizer 'ftrl'"),
    (lambda: losses.get("hinge"), "unknown loss 'hinge'"),
])
def test_unknown_names_are_listed(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, argument", [
    (lambda: Dropout(1.0), "rate"), (lambda: Dropout(-0.1), "rate"), (lambda: Dropout(float("nan")), "rate"),
    (lambda: Dropout(np.float32(1.5)), "rate"),
    (lambda: Conv2D(0, 3), "filters"), (lambda: Conv2D(2.0, 3), "filters"), (lambda: Conv2D(True, 3), "filters"),
    (lambda: Conv2D(2, 0), "kernel_size"), (lambda: Conv2D(2, (3, 3, 3)), "kernel_size"),
    (lambda: Conv2D(2, None), "kernel_size"), (lambda: Conv2D(2, 2.5), "kernel_size"),
    (lambda: Conv2D(2, 3, strides=(1, 0)), "strides"),
    (lambda: Dense(0), "units"), (lambda: Dense(-2), "units"),
    (lambda: MaxPooling2D(0), "pool_size"), (lambda: MaxPooling2D(2, strides=-1), "strides"),
    (lambda: LeakyReLU(alpha=-0.1), "negative_slope"), (lambda: LeakyReLU(float("inf")), "negative_slope"),
    (lambda: BatchNormalization(momentum="high"), "momentum"), (lambda: BatchNormalization(epsilon=-1), "epsilon"),
    (lambda: Dense(3, input_shape=(0, 4)), "input_shape"), (lambda: Dense(3, input_shape=784), "input_shape"),
    (lambda: optimizers.Adam(learning_rate=float("inf")), "learning_rate"),
    (lambda: optimizers.Adam(learning_rate="0.01"), "learning_rate"),
    (lambda: optimizers.SGD(momentum=-0.5), "momentum"), (lambda: optimizers.SGD(nesterov="yes"), "nesterov"),
    (lambda: optimizers.Adam(epsilon=0), "epsilon"),
    (lambda: losses.CategoricalCrossentropy(from_logits="no"), "from_logits"),
    (lambda: EarlyStopping(patience=-1), "patience"),
    (lambda: Input(shape=(28, -28)), "shape"),
])
def test_bad_hyperparameters_name_the_argument(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_numpy_scalars_are_good_hyperparameters():
    assert Conv2D(np.int64(4), np.int32(3)).kernel_size == (3, 3)
    assert Dropout(np.float32(0.25)).rate == 0.25
    assert Dense(np.int64(5)).units == 5


@pytest.mark.parametrize("kwargs, argument", [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"), ({"batch_size": True}, "batch_size"),
    ({"epochs": -1}, "epochs"), ({"initial_epoch": 3, "epochs": 2}, "initial_epoch=3 is past epochs=2"),
    ({"validation_split": 1.0}, "validation_split"), ({"validation_split": 0.9}, "each needs at least one"),
    ({"verbose": 3}, "verbose"), ({"validation_data": (1, 2, 3)}, "validation_data"),
])
def test_bad_fit_arguments(kwargs, argument):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=argument):
        tiny_model().fit(x, y, **{"verbose": 0, **kwargs})


def test_bad_callbacks_evaluate_and_predict_arguments():
    x, y = tiny_data()
    with pytest.raises(TypeError, match="callbacks must be a list"):
        tiny_model().fit(x, y, verbose=0, callbacks=EarlyStopping())
    with pytest.raises(ValueError, match="batch_size"):
        tiny_model().evaluate(x, y, batch_size=-3)
    with pytest.raises(ValueError, match="verbose"):
        tiny_model().predict(x, verbose="loud")


def test_compile_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="a loss is required"):
        model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        model.compile(loss="categorical_crossentropy", metrics=["auc"])
    with pytest.raises(TypeError, match="metrics must be a list"):
        model.compile(loss="categorical_crossentropy", metrics=42)
    model.compile(loss="categorical_crossentropy", metrics="accuracy")  # one name is fine
    assert model.metrics_names == ["loss", "accuracy"]


def test_not_compiled_and_empty_models():
    x, y = tiny_data()
    uncompiled = Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3)])
    for method in WITH_TARGETS:
        with pytest.raises(RuntimeError, match="compile the model first"):
            call(uncompiled, method, x, y)
    empty = Sequential()
    empty.compile(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="no layers"):
        empty.fit(x, y, verbose=0)


def test_one_optimizer_for_two_models_is_refused():
    adam = optimizers.Adam()
    first, second = tiny_model(), Sequential([Flatten(input_shape=(4, 4, 1)), Dense(3, activation="softmax")])
    first.compile(optimizer=adam, loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="already the optimizer of model .*its own optimizer"):
        second.compile(optimizer=adam, loss="categorical_crossentropy")
    assert second.optimizer is None


# --- a failed call changes nothing ----------------------------------------------------------
def test_a_layer_that_does_not_fit_is_not_added():
    model = Sequential([Conv2D(2, 3, input_shape=(4, 4, 1))])
    with pytest.raises(ValueError, match="Flatten"):
        model.add(Dense(3))
    assert len(model.layers) == 1
    model.add(Flatten())
    model.add(Dense(3, activation="softmax"))
    assert model.output_shape == (None, 3)


def test_a_failed_first_build_leaves_the_model_unbuilt():
    model = tiny_model(input_shape=None)
    with pytest.raises(ValueError, match="does not fit"):
        model.predict(np.zeros((2, 1, 1, 1), np.float32))  # the conv builds, then the 2x2 pool does not fit
    assert not model.built and not model.layers[0].built
    assert model.predict(np.zeros((2, 4, 4, 1), np.float32)).shape == (2, 3)


def test_nan_outputs_are_an_error_not_an_answer():
    x, y = tiny_data()
    model = tiny_model()
    weights = model.get_weights()
    weights[0][...] = np.nan
    model.set_weights(weights)
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        model.predict(x)
    with pytest.raises(RuntimeError, match="NaN or infinite"):
        model.evaluate(x, y, verbose=0)


# --- hypothesis: malformed data at fit, evaluate, predict, train_on_batch --------------------------
def corrupt(data, x, y):
    """Apply one drawn corruption (or none) to valid (x, y)."""
    kind = data.draw(st.sampled_from([
        "none", "drop channel", "extra axis", "transpose", "crop", "dtype", "nan", "huge", "y length",
        "y labels", "y classes", "y values", "empty", "scalar", "list", "ragged", "object", "none x",
    ]))
    if kind == "drop channel":
        x = x[..., 0]
    elif kind == "extra axis":
        x = x[..., None]
    elif kind == "transpose":
        x = x.transpose(0, 3, 1, 2)
    elif kind == "crop":
        x = x[:, :data.draw(st.integers(0, 3))]
    elif kind == "dtype":
        x = x.astype(data.draw(st.sampled_from([np.float16, np.float64, np.int8, np.uint8, bool, complex, str])))
    elif kind == "nan":
        x = x.copy()
        x.flat[data.draw(st.integers(0, x.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif kind == "huge":
        x = x * data.draw(st.sampled_from([1e3, 1e20, 1e38, np.float64(1e300)]))
    elif kind == "y length":
        y = y[:data.draw(st.integers(0, len(y) - 1))]
    elif kind == "y labels":
        y = y.argmax(axis=1)
    elif kind == "y classes":
        y = y[:, :data.draw(st.integers(0, 2))]
    elif kind == "y values":
        y = y * data.draw(st.sampled_from([-1.0, 2.0, 0.0, np.nan]))
    elif kind == "empty":
        x, y = x[:0], y[:0]
    elif kind == "scalar":
        x = np.float32(1.0)
    elif kind == "list":
        x = x.tolist()
    elif kind == "ragged":
        x = [[1.0, 2.0], [3.0]]
    elif kind == "object":
        x = np.array([object()] * len(x))
    elif kind == "none x":
        x = None
    return kind, x, y


def check_result(method, result, n):
    """What comes back from a call that did not raise must be right."""
    if method == "predict":
        assert result.shape == (n, 3) and np.isfinite(result).all()
        np.testing.assert_allclose(result.sum(axis=1), 1, rtol=1e-4)
    elif method == "fit":
        assert all(np.isfinite(v).all() for v in result.history.values())
    else:
        loss, accuracy = result
        assert np.isfinite(loss) and 0 <= accuracy <= 1


@NO_HANG
@given(data=st.data(), method=st.sampled_from(WITH_TARGETS + ["predict"]), n=st.integers(1, 6))
def test_malformed_data_gives_documented_errors_only(data, method, n):
    model = tiny_model()
    x, y = tiny_data(n)
    kind, bad_x, bad_y = corrupt(data, x, y)
    before = model.get_weights()
    try:
        result = call(model, method, bad_x, bad_y)
    except (ValueError, TypeError):
        # refused at the boundary: nothing was trained
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    except RuntimeError as error:  # inputs so large that the run diverged: said so, naming the step
        message = str(error)
        assert "NaN or infinite" in message or "changed no weight" in message or "update overflowed" in message
        if "update overflowed" in message:
            return  # the weights are NaN now, as the message says
    else:
        harmless = kind in ("none", "dtype", "huge", "list") or (method == "predict" and kind.startswith("y"))
        assert harmless, f"{kind} was accepted by {method}"
        check_result(method, result, n)
    call(model, method, x, y)  # whatever happened, the model still works


def full_array(shape, dtype, fill):
    """An array of one value; integer and text arrays get a value they can hold."""
    if dtype == "U":
        return np.full(shape, "z")
    if dtype in (np.int64, np.uint8, bool):
        fill = int(abs(fill)) if np.isfinite(fill) else 1
    return np.full(shape, fill, dtype=dtype)


arrays_of_any_kind = st.one_of(
    st.none(), st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
    st.builds(full_array, st.lists(st.integers(0, 5), max_size=5).map(tuple),
              st.sampled_from([np.float32, np.float64, np.int64, np.uint8, bool, "U"]),
              st.sampled_from([0.0, 0.5, 1.0, 3.0, -1.0, np.nan, np.inf])),
)


@NO_HANG
@given(x=arrays_of_any_kind, y=arrays_of_any_kind, method=st.sampled_from(WITH_TARGETS + ["predict"]),
       built=st.booleans())
def test_arbitrary_arrays_give_documented_errors_only(x, y, method, built):
    model = tiny_model(input_shape=(4, 4, 1) if built else None)
    try:
        result = call(model, method, x, y)
    except DOCUMENTED:
        return
    check_result(method, result, len(x))


# --- hypothesis: compile and layer constructors -----------------------------------------------
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6), st.tuples(st.integers(-1, 4), st.integers(-1, 4)), st.lists(st.integers(-1, 4), max_size=3),
    st.sampled_from(["same", "valid", "SAME", "relu", "softmax", "linear", "glorot_uniform", "zeros", "adam",
                     "sgd", "categorical_crossentropy", "accuracy", ["accuracy"], {"a": 1}, np.int64(2),
                     np.float32(0.5), object()]),
)


@NO_HANG
@given(optimizer=junk, loss=junk, metrics=junk)
def test_compile_with_junk_gives_documented_errors_only(optimizer, loss, metrics):
    model = tiny_model()
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (ValueError, TypeError):
        return
    x, y = tiny_data()
    model.fit(x, y, verbose=0, batch_size=3)  # what compile accepted, trains


LAYERS = {
    Conv2D: ["filters", "kernel_size", "strides", "padding", "activation", "kernel_initializer", "input_shape"],
    Dense: ["units", "activation", "use_bias", "bias_initializer", "name"],
    MaxPooling2D: ["pool_size", "strides", "padding", "data_format"],
    Dropout: ["rate", "noise_shape", "trainable"],
    LeakyReLU: ["negative_slope", "alpha"],
    BatchNormalization: ["momentum", "epsilon", "axis", "gamma_initializer"],
    Activation: ["activation"],
    ReLU: ["name"],
    Flatten: ["input_shape"],
}
VALID = {"filters": 2, "kernel_size": 3, "units": 3, "rate": 0.5, "activation": "relu"}


@NO_HANG
@given(cls=st.sampled_from(sorted(LAYERS, key=lambda c: c.__name__)), data=st.data())
def test_layer_constructors_with_junk_give_documented_errors_only(cls, data):
    arguments = LAYERS[cls]
    kwargs = {name: VALID[name] for name in arguments if name in VALID}
    for name in data.draw(st.lists(st.sampled_from(arguments), max_size=3, unique=True)):
        kwargs[name] = data.draw(junk)
    try:
        layer = cls(**kwargs)
    except (ValueError, TypeError):
        return
    x = np.random.default_rng(0).random((2, 6, 6, 3)).astype(np.float32)
    if cls is Dense:
        x = x.reshape(2, -1)
    try:  # what the constructor accepted either runs or says, naming the layer, why x does not fit
        y = layer(x, training=True)
    except ValueError as error:
        assert layer.name in str(error)
        return
    assert np.isfinite(y).all()

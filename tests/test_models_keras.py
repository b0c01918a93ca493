"""Keras's model API on minicnn (issue #18): functional models with skip connections (Add, x + y),
InputLayer, models inside models, get_layer, metrics by name, regression losses, sample and class
weights, evaluate(return_dict=True), metrics_names, summary, plot_model, and the clear refusals."""
import re

import numpy as np
import pytest

import minicnn
from minicnn import gradcheck, losses, metrics
from minicnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
from minicnn.layers.functional import Add, InputLayer
from minicnn.models import INPUT, Input, Model, Sequential, load_model


def residual_dense(units=5, classes=3, features=4):
    """input -> dense -> dense_1 -> add(dense, dense_1) -> dense_2 (softmax)."""
    inputs = Input(shape=(features,))
    x = Dense(units, activation="tanh")(inputs)
    y = Dense(units, activation="tanh")(x)
    out = Dense(classes, activation="softmax")(x + y)
    return Model(inputs, out)


def residual_conv():
    """A small residual CNN: conv -> conv -> Add -> pool -> dense."""
    inputs = Input(shape=(6, 6, 2))
    x = Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    y = Conv2D(3, 3, padding="same")(x)
    x = Add()([x, y])
    x = MaxPooling2D()(x)
    out = Dense(4, activation="softmax")(Flatten()(x))
    return Model(inputs, out)


def test_skip_connection_graph_is_read_back_from_the_outputs():
    model = residual_dense()
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense", "Add", "Dense"]
    assert model.connections == [(INPUT,), (0,), (0, 1), (2,)]
    assert model.output_shape == (None, 3)
    chain = Sequential([Dense(2, input_shape=(3,)), Dense(2)])
    assert chain.connections == [(INPUT,), (0,)]


def test_a_residual_model_forward_is_the_sum_of_both_paths():
    model = residual_dense()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    first, second, _, last = model.layers
    h = np.tanh(x @ first.params["kernel"] + first.params["bias"])
    g = np.tanh(h @ second.params["kernel"] + second.params["bias"])
    z = (h + g) @ last.params["kernel"] + last.params["bias"]
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [residual_dense, residual_conv])
def test_residual_models_pass_the_gradient_check(float64, make):
    model = make()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3,) + model.input_shape[1:])
    y = rng.integers(0, model.output_shape[-1], 3)
    assert all(gradcheck.passed(error) for error in gradcheck.check_model(model, x, y).values())
    assert all(gradcheck.passed(error) for error in gradcheck.check_model(model, x, y, fused=True).values())
    per_layer = gradcheck.check_layers(model, x, y)
    add = next(layer.name for layer in model.layers if isinstance(layer, Add))
    assert set(per_layer[add]) == {"x0", "x1"}
    assert all(gradcheck.passed(error) for errors in per_layer.values() for error in errors.values())


def test_a_residual_model_trains_saves_and_loads(tmp_path):
    model = residual_conv()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x = rng.random((32, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 4, 32)
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "residual.keras")
    loaded = load_model(tmp_path / "residual.keras")
    assert loaded.connections == model.connections
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_functional_models_refuse_what_they_cannot_run():
    inputs = Input(shape=(4,))
    shared = Dense(4)
    with pytest.raises(ValueError, match="used twice"):
        Model(inputs, Add()([shared(inputs), shared(inputs)]))
    with pytest.raises(ValueError, match="does not support models with several inputs"):
        Model([inputs, Input(shape=(4,))], Dense(2)(inputs))
    other = Input(shape=(4,))
    with pytest.raises(ValueError, match="another Input"):
        Model(inputs, Add()([Dense(4)(inputs), Dense(4)(other)]))
    with pytest.raises(ValueError, match="inputs of one shape"):
        Add()([Dense(4)(inputs), Dense(3)(inputs)])
    with pytest.raises(TypeError, match="a list of tensors"):
        Add()(inputs)
    with pytest.raises(TypeError, match="does not support subclassed models with call"):
        class MyModel(Model):
            def call(self, x):
                return x


def test_add_runs_eagerly_and_its_backward_copies_the_gradient():
    a, b = np.ones((2, 3)), np.full((2, 3), 2.0)
    layer = Add()
    np.testing.assert_array_equal(layer([a, b]), np.full((2, 3), 3.0))
    np.testing.assert_array_equal(a, 1)                       # the inputs stay as they were
    dy = np.arange(6.0).reshape(2, 3)
    dx = layer.backward(dy)
    assert len(dx) == 2 and all(np.array_equal(d, dy) for d in dx)


def test_input_layer_and_models_inside_a_sequential():
    model = Sequential([InputLayer(input_shape=(4,)), Dense(3, activation="relu")])
    assert model.input_shape == (None, 4) and len(model.layers) == 1
    head = Sequential([Dense(2, activation="softmax")])
    outer = Sequential([model, head])
    assert [layer.name for layer in outer.layers] == [model.layers[0].name, head.layers[0].name]
    assert outer.output_shape == (None, 2)
    assert outer.layers[0] is model.layers[0]                  # the same layer objects: shared weights
    with pytest.raises(ValueError, match="can only come first"):
        Sequential([Dense(2, input_shape=(3,)), InputLayer(input_shape=(2,))])

    inputs = Input(shape=(4,))
    features = Sequential([Dense(3, activation="relu"), Dense(3)])
    functional = Model(inputs, Dense(2, activation="softmax")(features(inputs)))
    assert len(functional.layers) == 3 and functional.layers[0] is features.layers[0]


def test_get_layer():
    model = Sequential([Dense(3, input_shape=(4,), name="hidden"), Dense(2, name="out")])
    assert model.get_layer("out") is model.layers[1]
    assert model.get_layer(index=0).name == "hidden"
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="either name"):
        model.get_layer()


def classifier(loss="sparse_categorical_crossentropy", metrics_=("accuracy",), classes=3):
    model = Sequential([Dense(6, input_shape=(4,), activation="tanh"), Dense(classes, activation="softmax")])
    model.compile(optimizer="sgd", loss=loss, metrics=list(metrics_))
    return model


def test_metrics_by_keras_names_and_objects():
    rng = np.random.default_rng(3)
    x, y = rng.random((20, 4)).astype(np.float32), rng.integers(0, 3, 20)
    model = classifier(metrics_=("accuracy", "sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy(
        name="acc2"), "mae"))
    assert model.metrics_names == ["loss", "accuracy", "sparse_categorical_accuracy", "acc2", "mae"]
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(result) == model.metrics_names
    p = model.predict(x)
    right = (p.argmax(1) == y).mean()
    assert result["accuracy"] == result["sparse_categorical_accuracy"] == result["acc2"] == pytest.approx(right)
    assert result["mae"] == pytest.approx(np.abs(p - y[:, None]).mean(), rel=1e-5)   # Keras's mae broadcasts too
    assert model.evaluate(x, y, verbose=0) == pytest.approx([result[name] for name in model.metrics_names])
    history = model.fit(x, y, epochs=2, verbose=0)
    assert set(history.history) == set(model.metrics_names)
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        classifier(metrics_=("auc",))


def test_accuracy_follows_the_loss():
    p = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]])
    assert metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"))(np.array([1, 2]), p) == 0.5
    assert metrics.get("acc", losses.get("categorical_crossentropy"))(np.eye(3)[[1, 0]], p) == 1.0
    binary = metrics.get("accuracy", losses.get("mse"))
    assert binary(np.array([[1.0], [0.0], [1.0]]), np.array([[0.9], [0.7], [0.2]])) == pytest.approx(1 / 3)


@pytest.mark.parametrize("name, cls", [("mse", losses.MeanSquaredError), ("mean_squared_error", losses.MeanSquaredError),
                                       ("mae", losses.MeanAbsoluteError), (losses.mean_absolute_error,
                                                                           losses.MeanAbsoluteError)])
def test_regression_losses_by_name(name, cls):
    assert isinstance(losses.get(name), cls)


def test_regression_losses_values_and_gradients(float64):
    rng = np.random.default_rng(4)
    y, p = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    assert losses.MeanSquaredError()(y, p) == pytest.approx(((p - y) ** 2).mean())
    assert losses.MeanAbsoluteError()(y, p) == pytest.approx(np.abs(p - y).mean())
    np.testing.assert_allclose(losses.mean_squared_error(y, p), ((p - y) ** 2).mean(axis=1))
    for loss in (losses.MeanSquaredError(), losses.MeanAbsoluteError()):
        assert gradcheck.passed(gradcheck.check_loss(loss, y, p)["y_pred"])


def test_a_regression_model_trains_with_mse_and_reports_mae(float64):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3                  # targets (N,), the output (N, 1)
    model = Sequential([Dense(1, input_shape=(3,))])
    model.compile(optimizer=minicnn.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 1e-3 < history.history["loss"][0]
    assert history.history["mae"][-1] < 0.05
    assert gradcheck.passed(max(gradcheck.check_model(model, x[:4], y[:4]).values()))
    with pytest.raises(ValueError, match=r"mean_squared_error expects targets of shape \(N, 1\)"):
        model.fit(x, np.stack([y, y], axis=1), verbose=0)


def test_float_class_numbers_are_taken_for_sparse_labels():
    rng = np.random.default_rng(6)
    x, y = rng.random((12, 4)).astype(np.float32), rng.integers(0, 3, 12)
    a, b = classifier(), classifier()
    b.set_weights(a.get_weights())
    assert a.evaluate(x, y, verbose=0) == b.evaluate(x, y.astype(np.float32), verbose=0)


def test_sample_weight_scales_each_samples_loss(float64):
    rng = np.random.default_rng(7)
    x, y = rng.random((6, 4)), rng.integers(0, 3, 6)
    w = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0])
    model = classifier()
    p = model.predict(x)
    per_sample = -np.log(p[np.arange(6), y])
    assert model.evaluate(x, y, sample_weight=w, verbose=0)[0] == pytest.approx((w * per_sample).sum() / 6)
    # the gradient of the weighted loss, checked numerically through the model
    plan = model.plan
    weights = np.asarray(w)

    def loss():
        return model.compute_loss(x, y, sample_weight=weights)
    _, _, dx = model.compute_gradients(x, y, sample_weight=weights)
    numeric = gradcheck.numerical_gradient(loss, x)
    np.testing.assert_allclose(dx.reshape(-1), numeric, rtol=1e-5, atol=1e-8)
    assert plan is model.plan


def test_class_weight_is_a_sample_weight_per_class():
    rng = np.random.default_rng(8)
    x, y = rng.random((30, 4)).astype(np.float32), rng.integers(0, 3, 30)
    a, b = classifier(), classifier()
    b.set_weights(a.get_weights())
    class_weight = {0: 1.0, 1: 5.0, 2: 0.5}
    a.fit(x, y, class_weight=class_weight, epochs=2, batch_size=10, shuffle=False, verbose=0)
    b.fit(x, y, sample_weight=np.array([class_weight[c] for c in y]), epochs=2, batch_size=10, shuffle=False,
          verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    one_hot = classifier(loss="categorical_crossentropy")
    one_hot.fit(x, np.eye(3)[y], class_weight=class_weight, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="class_weight keys must be class numbers"):
        classifier().fit(x, y, class_weight={7: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="one weight per sample"):
        classifier().fit(x, y, sample_weight=np.ones(3), verbose=0)


def test_validation_split_splits_the_sample_weights_too():
    rng = np.random.default_rng(9)
    x, y = rng.random((20, 4)).astype(np.float32), rng.integers(0, 3, 20)
    w = np.r_[np.ones(16), np.zeros(4)]               # the validation part (the last 4) weighs nothing
    history = classifier().fit(x, y, sample_weight=w, validation_split=0.2, epochs=1, verbose=0)
    assert history.history["val_loss"] == [0.0]


def test_train_on_batch_and_evaluate_return_dicts():
    rng = np.random.default_rng(10)
    x, y = rng.random((8, 4)).astype(np.float32), rng.integers(0, 3, 8)
    model = classifier()
    result = model.train_on_batch(x, y, return_dict=True)
    assert list(result) == ["loss", "accuracy"]
    assert isinstance(model.evaluate(x, y, verbose=0, return_dict=True)["loss"], float)
    plain = classifier(metrics_=())
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_summary_columns_stay_aligned_with_long_names():
    lines = []
    model = residual_dense()
    model.layers[1].name = "a_very_long_layer_name_that_keras_would_print_in_full"
    model.summary(print_fn=lines.append)
    text = lines[0].splitlines()
    header = next(line for line in text if line.startswith(" Layer (type)"))
    row = next(line for line in text if "a_very_long" in line)
    assert row.index("(None, 5)") == header.index("Output Shape")
    assert "(InputLayer)" in lines[0] and "Connected to" in header


def test_plot_model_writes_a_png(tmp_path):
    path = tmp_path / "model.png"
    figure = minicnn.utils.plot_model(residual_conv(), to_file=str(path), show_shapes=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert any("(Add)" in t for t in texts) and any("(InputLayer)" in t for t in texts)
    import matplotlib.pyplot as plt
    plt.close(figure)


def test_old_keras_homes_and_missing_modules():
    from minicnn.utils.np_utils import to_categorical
    assert to_categorical([1, 0]).tolist() == [[0, 1], [1, 0]]
    with pytest.raises(AttributeError, match=r"minicnn does not support keras.applications"):
        minicnn.applications
    assert not hasattr(minicnn, "preprocessing")


# --- Keras's call() on layer subclasses ------------------------------------------------------------
class MCDropout(minicnn.layers.Dropout):
    """Monte-Carlo dropout as Keras tutorials write it: dropout at prediction time too."""

    def call(self, inputs):
        return super().call(inputs, training=True)


def test_monte_carlo_dropout_written_with_call_drops_at_prediction_and_trains():
    model = Sequential([Dense(16, input_shape=(4,)), MCDropout(0.5), Dense(3, activation="softmax")])
    x = np.ones((4, 4), np.float32)
    assert not np.array_equal(model.predict(x), model.predict(x))       # Keras's MC dropout: random predictions
    plain = Sequential([Dense(16, input_shape=(4,)), minicnn.layers.Dropout(0.5), Dense(3, activation="softmax")])
    np.testing.assert_array_equal(plain.predict(x), plain.predict(x))
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    model.fit(x, np.array([0, 1, 2, 0]), verbose=0)


def test_call_through_dropout_uses_dropouts_backward(float64):
    layer = MCDropout(0.4)
    x = np.random.default_rng(11).standard_normal((3, 5))
    y = layer(x)                                                           # training=False, dropped anyway
    mask = layer.mask
    assert mask is not None and np.array_equal(y, x * mask)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), mask)


def test_a_call_that_computes_something_else_is_refused():
    class Doubled(minicnn.layers.Dropout):
        def call(self, inputs, training=None):
            return super().call(inputs, training=training) * 2

    with pytest.raises(NotImplementedError, match=r"Doubled.call\(\).*no backward pass"):
        Doubled(0.5)(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="minicnn cannot train Scaled: its call"):
        class Scaled(minicnn.layers.Layer):
            def call(self, inputs):
                return inputs * 2
    with pytest.raises(TypeError, match="both forward"):
        class Both(minicnn.layers.Dropout):
            def forward(self, x, training=False):
                return x

            def call(self, inputs):
                return inputs


def test_a_layer_with_its_own_backward_may_write_call_as_its_forward(float64):
    class Times3(minicnn.layers.Layer):
        def call(self, inputs):
            return inputs * 3

        def backward(self, dy):
            return 3 * dy

    layer = Times3()
    x = np.random.default_rng(12).standard_normal((2, 3))
    np.testing.assert_array_equal(layer(x), 3 * x)
    assert gradcheck.passed(gradcheck.check_layer(layer, x)["x"])


# --- what is printed -----------------------------------------------------------------------------
def test_evaluate_verbose_2_prints_one_line_and_short_runs_print_whole_seconds(capsys):
    rng = np.random.default_rng(13)
    x, y = rng.random((10, 4)).astype(np.float32), rng.integers(0, 3, 10)
    model = classifier()
    model.evaluate(x, y, verbose=2, batch_size=5)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "[" not in out
    assert re.match(r"2/2 - \d+s - \d+(s|ms|us)/step - loss: ", out)      # whole seconds, as Keras prints them
    model.fit(x, y, epochs=1, verbose=2)
    assert re.search(r"Epoch 1/1 - \d+s - loss: ", capsys.readouterr().out)
    from minicnn.callbacks import format_duration, format_elapsed
    assert (format_elapsed(0.833), format_duration(0.016), format_duration(0.00085)) == ("1s", "16ms", "850us")


def test_keras_arguments_at_their_defaults_pass_and_others_are_named():
    model = classifier()
    model.compile(optimizer="sgd", loss="mse", run_eagerly=False, jit_compile="auto")
    with pytest.raises(TypeError, match=r"minicnn does not support the argument 'loss_weights' \(in compile\)"):
        model.compile(optimizer="sgd", loss="mse", loss_weights=[1.0])
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        model.fit(np.ones((2, 4)), np.ones((2, 3)) / 3, epoch=3)
    with pytest.raises(TypeError, match=r"'steps_per_epoch' \(in fit\)"):
        model.fit(np.ones((2, 4)), np.ones((2, 3)) / 3, steps_per_epoch=5)
    with pytest.raises(AttributeError, match="minicnn does not support keras.layers.LSTM"):
        minicnn.layers.LSTM
    with pytest.raises(AttributeError, match="minicnn does not support keras.losses.binary_crossentropy"):
        minicnn.losses.binary_crossentropy
    assert not hasattr(minicnn.layers, "Dense2")


def test_review_findings_stay_fixed(float64):
    """A trained model inside another trains (its first layer computes dx again); Add hands each
    path its own gradient; model.trainable freezes; a failed add of a model changes nothing."""
    rng = np.random.default_rng(14)
    x, y = rng.random((8, 2)), rng.integers(0, 2, 8)
    inner = Sequential([Dense(3, input_shape=(2,), activation="tanh"), Dense(2, activation="softmax")])
    inner.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    inner.fit(x, y, verbose=0)
    outer = Sequential([Dense(2, input_shape=(2,)), inner])
    outer.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    assert all(gradcheck.passed(e) for e in gradcheck.check_model(outer, x[:3], y[:3]).values())

    class InPlaceReLU(minicnn.layers.Layer):          # Saitoh's ReLU: changes the gradient it receives
        def forward(self, x, training=False):
            self.mask = x <= 0
            return np.where(self.mask, 0, x)

        def backward(self, dy):
            dy[self.mask] = 0
            return dy

    inputs = Input(shape=(4,))
    h = Dense(4)(inputs)
    model = Model(inputs, Dense(2, activation="softmax")(Add()([h, InPlaceReLU()(h)])))
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    xs = rng.standard_normal((3, 4))
    assert all(gradcheck.passed(e) for e in gradcheck.check_model(model, xs, y[:3]).values())

    base = Sequential([Dense(3, input_shape=(2,))])
    base.trainable = False
    assert not base.trainable
    frozen = Sequential([base, Dense(2, activation="softmax")])
    frozen.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    before = base.get_weights()
    frozen.fit(x, y, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))

    target = Sequential([Input(shape=(3,))])
    misfit = Sequential([Dense(4), minicnn.layers.Reshape((3,))])
    state = minicnn.backend.get_rng_state()
    with pytest.raises(ValueError):
        target.add(misfit)
    assert not misfit.layers[0].built and not target.layers and minicnn.backend.get_rng_state() == state


def test_more_keras_spellings():
    assert str(Dense(2, activation=minicnn.activations.relu).activation) == "<activation relu>"
    assert minicnn.utils.np_utils.to_categorical([1]).tolist() == [[0, 1]]
    layer = Dense(3, kernel_initializer=minicnn.initializers.HeNormal())
    assert layer.get_config()["kernel_initializer"] == "he_normal"
    with pytest.raises(ValueError, match="per-initializer seed"):
        minicnn.initializers.GlorotUniform(seed=1)
    assert isinstance(losses.MeanSquaredError(name="mse", reduction="auto"), losses.MeanSquaredError)
    with pytest.raises(TypeError, match="'label_smoothing' \\(in CategoricalCrossentropy\\)"):
        losses.CategoricalCrossentropy(label_smoothing=0.1)
    with pytest.raises(TypeError, match="'max_value' \\(in ReLU\\)"):
        minicnn.layers.ReLU(max_value=6)
    with pytest.raises(AttributeError, match="does not support keras.activations.swish"):
        minicnn.activations.swish
    model = classifier()
    x, y = np.ones((4, 4), np.float32), np.array([0, 1, 2, 0])
    with pytest.raises(TypeError, match="generators, datasets, dicts or \\(x, y\\) tuples as x \\(in fit\\)"):
        model.fit((x, y))
    with pytest.raises(TypeError, match="generators"):
        model.fit(iter([x]), y)
    with pytest.raises(TypeError, match="'steps' \\(in evaluate\\)"):
        model.evaluate(x, y, steps=2)
    assert model.test_on_batch(x, y) == pytest.approx(model.evaluate(x, y, verbose=0))
    np.testing.assert_array_equal(model.predict_on_batch(x), model.predict(x))

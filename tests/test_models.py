"""Sequential / Model: summary, fit, evaluate, predict, History, weights, reproducibility, errors."""
import io
import contextlib

import numpy as np
import pytest

from conftest import toy_images
from minicnn import backend, gradcheck, optimizers
from minicnn.lab import lab_model
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Input, Model, Sequential
from minicnn.utils import to_categorical


def small_model(dropout=False, classes=3):
    layers = [Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), LeakyReLU(alpha=0.1),
              MaxPooling2D(2, padding="same"), Flatten(), Dense(16), LeakyReLU(alpha=0.1)]
    if dropout:
        layers.append(Dropout(0.3))
    model = Sequential(layers + [Dense(classes, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_lab_summary_counts_356234_parameters():
    model = lab_model()
    out = io.StringIO()
    model.summary(print_fn=lambda text: out.write(text))
    text = out.getvalue()
    assert "Total params: 356,234" in text and "Trainable params: 356,234" in text
    assert "Non-trainable params: 0" in text
    for line in ["conv2d", "(None, 28, 28, 32)", "320", "(None, 4, 4, 128)", "(None, 2048)", "262272", "1290"]:
        assert line in text
    assert model.count_params() == 356234
    assert lab_model(dropout=True).count_params() == 356234


def test_fit_learns_and_history_has_keras_keys():
    x, labels = toy_images(300)
    y = to_categorical(labels)
    model = small_model()
    history = model.fit(x[:240], y[:240], batch_size=32, epochs=6, verbose=0, validation_data=(x[240:], y[240:]))
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert h["acc"] is h["accuracy"] and h["val_acc"] is h["val_accuracy"]  # the lab's old keys
    assert "acc" in h and h.get("val_acc") is h["val_accuracy"]
    assert all(len(v) == 6 for v in h.values())
    assert h["loss"][-1] < h["loss"][0] * 0.7
    assert h["val_accuracy"][-1] > 0.8
    assert history.epoch == list(range(6))
    loss, accuracy = model.evaluate(x[240:], y[240:], verbose=0)
    assert loss == pytest.approx(h["val_loss"][-1], rel=1e-5) and accuracy == h["val_accuracy"][-1]


def test_predict_is_batched_and_returns_probabilities():
    x, _ = toy_images(70)
    model = small_model()
    p = model.predict(x, batch_size=32)
    assert p.shape == (70, 3) and isinstance(p, np.ndarray) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, batch_size=7), p, rtol=1e-5, atol=1e-7)


def test_sparse_labels_train_like_one_hot():
    x, labels = toy_images(64)
    backend.set_random_seed(3)
    a = small_model()
    a.fit(x, to_categorical(labels), epochs=2, batch_size=16, verbose=0, shuffle=False)
    backend.set_random_seed(3)
    b = small_model()
    b.compile(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
              metrics=["acc"])
    b.fit(x, labels, epochs=2, batch_size=16, verbose=0, shuffle=False)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)


def test_train_on_batch_returns_loss_and_accuracy():
    x, labels = toy_images(32)
    model = small_model()
    before = model.get_weights()
    loss, accuracy = model.train_on_batch(x, to_categorical(labels))
    assert loss > 0 and 0 <= accuracy <= 1
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.optimizer.iterations == 1


def test_the_public_training_step_is_the_one_train_on_batch_runs():
    """prepare_batch, compute_loss and train_step: the pieces trace, profile and the benchmarks use."""
    x, labels = toy_images(16)
    y = to_categorical(labels)
    model, twin = small_model(), small_model()
    twin.set_weights(model.get_weights())
    xb, yb = model.prepare_batch(x.astype(np.float64), y)               # checked, cast, on the device
    assert xb.dtype == yb.dtype == np.float32 and xb.shape == x.shape
    loss_before = float(model.compute_loss(xb, yb))
    assert loss_before == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-6)
    loss, y_pred, problem = model.train_step(xb, yb)
    assert problem is None and loss == pytest.approx(loss_before, rel=1e-6) and y_pred.shape == (16, 3)
    assert twin.train_on_batch(x, y)[0] == loss
    for ours, theirs in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="prepare_batch: the model expects x of shape"):
        model.prepare_batch(x[:, :4])


def test_same_seed_gives_same_weights_and_history():
    x, labels = toy_images(96)
    y = to_categorical(labels)
    runs = []
    for _ in range(2):
        backend.set_random_seed(42)
        model = small_model(dropout=True)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, validation_split=0.25)
        runs.append((model.get_weights(), history.history))
    for wa, wb in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(wa, wb)
    assert runs[0][1] == runs[1][1]


def test_validation_split_takes_the_last_part():
    x, labels = toy_images(100)
    y = to_categorical(labels)
    model = small_model()
    h = model.fit(x, y, batch_size=10, epochs=1, verbose=0, validation_split=0.2)
    expected = model.evaluate(x[80:], y[80:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(expected[0], rel=1e-6)


def test_get_and_set_weights_in_keras_order():
    model = lab_model()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (3, 3, 64, 128), (128,),
                      (2048, 128), (128,), (128, 10), (10,)]
    other = lab_model()
    other.set_weights(model.get_weights())
    x = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="10 weight arrays"):
        model.set_weights(model.get_weights()[:-1])


def test_functional_model_matches_sequential():
    inputs = Input(shape=(8, 8, 1))
    hidden = Flatten()(MaxPooling2D(2)(Conv2D(2, 3, padding="same")(inputs)))
    outputs = Dense(3, activation="softmax")(hidden)
    model = Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    assert model.count_params() == 20 + 3 * 32 + 3
    x, labels = toy_images(16)
    assert model.predict(x).shape == (16, 3)
    model.fit(x, to_categorical(labels), epochs=1, verbose=0)


def test_whole_lab_model_gradients(float64):
    """Every parameter of the lab baseline at 28x28, a random sample of each array's entries."""
    model = lab_model()
    rng = np.random.default_rng(0)
    for w in model.get_weights():
        assert w.dtype == np.float64
    x = rng.random((2, 28, 28, 1))
    y = to_categorical([3, 7], 10)
    errors = gradcheck.check_model(model, x, y, max_elements=12, seed=1)
    assert len(errors) == 11
    assert all(gradcheck.passed(error, 1e-6) for error in errors.values()), errors   # NaN never passes


def test_whole_dropout_model_gradients_with_fixed_masks(float64):
    model = lab_model(dropout=True, input_shape=(8, 8, 1))
    rng = np.random.default_rng(1)
    x = rng.random((2, 8, 8, 1))
    shape = (2, 8, 8, 1)
    for layer in model.layers:  # fix each dropout mask to the shape that reaches it
        shape = layer.compute_output_shape(shape)
        if isinstance(layer, Dropout):
            layer.fixed_mask = (rng.random(shape) >= layer.rate) / (1 - layer.rate)
    errors = gradcheck.check_model(model, x, to_categorical([1, 4], 10), max_elements=20)
    assert all(gradcheck.passed(error, 1e-6) for error in errors.values()), errors   # NaN never passes


def test_progress_output_is_clean_lines_when_not_a_terminal():
    x, labels = toy_images(64)
    model = small_model()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.fit(x, to_categorical(labels), batch_size=16, epochs=2, verbose=1)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("4/4 [==============================]") and "loss: " in lines[1]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.fit(x, to_categorical(labels), batch_size=16, epochs=2, verbose=2)
    assert len(out.getvalue().splitlines()) == 2


class TestErrors:
    def test_integer_labels_with_categorical_loss_suggest_to_categorical(self):
        x, labels = toy_images(16)
        with pytest.raises(ValueError, match="to_categorical"):
            small_model().fit(x, labels, verbose=0)

    def test_missing_channel_axis_suggests_reshape(self):
        model = lab_model()
        with pytest.raises(ValueError, match=r"reshape\(-1, 28, 28, 1\)"):
            model.predict(np.zeros((2, 28, 28), np.float32))

    def test_length_mismatch(self):
        x, labels = toy_images(16)
        with pytest.raises(ValueError, match="same length"):
            small_model().fit(x, to_categorical(labels)[:10], verbose=0)

    def test_not_compiled(self):
        model = Sequential([Dense(2, input_shape=(3,))])
        with pytest.raises(RuntimeError, match="compile"):
            model.fit(np.zeros((2, 3)), np.zeros((2, 2)))

    def test_nan_inputs(self):
        x, labels = toy_images(8)
        x[0, 0, 0, 0] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            small_model().fit(x, to_categorical(labels, 3), verbose=0)

    @pytest.mark.parametrize("batch_size", [0, -1, 2.5])
    def test_bad_batch_size(self, batch_size):
        x, labels = toy_images(8)
        with pytest.raises(ValueError, match="batch_size"):
            small_model().fit(x, to_categorical(labels, 3), batch_size=batch_size, verbose=0)

    def test_unknown_metric_optimizer_loss(self):
        model = small_model()
        with pytest.raises(ValueError, match="metric"):
            model.compile(loss="categorical_crossentropy", metrics=["auc"])
        with pytest.raises(ValueError, match="optimizer"):
            model.compile(loss="categorical_crossentropy", optimizer="adamw")
        with pytest.raises(ValueError, match="loss"):
            model.compile(loss="hinge")

    def test_summary_before_build(self):
        with pytest.raises(ValueError, match="input_shape"):
            Sequential([Dense(3)]).summary()

"""Training safety: NaN losses, TerminateOnNaN, ModelCheckpoint, resuming, EarlyStopping."""
import contextlib
import io
import os

import numpy as np
import pytest

from conftest import toy_images
from minicnn import backend, optimizers, saving
from minicnn.callbacks import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN
from minicnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Sequential, load_model
from minicnn.utils import to_categorical


def model_with_dropout(optimizer="adam"):
    """Every source of randomness and state that resuming must carry: Dropout, BatchNormalization, Adam."""
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), BatchNormalization(),
                        LeakyReLU(alpha=0.1), MaxPooling2D(2), Dropout(0.3), Flatten(), Dense(8),
                        LeakyReLU(alpha=0.1), Dropout(0.2), Dense(3, activation="softmax")])
    if optimizer == "adam":
        optimizer = optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=80):
    x, labels = toy_images(n)
    return x, to_categorical(labels)


FIT = {"batch_size": 16, "verbose": 0, "validation_split": 0.25, "shuffle": True}


class Poison(Callback):
    """Stands in for a diverging run: after batch `at` of epoch `epoch`, one weight becomes inf."""

    def __init__(self, epoch=0, at=2):
        super().__init__()
        self.target, self.at, self.epoch = epoch, at, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == (self.target, self.at):
            self.model.layers[-1].params["kernel"][0, 0] = np.inf
            self.weights_before_nan = self.model.get_weights()


class Interrupt(Callback):
    """Stands in for Ctrl-C or a killed job: raises in the middle of epoch `epoch`."""

    def __init__(self, epoch):
        super().__init__()
        self.target = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.target and batch == 1:
            raise KeyboardInterrupt


# --- a NaN loss ------------------------------------------------------------------------------
def test_a_nan_loss_raises_a_clear_error_naming_epoch_and_batch():
    x, y = data()
    model = model_with_dropout()
    poison = Poison(epoch=1, at=1)
    with pytest.raises(RuntimeError, match=r"fit, epoch 2, batch 3: the loss became nan; this batch changed no "
                                           r"weight.*learning rate.*TerminateOnNaN"):
        model.fit(x, y, epochs=3, callbacks=[poison], **FIT)
    for before, after in zip(poison.weights_before_nan, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the NaN batch changed no weight...
    assert model.optimizer.iterations == 4 + 2       # ...and took no optimizer step
    assert len(model.history.history["loss"]) == 1   # the completed epoch is there to plot
    assert model.completed_epochs == 1


def test_terminate_on_nan_stops_quietly_and_returns_the_history():
    x, y = data()
    model = model_with_dropout()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        history = model.fit(x, y, epochs=5, callbacks=[Poison(epoch=1, at=1), TerminateOnNaN()], **FIT)
    assert "Batch 2: invalid loss nan, terminating training" in out.getvalue()
    assert history.epoch == [0, 1] and np.isnan(history.history["loss"][1])
    assert model.completed_epochs == 1  # epoch 2 did not finish
    assert model.optimizer.iterations == 4 + 2


def test_train_on_batch_refuses_a_nan_step():
    x, y = data(16)
    model = model_with_dropout()
    model.layers[-1].params["kernel"][0, 0] = np.nan
    before = model.get_weights()
    with pytest.raises(RuntimeError, match="train_on_batch: the loss became nan"):
        model.train_on_batch(x, y)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, model.get_weights()))
    assert model.optimizer.iterations == 0


def test_a_diverging_learning_rate_is_caught_without_numpy_warnings(recwarn):
    x, y = data(64)
    model = model_with_dropout(optimizer=optimizers.SGD(learning_rate=1e10))
    with pytest.raises(RuntimeError, match="fit, epoch 1, batch .*learning rate too high"):
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_an_update_that_overflows_is_reported():
    x, y = data(16)
    model = Sequential([Flatten(input_shape=(8, 8, 1)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    with pytest.raises(RuntimeError, match="the update overflowed: the weights or the optimizer state"):
        model.train_on_batch(x * np.float32(1e20), y)  # gradients ~1e20: Adam's squared gradients overflow


# --- ModelCheckpoint -------------------------------------------------------------------------
def test_checkpoint_every_epoch_records_progress(tmp_path):
    x, y = data()
    model = model_with_dropout()
    model.fit(x, y, epochs=3, callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch:02d}-{val_loss:.2f}.h5")], **FIT)
    names = sorted(os.listdir(tmp_path))
    assert [name[:5] for name in names] == ["ck-01", "ck-02", "ck-03"]
    for epoch, name in enumerate(names, start=1):
        assert load_model(tmp_path / name).completed_epochs == epoch
    last = load_model(tmp_path / names[-1])
    for a, b in zip(last.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert last.optimizer.iterations == model.optimizer.iterations == 3 * 4


def drive(callback, model, values, monitor="val_loss"):
    """Run a callback over scripted epochs; before each epoch end, every weight is set to the epoch number."""
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        model.completed_epochs = epoch + 1
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            break
    callback.on_train_end()
    return epoch


@pytest.mark.parametrize("mode, values, saved", [
    ("auto", [0.5, 0.4, 0.45, 0.3, np.nan, 0.35], [1, 2, 4]),
    ("min", [np.nan, 0.5, 0.5, 0.1], [2, 4]),
    ("max", [0.5, 0.4, 0.6, np.inf], [1, 3]),
])
def test_checkpoint_best_only_saves_improvements(tmp_path, mode, values, saved):
    model = model_with_dropout()
    drive(ModelCheckpoint(tmp_path / "best-{epoch}.h5", save_best_only=True, mode=mode), model, values)
    assert sorted(os.listdir(tmp_path)) == [f"best-{epoch}.h5" for epoch in saved]


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    x, y = data()
    model = model_with_dropout()
    path = tmp_path / "last.h5"
    model.fit(x, y, epochs=1, callbacks=[ModelCheckpoint(path)], **FIT)
    first = path.read_bytes()

    def full_disk(array):
        raise OSError("No space left on device")
    monkeypatch.setattr(saving, "_npy_bytes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        model.fit(x, y, epochs=2, initial_epoch=1, callbacks=[ModelCheckpoint(path)], **FIT)
    assert path.read_bytes() == first and os.listdir(tmp_path) == ["last.h5"]
    assert load_model(path).completed_epochs == 1


def test_checkpoint_argument_errors(tmp_path):
    model = model_with_dropout()
    with pytest.raises(ValueError, match=r"cannot fill in filepath.*\['loss'\]"):
        drive(ModelCheckpoint(tmp_path / "m-{val_acc:.2f}.h5"), model, [0.5], monitor="loss")
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the logs.*validation_data"):
        drive(ModelCheckpoint(tmp_path / "m.h5", save_best_only=True), model, [0.5], monitor="loss")
    with pytest.raises(ValueError, match="mode"):
        ModelCheckpoint(tmp_path / "m.h5", mode="lowest")
    with pytest.raises(TypeError, match="filepath"):
        ModelCheckpoint(None)


# --- resuming --------------------------------------------------------------------------------
@pytest.mark.parametrize("stop_after", [1, 3])
@pytest.mark.parametrize("optimizer", ["adam", "sgd momentum"])
def test_resuming_from_a_checkpoint_ends_with_exactly_the_uninterrupted_weights(tmp_path, stop_after, optimizer):
    x, y = data()

    def new_model():
        return model_with_dropout(optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd momentum" else "adam")

    backend.set_random_seed(7)
    straight = new_model()
    full = straight.fit(x, y, epochs=4, **FIT)

    backend.set_random_seed(7)
    interrupted = new_model()
    path = tmp_path / "checkpoint.h5"
    with pytest.raises(KeyboardInterrupt):  # killed during epoch stop_after + 1, after its checkpoint
        interrupted.fit(x, y, epochs=4, callbacks=[ModelCheckpoint(path), Interrupt(stop_after)], **FIT)

    backend.set_random_seed(999)  # a new process: a different random state
    resumed = load_model(path)
    assert resumed.completed_epochs == stop_after
    rest = resumed.fit(x, y, epochs=4, initial_epoch=resumed.completed_epochs, **FIT)

    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert rest.epoch == list(range(stop_after, 4))
    assert rest.history["loss"] == full.history["loss"][stop_after:]
    assert resumed.completed_epochs == 4 and resumed.optimizer.iterations == straight.optimizer.iterations


def test_load_model_leaves_the_global_random_state_alone(tmp_path):
    model = model_with_dropout()
    model.save(tmp_path / "m.h5")
    backend.set_random_seed(5)
    expected = backend.rng().random(3)
    backend.set_random_seed(5)
    load_model(tmp_path / "m.h5")
    np.testing.assert_array_equal(backend.rng().random(3), expected)


def test_a_fresh_start_on_a_loaded_model_does_not_replay_its_random_state(tmp_path):
    x, y = data()
    model = model_with_dropout()
    model.fit(x, y, epochs=1, **FIT)
    model.save(tmp_path / "m.h5")
    runs = []
    for seed in (1, 2):
        loaded = load_model(tmp_path / "m.h5")
        backend.set_random_seed(seed)
        loaded.fit(x, y, epochs=1, **FIT)  # initial_epoch=0: a new run, not a resumption
        runs.append(loaded.get_weights())
    assert not all(np.array_equal(a, b) for a, b in zip(*runs))


# --- EarlyStopping ---------------------------------------------------------------------------
@pytest.mark.parametrize("patience, values, stopped_at", [
    (0, [0.5, 0.4, 0.45, 0.3], 2),
    (1, [0.5, 0.4, 0.45, 0.3], 2),      # as Keras: the first epoch without improvement ends it
    (2, [0.5, 0.4, 0.45, 0.3, 0.35, 0.36, 0.2], 5),
    (2, [np.nan, 0.5, np.nan, np.nan], 3),  # NaN never improves
])
def test_early_stopping_patience(patience, values, stopped_at):
    model = model_with_dropout()
    callback = EarlyStopping(patience=patience)
    assert drive(callback, model, values) == stopped_at
    assert callback.stopped_epoch == stopped_at


def test_restore_best_weights_puts_back_the_best_epoch():
    model = model_with_dropout()
    callback = EarlyStopping(monitor="val_accuracy", patience=2, restore_best_weights=True)
    drive(callback, model, [0.5, 0.8, 0.7, 0.75, 0.9], monitor="val_accuracy")  # stops after epoch 4
    assert callback.best_epoch == 1
    assert all((w == 1).all() for w in model.get_weights())


def test_restore_best_weights_in_a_real_run():
    x, y = data()
    model = model_with_dropout()

    class Record(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.weights = getattr(self, "weights", []) + [self.model.get_weights()]
    record = Record()
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=30, callbacks=[record, stop], **FIT)
    best = int(np.argmin(history.history["val_loss"]))
    assert stop.best_epoch == best < history.epoch[-1] < 29
    for a, b in zip(record.weights[best], model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_argument_errors():
    model = model_with_dropout()
    with pytest.raises(ValueError, match="monitor 'val_loss' is not in the logs"):
        drive(EarlyStopping(), model, [0.3], monitor="loss")
    for kwargs, argument in [({"patience": 1.5}, "patience"), ({"min_delta": "0.1"}, "min_delta"),
                             ({"mode": "up"}, "mode"), ({"monitor": None}, "monitor")]:
        with pytest.raises(ValueError, match=argument):
            EarlyStopping(**kwargs)

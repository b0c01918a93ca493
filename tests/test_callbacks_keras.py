"""Keras's callbacks through real (tiny) fits: the on_batch_* aliases, hooks written Keras's way,
ReduceLROnPlateau, LearningRateScheduler, CSVLogger, LambdaCallback, ModelCheckpoint(save_freq),
EarlyStopping(start_from_epoch).

Tests marked "[fit loop]" rely on models.py's fit calling the hooks as Keras does: user callbacks
before History and the progress bar, and every hook given a logs dict, positionally.
"""
import contextlib
import io
import os
import re
import types

import numpy as np
import pytest

from minicnn import optimizers
from minicnn.callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler,
                               ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN, format_value)
from minicnn.layers import Dense
from minicnn.models import Sequential, load_model
from minicnn.utils import files
from minicnn.utils import to_categorical

STEPS = 4                                           # 32 samples, batches of 8
FIT = {"batch_size": 8, "verbose": 0, "shuffle": True}


def data(n=32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 4)).astype("float32"), to_categorical(rng.integers(0, 3, n), 3)


def tiny_model(learning_rate=0.1):
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(learning_rate=learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def learning_rate(model):
    return float(model.optimizer.learning_rate)


def drive(callback, model, values, monitor="val_loss"):
    """Scripted epochs: on_epoch_end with {monitor: value}, until a stop; returns each epoch's logs."""
    model.stop_training = False
    callback.set_model(model)
    callback.set_params({"epochs": len(values), "steps": 1, "verbose": 0, "metrics": ["loss", monitor]})
    callback.on_train_begin({})
    all_logs = []
    for epoch, value in enumerate(values):
        logs = {monitor: value}
        callback.on_epoch_end(epoch, logs)
        all_logs.append(logs)
        if model.stop_training:
            break
    return all_logs


# --- the Callback base class ------------------------------------------------------------------
def test_on_batch_end_written_keras_2s_way_decays_the_learning_rate_every_batch():
    """A per-batch decay overriding on_batch_end (Keras's alias of on_train_batch_end) really runs,
    and the optimizer trains with the rate it sets: after batch 0 the rate is ~0, the weights freeze."""
    x, y = data()

    class Decay(Callback):
        def __init__(self, factor):
            super().__init__()
            self.factor, self.weights_after_first, self.begins = factor, None, []

        def on_batch_begin(self, batch, logs=None):
            self.begins.append(batch)

        def on_batch_end(self, batch, logs=None):
            if self.weights_after_first is None:
                self.weights_after_first = self.model.get_weights()
            self.model.optimizer.learning_rate = float(self.model.optimizer.learning_rate) * self.factor

    gentle, freezing = Decay(0.5), Decay(1e-9)
    gentle_model = tiny_model()
    gentle_model.fit(x, y, epochs=2, callbacks=[gentle], **FIT)
    assert gentle.begins == [0, 1, 2, 3] * 2
    assert learning_rate(gentle_model) == pytest.approx(0.1 * 0.5 ** (2 * STEPS))

    model = tiny_model()
    initial = model.get_weights()
    model.fit(x, y, epochs=2, callbacks=[freezing], **FIT)
    assert not np.allclose(initial[0], freezing.weights_after_first[0])          # batch 0 trained at 0.1
    for after_first, final in zip(freezing.weights_after_first, model.get_weights()):
        np.testing.assert_allclose(final, after_first, atol=1e-6)                 # then at 1e-10 and less
    moved = max(np.abs(a - b).max() for a, b in zip(gentle.weights_after_first, gentle_model.get_weights()))
    assert moved > 1e-3                                                           # which a gentle decay does not


def test_on_train_batch_end_overridden_replaces_on_batch_end():
    """As in Keras: overriding on_train_batch_* without calling super() leaves on_batch_* uncalled."""
    calls = []

    class New(Callback):
        def on_train_batch_end(self, batch, logs=None):
            calls.append("new")

        def on_batch_end(self, batch, logs=None):
            calls.append("old")
    tiny_model().fit(*data(), epochs=1, callbacks=[New()], **FIT)
    assert calls == ["new"] * STEPS


def test_hooks_written_keras_s_way_without_a_default_for_logs():
    """[fit loop] def on_train_begin(self, logs): every hook gets a logs dict."""
    seen = []

    class Strict(Callback):
        def on_train_begin(self, logs):
            seen.append(("train_begin", type(logs)))

        def on_epoch_begin(self, epoch, logs):
            seen.append(("epoch_begin", type(logs)))

        def on_train_batch_begin(self, batch, logs):
            seen.append(("batch_begin", type(logs)))

        def on_train_batch_end(self, batch, logs):
            seen.append(("batch_end", type(logs)))

        def on_epoch_end(self, epoch, logs):
            seen.append(("epoch_end", type(logs)))

        def on_train_end(self, logs):
            seen.append(("train_end", type(logs)))
    tiny_model().fit(*data(), epochs=2, callbacks=[Strict()], **FIT)
    assert all(kind is dict for _, kind in seen)
    names = [name for name, _ in seen]
    epoch = ["epoch_begin"] + ["batch_begin", "batch_end"] * STEPS + ["epoch_end"]
    assert names == ["train_begin"] + epoch * 2 + ["train_end"]


def test_a_callback_has_the_model_and_the_params():
    model = tiny_model()
    seen = {}

    class Look(Callback):
        def on_train_begin(self, logs=None):
            seen.update(model=self.model, params=dict(self.params))
    model.fit(*data(), epochs=3, validation_split=0.25, callbacks=[Look()], **FIT)
    assert seen["model"] is model
    assert seen["params"] == {"epochs": 3, "steps": 3, "verbose": 0,
                              "metrics": ["loss", "accuracy", "val_loss", "val_accuracy"]}


def test_keys_a_callback_adds_reach_history_and_the_progress_line(capsys):
    """[fit loop] user callbacks run before History and the progress bar (Keras's order)."""

    class Note(Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["noted"] = 1.23456 + epoch
    history = tiny_model().fit(*data(), epochs=2, callbacks=[Note()], **{**FIT, "verbose": 2})
    assert history.history["noted"] == [1.23456, 2.23456]
    lines = capsys.readouterr().out.splitlines()
    assert "noted: 1.2346" in lines[0] and "noted: 2.2346" in lines[1]


def test_progress_values_are_shown_as_keras_shows_them():
    assert format_value(0.45213) == "0.4521"
    assert format_value(1e-4) == "1.0000e-04"       # a learning rate stays readable
    assert format_value(0.001) == "1.0000e-03"      # Keras: 4 decimals only above 1e-3
    assert format_value("n/a") == "n/a"


# --- ReduceLROnPlateau --------------------------------------------------------------------------
def test_reduce_lr_on_plateau_in_a_real_fit(capsys):
    """[fit loop] A forced plateau: min_delta so large that nothing after the first epoch improves.
    logs['learning_rate'] is the rate each epoch trained with; history['lr'] is its Keras 2 name."""
    model = tiny_model(0.1)
    reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9, verbose=1)
    history = model.fit(*data(), epochs=4, callbacks=[reduce], **FIT)
    expected = [0.1, 0.1, 0.05, 0.025]
    assert history.history["learning_rate"] == pytest.approx(expected)
    assert history.history["lr"] == pytest.approx(expected) and "lr" in history.history
    assert learning_rate(model) == pytest.approx(0.0125)
    out = capsys.readouterr().out
    assert "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.05." in out
    assert "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.0125." in out


def test_reduce_lr_on_plateau_shows_the_learning_rate_on_the_progress_line(capsys):
    """[fit loop] the progress bar comes after the user's callbacks."""
    tiny_model(1e-4).fit(*data(), epochs=1, callbacks=[ReduceLROnPlateau(monitor="loss")], **{**FIT, "verbose": 1})
    assert "learning_rate: 1.0000e-04" in capsys.readouterr().out


def test_reduce_lr_on_plateau_cooldown_and_min_lr_as_keras():
    """Constant values: patience 1, cooldown 2 (two epochs not counted after a reduction), min_lr 0.2.
    A rate at min_lr is not reduced again (compared in float32, as Keras: 0.2 is not > float32(0.2))."""
    model = tiny_model(1.0)
    logs = drive(ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.2), model, [1.0] * 9)
    assert [entry["learning_rate"] for entry in logs] == pytest.approx([1, 1, .5, .5, .25, .25, .2, .2, .2])
    assert learning_rate(model) == pytest.approx(0.2)


def test_reduce_lr_on_plateau_with_a_float32_rate_stops_at_min_lr():
    """An optimizer that keeps its rate in float32: float32(0.001) is a little above 0.001, yet a rate
    at min_lr is not set again and again (Keras compares with float32(min_lr) for this)."""

    class Float32Optimizer:
        def __init__(self, rate):
            self.rate, self.assigned = np.float32(rate), []

        @property
        def learning_rate(self):
            return self.rate

        @learning_rate.setter
        def learning_rate(self, value):
            self.assigned.append(value)
            self.rate = np.float32(value)
    model = types.SimpleNamespace(optimizer=Float32Optimizer(0.01))
    drive(ReduceLROnPlateau(patience=0, min_lr=0.001), model, [1.0] * 6)
    assert model.optimizer.assigned == [pytest.approx(0.001)]


def test_reduce_lr_on_plateau_waits_for_patience_and_improvements_reset_it():
    model = tiny_model(1.0)
    # 'val_accuracy' is maximised: 0.6 (epoch 2) improves on 0.5 and resets the wait; epochs 3 and 4 miss,
    # so epoch 4 cuts the rate, which epoch 5 logs
    logs = drive(ReduceLROnPlateau(monitor="val_accuracy", patience=2), model,
                 [0.5, 0.5, 0.6, 0.6, 0.6, 0.6], monitor="val_accuracy")
    assert [entry["learning_rate"] for entry in logs] == pytest.approx([1, 1, 1, 1, 1, 0.1])
    model = tiny_model(1.0)
    drive(ReduceLROnPlateau(patience=0, mode="max"), model, [0.5, 0.4])      # mode='max': 0.4 is worse
    assert learning_rate(model) == pytest.approx(0.1)
    model = tiny_model(1.0)
    drive(ReduceLROnPlateau(patience=1), model, [0.5, np.nan, 0.4, np.nan])  # NaN never improves
    assert learning_rate(model) == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs, argument", [
    ({"factor": 1.0}, "factor"), ({"factor": 0}, "factor"), ({"patience": -1}, "patience"),
    ({"cooldown": 0.5}, "cooldown"), ({"min_lr": -1e-3}, "min_lr"), ({"mode": "lower"}, "mode"),
    ({"verbose": 2}, "verbose"), ({"monitor": None}, "monitor"), ({"min_delta": "1e-4"}, "min_delta"),
])
def test_reduce_lr_on_plateau_argument_errors(kwargs, argument):
    with pytest.raises(ValueError, match=f"ReduceLROnPlateau: {argument}"):
        ReduceLROnPlateau(**kwargs)


def test_reduce_lr_on_plateau_monitor_is_checked_before_the_first_batch():
    model = tiny_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="ReduceLROnPlateau: monitor 'val_loss' is not in the logs"):
        model.fit(*data(), epochs=2, callbacks=[ReduceLROnPlateau()], **FIT)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# --- LearningRateScheduler ---------------------------------------------------------------------------
def test_learning_rate_scheduler_with_the_current_rate(capsys):
    """[fit loop, for history] schedule(epoch, lr), Keras 3's form."""
    model = tiny_model(0.1)
    history = model.fit(*data(), epochs=3, callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5, verbose=1)],
                        **FIT)
    assert history.history["lr"] == pytest.approx([0.05, 0.025, 0.0125])
    assert learning_rate(model) == pytest.approx(0.0125)
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out


def test_learning_rate_scheduler_with_the_epoch_only_and_the_optimizer_uses_it():
    """schedule(epoch), Keras 2's form: epoch 0 trains at 0.1, the next ones at 1e-12 (weights freeze)."""
    model = tiny_model(0.5)
    after_first = {}
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: after_first.setdefault("w", model.get_weights()))

    def schedule(epoch):
        return 0.1 if epoch == 0 else 1e-12
    model.fit(*data(), epochs=3, callbacks=[LearningRateScheduler(schedule), record], **FIT)
    assert learning_rate(model) == pytest.approx(1e-12)
    for a, b in zip(after_first["w"], model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_learning_rate_scheduler_argument_forms():
    seen = []

    def with_default(epoch, lr=123.0):
        seen.append(lr)
        return 0.2

    class Schedule:
        def __call__(self, epoch, *rest):
            seen.append(rest)
            return 0.3
    model = tiny_model(0.1)
    drive_begin(LearningRateScheduler(with_default), model)
    assert seen == [pytest.approx(0.1)]                        # a second parameter gets the current rate
    assert learning_rate(model) == pytest.approx(0.2)
    drive_begin(LearningRateScheduler(Schedule()), model)
    assert seen[1] == (pytest.approx(0.2),) and learning_rate(model) == pytest.approx(0.3)


def drive_begin(callback, model, epoch=0):
    callback.set_model(model)
    callback.on_epoch_begin(epoch, {})


@pytest.mark.parametrize("returned", [-0.1, 0, float("nan"), float("inf"), "0.01", None, True, [0.1]])
def test_learning_rate_scheduler_refuses_a_bad_rate_and_changes_nothing(returned):
    model = tiny_model(0.1)
    before = model.get_weights()
    message = (re.escape("the schedule must return the new learning rate, a positive finite number; ") +
               r"schedule\(0, 0\.1\d*\) returned " + re.escape(repr(returned)))
    with pytest.raises(ValueError, match=message):
        model.fit(*data(), epochs=2, callbacks=[LearningRateScheduler(lambda epoch, lr: returned)], **FIT)
    assert learning_rate(model) == pytest.approx(0.1)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.parametrize("schedule", [0.1, lambda: 0.1, lambda epoch, lr, extra: 0.1, lambda epoch, *, lr: 0.1])
def test_learning_rate_scheduler_refuses_what_is_not_a_schedule(schedule):
    with pytest.raises(TypeError, match=r"schedule must be a function schedule\(epoch\) or schedule\(epoch, lr\)"):
        LearningRateScheduler(schedule)


# --- CSVLogger -----------------------------------------------------------------------------------
def read_rows(path, separator=","):
    return [line.split(separator) for line in path.read_text().splitlines()]


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history = tiny_model().fit(*data(), epochs=3, validation_split=0.25, callbacks=[CSVLogger(path)], **FIT)
    rows = read_rows(path)
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [row[0] for row in rows[1:]] == ["0", "1", "2"]
    for column, key in enumerate(rows[0][1:], start=1):
        assert [float(row[column]) for row in rows[1:]] == history.history[key]   # exactly: repr round-trips
    assert path.read_text().endswith("\n")


def test_csv_logger_appends_under_the_existing_header_and_sees_earlier_callbacks(tmp_path):
    path = tmp_path / "log.csv"
    x, y = data()
    model = tiny_model()
    model.fit(x, y, epochs=2, callbacks=[ReduceLROnPlateau(monitor="loss"), CSVLogger(path, separator=";")], **FIT)
    model.fit(x, y, epochs=4, initial_epoch=2,
              callbacks=[ReduceLROnPlateau(monitor="loss"), CSVLogger(path, separator=";", append=True)], **FIT)
    rows = read_rows(path, ";")
    assert rows[0] == ["epoch", "accuracy", "learning_rate", "loss"]
    assert [row[0] for row in rows] == ["epoch", "0", "1", "2", "3"]             # one header
    assert [float(row[2]) for row in rows[1:]] == pytest.approx([0.1] * 4)


def test_csv_logger_without_append_starts_a_new_file(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("old contents\n")
    tiny_model().fit(*data(), epochs=1, callbacks=[CSVLogger(path)], **FIT)
    assert [row[0] for row in read_rows(path)] == ["epoch", "0"]


def test_csv_logger_appending_uses_the_file_s_columns(tmp_path):
    """Names the header lacks are left out (with a warning); columns the logs lack are NA."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss,val_loss\n0,0.9,1.0\n")
    with pytest.warns(UserWarning, match=r"\['accuracy'\] are not columns of .*left out"):
        tiny_model().fit(*data(), epochs=3, initial_epoch=1, callbacks=[CSVLogger(path, append=True)], **FIT)
    rows = read_rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"] and len(rows) == 4
    assert [row[2] for row in rows[2:]] == ["NA", "NA"]


def test_csv_logger_starts_a_new_line_after_a_row_cut_short(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch,accuracy,loss\n0,0.5,0.9\n1,0.6")
    with pytest.warns(UserWarning, match="last line .* is incomplete"):
        tiny_model().fit(*data(), epochs=2, initial_epoch=1, callbacks=[CSVLogger(path, append=True)], **FIT)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["epoch,accuracy,loss", "0,0.5,0.9", "1,0.6"] and lines[3].startswith("1,")


def test_csv_logger_refuses_a_file_it_cannot_continue_before_the_first_batch(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("epoch;loss\n0;0.9\n")
    model = tiny_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="cannot append to .*separator ','"):
        model.fit(*data(), epochs=1, callbacks=[CSVLogger(path, append=True)], **FIT)
    assert path.read_text() == "epoch;loss\n0;0.9\n"
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    with pytest.raises(ValueError, match="is a folder"):
        tiny_model().fit(*data(), epochs=1, callbacks=[CSVLogger(tmp_path)], **FIT)


def test_csv_logger_never_leaves_half_a_row(tmp_path, monkeypatch):
    """A write that fails (disk full, a crash) during epoch 2 leaves the file of epoch 1, whole."""
    path = tmp_path / "log.csv"
    writes = []

    def fsync_failing_the_second_time(descriptor):
        writes.append(descriptor)
        if len(writes) == 2:
            raise OSError("No space left on device")
    monkeypatch.setattr(files.os, "fsync", fsync_failing_the_second_time)
    with pytest.raises(OSError, match="No space left"):
        tiny_model().fit(*data(), epochs=3, callbacks=[CSVLogger(path)], **FIT)
    assert [row[0] for row in read_rows(path)] == ["epoch", "0"] and path.read_text().endswith("\n")
    assert os.listdir(tmp_path) == ["log.csv"]                                   # no temporary file left


@pytest.mark.parametrize("kwargs, error, message", [
    ({"filename": None}, TypeError, "filename must be a path"),
    ({"filename": "log.csv", "separator": ", "}, ValueError, "separator must be one character"),
    ({"filename": "log.csv", "append": "yes"}, ValueError, "append must be True or False"),
])
def test_csv_logger_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        CSVLogger(**kwargs)


# --- LambdaCallback ---------------------------------------------------------------------------------
def test_lambda_callback_calls_each_function_at_its_hook():
    """[fit loop] on_train_begin=lambda logs: ... takes logs positionally, as in Keras."""
    calls = []
    callback = LambdaCallback(
        on_epoch_begin=lambda epoch, logs: calls.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, "loss" in logs)),
        on_batch_begin=lambda batch, logs: calls.append(("batch_begin", batch)),
        on_batch_end=lambda batch, logs: calls.append(("batch_end", batch, "loss" in logs)),
        on_train_begin=lambda logs: calls.append(("train_begin",)),
        on_train_end=lambda logs: calls.append(("train_end",)))
    tiny_model().fit(*data(), epochs=2, callbacks=[callback], **FIT)
    counts = {name: sum(call[0] == name for call in calls) for name in
              ("train_begin", "epoch_begin", "batch_begin", "batch_end", "epoch_end", "train_end")}
    assert counts == {"train_begin": 1, "epoch_begin": 2, "batch_begin": 8, "batch_end": 8, "epoch_end": 2,
                      "train_end": 1}
    assert calls[0] == ("train_begin",) and calls[-1] == ("train_end",)
    assert ("epoch_end", 1, True) in calls and ("batch_end", 3, True) in calls


def test_lambda_callback_takes_keras_3_s_batch_names_too():
    batches = []
    tiny_model().fit(*data(), epochs=1, callbacks=[
        LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))], **FIT)
    assert batches == [0, 1, 2, 3]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"on_batch_end": print, "on_train_batch_end": print}, ValueError, "on_batch_end or on_train_batch_end, not both"),
    ({"on_epoch_end": "print"}, TypeError, "on_epoch_end must be a function"),
    ({"on_test_end": print}, TypeError, "minicnn does not support 'on_test_end'"),
])
def test_lambda_callback_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        LambdaCallback(**kwargs)


# --- ModelCheckpoint ------------------------------------------------------------------------------------
def test_checkpoint_save_freq_epoch_is_the_default(tmp_path):
    tiny_model().fit(*data(), epochs=2, callbacks=[ModelCheckpoint(tmp_path / "e{epoch}.h5", save_freq="epoch")],
                     **FIT)
    assert sorted(os.listdir(tmp_path)) == ["e1.h5", "e2.h5"]


def test_checkpoint_every_n_batches(tmp_path):
    """save_freq=3 over 2 epochs of 4 batches: after batches 3 and 6, i.e. epoch 1 batch 3, epoch 2 batch 2."""
    model = tiny_model()
    model.fit(*data(), epochs=2, callbacks=[ModelCheckpoint(tmp_path / "ck-{epoch}-{batch}-{loss:.2f}.h5",
                                                            save_freq=3)], **FIT)
    names = sorted(os.listdir(tmp_path))
    assert [name[:7] for name in names] == ["ck-1-3-", "ck-2-2-"]
    first, second = (load_model(tmp_path / name) for name in names)
    assert (first.completed_epochs, first.partial_epoch_batches) == (0, 3)   # saved during an epoch, and says so
    assert (second.completed_epochs, second.partial_epoch_batches) == (1, 2)
    assert second.optimizer.iterations == 6


def test_checkpoint_every_n_batches_best_only_watches_the_batch_loss(tmp_path):
    model = tiny_model()
    checkpoint = ModelCheckpoint(tmp_path / "best.h5", monitor="loss", save_best_only=True, save_freq=1)
    model.fit(*data(), epochs=2, callbacks=[checkpoint], **FIT)
    assert os.listdir(tmp_path) == ["best.h5"] and checkpoint.best is not None


def test_checkpoint_weights_only_and_keras_s_argument_order(tmp_path, capsys):
    """ModelCheckpoint(filepath, monitor, verbose, save_best_only, save_weights_only, mode), as Keras."""
    model = tiny_model()
    checkpoint = ModelCheckpoint(tmp_path / "w.h5", "loss", 1, True, True, "min")
    assert (checkpoint.verbose, checkpoint.save_best_only, checkpoint.save_weights_only) == (1, True, True)
    weights = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append(model.get_weights()))
    history = model.fit(*data(), epochs=3, callbacks=[record, checkpoint], **FIT)
    assert re.search(r"Epoch 1: loss improved from None to \d\.\d{5}, saving model to .*w\.h5",
                     capsys.readouterr().out)
    best = int(np.argmin(history.history["loss"]))
    other = tiny_model()
    other.load_weights(tmp_path / "w.h5")
    for a, b in zip(other.get_weights(), weights[best]):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_initial_value_threshold(tmp_path):
    checkpoint = ModelCheckpoint(tmp_path / "m.h5", monitor="loss", save_best_only=True, initial_value_threshold=0.0)
    tiny_model().fit(*data(), epochs=2, callbacks=[checkpoint], **FIT)                # no loss is below 0
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"save_freq": "batch"}, "save_freq must be 'epoch' or a number of batches"),
    ({"save_freq": 0}, "save_freq must be 'epoch' or a number of batches"),
    ({"save_freq": 2.5}, "save_freq must be 'epoch' or a number of batches"),
    ({"save_freq": True}, "save_freq must be 'epoch' or a number of batches"),
    ({"save_freq": 10, "save_best_only": True}, "'val_loss' is computed only at the end of an epoch"),
    ({"initial_value_threshold": "0.5"}, "initial_value_threshold"),
])
def test_checkpoint_save_freq_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelCheckpoint("m.h5", **kwargs)


def test_checkpoint_batch_template_needs_an_int_save_freq(tmp_path):
    with pytest.raises(ValueError, match=r"cannot fill in filepath.*it may use \{epoch\} and the logs"):
        tiny_model().fit(*data(), epochs=1, callbacks=[ModelCheckpoint(tmp_path / "m-{batch}.h5")], **FIT)
    assert os.listdir(tmp_path) == []


# --- EarlyStopping, TerminateOnNaN with user callbacks first ---------------------------------------------
def test_early_stopping_start_from_epoch():
    model = tiny_model()
    worse_each_epoch = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    stop = EarlyStopping(start_from_epoch=3)
    drive(stop, model, worse_each_epoch)
    assert stop.stopped_epoch == 4 and stop.best_epoch == 3      # epochs 0-2 were a warm-up
    stop = EarlyStopping()
    drive(stop, model, worse_each_epoch)
    assert stop.stopped_epoch == 1


def test_early_stopping_keras_s_argument_order():
    stop = EarlyStopping("loss", 0.01, 2, 1, "min", restore_best_weights=True, start_from_epoch=1)
    assert (stop.monitor, stop.patience, stop.verbose, stop.restore_best_weights, stop.start_from_epoch) == \
        ("loss", 2, 1, True, 1)
    with pytest.raises(ValueError, match="start_from_epoch"):
        EarlyStopping(start_from_epoch=-1)


def test_early_stopping_restores_the_best_weights_with_history_after_it():
    """[fit loop] EarlyStopping runs before History now; History still records every epoch."""
    x, y = data()
    model = tiny_model(0.5)
    weights = []
    record = LambdaCallback(on_epoch_end=lambda epoch, logs: weights.append(model.get_weights()))
    stop = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=40, validation_split=0.25, callbacks=[record, stop], **FIT)
    assert len(history.history["val_loss"]) == len(history.epoch) == len(weights)
    best = int(np.argmin(history.history["val_loss"]))
    assert stop.best_epoch == best
    for a, b in zip(weights[best], model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_before_history():
    """[fit loop] TerminateOnNaN among the user's callbacks: History still gets the stopped epoch's row."""
    model = tiny_model()

    class Poison(Callback):
        def on_batch_end(self, batch, logs=None):
            if model.optimizer.iterations == 5:
                model.layers[-1].params["kernel"][0, 0] = np.nan
    with contextlib.redirect_stdout(io.StringIO()) as out:
        history = model.fit(*data(), epochs=3, callbacks=[Poison(), TerminateOnNaN()], **FIT)
    assert "invalid loss nan, terminating training" in out.getvalue()
    assert history.epoch == [0, 1] and np.isnan(history.history["loss"][1]) and history.partial_epoch == 1

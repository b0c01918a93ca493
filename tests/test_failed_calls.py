"""A failed call changes nothing, and no wrong answer is silent (issue 12).

A call that raises leaves the model, its optimizer, the random generator and every file as
they were; a training result or a check is never wrong without an error or a warning.
One section per item of the issue, then what was found beside it.
"""
import contextlib
import io
import json
import os
import re
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from conftest import toy_images
from test_saving import _rewrite as rewrite, config_of
from minicnn import backend, losses, optimizers, saving
from minicnn.callbacks import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN
from minicnn.layers import BatchNormalization, Conv2D, Dense, Flatten, LeakyReLU, MaxPooling2D
from minicnn.models import Input, Model, Sequential, load_model
from minicnn.utils import to_categorical
from minicnn.utils import files as files_module


# --- helpers ------------------------------------------------------------------------------------
def small_model(optimizer="adam", input_shape=(8, 8, 1)):
    """Conv -> BatchNormalization -> LeakyReLU -> pool -> dense softmax: weights, layer state and Adam state."""
    first = Conv2D(2, 3, padding="same", input_shape=input_shape) if input_shape else Conv2D(2, 3, padding="same")
    model = Sequential([first, BatchNormalization(), LeakyReLU(alpha=0.1), MaxPooling2D(2), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=32):
    x, labels = toy_images(n)
    return x, to_categorical(labels, 3)


def dense_model(optimizer="adam"):
    model = Sequential([Dense(4, input_shape=(4,), activation="tanh"), Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    return model


def dense_data(n=16):
    rng = np.random.default_rng(0)
    return rng.random((n, 4), dtype=np.float32), to_categorical(np.arange(n) % 3, 3)


def everything(model):
    """What a failed call must leave as it was: weights, optimizer state and counters, progress."""
    optimizer = model.optimizer
    state = None
    if optimizer is not None:
        state = (optimizer.iterations, {name: [backend.to_numpy(a).copy() for a in arrays]
                                        for name, arrays in optimizer.slots.items()})
    return (model.get_weights(), optimizer, state, model.loss, list(model.metrics), model.completed_epochs,
            model.partial_epoch_batches, model.built, [layer.built for layer in model.layers])


def assert_same(before, after):
    weights, optimizer, state, loss, metrics, *rest = before
    weights_after, optimizer_after, state_after, loss_after, metrics_after, *rest_after = after
    assert len(weights) == len(weights_after)
    for a, b in zip(weights, weights_after):
        np.testing.assert_array_equal(a, b)
    assert optimizer is optimizer_after and loss is loss_after and metrics == metrics_after
    if state is not None:
        assert state[0] == state_after[0] and state[1].keys() == state_after[1].keys()
        for name in state[1]:
            for a, b in zip(state[1][name], state_after[1][name]):
                np.testing.assert_array_equal(a, b)
    assert rest == rest_after


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


class StopAt(Callback):
    """Sets stop_training (or raises `error`) after batch `batch` of epoch `epoch`."""

    def __init__(self, epoch, batch, error=None):
        super().__init__()
        self.target, self.error = (epoch, batch), error

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.target:
            if self.error is not None:
                raise self.error
            self.model.stop_training = True


# --- 1. a layer object used twice -----------------------------------------------------------------
def test_a_layer_used_twice_in_one_model_is_refused():
    shared = Dense(4, activation="tanh")
    with pytest.raises(ValueError, match=r"layer 'dense\w*' \(Dense\) is used twice in one model, at positions 1 "
                                         r"and 2.*create another Dense"):
        Sequential([Dense(4, input_shape=(4,), activation="tanh"), shared, shared, Dense(3, activation="softmax")])
    model = Sequential([Dense(4, input_shape=(4,), activation="tanh"), shared])
    with pytest.raises(ValueError, match="used twice"):
        model.add(shared)
    assert model.layers[-1] is shared and len(model.layers) == 2      # the refused layer is not added

    inputs = Input((4,))
    with pytest.raises(ValueError, match="used twice"):
        Model(inputs, shared(shared(inputs)))


def test_a_layer_added_twice_by_hand_is_refused_before_training():
    model = dense_model()
    model.layers.insert(1, model.layers[0])           # around add(): caught when the step plan is made
    x, y = dense_data()
    with pytest.raises(ValueError, match="used twice"):
        model.fit(x, y, verbose=0)
    assert model.optimizer.iterations == 0


# --- 3. out-of-range values in a model file -----------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    model = small_model()
    model.fit(*data(), batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "good.h5")
    return model, tmp_path / "good.h5"


@pytest.mark.parametrize("entry", ["weights/0.npy", "optimizer/m_0.npy", "optimizer/v_0.npy"])
def test_float64_values_beyond_float32_are_refused_not_loaded_as_inf(saved, tmp_path, entry):
    model, good = saved
    with zipfile.ZipFile(good) as archive:
        array = np.load(io.BytesIO(archive.read(entry))).astype(np.float64)
    array.flat[0] = 1e39                               # finite in float64, inf in float32
    bad = rewrite(good, tmp_path / "bad.h5", {entry: npy(array)})
    with pytest.raises(saving.ModelFileError, match=rf"{entry}.*up to 1e\+39, beyond float32's range"):
        load_model(bad)


def test_a_negative_adam_second_moment_is_refused(saved, tmp_path):
    _, good = saved
    with zipfile.ZipFile(good) as archive:
        v = np.load(io.BytesIO(archive.read("optimizer/v_1.npy")))
    v[0] = -1.0
    with pytest.raises(saving.ModelFileError, match="optimizer/v_1.npy.*negative"):
        load_model(rewrite(good, tmp_path / "bad.h5", {"optimizer/v_1.npy": npy(v)}))


def test_set_weights_refuses_values_that_would_become_inf():
    model = dense_model()
    weights = [w.astype(np.float64) for w in model.get_weights()]
    before = everything(model)
    weights[2][0, 0] = 1e39
    with pytest.raises(ValueError, match=r"layer 'dense\w*': weight 'kernel' is float32.*got values up to 1e\+39"):
        model.set_weights(weights)
    assert_same(before, everything(model))


# --- 4. a failing call changes nothing ---------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {"optimizer": "sgd", "loss": "categorical_crossentropy", "metrics": ["acuracy"]},
    {"optimizer": "sgd", "loss": "categorical_crossentropy", "metrics": 3},
    {"optimizer": "sgd", "loss": "hinge"},
    {"optimizer": "adamw", "loss": "sparse_categorical_crossentropy"},
])
def test_a_failed_compile_keeps_the_optimizer_its_state_and_the_loss(kwargs):
    model = small_model()
    model.fit(*data(), batch_size=8, epochs=1, verbose=0)
    before = everything(model)
    with pytest.raises((ValueError, TypeError)):
        model.compile(**kwargs)
    assert_same(before, everything(model))


def test_set_weights_checks_every_array_before_changing_any():
    model = small_model()
    weights = [w + 1 for w in model.get_weights()]
    before = everything(model)
    for bad in (weights[:-1] + [np.zeros(7, np.float32)],            # the last array has the wrong shape
                weights[:-1] + [np.array(["a"] * 3)],                 # ... is not numbers
                weights[:-1]):                                        # ... is missing
        with pytest.raises((ValueError, TypeError), match="weight|weight arrays"):
            model.set_weights(bad)
        assert_same(before, everything(model))


def test_load_weights_from_a_mismatched_file_changes_nothing(tmp_path):
    other = Sequential([Conv2D(2, 3, padding="same", input_shape=(8, 8, 1)), BatchNormalization(),
                        LeakyReLU(alpha=0.1), MaxPooling2D(2), Flatten(), Dense(4, activation="softmax")])
    other.save_weights(tmp_path / "other.h5")
    model = small_model()
    before = everything(model)
    with pytest.raises(ValueError, match="shape"):
        model.load_weights(tmp_path / "other.h5")
    assert_same(before, everything(model))


CALLS = {
    "fit": lambda model, x, y: model.fit(x, y, batch_size=0, verbose=0),
    "fit (bad labels)": lambda model, x, y: model.fit(x, y[:, :2], verbose=0),
    "fit (callback)": lambda model, x, y: model.fit(x, y, verbose=0, callbacks=[EarlyStopping()]),
    "evaluate": lambda model, x, y: model.evaluate(x, y, verbose=7),
    "predict": lambda model, x, y: model.predict(x, batch_size=-1),
    "train_on_batch": lambda model, x, y: model.train_on_batch(x, y * 2),
    "prepare_batch": lambda model, x, y: model.prepare_batch(x, y[:3]),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_failed_call_leaves_an_unbuilt_model_unbuilt(call):
    model = small_model(input_shape=None)
    x, y = data(8)
    backend.set_random_seed(3)
    with pytest.raises(ValueError):
        CALLS[call](model, x, y)
    assert not model.built and not any(layer.built for layer in model.layers) and model.input_shape is None
    after_failure = backend.rng().random(3)           # the failed build's random draws were put back
    backend.set_random_seed(3)
    np.testing.assert_array_equal(after_failure, backend.rng().random(3))
    model.fit(x[:, :4, :4], y, verbose=0)            # and it can still be built for another shape
    assert model.input_shape == (None, 4, 4, 1)


# --- 5. training stopped during an epoch ---------------------------------------------------------------
FIT = {"batch_size": 8, "verbose": 0, "shuffle": True}   # 32 samples: 4 batches an epoch


def test_a_stop_during_an_epoch_saves_no_checkpoint_of_it(tmp_path):
    x, y = data()
    model = small_model()
    every = ModelCheckpoint(tmp_path / "ck-{epoch}.h5")
    last = ModelCheckpoint(tmp_path / "last.h5")
    history = model.fit(x, y, epochs=4, callbacks=[every, last, StopAt(epoch=1, batch=1)], **FIT)
    assert sorted(os.listdir(tmp_path)) == ["ck-1.h5", "last.h5"]
    assert load_model(tmp_path / "last.h5").completed_epochs == 1      # the last whole epoch, not overwritten
    assert (model.completed_epochs, model.partial_epoch_batches) == (1, 2)
    assert history.epoch == [0, 1] and history.partial_epoch == 1     # Keras's row for the stopped epoch, marked
    assert model.optimizer.iterations == 4 + 2


def test_terminate_on_nan_saves_no_checkpoint_of_the_stopped_epoch(tmp_path):
    x, y = data()
    model = small_model()

    class Poison(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if model.optimizer.iterations == 5:
                model.layers[-1].params["kernel"][0, 0] = np.nan
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(x, y, epochs=3, callbacks=[Poison(), TerminateOnNaN(), ModelCheckpoint(tmp_path / "ck-{epoch}.h5")],
                  **FIT)
    assert os.listdir(tmp_path) == ["ck-1.h5"]
    assert (model.completed_epochs, model.partial_epoch_batches) == (1, 1)


def test_the_model_says_what_it_holds_after_ctrl_c_and_resuming_warns(tmp_path):
    x, y = data()
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, callbacks=[StopAt(epoch=1, batch=2, error=KeyboardInterrupt())], **FIT)
    assert (model.completed_epochs, model.partial_epoch_batches) == (1, 3)
    assert model.optimizer.iterations == 4 + 3
    model.save(tmp_path / "m.h5")
    loaded = load_model(tmp_path / "m.h5")
    assert (loaded.completed_epochs, loaded.partial_epoch_batches) == (1, 3)
    with pytest.warns(UserWarning, match="already taken 3 optimizer steps into it.*not be exactly"):
        loaded.fit(x, y, epochs=2, initial_epoch=loaded.completed_epochs, **FIT)
    assert (loaded.completed_epochs, loaded.partial_epoch_batches) == (2, 0)


def test_resuming_at_an_epoch_boundary_does_not_warn(tmp_path):
    x, y = data()
    model = small_model()
    model.fit(x, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "m.h5")], **FIT)
    loaded = load_model(tmp_path / "m.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded.fit(x, y, epochs=2, initial_epoch=1, **FIT)


def test_the_progress_bar_of_a_stopped_epoch_ends_where_it_stopped(capsys):
    x, y = data()
    small_model().fit(x, y, epochs=2, batch_size=8, verbose=1, callbacks=[StopAt(epoch=0, batch=1)])
    out = capsys.readouterr().out
    assert "2/4 [" in out and "4/4 [" not in out


# --- 6. an update that overflows is undone ----------------------------------------------------------------
@pytest.mark.parametrize("optimizer", [lambda: optimizers.Adam(1e300), lambda: optimizers.SGD(1e300, momentum=0.9)])
def test_an_update_that_overflows_changes_nothing(tmp_path, optimizer):
    model = small_model(optimizer())
    x, y = data()
    before = everything(model)
    with pytest.raises(RuntimeError, match="fit, epoch 1, batch 1: the update overflowed.*changed no weight"):
        model.fit(x, y, epochs=1, **FIT)
    assert_same(before, everything(model))
    model.save(tmp_path / "m.h5")                      # finite weights: the file loads again
    load_model(tmp_path / "m.h5")


def test_an_overflowing_update_after_training_keeps_the_optimizer_state():
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=1, **FIT)
    before = everything(model)
    model.optimizer.learning_rate = 1e300
    with pytest.raises(RuntimeError, match="train_on_batch: the update overflowed"):
        model.train_on_batch(x, y)
    assert_same(before, everything(model))


class RaiseAt:
    """An observer that raises KeyboardInterrupt at one of its hooks: Ctrl-C in the middle of a step."""

    def __init__(self, hook):
        self.hook = hook

    def __getattr__(self, name):
        if name == self.hook:
            def interrupt(*args):
                raise KeyboardInterrupt
            return interrupt
        if name.startswith(("before_", "after_")):
            return lambda *args: None
        raise AttributeError(name)


@pytest.mark.parametrize("hook", ["before_backward", "after_backward", "after_update"])
def test_ctrl_c_in_the_middle_of_a_step_puts_everything_back(hook):
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=1, **FIT)
    before = everything(model)
    xb, yb = model.prepare_batch(x, y)
    with pytest.raises(KeyboardInterrupt):
        model.train_step(xb, yb, observers=[RaiseAt(hook)])
    assert_same(before, everything(model))      # BatchNormalization's moving statistics included


# --- 7. a small file cannot make the loader allocate gigabytes ------------------------------------------------
def test_a_small_file_declaring_huge_weights_is_refused_before_allocating(tmp_path):
    model = Sequential([Flatten(input_shape=(2, 2)), Dense(3, activation="softmax")])
    model.compile(loss="categorical_crossentropy")
    model.save(tmp_path / "small.h5")
    config = config_of(tmp_path / "small.h5")
    config["input_shape"] = [None, 10000, 10000]
    config["weights"] = [[10 ** 8, 3], [3]]
    bad = rewrite(tmp_path / "small.h5", tmp_path / "huge.h5", {"config.json": json.dumps(config)})
    assert bad.stat().st_size < 4000
    tracemalloc.start()
    try:
        with pytest.raises(saving.ModelFileError, match=r"too large for the file.*weight 'kernel' of shape "
                                                        r"\(100000000, 3\)"):
            load_model(bad)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2 ** 20, f"{peak} bytes allocated to refuse a {bad.stat().st_size}-byte file"


def test_an_entry_cannot_claim_more_bytes_than_its_compressed_data_can_hold(tmp_path):
    """A forged zip directory may say an entry expands to a terabyte: its compressed bytes bound it."""
    info = zipfile.ZipInfo("weights/0.npy")
    info.file_size, info.compress_size = 10 ** 12, 100

    class Forged:
        def infolist(self):
            return [info, zipfile.ZipInfo("config.json")]
    (tmp_path / "m.h5").write_bytes(bytes(5000))
    assert saving._weight_budget(Forged(), tmp_path / "m.h5") == 100 * saving.MAX_DEFLATE_RATIO // 2


# --- 8. callback arguments ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, argument", [
    (lambda: EarlyStopping(restore_best_weights="no"), "restore_best_weights"),
    (lambda: EarlyStopping(verbose="yes"), "verbose"),
    (lambda: ModelCheckpoint("m.h5", save_best_only="no"), "save_best_only"),
    (lambda: ModelCheckpoint("m.h5", save_weights_only=1), "save_weights_only"),
    (lambda: ModelCheckpoint("m.h5", verbose=[1]), "verbose"),
])
def test_callback_flags_must_be_true_or_false(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@pytest.mark.parametrize("callback, message", [
    (lambda path: ModelCheckpoint(path / "m-{val_loss:.2f}.h5"), r"cannot fill in filepath.*\['accuracy', 'loss'\]"),
    (lambda path: ModelCheckpoint(path / "m-{epoch:d}-{loss:d}.h5"), "cannot fill in filepath"),
    (lambda path: ModelCheckpoint(path / "m-{}.h5"), "cannot fill in filepath"),
    (lambda path: ModelCheckpoint(path / "m.h5", save_best_only=True), "monitor 'val_loss' is not in the logs"),
    (lambda path: EarlyStopping(monitor="val_accuracy"), "monitor 'val_accuracy' is not in the logs"),
])
def test_callback_mistakes_are_found_before_the_first_batch(tmp_path, callback, message):
    model = small_model()
    before = everything(model)
    with pytest.raises(ValueError, match=message):
        model.fit(*data(), epochs=2, callbacks=[callback(tmp_path)], **FIT)
    assert_same(before, everything(model))
    assert os.listdir(tmp_path) == []


def test_keras_2_names_work_in_templates_and_monitors(tmp_path):
    x, y = data()
    model = small_model()
    stop = EarlyStopping(monitor="val_acc", patience=5)
    model.fit(x, y, epochs=1, validation_split=0.25, callbacks=[
        ModelCheckpoint(tmp_path / "m-{epoch}-{val_acc:.2f}.h5", monitor="val_acc", save_best_only=True), stop], **FIT)
    assert len(os.listdir(tmp_path)) == 1 and stop.best is not None


# --- 9. smaller ones -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["m8[s]", "M8[s]"])
def test_timedeltas_and_dates_are_not_training_data(dtype):
    model = dense_model()
    x, y = dense_data()
    with pytest.raises(TypeError, match=re.escape(f"x must hold real numbers, got dtype {np.dtype(dtype)}")):
        model.fit(x.astype(np.int64).astype(dtype), y, verbose=0)
    with pytest.raises(TypeError, match="y must hold real numbers"):
        model.train_on_batch(x, y.astype(np.int64).astype(dtype))


def test_shuffle_must_be_true_or_false():
    model = dense_model()
    with pytest.raises(ValueError, match="shuffle must be True or False, got 'batch'"):
        model.fit(*dense_data(), shuffle="batch", verbose=0)
    assert model.optimizer.iterations == 0


def test_set_weights_takes_nested_lists():
    model = dense_model()
    weights = [w + 1 for w in model.get_weights()]
    model.set_weights([w.tolist() for w in weights])
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model.layers[0].set_weights([w.tolist() for w in weights[:2]])
    with pytest.raises(TypeError, match="list of arrays"):
        model.set_weights(5)


def test_weights_too_large_for_memory_say_what_was_asked():
    with pytest.raises(MemoryError, match=r"layer 'conv2d\w*' \(Conv2D\), weight 'kernel'.*shape \(3, 3, 1, "
                                          r"1000000000000\) \(float32\) needs 36\.0 TB"):
        Sequential([Conv2D(10 ** 12, 3, input_shape=(8, 8, 1))])
    with pytest.raises(MemoryError, match=r"to_categorical \(the largest label is 1000000000000\).*needs 4\.0 TB"):
        to_categorical([10 ** 12])


def test_a_flattened_size_beyond_int64_is_not_wrapped_around():
    """np.prod wrapped 2**32 * 2**32 to 0: a Dense layer with a (0, 3) kernel built silently."""
    with pytest.raises(MemoryError, match=r"\(18446744073709551616, 3\)"):
        Sequential([Flatten(input_shape=(2 ** 32, 2 ** 32)), Dense(3)])


def test_evaluate_tells_a_loss_overflow_from_nan_outputs():
    model = Sequential([Dense(2, input_shape=(1,), use_bias=False)])     # logits, no softmax
    model.compile(loss=losses.CategoricalCrossentropy(from_logits=True))
    model.set_weights([np.array([[3e38, -3e38]], np.float32)])
    x, y = np.ones((2, 1), np.float32), to_categorical([0, 1], 2)
    assert np.isfinite(model.predict(x)).all()
    with pytest.raises(RuntimeError, match="evaluate: the loss is nan although the model's outputs are finite"):
        model.evaluate(x, y, verbose=0)


@pytest.mark.parametrize("change", ["add a layer", "freeze a layer"])
def test_changing_the_trained_weights_after_fit_asks_for_a_new_optimizer(change):
    model = Sequential([Dense(4, input_shape=(4,), activation="tanh")])
    model.add(Dense(3, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = dense_data()
    model.fit(x, y, verbose=0)
    if change == "add a layer":
        model.add(Dense(3, activation="softmax"))
    else:
        model.layers[0].trainable = False
    before = everything(model)
    with pytest.raises(ValueError, match=r"since then a layer was added or removed, or a layer's `trainable` "
                                         r"changed.*compile\(optimizer=Adam"):
        model.fit(x, y, verbose=0)
    assert_same(before, everything(model))
    model.compile(optimizer="adam", loss="categorical_crossentropy")     # what the message says
    model.fit(x, y, verbose=0)


def test_freezing_one_layer_and_unfreezing_another_of_the_same_shape_is_caught():
    """Same count and shapes of trained weights, but other weights: Adam's state would go to the wrong layer."""
    model = Sequential([Dense(3, input_shape=(3,)), Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32)
    model.layers[0].trainable = False
    model.train_on_batch(x, y)
    model.layers[0].trainable, model.layers[1].trainable = True, False
    with pytest.raises(ValueError, match="Compile again with a new optimizer"):
        model.train_on_batch(x, y)


def test_an_optimizer_with_another_models_state_is_refused():
    first, second = dense_model(), dense_model()
    first.fit(*dense_data(), verbose=0)
    adam = first.optimizer
    first.compile(optimizer="sgd", loss="categorical_crossentropy")      # first no longer uses it...
    with pytest.raises(ValueError, match="has taken 1 steps for another model"):
        second.compile(optimizer=adam, loss="categorical_crossentropy")  # ...but it holds first's m and v
    first.compile(optimizer=adam, loss="categorical_crossentropy")      # its own model may take it back


def test_saving_never_touches_the_process_umask(tmp_path, monkeypatch):
    def umask(mask):
        raise AssertionError("os.umask changes the mask of every thread while it runs")
    monkeypatch.setattr(os, "umask", umask)
    dense_model().save(tmp_path / "m.h5")
    assert load_model(tmp_path / "m.h5").built


# --- found beside the issue -------------------------------------------------------------------------------------------
def test_atomic_write_never_reuses_an_existing_file(tmp_path, monkeypatch):
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(files_module.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".out.txt.aaaa.tmp").write_text("another writer's")
    with files_module.atomic_write(tmp_path / "out.txt", "w") as stream:
        assert stream.name.endswith(".out.txt.bbbb.tmp")
        stream.write("mine")
    assert (tmp_path / ".out.txt.aaaa.tmp").read_text() == "another writer's"
    assert (tmp_path / "out.txt").read_text() == "mine"


def test_moving_a_model_is_all_or_nothing(monkeypatch):
    model = small_model()
    model.fit(*data(), epochs=1, **FIT)
    stores = [(store, dict(store)) for layer in model.layers for store in (layer.params, layer.grads, layer.state)]
    calls = []

    def failing(array, device):
        calls.append(device)
        if len(calls) == 5:
            raise MemoryError("out of GPU memory")
        return array.copy()
    monkeypatch.setattr(backend, "to_device", failing)
    with pytest.raises(MemoryError):
        model.to("cpu")
    for store, arrays in stores:
        assert store.keys() == arrays.keys() and all(store[key] is arrays[key] for key in store)


def test_ctrl_c_while_building_leaves_no_half_built_layer(monkeypatch):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(3)])
    original = Dense.build

    def interrupted(self, input_shape):
        raise KeyboardInterrupt
    monkeypatch.setattr(Dense, "build", interrupted)
    backend.set_random_seed(3)
    with pytest.raises(KeyboardInterrupt):
        model.build((None, 4, 4, 1))
    assert not any(layer.built for layer in model.layers) and model.layers[0].params == {}
    after_failure = backend.rng().random(3)            # the conv's initial weights were drawn, then put back
    backend.set_random_seed(3)
    np.testing.assert_array_equal(after_failure, backend.rng().random(3))
    monkeypatch.setattr(Dense, "build", original)
    model.build((None, 4, 4, 1))


def test_partial_epoch_progress_survives_save_and_old_files_load(tmp_path):
    model = dense_model()
    model.train_on_batch(*dense_data())
    assert model.partial_epoch_batches == 1
    model.save(tmp_path / "m.h5")
    assert config_of(tmp_path / "m.h5")["training"]["partial_epoch_batches"] == 1
    config = config_of(tmp_path / "m.h5")
    del config["training"]["partial_epoch_batches"]                   # a file from before this field
    old = rewrite(tmp_path / "m.h5", tmp_path / "old.h5", {"config.json": json.dumps(config)})
    assert load_model(old).partial_epoch_batches == 0
    config["training"]["partial_epoch_batches"] = -1
    bad = rewrite(tmp_path / "m.h5", tmp_path / "bad.h5", {"config.json": json.dumps(config)})
    with pytest.raises(saving.ModelFileError, match="partial_epoch_batches"):
        load_model(bad)

"""save / load_model: round trip, optimizer state, atomic writes, hostile files."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import toy_images
from minicnn import backend, saving
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from minicnn.layers.normalization import BatchNormalization
from minicnn.models import Sequential, load_model
from minicnn.utils import to_categorical


def trained_model():
    model = Sequential([Conv2D(4, 3, padding="same", input_shape=(8, 8, 1)), BatchNormalization(),
                        LeakyReLU(alpha=0.1), MaxPooling2D(2), Dropout(0.2), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, labels = toy_images(64)
    model.fit(x, to_categorical(labels), batch_size=16, epochs=1, verbose=0)
    return model, x, to_categorical(labels)


def test_round_trip_gives_identical_predictions_and_training(tmp_path):
    model, x, y = trained_model()
    path = tmp_path / "fashion_model_dropout.h5py"  # any suffix, as in the lab
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert loaded.optimizer.iterations == model.optimizer.iterations == 4
    assert loaded.metrics_names == ["loss", "accuracy"]
    # the optimizer state came along: one more identical step keeps them identical
    backend.set_random_seed(5)  # the same dropout masks for both
    model.train_on_batch(x[:16], y[:16])
    backend.set_random_seed(5)
    loaded.train_on_batch(x[:16], y[:16])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_file_is_a_zip_with_config_and_npy_entries(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.zip")
    with zipfile.ZipFile(tmp_path / "m.zip") as archive:
        names = archive.namelist()
        config = json.loads(archive.read("config.json"))
    assert "weights/0.npy" in names and "optimizer/m_0.npy" in names
    assert config["format"] == "minicnn-model" and config["layers"][0]["class_name"] == "Conv2D"


def test_a_failed_save_leaves_no_file(tmp_path, monkeypatch):
    model, _, _ = trained_model()
    target = tmp_path / "model.h5"
    target.write_bytes(b"previous contents")

    def broken(array):
        raise OSError("disk full")
    monkeypatch.setattr(saving, "_npy_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert target.read_bytes() == b"previous contents"
    assert os.listdir(tmp_path) == ["model.h5"], "no temporary file is left behind"


def _rewrite(path, out, replace):
    """Copy the zip at `path` to `out`, replacing some entries' bytes; returns `out`."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, replace.get(name, source.read(name)))
    return out


def test_hostile_and_broken_files_give_clear_errors(tmp_path):
    model, _, _ = trained_model()
    good = tmp_path / "good.h5"
    model.save(good)

    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(saving.ModelFileError, match="not a minicnn model"):
        load_model(tmp_path / "text.h5")

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(saving.ModelFileError):
        load_model(truncated)

    pickled = io.BytesIO()
    np.save(pickled, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _rewrite(good, tmp_path / "pickle.h5", {"weights/0.npy": pickled.getvalue()})
    with pytest.raises(saving.ModelFileError, match="weights/0.npy"):
        load_model(tmp_path / "pickle.h5")

    wrong = io.BytesIO()
    np.save(wrong, np.zeros((2, 2), np.float32))
    _rewrite(good, tmp_path / "shape.h5", {"weights/0.npy": wrong.getvalue()})
    with pytest.raises(saving.ModelFileError, match="shape"):
        load_model(tmp_path / "shape.h5")

    with zipfile.ZipFile(tmp_path / "noconfig.h5", "w") as archive:
        archive.writestr("weights/0.npy", wrong.getvalue())
    with pytest.raises(saving.ModelFileError, match="config.json"):
        load_model(tmp_path / "noconfig.h5")

    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.h5")


def test_saved_file_has_ordinary_permissions(tmp_path):
    from minicnn.utils.files import new_file_mode
    model, _, _ = trained_model()
    model.save(tmp_path / "m.h5")
    assert (tmp_path / "m.h5").stat().st_mode & 0o777 == new_file_mode()


# --- training progress in the file ------------------------------------------------------------
def test_file_records_completed_epochs_and_random_state(tmp_path):
    model, _, _ = trained_model()
    assert model.completed_epochs == 1
    model.save(tmp_path / "m.h5")
    state = backend.get_rng_state()
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.completed_epochs == 1 and loaded.rng_state == state


def test_files_without_training_progress_still_load(tmp_path):
    model, _, _ = trained_model()
    model.save(tmp_path / "m.h5")
    config = config_of(tmp_path / "m.h5")
    del config["training"]
    _rewrite(tmp_path / "m.h5", tmp_path / "old.h5", {"config.json": json.dumps(config)})
    loaded = load_model(tmp_path / "old.h5")
    assert loaded.completed_epochs == 0 and loaded.rng_state is None


# --- saves that fail midway -----------------------------------------------------------------------
@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError, OSError])
@pytest.mark.parametrize("existing", [True, False])
def test_a_save_interrupted_midway_leaves_no_half_written_file(tmp_path, monkeypatch, error, existing):
    model, _, _ = trained_model()
    target = tmp_path / "model.h5"
    if existing:
        model.save(target)
        before = target.read_bytes()
    calls = []
    original = saving._npy_bytes

    def fails_on_third_array(array):
        calls.append(1)
        if len(calls) == 3:
            raise error("interrupted")
        return original(array)
    monkeypatch.setattr(saving, "_npy_bytes", fails_on_third_array)
    with pytest.raises(error):
        model.save(target)
    assert os.listdir(tmp_path) == (["model.h5"] if existing else [])
    if existing:
        assert target.read_bytes() == before
        monkeypatch.undo()
        load_model(target)


# --- hostile files ------------------------------------------------------------------------------
def good_file(tmp_path):
    model, _, _ = trained_model()
    path = tmp_path / "good.h5"
    model.save(path)
    return model, path


def config_of(path):
    """The parsed config.json of a model file."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def with_config(good, out, change):
    """Copy the model file at `good` to `out`, with change(config) applied to config.json."""
    config = config_of(good)
    change(config)
    _rewrite(good, out, {"config.json": json.dumps(config)})
    return out


class Payload:
    """Unpickling this creates a marker file: the proof that a loader executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_payloads_are_never_executed(tmp_path):
    _, good = good_file(tmp_path)
    marker = tmp_path / "code-was-executed"
    evil = io.BytesIO()
    np.save(evil, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    assert not marker.exists()
    raw_pickle = pickle.dumps(Payload(marker))
    files = {
        "npy entry": _rewrite(good, tmp_path / "a.h5", {"weights/0.npy": evil.getvalue()}),
        "optimizer entry": _rewrite(good, tmp_path / "b.h5", {"optimizer/m_0.npy": evil.getvalue()}),
        "config": _rewrite(good, tmp_path / "c.h5", {"config.json": raw_pickle}),
    }
    (tmp_path / "d.h5").write_bytes(raw_pickle)
    files["whole file"] = tmp_path / "d.h5"
    for what, path in files.items():
        with pytest.raises(saving.ModelFileError):
            load_model(path)
        assert not marker.exists(), what


@pytest.mark.parametrize("entry, data, message", [
    ("weights/1.npy", "npz", "not a valid array"),
    ("weights/1.npy", "nan", "NaN or infinite"),
    ("weights/1.npy", "int", "should be a float array"),
    ("weights/1.npy", "too big", "at most"),
    ("weights/1.npy", "garbage", "not a valid array"),
    ("optimizer/v_0.npy", "wrong shape", r"shape \(3, 3, 1, 4\)"),
    ("config.json", "not utf-8", "not valid JSON"),
    ("config.json", "deep", "not valid JSON"),
    ("config.json", "huge", "at most"),
])
def test_bad_entries_are_refused(tmp_path, entry, data, message):
    _, good = good_file(tmp_path)
    buffer = io.BytesIO()
    if data == "npz":
        np.savez(buffer, a=np.zeros(4, np.float32))
    elif data in ("nan", "int", "too big", "wrong shape"):
        array = {"nan": np.full(4, np.nan, np.float32), "int": np.zeros(4, np.int64),
                 "too big": np.zeros(10 ** 6, np.float32), "wrong shape": np.zeros((4, 1), np.float32)}[data]
        np.save(buffer, array)
    else:
        buffer.write({"garbage": b"\x93NUMPY junk", "not utf-8": b"\xff\xfe{",
                      "deep": b"[" * 100000 + b"]" * 100000, "huge": b" " * (saving.MAX_CONFIG_BYTES + 1)}[data])
    path = _rewrite(good, tmp_path / "bad.h5", {entry: buffer.getvalue()})
    with pytest.raises(saving.ModelFileError, match=message):
        load_model(path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("layers"), "lists no layers"),
    (lambda c: c.update(layers=[]), "lists no layers"),
    (lambda c: c.update(layers=[["Conv2D"]]), "layer entry without a config"),
    (lambda c: c["layers"][0].update(class_name="Lambda"), "unknown layer class 'Lambda'"),
    (lambda c: c["layers"][0]["config"].update(function="os.system"), "bad config"),
    (lambda c: c["layers"][0]["config"].update(filters=-4), "bad config.*filters"),
    (lambda c: c["layers"][0]["config"].update(activation="eval"), "unknown activation 'eval'"),
    (lambda c: c["layers"][0]["config"].update(kernel_initializer=["x"]), "bad config"),
    (lambda c: c.update(input_shape="28x28"), "no input_shape"),
    (lambda c: c.update(input_shape=[None, 8, "8", 1]), "do not fit together"),
    (lambda c: c.update(input_shape=[None, 1, 1, 1]), "do not fit together"),
    (lambda c: c.update(input_shape=[None, 8, 8, 3]), "weight list"),
    (lambda c: c.update(weights=[[3, 3, 1, 4]]), "weight list"),
    (lambda c: c.update(weights=[[-1]]), "no valid weight list"),
    (lambda c: c.update(name=["x"]), "name"),
    (lambda c: c.update(format="keras"), "not a minicnn model"),
    (lambda c: c.update(format_version=99), "format version 99"),
    (lambda c: c.update(compile=[1]), "bad compile settings"),
    (lambda c: c["compile"]["optimizer"].update(name="__import__"), "bad compile settings"),
    (lambda c: c["compile"]["optimizer"]["config"].update(learning_rate=-1), "learning_rate"),
    (lambda c: c["compile"]["loss"]["config"].update(from_logits="yes"), "from_logits"),
    (lambda c: c["compile"].update(metrics=["auc"]), "unknown metric"),
    (lambda c: c["compile"]["optimizer_state"].update(iterations=-5), "bad optimizer state"),
    (lambda c: c["compile"]["optimizer_state"].update(slots={"m": 8}), "do not fit adam"),
    (lambda c: c["compile"]["optimizer_state"].update(slots={"m": 8, "v": 8, "w": 8}), "do not fit adam"),
    (lambda c: c["training"].update(completed_epochs="one"), "completed_epochs"),
    (lambda c: c["training"].update(rng_state={"bit_generator": "MT19937"}), "random generator state"),
    (lambda c: c["training"].update(rng_state=[1, 2]), "random generator state"),
    (lambda c: c.update(training=5), "training"),
])
def test_bad_configs_are_refused(tmp_path, change, message):
    _, good = good_file(tmp_path)
    with pytest.raises(saving.ModelFileError, match=message):
        load_model(with_config(good, tmp_path / "bad.h5", change))


def test_an_oversized_architecture_is_refused(tmp_path):
    _, good = good_file(tmp_path)
    path = with_config(good, tmp_path / "big.h5", lambda c: c.update(input_shape=[None, 10 ** 9, 10 ** 9, 1]))
    with pytest.raises(saving.ModelFileError, match="too large|do not fit"):
        load_model(path)


def test_foreign_files_and_paths(tmp_path):
    (tmp_path / "keras.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))  # an HDF5 signature
    with pytest.raises(saving.ModelFileError, match="not a minicnn model file"):
        load_model(tmp_path / "keras.h5")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {}}))
    with pytest.raises(saving.ModelFileError, match="not a minicnn model file"):
        load_model(tmp_path / "other.zip")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(saving.ModelFileError):
        load_model(tmp_path / "empty.h5")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path)


def test_every_truncation_is_refused(tmp_path):
    _, good = good_file(tmp_path)
    data = good.read_bytes()
    for length in sorted(set(np.linspace(0, len(data) - 1, 80).astype(int))):
        (tmp_path / "cut.h5").write_bytes(data[:length])
        with pytest.raises(saving.ModelFileError):
            load_model(tmp_path / "cut.h5")


@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory):
    """The weights of a good model file, and its bytes."""
    model, path = good_file(tmp_path_factory.mktemp("good"))
    return model.get_weights(), path.read_bytes()


def value_at(config, place):
    for key in place:
        config = config[key]
    return config


@settings(max_examples=150)
@given(data=st.data())
def test_corrupted_bytes_give_a_clear_error_or_the_exact_model(tmp_path, good_bytes, data):
    weights, original = good_bytes
    corrupted = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(corrupted) - 1))
        corrupted[position] = data.draw(st.integers(0, 255))
    path = tmp_path / "corrupted.h5"
    path.write_bytes(bytes(corrupted))
    try:
        model = load_model(path)
    except saving.ModelFileError:
        return
    for a, b in zip(model.get_weights(), weights):  # loaded: then it is the saved model, bit for bit
        np.testing.assert_array_equal(a, b)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10 ** 30) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
CONFIG_PLACES = [("name",), ("input_shape",), ("layers",), ("weights",), ("compile",), ("training",),
                 ("layers", 0), ("layers", 0, "config"), ("layers", 0, "config", "kernel_size"),
                 ("layers", 0, "config", "padding"), ("layers", 1, "config", "momentum"),
                 ("layers", 4, "config", "rate"), ("layers", 6, "config", "units"), ("input_shape", 1),
                 ("weights", 0), ("compile", "loss"), ("compile", "optimizer", "config"),
                 ("compile", "optimizer_state", "iterations"), ("compile", "optimizer_state", "slots"),
                 ("training", "completed_epochs"), ("training", "rng_state"), ("training", "rng_state", "state")]
# Where another valid value is harmless, a file that loads must have carried it into the model: the
# model's name (none, or an empty one: a fresh name); BatchNormalization's momentum and the Dropout
# rate (training only: predictions stay); the optimizer's step count and slots; no compile settings
# at all (None or {}: an uncompiled model); the training progress (completed epochs, random generator
# state; a file without them loads as new). Everywhere else only a value equivalent to the saved one
# (the same architecture, fitting the saved weights) may load; any other gives a ModelFileError.
CARRIED = {
    ("name",): lambda model, value: model.name == value if value else model.name.startswith("sequential"),
    ("layers", 1, "config", "momentum"): lambda model, value: model.layers[1].momentum == value,
    ("layers", 4, "config", "rate"): lambda model, value: model.layers[4].rate == value,
    ("compile",): lambda model, value: (model.loss is None) == (not value),
    ("compile", "optimizer_state", "iterations"): lambda model, value: model.optimizer.iterations == value,
    ("compile", "optimizer_state", "slots"): lambda model, value: set(model.optimizer.slots) == set(value),
    ("training",): lambda model, value: (model.completed_epochs, model.rng_state) == (
        value.get("completed_epochs", 0), value.get("rng_state")),
    ("training", "completed_epochs"): lambda model, value: model.completed_epochs == value,
    ("training", "rng_state"): lambda model, value: model.rng_state == value,
    ("training", "rng_state", "state"): lambda model, value: model.rng_state["state"] == value,
}


@settings(max_examples=150)
@given(place=st.sampled_from(CONFIG_PLACES), value=json_values)
def test_junk_in_any_config_field_gives_a_clear_error(tmp_path, good_bytes, place, value):
    """Junk anywhere in config.json gives a ModelFileError, or, if the file loads, a sane model:
    the saved weights bit for bit, the saved model's predictions, and the value where it was put,
    either carried into the model (CARRIED) or equivalent to the saved one (the architecture must
    fit the saved weights): saving the loaded model again writes the saved value back there."""
    weights, original = good_bytes
    good = tmp_path / "good.h5"
    good.write_bytes(original)

    def put(config):
        value_at(config, place[:-1])[place[-1]] = value
    try:
        model = load_model(with_config(good, tmp_path / "junk.h5", put))
    except saving.ModelFileError:
        return
    for loaded, saved in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(loaded, saved)
    x, _ = toy_images(4)
    np.testing.assert_array_equal(model.predict(x), load_model(good).predict(x))
    if place in CARRIED:
        assert CARRIED[place](model, value), (place, value)
    else:
        model.save(tmp_path / "again.h5")
        assert value_at(config_of(tmp_path / "again.h5"), place) == value_at(config_of(good), place), (place, value)


def test_an_activation_objects_slope_survives_save_and_load(tmp_path):
    from minicnn import activations
    model = Sequential([Dense(3, activation=activations.LeakyReLU(0.01), input_shape=(2,))])
    model.compile(loss="categorical_crossentropy")
    model.save(tmp_path / "m.h5")
    assert config_of(tmp_path / "m.h5")["layers"][0]["config"]["activation"] == {
        "name": "leaky_relu", "negative_slope": 0.01}
    loaded = load_model(tmp_path / "m.h5")
    assert loaded.layers[0].activation.negative_slope == 0.01
    x = -np.ones((4, 2), np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # files from minicnn 0.1 name the slope "alpha": they still load
    old = with_config(tmp_path / "m.h5", tmp_path / "old.h5", lambda config: config["layers"][0]["config"].update(
        activation={"name": "leaky_relu", "alpha": 0.01}))
    np.testing.assert_array_equal(load_model(old).predict(x), model.predict(x))

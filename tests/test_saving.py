"""save / load_model: round trip, optimizer state, atomic writes, hostile files."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

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
    assert loaded.metrics == ["accuracy"]
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
    """Copy the zip at `path` to `out`, replacing some entries' bytes."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            target.writestr(name, replace.get(name, source.read(name)))


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

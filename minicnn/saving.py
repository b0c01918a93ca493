"""The model file: one zip holding config.json and the arrays as .npy entries.

    config.json             architecture, compile settings, minicnn version, array index
    weights/<i>.npy         every layer's weights, in model.get_weights() order
    optimizer/<slot>_<i>.npy the optimizer's per-parameter state (Adam's m and v)

Loading never unpickles (np.load(allow_pickle=False)) and checks every entry's
shape before use; writing goes to a temporary file that is renamed into place,
so a failed save never leaves a half-written file at the target path.
"""
import io
import json
import os
import zipfile

import numpy as np

import minicnn
from minicnn import backend, losses, optimizers
from minicnn import layers as layers_module
from minicnn.utils.files import atomic_write

FORMAT_NAME = "minicnn-model"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; refuse anything absurd before parsing it


class ModelFileError(ValueError):
    """The file is not a minicnn model, or it is damaged."""


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, backend.to_numpy(array), allow_pickle=False)
    return buffer.getvalue()


def model_config(model, include_optimizer=True):
    config = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "minicnn_version": minicnn.__version__,
        "class_name": type(model).__name__, "name": model.name,
        "input_shape": list(model.input_shape) if model.built else None,
        "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in model.layers],
        "compile": None,
    }
    if model.loss is not None:
        config["compile"] = {
            "loss": {"name": model.loss.name, "config": model.loss.get_config()},
            "optimizer": {"name": model.optimizer.name, "config": model.optimizer.get_config()},
            "metrics": list(model.metrics),
        }
        if include_optimizer:
            iterations, slots = model.optimizer.get_state()
            config["compile"]["optimizer_state"] = {
                "iterations": iterations, "slots": {name: len(arrays) for name, arrays in slots.items()}}
    return config


def save_model(model, filepath, include_optimizer=True):
    """Write `model` to `filepath` (any suffix) atomically."""
    if not model.built:
        raise ValueError("save: the model is not built yet; fit it or call model.build(input_shape) first")
    config = model_config(model, include_optimizer)
    weights = model.get_weights()
    config["weights"] = [list(w.shape) for w in weights]
    slots = model.optimizer.slots if (include_optimizer and model.optimizer is not None) else {}

    with atomic_write(filepath) as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(config, indent=1))
        for i, weight in enumerate(weights):
            archive.writestr(f"weights/{i}.npy", _npy_bytes(weight))
        for name, arrays in slots.items():
            for i, array in enumerate(arrays):
                archive.writestr(f"optimizer/{name}_{i}.npy", _npy_bytes(array))


def _read_array(archive, entry, expected_shape, path):
    """One .npy entry, checked: present, not pickled, of the expected shape and float dtype."""
    try:
        info = archive.getinfo(entry)
    except KeyError:
        raise ModelFileError(f"{path}: entry {entry!r} is missing") from None
    header_allowance = 4096
    limit = int(np.prod(expected_shape, dtype=np.int64)) * 8 + header_allowance
    if info.file_size > limit:
        raise ModelFileError(f"{path}: entry {entry!r} is {info.file_size} bytes, larger than an array "
                             f"of shape {tuple(expected_shape)} can be")
    try:
        array = np.load(io.BytesIO(archive.read(entry)), allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: entry {entry!r} is not a valid array ({error})") from None
    if tuple(array.shape) != tuple(expected_shape) or array.dtype.kind != "f":
        raise ModelFileError(f"{path}: entry {entry!r} should be a float array of shape {tuple(expected_shape)}, "
                             f"got {array.dtype} of shape {array.shape}")
    return array


def _read_config(archive, path):
    try:
        info = archive.getinfo("config.json")
    except KeyError:
        raise ModelFileError(f"{path}: not a minicnn model file (no config.json inside)") from None
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{path}: config.json is {info.file_size} bytes; at most {MAX_CONFIG_BYTES} expected")
    try:
        config = json.loads(archive.read("config.json").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{path}: config.json is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a minicnn model file (format {config.get('format') if isinstance(config, dict) else None!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {config.get('format_version')!r}, "
                             f"this minicnn reads version {FORMAT_VERSION}")
    return config


def _build_layers(config, path):
    built = []
    for entry in config.get("layers", []):
        cls = layers_module.BY_CLASS_NAME.get(entry.get("class_name"))
        if cls is None:
            raise ModelFileError(f"{path}: unknown layer class {entry.get('class_name')!r}; "
                                 f"known: {sorted(layers_module.BY_CLASS_NAME)}")
        try:
            built.append(cls.from_config(dict(entry["config"])))
        except (TypeError, ValueError, KeyError) as error:
            raise ModelFileError(f"{path}: layer {entry.get('class_name')} has a bad config ({error})") from None
    return built


def load_model(filepath):
    """Read a file written by save_model and return the compiled, trained model."""
    from minicnn.models import Model, Sequential

    path = os.fspath(filepath)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ModelFileError(f"{path}: not a minicnn model file (not a readable zip: {error})") from None
    with archive:
        config = _read_config(archive, path)
        cls = Sequential if config.get("class_name") == "Sequential" else Model
        model = cls(name=config.get("name"))
        model.layers = _build_layers(config, path)
        if config.get("input_shape") is None:
            raise ModelFileError(f"{path}: config.json has no input_shape")
        try:
            model.build(tuple(config["input_shape"]))
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: the saved layers do not fit together ({error})") from None
        expected = [tuple(w.shape) for w in model.get_weights()]
        if [tuple(s) for s in config.get("weights", [])] != expected:
            raise ModelFileError(f"{path}: the weight list in config.json does not match the architecture")
        model.set_weights([_read_array(archive, f"weights/{i}.npy", shape, path)
                           for i, shape in enumerate(expected)])
        compiled = config.get("compile")
        if compiled:
            _restore_compile(model, compiled, archive, path)
    return model


def _restore_compile(model, compiled, archive, path):
    try:
        optimizer_class = optimizers.get(compiled["optimizer"]["name"]).__class__
        optimizer = optimizer_class(**compiled["optimizer"]["config"])
        loss = losses.get(compiled["loss"]["name"]).__class__(**compiled["loss"]["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: bad compile settings ({error})") from None
    model.compile(optimizer=optimizer, loss=loss, metrics=compiled.get("metrics", []))
    state = compiled.get("optimizer_state")
    if state:
        shapes = [tuple(layer.params[key].shape) for layer, key in model.trainable_params()]
        slots = {}
        for name, count in state.get("slots", {}).items():
            if name not in optimizer.slot_names or count != len(shapes):
                raise ModelFileError(f"{path}: optimizer slot {name!r} does not fit the model")
            slots[name] = [_read_array(archive, f"optimizer/{name}_{i}.npy", shape, path).astype(backend.floatx())
                           for i, shape in enumerate(shapes)]
        optimizer.set_state(state.get("iterations", 0), slots)

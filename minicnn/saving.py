"""The model file: one zip holding config.json and the arrays as .npy entries.

    config.json             architecture, compile settings, training progress
                            (completed epochs, random generator state), array index
    weights/<i>.npy         every layer's weights, in model.get_weights() order
    optimizer/<slot>_<i>.npy the optimizer's per-parameter state (Adam's m and v)

Loading never unpickles (.npy entries are read with allow_pickle=False), checks
every field of config.json and every entry's size, shape and values before use,
and turns any damage into a ModelFileError. Writing goes to a temporary file that
is renamed into place, so a failed save never leaves a half-written file behind.
"""
import io
import json
import math
import os
import re
import zipfile
import zlib

import numpy as np

import minicnn
from minicnn import backend, losses, optimizers
from minicnn import metrics as metrics_module
from minicnn import layers as layers_module
from minicnn.layers.base import WeightBudgetExceeded, weight_budget
from minicnn.utils.files import atomic_write

FORMAT_NAME = "minicnn-model"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; refuse anything absurd before parsing it
NPY_HEADER_BYTES = 4096     # room for a .npy header on top of the array's data
MAX_ITEM_BYTES = 8          # float64, the widest float minicnn writes
MIN_ITEM_BYTES = 2          # float16, the narrowest float array a file may hold
MAX_DEFLATE_RATIO = 1032    # deflate never expands data more than this: bounds what an entry can hold
WEIGHT_ENTRY = re.compile(r"weights/\d+\.npy")
# What reading a damaged zip entry can raise: bad CRC or header, broken deflate stream,
# cut-off data, encrypted entries (RuntimeError), unknown compression (NotImplementedError).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError, ValueError)


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
        # a functional model: the name of its Input, and (skip connections) where each layer's input comes from
        "input_name": model.input_name,
        "connections": [list(inputs) for inputs in model.connections],
        "compile": None,
        # what resuming needs besides the weights: see Model.fit's initial_epoch
        "training": {"completed_epochs": model.completed_epochs,
                     "partial_epoch_batches": model.partial_epoch_batches, "rng_state": backend.get_rng_state()},
    }
    if model.loss is not None:
        config["compile"] = {
            "loss": {"name": model.loss.name, "config": model.loss.get_config()},
            "optimizer": {"name": model.optimizer.name, "config": model.optimizer.get_config()},
            "metrics": [metrics_module.serialize(metric) for metric in model.metrics],
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


# --- loading: every read is checked ---------------------------------------------------------
def _read_entry(archive, entry, max_bytes, path):
    """The bytes of one zip entry, refusing entries larger than max_bytes and damaged ones."""
    try:
        info = archive.getinfo(entry)
    except KeyError:
        raise ModelFileError(f"{path}: entry {entry!r} is missing") from None
    if info.file_size > max_bytes:
        raise ModelFileError(f"{path}: entry {entry!r} is {info.file_size} bytes; at most {max_bytes} expected")
    try:
        return archive.read(info)  # reads at most info.file_size bytes and checks the CRC
    except ZIP_ERRORS as error:
        raise ModelFileError(f"{path}: entry {entry!r} is damaged ({error})") from None


def _read_array(archive, entry, expected_shape, path):
    """One .npy entry, checked: present, not pickled, a float array of the expected shape whose
    values are finite in floatx (a float64 1e39 would become inf in float32). Returned in floatx."""
    limit = math.prod(expected_shape) * MAX_ITEM_BYTES + NPY_HEADER_BYTES
    data = _read_entry(archive, entry, limit, path)
    try:
        array = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)  # .npy only, never a pickle
    except (ValueError, OSError, EOFError) as error:
        raise ModelFileError(f"{path}: entry {entry!r} is not a valid array ({error})") from None
    if tuple(array.shape) != tuple(expected_shape) or array.dtype.kind != "f":
        raise ModelFileError(f"{path}: entry {entry!r} should be a float array of shape {tuple(expected_shape)}, "
                             f"got {array.dtype} of shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(backend.floatx())
    if not np.isfinite(cast).all():
        if not np.isfinite(array).all():
            raise ModelFileError(f"{path}: entry {entry!r} holds NaN or infinite values")
        raise ModelFileError(f"{path}: entry {entry!r} holds values up to {np.abs(array).max():g}, beyond "
                             f"{backend.floatx()}'s range ({np.finfo(backend.floatx()).max:.4g})")
    return cast


def _weight_budget(archive, path):
    """How many weight values the file's weights/<i>.npy entries can hold at most: building
    the saved architecture may create no more (a small file must not make gigabytes of weights).

    The entries hold no more bytes than they say (file_size), nor than their compressed
    bytes, which all lie in the file, can expand to."""
    entries = [info for info in archive.infolist() if WEIGHT_ENTRY.fullmatch(info.filename)]
    declared = sum(info.file_size for info in entries)
    compressed = min(sum(info.compress_size for info in entries), os.path.getsize(path))
    return min(declared, compressed * MAX_DEFLATE_RATIO) // MIN_ITEM_BYTES


def _expect(ok, path, message):
    if not ok:
        raise ModelFileError(f"{path}: config.json {message}")


def _is_count(value):
    """An int >= 0 (JSON's true/false are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_config(archive, path):
    """config.json parsed and its structure checked (values are checked when used)."""
    if "config.json" not in archive.namelist():
        raise ModelFileError(f"{path}: not a minicnn model file (no config.json inside)")
    raw = _read_entry(archive, "config.json", MAX_CONFIG_BYTES, path)
    try:
        config = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ModelFileError(f"{path}: config.json is not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        found = config.get("format") if isinstance(config, dict) else None
        raise ModelFileError(f"{path}: not a minicnn model file (format {found!r})")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {config.get('format_version')!r}, "
                             f"this minicnn reads version {FORMAT_VERSION}")
    _expect(config.get("name") is None or isinstance(config["name"], str), path, "has a name that is not a string")
    _expect(isinstance(config.get("input_shape"), list), path, "has no input_shape")
    layers = config.get("layers")
    _expect(isinstance(layers, list) and layers, path, "lists no layers")
    _expect(all(isinstance(e, dict) and isinstance(e.get("config"), dict) for e in layers), path,
            "has a layer entry without a config")
    weights = config.get("weights")
    _expect(isinstance(weights, list) and all(isinstance(s, list) and all(map(_is_count, s)) for s in weights),
            path, "has no valid weight list (shapes of ints)")
    _expect(config.get("compile") is None or isinstance(config["compile"], dict), path, "has bad compile settings")
    _expect(isinstance(config.get("training", {}), dict), path, "has bad training settings")
    return config


def _build_layers(config, path):
    built = []
    for entry in config["layers"]:
        cls = layers_module.BY_CLASS_NAME.get(entry.get("class_name"))
        if cls is None:
            raise ModelFileError(f"{path}: unknown layer class {entry.get('class_name')!r}; "
                                 f"known: {sorted(layers_module.BY_CLASS_NAME)}")
        try:
            built.append(cls.from_config(dict(entry["config"])))
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: layer {entry.get('class_name')} has a bad config ({error})") from None
    return built


def load_model(filepath, model_classes):
    """Read a file written by save_model and return the compiled, trained model.

    model_classes: {"Sequential": Sequential, "Model": Model}, the classes to rebuild
    (models.load_model passes them: this module never imports models.py).

    Raises FileNotFoundError (or PermissionError...) when the path cannot be opened, and
    ModelFileError (a ValueError) for anything that is not an intact minicnn model file.
    Nothing in the file is ever executed: arrays are read without pickle, layers,
    losses and optimizers are looked up by name among minicnn's own.
    """
    path = os.fspath(filepath)
    try:
        archive = zipfile.ZipFile(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # the path is wrong, not the file
    except ZIP_ERRORS as error:
        raise ModelFileError(f"{path}: not a minicnn model file (not a readable zip: {error})") from None
    with archive:
        config = _read_config(archive, path)
        cls = model_classes["Sequential" if config.get("class_name") == "Sequential" else "Model"]
        model = cls(name=config.get("name"))
        model.layers = _build_layers(config, path)
        model.input_name = config.get("input_name")
        _expect(model.input_name is None or isinstance(model.input_name, str), path, "has a bad input_name")
        model.connections = _read_connections(config.get("connections"), len(model.layers), path)
        budget = _weight_budget(archive, path)
        rng_state = backend.get_rng_state()  # building draws initial weights, soon replaced:
        try:                                 # the global generator is put back as it was
            with weight_budget(budget, "the file's weight arrays"):
                model.build(tuple(config["input_shape"]))
        except WeightBudgetExceeded as error:
            raise ModelFileError(f"{path}: the saved architecture is too large for the file: it needs more "
                                 f"weights than the file's arrays hold ({error})") from None
        except (TypeError, ValueError, OverflowError) as error:
            raise ModelFileError(f"{path}: the saved layers do not fit together ({error})") from None
        except MemoryError:
            raise ModelFileError(f"{path}: the saved architecture is too large to build in memory") from None
        finally:
            backend.set_rng_state(rng_state)
        expected = [tuple(w.shape) for w in model.get_weights()]
        if [tuple(s) for s in config["weights"]] != expected:
            raise ModelFileError(f"{path}: the weight list in config.json does not match the architecture")
        model.set_weights([_read_array(archive, f"weights/{i}.npy", shape, path)
                           for i, shape in enumerate(expected)])
        if config.get("compile"):
            _restore_compile(model, config["compile"], archive, path)
        _restore_training(model, config.get("training", {}), path)
    return model


def _restore_compile(model, compiled, archive, path):
    try:
        optimizer_class = optimizers.get(compiled["optimizer"]["name"]).__class__
        optimizer = optimizer_class.from_config(compiled["optimizer"]["config"])
        loss = losses.get(compiled["loss"]["name"]).__class__(**compiled["loss"]["config"])
        metrics = [metrics_module.deserialize(entry, loss) for entry in compiled.get("metrics", [])]
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: bad compile settings ({error!r})") from None
    state = compiled.get("optimizer_state")
    if not state:
        return
    _expect(isinstance(state, dict) and _is_count(state.get("iterations"))
            and isinstance(state.get("slots", {}), dict), path, "has a bad optimizer state")
    shapes = [tuple(layer.params[key].shape) for layer, key in model.trainable_params()]
    counts = state.get("slots", {})
    _expect(not counts or (set(counts) == set(optimizer.slot_names)
                           and all(count == len(shapes) for count in counts.values())),
            path, f"has optimizer slots {counts} that do not fit {optimizer.name} on this model")
    slots = {name: [_read_array(archive, f"optimizer/{name}_{i}.npy", shape, path) for i, shape in enumerate(shapes)]
             for name in counts}
    for name, arrays in slots.items():
        for i, array in enumerate(arrays):
            problem = optimizer.slot_problem(name, array)
            if problem:
                raise ModelFileError(f"{path}: entry 'optimizer/{name}_{i}.npy' {problem}")
    optimizer.set_state(state["iterations"], slots)


def _read_connections(connections, count, path):
    """A model's connections as saved: for each layer, indices of earlier layers or -1 (the input);
    None (files from before they were saved) for a chain."""
    if connections is None:
        return None
    _expect(isinstance(connections, list) and len(connections) == count and all(
        isinstance(inputs, list) and inputs and all(isinstance(i, int) and not isinstance(i, bool)
                                                   and -1 <= i < position for i in inputs)
        for position, inputs in enumerate(connections)), path,
        "has bad connections (each layer must take input from earlier layers or the input)")
    return [tuple(inputs) for inputs in connections]


def _restore_training(model, training, path):
    """The number of completed epochs and the random generator state, for fit(initial_epoch=...)."""
    epochs = training.get("completed_epochs", 0)
    _expect(_is_count(epochs), path, f"has completed_epochs={epochs!r}; expected an int >= 0")
    batches = training.get("partial_epoch_batches", 0)   # files from before it was saved: 0
    _expect(_is_count(batches), path, f"has partial_epoch_batches={batches!r}; expected an int >= 0")
    rng_state = training.get("rng_state")
    if rng_state is not None:
        try:  # try it on a spare generator of the same kind: the global one stays untouched
            type(backend.rng().bit_generator)().state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ModelFileError(f"{path}: config.json has a bad random generator state ({error!r})") from None
    model.completed_epochs = epochs
    model.partial_epoch_batches = batches
    model.rng_state = rng_state

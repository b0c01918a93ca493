"""The array backend: NumPy on the CPU, CuPy on the GPU.

Every layer asks its input which array module to use (``xp = get_array_module(x)``)
and then writes ``xp.exp``, ``xp.matmul``... The same layer code therefore runs on
both devices; only this file (and ``minicnn/kernels``) knows that two exist.
"""
import numpy as np

try:  # CuPy is optional: `import minicnn` must work without it.
    import cupy
except Exception:  # ImportError, or a CuPy installed without a working CUDA
    cupy = None

_FLOATX = "float32"
_RNG = np.random.default_rng()


# --- floating-point type -------------------------------------------------------
def floatx():
    """The default float type of parameters and activations: 'float32' or 'float64'."""
    return _FLOATX


def set_floatx(value):
    """Set the default float type. Use 'float64' for gradient checks."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"floatx must be 'float32' or 'float64', got {value!r}")
    _FLOATX = value


# --- which module: numpy or cupy -------------------------------------------------
def gpu_available():
    """True when CuPy is installed and sees at least one CUDA device."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_gpu_array(x):
    return cupy is not None and isinstance(x, cupy.ndarray)


def get_array_module(*arrays):
    """Return numpy or cupy, whichever holds the arrays; refuse a mix of both."""
    on_gpu = [is_gpu_array(a) for a in arrays if a is not None]
    if any(on_gpu) and not all(on_gpu):
        raise TypeError(
            "expected all arrays on one device, got a mix of NumPy (CPU) and CuPy (GPU) "
            "arrays; move the model and the data to the same device with model.to(...)"
        )
    return cupy if any(on_gpu) else np


# --- moving arrays between devices ----------------------------------------------
def check_device(device):
    """Validate a device name: 'cpu' or 'gpu' (also 'cuda')."""
    name = str(device).lower()
    if name == "cuda":
        name = "gpu"
    if name not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if name == "gpu" and not gpu_available():
        raise RuntimeError(
            "device 'gpu' needs CuPy and a CUDA GPU; install minicnn[gpu] on a machine with one"
        )
    return name


def to_device(x, device):
    """Copy an array to 'cpu' (NumPy) or 'gpu' (CuPy); no copy if it is there already."""
    if device == "gpu":
        return cupy.asarray(x)
    return to_numpy(x)


def to_numpy(x):
    """Return a NumPy array, copying from the GPU when needed."""
    return cupy.asnumpy(x) if is_gpu_array(x) else np.asarray(x)


def device_of(x):
    return "gpu" if is_gpu_array(x) else "cpu"


# fit copies the whole data set to the GPU once when it takes at most this share of the
# GPU's free memory; otherwise each batch is copied when it is used.
DEVICE_DATA_SHARE = 0.5


def fits_on_device(nbytes, device):
    """True when `nbytes` of data may stay on `device` for a whole fit (the GPU only)."""
    if device != "gpu":
        return False
    free, _ = cupy.cuda.runtime.memGetInfo()
    return nbytes <= DEVICE_DATA_SHARE * free


def check_same_device(x, device, what):
    """A clear TypeError when array x is not on `device` ('cpu': NumPy, 'gpu': CuPy)."""
    found = device_of(x)
    if found != device:
        kinds = {"cpu": "a NumPy (CPU) array", "gpu": "a CuPy (GPU) array"}
        raise TypeError(f"{what}: the model is on the {device.upper()} and expects {kinds[device]}, got "
                        f"{kinds[found]}; move the model with model.to({found!r}) or the data with "
                        f"model.prepare_batch(x, y) (fit, evaluate and predict move it for you)")


def synchronize(device):
    """Wait until the GPU has finished the work queued so far (nothing to wait for on the CPU)."""
    if device == "gpu":
        cupy.cuda.get_current_stream().synchronize()


# --- random numbers -----------------------------------------------------------------
def set_random_seed(seed):
    """Seed every random draw minicnn makes (weights, dropout, shuffling) on CPU and GPU."""
    global _RNG
    _RNG = np.random.default_rng(seed)
    if cupy is not None and gpu_available():
        cupy.random.seed(seed)


def rng():
    """The NumPy random generator behind weight initialisation and shuffling."""
    return _RNG


def random_uniform(xp, shape, dtype):
    """Uniform [0, 1) numbers drawn on the device of `xp` (used by Dropout)."""
    if xp is np:
        return _RNG.random(shape, dtype=dtype)
    return xp.random.random(shape, dtype=dtype)


def get_rng_state():
    """The generator state as a JSON-able dict (saved in checkpoints)."""
    return _RNG.bit_generator.state


def set_rng_state(state):
    _RNG.bit_generator.state = state


# --- Keras's backend helpers (keras.backend / tf.keras.backend, as scripts call them) ------------
def epsilon():
    """The fuzz factor, 1e-7: probabilities are clipped to [epsilon, 1 - epsilon] before a log."""
    return 1e-7


def image_data_format():
    """Where image channels are: always 'channels_last', images (N, height, width, channels)."""
    return "channels_last"


def set_image_data_format(data_format):
    """Accepts 'channels_last' only: minicnn has no channels-first layout."""
    if data_format != "channels_last":
        raise ValueError(f"minicnn is channels-last only: images are (N, height, width, channels); "
                         f"set_image_data_format got {data_format!r}, expected 'channels_last'")


def clear_session():
    """Start layer names afresh (dense, dense_1... again), as Keras's clear_session does."""
    from minicnn.layers.base import reset_names  # layers import this module: import it when called
    reset_names()


def get_value(x):
    """The value of x: the learning rate (optimizer.learning_rate, optimizer.lr) as a float,
    a NumPy copy of an array, a number as it is."""
    if hasattr(x, "numpy") and hasattr(x, "assign"):   # variable-like: the optimizer's LearningRate
        return x.numpy()
    if isinstance(x, np.ndarray) or is_gpu_array(x):
        return to_numpy(x).copy()
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return x
    raise TypeError(f"get_value: expected an optimizer's learning rate, an array or a number, got "
                    f"{type(x).__name__}")


def set_value(x, value):
    """Set x to value: the learning rate (set_value(model.optimizer.lr, 0.001)), or an array's
    values, written in place (value must broadcast to its shape)."""
    if hasattr(x, "numpy") and hasattr(x, "assign"):
        x.assign(value)
    elif isinstance(x, np.ndarray) or is_gpu_array(x):
        x[...] = get_array_module(x).asarray(value, dtype=x.dtype)
    else:
        raise TypeError(f"set_value: expected an optimizer's learning rate or an array to change in place, got "
                        f"{type(x).__name__}; a {type(x).__name__} cannot be changed in place: assign the "
                        "attribute instead (e.g. model.optimizer.learning_rate = 0.001)")

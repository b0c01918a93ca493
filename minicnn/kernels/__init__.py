"""The one dispatch point for the hot loops: im2col, col2im, max-pool forward/backward,
Conv2D's bias + LeakyReLU + max-pooling as one step (see minicnn/plan.py), and the
elementwise steps worth a kernel (LeakyReLU forward/backward, the dropout mask, the
Adam update, bias gradients).

Layers call `kernels.im2col(x, window)` and never ask which device they are on. Here
we pick the implementation from the array itself:

    CuPy array     -> gpu.py        (Numba's CUDA target; reference.py if numba-cuda is missing)
    NumPy array    -> cpu.py        (Numba; reference.py if Numba is missing)
    any array, when chosen with use_kernels(...) or MINICNN_KERNELS:
        'reference' -> reference.py (plain NumPy/CuPy, the readable definition)
        'gpu'       -> gpu.py, NumPy arrays included: with NUMBA_ENABLE_CUDASIM=1 set before
                       Numba is imported, the CUDA kernels run in Numba's CUDA simulator on
                       the CPU, which is how machines without a GPU test them.

Window geometry (sizes, strides, pads) travels as one kernels.Window, made when a
layer is built.
"""
import contextlib
import os
import types

from minicnn.backend import is_gpu_array
from minicnn.kernels import reference
from minicnn.kernels.window import Window, output_size, padding_amounts

CHOICES = ("auto", "reference", "gpu")
_choice = os.environ.get("MINICNN_KERNELS", "auto").lower() or "auto"
if _choice not in CHOICES:
    raise ValueError(f"MINICNN_KERNELS must be one of {CHOICES}, got {os.environ['MINICNN_KERNELS']!r}")


def use_kernels(choice="auto"):
    """Route every kernel call: 'auto' (by device), 'reference' (reference.py) or 'gpu' (gpu.py).

    Returns the previous choice, so that a caller can put it back.
    """
    global _choice
    if choice not in CHOICES:
        raise ValueError(f"use_kernels: choice must be one of {CHOICES}, got {choice!r}")
    previous, _choice = _choice, choice
    if choice == "gpu" and load("gpu") is None:
        _choice = previous
        raise ImportError("use_kernels('gpu') needs numba-cuda (pip install minicnn[gpu], or numba-cuda with "
                          "NUMBA_ENABLE_CUDASIM=1 to run the kernels in Numba's CUDA simulator)")
    return previous


def use_reference_kernels(flag=True):
    """Route every kernel call to reference.py (True) or choose by device again (False)."""
    return use_kernels("reference" if flag else "auto")


def kernel_choice():
    """The current choice: 'auto', 'reference' or 'gpu'."""
    return _choice


_fast_modules = {}  # "cpu" / "gpu" -> the imported module, or None when it cannot be imported


def load(module_name):
    """Import cpu.py or gpu.py once, on first use; None when it (Numba, numba-cuda) is missing."""
    if module_name not in _fast_modules:
        try:
            if module_name == "cpu":
                from minicnn.kernels import cpu as module
            else:
                from minicnn.kernels import gpu as module
        except ImportError:
            module = None
        _fast_modules[module_name] = module
    return _fast_modules[module_name]


_overrides = {}  # kernel name -> a function that replaces it everywhere (see override)


@contextlib.contextmanager
def override(name, function):
    """Within the block, every call of kernels.<name> runs `function` instead (same arguments),
    on every device: e.g. a learner's own im2col in a whole training run (minicnn.exercises)."""
    if name not in KERNEL_NAMES:
        raise ValueError(f"override: no kernel named {name!r}; kernels: {', '.join(KERNEL_NAMES)}")
    previous = _overrides.get(name)
    _overrides[name] = function
    try:
        yield
    finally:
        if previous is None:
            del _overrides[name]
        else:
            _overrides[name] = previous


def implementation(x):
    """The kernel module that will run for array x (with any overrides in place)."""
    if _choice == "reference":
        module = reference
    else:
        module = load("gpu" if _choice == "gpu" or is_gpu_array(x) else "cpu") or reference
    if _overrides:
        return types.SimpleNamespace(**{name: _overrides.get(name, getattr(module, name)) for name in KERNEL_NAMES})
    return module


def im2col(x, window):
    """x (N, H, W, C) -> col (N*OH*OW, KH*KW*C). See reference.im2col."""
    return implementation(x).im2col(x, window)


def col2im(col, window):
    """col (N*OH*OW, KH*KW*C) -> dx (N, H, W, C). See reference.col2im."""
    return implementation(col).col2im(col, window)


def maxpool_forward(x, window):
    """x (N, H, W, C) -> (y, argmax), both (N, OH, OW, C). See reference.maxpool_forward."""
    return implementation(x).maxpool_forward(x, window)


def maxpool_backward(dy, argmax, window):
    """dy (N, OH, OW, C) -> dx (N, H, W, C). See reference.maxpool_backward."""
    return implementation(dy).maxpool_backward(dy, argmax, window)


def bias_leaky_maxpool_forward(z, bias, negative_slope, window):
    """Conv2D's bias, LeakyReLU and MaxPooling2D in one pass: z (N, H, W, F) -> (y, argmax).
    See reference.bias_leaky_maxpool_forward."""
    return implementation(z).bias_leaky_maxpool_forward(z, bias, negative_slope, window)


def bias_leaky_maxpool_backward(dy, y, argmax, negative_slope, window):
    """Back through the three: dy (N, OH, OW, F) -> (dz (N, H, W, F), d_bias (F,)).
    See reference.bias_leaky_maxpool_backward."""
    return implementation(dy).bias_leaky_maxpool_backward(dy, y, argmax, negative_slope, window)


def leaky_relu_forward(z, negative_slope):
    """y = max(z, negative_slope * z) elementwise. See reference.leaky_relu_forward."""
    return implementation(z).leaky_relu_forward(z, negative_slope)


def leaky_relu_backward(dy, z, negative_slope):
    """dz = dy * (1 if z > 0 else negative_slope). See reference.leaky_relu_backward."""
    return implementation(dy).leaky_relu_backward(dy, z, negative_slope)


def sum_rows(a):
    """(M, F) -> (F,), the column totals (bias gradients). See reference.sum_rows."""
    return implementation(a).sum_rows(a)


def dropout_forward(x, u, rate):
    """Inverted dropout given uniforms u: (y, mask). See reference.dropout_forward."""
    return implementation(x).dropout_forward(x, u, rate)


def adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon):
    """One Adam step in place on param, m, v. See reference.adam_update."""
    implementation(param).adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon)


KERNEL_NAMES = ("im2col", "col2im", "maxpool_forward", "maxpool_backward", "bias_leaky_maxpool_forward",
                "bias_leaky_maxpool_backward", "leaky_relu_forward", "leaky_relu_backward", "dropout_forward",
                "adam_update", "sum_rows")

__all__ = ["Window", "padding_amounts", "output_size", "im2col", "col2im", "maxpool_forward",
           "maxpool_backward", "bias_leaky_maxpool_forward", "bias_leaky_maxpool_backward",
           "leaky_relu_forward", "leaky_relu_backward", "dropout_forward", "adam_update", "sum_rows",
           "use_kernels", "use_reference_kernels", "kernel_choice", "implementation", "load", "override",
           "KERNEL_NAMES", "reference"]

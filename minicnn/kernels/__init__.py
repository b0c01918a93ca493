"""The one dispatch point for the hot loops: im2col, col2im, max-pool forward/backward,
the elementwise steps worth fusing (LeakyReLU forward/backward, the dropout mask, the
Adam update, bias gradients), and Conv2D's bias + LeakyReLU + max-pooling as one step (see minicnn/fusion.py).

Layers call `kernels.im2col(...)` and never ask which device they are on. Here we
pick the implementation from the array itself:

    CuPy array                -> gpu.py      (CuPy raw kernels; not written yet, so reference.py)
    NumPy array               -> cpu.py      (Numba), unless reference kernels are forced
    forced, or Numba missing  -> reference.py (plain NumPy, the readable definition)

Force the reference kernels with the environment variable MINICNN_KERNELS=reference
or with `minicnn.kernels.use_reference_kernels(True)`, to compare the two.
"""
import os

from minicnn.backend import is_gpu_array
from minicnn.kernels import reference
from minicnn.kernels.reference import output_size

_force_reference = os.environ.get("MINICNN_KERNELS", "").lower() == "reference"


def use_reference_kernels(flag=True):
    """Route every kernel call to reference.py (True) or to the fast kernels (False)."""
    global _force_reference
    _force_reference = bool(flag)


_fast_modules = {}  # "cpu" / "gpu" -> the imported module, or None when it cannot be imported


def _load_fast(module_name):
    """Import cpu.py / gpu.py once, on first use; None when it (or Numba / CuPy) is missing."""
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


def implementation(x):
    """The kernel module that will run for array x."""
    if _force_reference:
        return reference
    fast = _load_fast("gpu" if is_gpu_array(x) else "cpu")
    return fast if fast is not None else reference


def padding_amounts(size, window, stride, padding):
    """(pad_before, pad_after) along one axis, for padding 'valid' or 'same' (as Keras/TF).

    'same' gives ceil(size / stride) outputs; an odd total pad puts the extra cell
    after (bottom / right), so a 7-pixel row pooled by 2 becomes 4 with one pad cell at the end.
    """
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)  # ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def im2col(x, kh, kw, stride, pads):
    """x (N, H, W, C) -> col (N*OH*OW, KH*KW*C). See reference.im2col."""
    return implementation(x).im2col(x, kh, kw, stride, pads)


def col2im(col, x_shape, kh, kw, stride, pads):
    """col (N*OH*OW, KH*KW*C) -> dx (N, H, W, C). See reference.col2im."""
    return implementation(col).col2im(col, x_shape, kh, kw, stride, pads)


def maxpool_forward(x, ph, pw, stride, pads):
    """x (N, H, W, C) -> (y, argmax), both (N, OH, OW, C). See reference.maxpool_forward."""
    return implementation(x).maxpool_forward(x, ph, pw, stride, pads)


def maxpool_backward(dy, argmax, x_shape, ph, pw, stride, pads):
    """dy (N, OH, OW, C) -> dx (N, H, W, C). See reference.maxpool_backward."""
    return implementation(dy).maxpool_backward(dy, argmax, x_shape, ph, pw, stride, pads)


def bias_leaky_maxpool_forward(z, bias, alpha, ph, pw, stride, pads):
    """Conv2D's bias, LeakyReLU and MaxPooling2D in one pass: z (N, H, W, F) -> (y, argmax).
    See reference.bias_leaky_maxpool_forward."""
    return implementation(z).bias_leaky_maxpool_forward(z, bias, alpha, ph, pw, stride, pads)


def bias_leaky_maxpool_backward(dy, y, argmax, z_shape, alpha, ph, pw, stride, pads):
    """Back through the three: dy (N, OH, OW, F) -> (dz (N, H, W, F), d_bias (F,)).
    See reference.bias_leaky_maxpool_backward."""
    return implementation(dy).bias_leaky_maxpool_backward(dy, y, argmax, z_shape, alpha, ph, pw, stride, pads)


def leaky_relu_forward(z, alpha):
    """y = max(z, alpha * z) elementwise. See reference.leaky_relu_forward."""
    return implementation(z).leaky_relu_forward(z, alpha)


def leaky_relu_backward(dy, z, alpha):
    """dz = dy * (1 if z > 0 else alpha). See reference.leaky_relu_backward."""
    return implementation(dy).leaky_relu_backward(dy, z, alpha)


def sum_rows(a):
    """(M, F) -> (F,), the column totals (bias gradients). See reference.sum_rows."""
    return implementation(a).sum_rows(a)


def dropout_forward(x, u, rate):
    """Inverted dropout given uniforms u: (y, mask). See reference.dropout_forward."""
    return implementation(x).dropout_forward(x, u, rate)


def adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon):
    """One Adam step in place on param, m, v. See reference.adam_update."""
    implementation(param).adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon)


__all__ = ["im2col", "col2im", "maxpool_forward", "maxpool_backward", "padding_amounts",
           "leaky_relu_forward", "leaky_relu_backward",
           "bias_leaky_maxpool_forward", "bias_leaky_maxpool_backward", "dropout_forward", "adam_update", "sum_rows",
           "output_size", "use_reference_kernels", "implementation", "reference"]

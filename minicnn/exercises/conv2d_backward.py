"""Exercise conv2d_backward: the three gradients of a convolution, z = im2col(x) @ kernel + bias.

    dz2      = dz.reshape(N*OH*OW, F)
    d_bias   = dz2 summed over its rows                     (F,)
    d_kernel = (col^T @ dz2).reshape(KH, KW, C, F)          the patches times the output gradient
    dx       = col2im(dz2 @ kernel.reshape(KH*KW*C, F)^T)   each patch's gradient added back in place
minicnn's answer is Conv2D.backward_linear itself (minicnn/layers/convolutional.py).
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import attributes_replaced, layers_of
from minicnn.kernels import reference
from minicnn.layers import Conv2D

OUTPUTS = ["dx", "d_kernel", "d_bias"]


def reference_conv2d_backward(dz, col, kernel, window):
    """Conv2D.backward_linear on a layer holding `kernel` that has just unfolded its input into `col`."""
    kh, kw, channels, filters = kernel.shape
    layer = Conv2D(filters, (kh, kw), strides=window.strides, padding="same", kernel_initializer="zeros")
    layer.build((None, window.h, window.w, channels))
    layer.window, layer.params["kernel"], layer.col = window, kernel, col
    dx = layer.backward_linear(dz)
    return dx, layer.grads["kernel"], layer.grads["bias"]


def run(f, dz, col, kernel, window):
    return returned(f.conv2d_backward(dz, col, kernel, window), OUTPUTS, "conv2d_backward")


def conv_case(label, x, kernel, dz, window):
    """A case from the layer's input x: col = im2col(x), as the forward pass keeps it."""
    return Case(label, {"dz": dz, "col": reference.im2col(x, window), "kernel": kernel, "window": window})


def hand_made(dtype):
    window = inputs.window(3, 3, 2, 2)
    x = np.arange(1, 10, dtype=dtype).reshape(1, 3, 3, 1)
    kernel = np.arange(1, 9, dtype=dtype).reshape(2, 2, 1, 2) / 10
    dz = np.array([1, 0, 0, 2, -1, 1, 2, 0], dtype).reshape(1, 2, 2, 2)
    first = conv_case("x = 1, ..., 9 in shape (1, 3, 3, 1)\nkernel = 0.1, ..., 0.8 in shape (2, 2, 1, 2): 2 filters\n"
                      "dz = [1, 0, 0, 2, -1, 1, 2, 0] in shape (1, 2, 2, 2)\n" + inputs.describe(window),
                      x, kernel, dz, window)
    window = inputs.window(3, 3, 3, 3, 1, 1, "same")
    x = np.arange(1, 19, dtype=dtype).reshape(1, 3, 3, 2)
    kernel = np.arange(1, 37, dtype=dtype).reshape(3, 3, 2, 2) / 36
    dz = np.arange(-9, 9, dtype=dtype).reshape(1, 3, 3, 2) / 9
    second = conv_case("x = 1, ..., 18 in shape (1, 3, 3, 2)\nkernel = 1/36, ..., 36/36 in shape (3, 3, 2, 2)\n"
                       "dz = -1, ..., 8/9 in shape (1, 3, 3, 2)\n" + inputs.describe(window), x, kernel, dz, window)
    return [first, second]


def drawn(dtype):
    def make(generator, window, batch, channels, dtype):
        filters = int(generator.integers(1, 4))
        x = inputs.normal(generator, (batch, window.h, window.w, channels), dtype)
        kernel = inputs.normal(generator, (window.kh, window.kw, channels, filters), dtype)
        dz = inputs.normal(generator, (batch, window.oh, window.ow, filters), dtype)
        return conv_case(inputs.describe(window, channels, batch) + f", {filters} filters, normal values",
                         x, kernel, dz, window)
    return inputs.geometry_cases(make, dtype)


def correlate(x, kernel, bias, window):
    """The convolution itself: (N, H, W, C) -> (N, OH, OW, F)."""
    filters = kernel.shape[3]
    z = reference.im2col(x, window) @ kernel.reshape(-1, filters) + bias
    return z.reshape(len(x), window.oh, window.ow, filters)


def gradient(f):
    """L = sum(conv(x) * R): your dx, d_kernel and d_bias against central differences."""
    window = inputs.window(5, 5, 3, 3, 2, 2, "same")
    generator = inputs.rng()
    x, kernel, bias = (inputs.normal(generator, shape, np.float64) for shape in [(2, 5, 5, 2), (3, 3, 2, 3), (3,)])
    r = inputs.projection((2, window.oh, window.ow, 3))
    yours = run(f, r.copy(), reference.im2col(x, window), kernel.copy(), window)

    def loss():
        return (correlate(x, kernel, bias, window) * r).sum()

    checks = [GradientCheck(name, yours[name], inputs.numerical(loss, array))
              for name, array in [("dx", x), ("d_kernel", kernel), ("d_bias", bias)]]
    return "2 images 5x5x2, kernel 3x3x2x3, strides 2, padding 'same', L = sum(conv(x) * R)", checks


def plug(model, f):
    """Every Conv2D layer's backward_linear becomes yours (such a layer is not fused: plan.py)."""
    def backward_linear_of(layer):
        def backward_linear(dz):
            dx, layer.grads["kernel"], layer.grads["bias"] = f.conv2d_backward(
                dz, layer.col, layer.params["kernel"], layer.window)
            return dx if layer.input_gradient else None
        return backward_linear
    return attributes_replaced([(layer, "backward_linear", backward_linear_of(layer))
                                for layer in layers_of(model, Conv2D)])


# --- planted mistakes ---------------------------------------------------------------------------
def kernel_not_transposed(dz, col, kernel, window):
    dx, d_kernel, d_bias = reference_conv2d_backward(dz, col, kernel, window)
    filters = kernel.shape[3]
    return reference.col2im(dz.reshape(-1, filters) @ kernel.reshape(filters, -1), window), d_kernel, d_bias


def d_kernel_from_dz_first(dz, col, kernel, window):
    dx, d_kernel, d_bias = reference_conv2d_backward(dz, col, kernel, window)
    return dx, (dz.reshape(-1, kernel.shape[3]).T @ col).reshape(kernel.shape), d_bias


def kernel_flipped(dz, col, kernel, window):
    dx, d_kernel, d_bias = reference_conv2d_backward(dz, col, kernel, window)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    return reference_conv2d_backward(dz, col, flipped, window)[0], d_kernel, d_bias


def bias_averaged(dz, col, kernel, window):
    dx, d_kernel, d_bias = reference_conv2d_backward(dz, col, kernel, window)
    return dx, d_kernel, dz.reshape(-1, kernel.shape[3]).mean(axis=0)


def bias_summed_over_batch_only(dz, col, kernel, window):
    dx, d_kernel, d_bias = reference_conv2d_backward(dz, col, kernel, window)
    return dx, d_kernel, dz.sum(axis=0)


MISTAKES = [
    Mistake("kernel not transposed", {"conv2d_backward": kernel_not_transposed},
            "kernel^T is kernel.reshape(KH*KW*C, F).T, of shape (F, KH*KW*C). kernel.reshape(F, KH*KW*C) has "
            "the same shape but pairs the wrong entries: reshape never transposes."),
    Mistake("d_kernel from dz^T @ col", {"conv2d_backward": d_kernel_from_dz_first},
            "d_kernel = col^T @ dz2, of shape (KH*KW*C, F), then reshaped to (KH, KW, C, F); dz2^T @ col is "
            "(F, KH*KW*C), and reshaping it to the kernel's shape mixes its axes."),
    Mistake("kernel flipped", {"conv2d_backward": kernel_flipped},
            "minicnn's Conv2D is a cross-correlation (as in every framework), and with col2im its backward "
            "uses the kernel as it is: no 180-degree rotation."),
    Mistake("bias gradient averaged", {"conv2d_backward": bias_averaged},
            "d_bias is dz summed over N, OH and OW, not averaged: dz already holds the loss's 1/N."),
    Mistake("bias summed over the batch only", {"conv2d_backward": bias_summed_over_batch_only},
            "the bias is added at every output pixel of every image: sum dz over N, OH and OW, "
            "e.g. dz.reshape(-1, F).sum(axis=0), of shape (F,)."),
]

EXERCISE = Exercise(
    name="conv2d_backward", summary="Conv2D backward: dx, d_kernel, d_bias (with col2im)",
    functions=("conv2d_backward",), reference={"conv2d_backward": reference_conv2d_backward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="write each product with its shapes: (N*OH*OW, KH*KW*C)^T @ (N*OH*OW, F) -> (KH*KW*C, F).")

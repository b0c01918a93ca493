"""Reference kernels: plain array code, written to be read.

These are the definitions; the fast kernels (cpu.py with Numba, gpu.py with CuPy)
must give the same numbers and are tested against them. All arrays are NHWC.

Notation: x (N, H, W, C) is the input; the window is (KH, KW) and moves by
stride (SH, SW) over the input padded by (top, bottom, left, right);
OH = (H + top + bottom - KH) // SH + 1, and likewise OW.
Every function here also runs on CuPy arrays (it only uses `xp`).
"""
from minicnn.backend import get_array_module


def output_size(size, window, stride, pad_before, pad_after):
    """How many window positions fit along one axis of the padded input."""
    return (size + pad_before + pad_after - window) // stride + 1


def _out_hw(shape, kh, kw, stride, pads):
    _, h, w, _ = shape
    top, bottom, left, right = pads
    return (output_size(h, kh, stride[0], top, bottom),
            output_size(w, kw, stride[1], left, right))


def _pad(x, pads, value):
    xp = get_array_module(x)
    top, bottom, left, right = pads
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def im2col(x, kh, kw, stride, pads):
    """Unfold every (KH, KW) window of x into one row.

    x: (N, H, W, C) -> col: (N*OH*OW, KH*KW*C), a row per output pixel, its
    entries ordered (kh, kw, c) to match a kernel (KH, KW, C, F) reshaped to (KH*KW*C, F).
    Then convolution is one matrix product: y = col @ kernel.
    """
    xp = get_array_module(x)
    n, _, _, c = x.shape
    oh, ow = _out_hw(x.shape, kh, kw, stride, pads)
    sh, sw = stride
    padded = _pad(x, pads, 0)
    col = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # the (i, j) cell of every window: a strided slice of the padded input
            col[:, :, :, i, j, :] = padded[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
    return col.reshape(n * oh * ow, kh * kw * c)


def col2im(col, x_shape, kh, kw, stride, pads):
    """The adjoint of im2col: add every row's entries back to the pixels they came from.

    col: (N*OH*OW, KH*KW*C) -> dx: (N, H, W, C). A pixel covered by several windows
    receives the sum of their contributions; padding cells are dropped.
    """
    xp = get_array_module(col)
    n, h, w, c = x_shape
    top, bottom, left, right = pads
    oh, ow = _out_hw(x_shape, kh, kw, stride, pads)
    sh, sw = stride
    col = col.reshape(n, oh, ow, kh, kw, c)
    padded = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += col[:, :, :, i, j, :]
    return padded[:, top:top + h, left:left + w, :]


def maxpool_forward(x, ph, pw, stride, pads):
    """Max over each (PH, PW) window, per channel.

    x: (N, H, W, C) -> y: (N, OH, OW, C) and argmax: (N, OH, OW, C), the winning
    cell's index i * PW + j inside its window. Padding is -inf, so it never wins;
    on a tie the first cell (in row-major window order) wins.
    """
    xp = get_array_module(x)
    oh, ow = _out_hw(x.shape, ph, pw, stride, pads)
    sh, sw = stride
    padded = _pad(x, pads, -xp.inf)
    y = xp.full((x.shape[0], oh, ow, x.shape[3]), -xp.inf, dtype=x.dtype)
    argmax = xp.zeros(y.shape, dtype=xp.int32)
    for i in range(ph):
        for j in range(pw):
            cell = padded[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :]
            better = cell > y  # strictly greater: an earlier cell keeps a tie
            y = xp.where(better, cell, y)
            argmax = xp.where(better, i * pw + j, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, x_shape, ph, pw, stride, pads):
    """Route each output gradient to the input cell that won its window.

    dy, argmax: (N, OH, OW, C) -> dx: (N, H, W, C). With overlapping windows
    (stride < pool size) a cell can win several windows and sums their gradients.
    """
    xp = get_array_module(dy)
    n, h, w, c = x_shape
    top, bottom, left, right = pads
    oh, ow = dy.shape[1:3]
    sh, sw = stride
    padded = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dy.dtype)
    for i in range(ph):
        for j in range(pw):
            won = argmax == i * pw + j
            padded[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += xp.where(won, dy, 0)
    return padded[:, top:top + h, left:left + w, :]


def bias_leaky_maxpool_forward(z, bias, alpha, ph, pw, stride, pads):
    """Three layers in one step: Conv2D's bias, then LeakyReLU, then MaxPooling2D.

    z: (N, H, W, F) the convolution before its bias; bias: (F,) or None; alpha >= 0 the
    LeakyReLU slope, where alpha = 0 means ReLU, max(z, 0) (0 also for z = -inf).
    Returns (y, argmax), both (N, OH, OW, F), exactly as the three steps one after the
    other would: maxpool(leaky_relu(z + bias)). The fast kernel makes one pass over z
    instead of four (bias, activation, pooling, and the copies between them).
    """
    xp = get_array_module(z)
    if bias is not None:
        z = z + bias
    activated = leaky_relu_forward(z, alpha) if alpha > 0 else xp.maximum(z, 0)
    return maxpool_forward(activated, ph, pw, stride, pads)


def bias_leaky_maxpool_backward(dy, y, argmax, z_shape, alpha, ph, pw, stride, pads):
    """The gradient through MaxPooling2D, LeakyReLU and the bias, in one step.

    dy, y, argmax: (N, OH, OW, F) (y and argmax from the forward) -> (dz, d_bias):
    dz (N, H, W, F) = d loss / d z and d_bias (F,) = dz summed over N, H, W.
    Only a window's winner gets a gradient, and the LeakyReLU slope there is known
    from the pooled output: y > 0 exactly when the winner's z + bias > 0.
    """
    xp = get_array_module(dy)
    slope_dy = xp.where(y > 0, dy, dy * dy.dtype.type(alpha))   # LeakyReLU's slope at each winner
    dz = maxpool_backward(slope_dy, argmax, z_shape, ph, pw, stride, pads)
    return dz, sum_rows(dz.reshape(-1, dz.shape[-1]))


def leaky_relu_forward(z, alpha):
    """y = z where z > 0, else alpha * z (elementwise, any shape)."""
    xp = get_array_module(z)
    return xp.where(z > 0, z, z * z.dtype.type(alpha))


def leaky_relu_backward(dy, z, alpha):
    """dz = dy where z > 0, else alpha * dy."""
    xp = get_array_module(dy)
    return xp.where(z > 0, dy, dy * dy.dtype.type(alpha))


def dropout_forward(x, u, rate):
    """Inverted dropout with the uniform numbers u (same shape as x, in [0, 1)).

    mask = 1 / (1 - rate) where u >= rate, else 0 (a unit is dropped with probability rate,
    and the survivors are scaled up so that the expected output stays x); y = x * mask.
    Returns (y, mask): the backward pass is dx = dy * mask.
    """
    keep = u >= u.dtype.type(rate)
    mask = keep * x.dtype.type(1.0 / (1.0 - rate))
    return x * mask, mask


def adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon):
    """One Adam step, in place on param, m and v (Keras's form; see optimizers.Adam):

        m += (1 - beta_1) (grad - m);  v += (1 - beta_2) (grad^2 - v)
        param -= step_size * m / (sqrt(v) + epsilon)
    """
    xp = get_array_module(param)
    dtype = param.dtype.type
    m += dtype(1 - beta_1) * (grad - m)
    v += dtype(1 - beta_2) * (grad * grad - v)
    param -= dtype(step_size) * m / (xp.sqrt(v) + dtype(epsilon))


def sum_rows(a):
    """The sum of the rows of a 2-D array: (M, F) -> (F,). A bias gradient is sum_rows(dz).

    Added up in float64 (a float32 total over 50,000 rows would lose digits), returned in a's dtype.
    """
    return a.sum(axis=0, dtype="float64").astype(a.dtype)

"""Reference kernels: plain array code, written to be read.

These are the definitions; the fast kernels (cpu.py with Numba, gpu.py with CuPy)
must give the same numbers and are tested against them. All arrays are NHWC.

Notation: x (N, H, W, C) is the input; `window` (a kernels.Window, made when the
layer is built) says how a (KH, KW) window moves by strides (SH, SW) over the input
padded by (top, bottom, left, right), and how many positions (OH, OW) it takes.
Every function here also runs on CuPy arrays (it only uses `xp`).
"""
from minicnn.backend import get_array_module


def _pad(x, window, value):
    """x (N, H, W, C) with the window's padding cells added around H and W, filled with value."""
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (window.top, window.bottom), (window.left, window.right), (0, 0)),
                  constant_values=value)


def _cells(window, i, j):
    """The slices that pick window cell (i, j) of every window from the padded input."""
    return (slice(None), slice(i, i + window.sh * window.oh, window.sh),
            slice(j, j + window.sw * window.ow, window.sw), slice(None))


def im2col(x, window):
    """Unfold every (KH, KW) window of x into one row.

    x: (N, H, W, C) -> col: (N*OH*OW, KH*KW*C), a row per output pixel, its
    entries ordered (kh, kw, c) to match a kernel (KH, KW, C, F) reshaped to (KH*KW*C, F).
    Then convolution is one matrix product: y = col @ kernel.
    """
    xp = get_array_module(x)
    n, c = x.shape[0], x.shape[3]
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    padded = _pad(x, window, 0)
    col = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # the (i, j) cell of every window: a strided slice of the padded input
            col[:, :, :, i, j, :] = padded[_cells(window, i, j)]
    return col.reshape(n * oh * ow, kh * kw * c)


def col2im(col, window):
    """The adjoint of im2col: add every row's entries back to the pixels they came from.

    col: (N*OH*OW, KH*KW*C) -> dx: (N, H, W, C). A pixel covered by several windows
    receives the sum of their contributions; padding cells are dropped.
    """
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    n, c = col.shape[0] // (oh * ow), col.shape[1] // (kh * kw)
    col = col.reshape(n, oh, ow, kh, kw, c)
    padded = _zeros_padded(col, n, window, c)
    for i in range(kh):
        for j in range(kw):
            padded[_cells(window, i, j)] += col[:, :, :, i, j, :]
    return _unpad(padded, window)


def _zeros_padded(like, n, window, c):
    """Zeros (N, top + H + bottom, left + W + right, C) in like's dtype, on like's device."""
    xp = get_array_module(like)
    return xp.zeros((n, window.top + window.h + window.bottom, window.left + window.w + window.right, c),
                    dtype=like.dtype)


def _unpad(padded, window):
    """The (N, H, W, C) inside of a padded array: the padding cells dropped."""
    return padded[:, window.top:window.top + window.h, window.left:window.left + window.w, :]


def maxpool_forward(x, window):
    """Max over each (PH, PW) window, per channel.

    x: (N, H, W, C) -> y: (N, OH, OW, C) and argmax: (N, OH, OW, C), the winning
    cell's index i * PW + j inside its window. Padding is -inf, so it never wins;
    on a tie the first cell (in row-major window order) wins.
    """
    xp = get_array_module(x)
    padded = _pad(x, window, -xp.inf)
    y = xp.full((x.shape[0], window.oh, window.ow, x.shape[3]), -xp.inf, dtype=x.dtype)
    argmax = xp.zeros(y.shape, dtype=xp.int32)
    for i in range(window.kh):
        for j in range(window.kw):
            cell = padded[_cells(window, i, j)]
            better = cell > y  # strictly greater: an earlier cell keeps a tie
            y = xp.where(better, cell, y)
            argmax = xp.where(better, i * window.kw + j, argmax)
    return y, argmax


def maxpool_backward(dy, argmax, window):
    """Route each output gradient to the input cell that won its window.

    dy, argmax: (N, OH, OW, C) -> dx: (N, H, W, C). With overlapping windows
    (stride < pool size) a cell can win several windows and sums their gradients.
    """
    xp = get_array_module(dy)
    padded = _zeros_padded(dy, dy.shape[0], window, dy.shape[3])
    for i in range(window.kh):
        for j in range(window.kw):
            won = argmax == i * window.kw + j
            padded[_cells(window, i, j)] += xp.where(won, dy, 0)
    return _unpad(padded, window)


def bias_leaky_maxpool_forward(z, bias, negative_slope, window):
    """Three layers in one step: Conv2D's bias, then LeakyReLU, then MaxPooling2D.

    z: (N, H, W, F) the convolution before its bias; bias: (F,) or None; negative_slope >= 0
    the LeakyReLU slope, where 0 means ReLU, max(z, 0) (0 also for z = -inf).
    Returns (y, argmax), both (N, OH, OW, F), exactly as the three steps one after the
    other would: maxpool(leaky_relu(z + bias)). The fast kernel makes one pass over z
    instead of four (bias, activation, pooling, and the copies between them).
    """
    xp = get_array_module(z)
    if bias is not None:
        z = z + bias
    activated = leaky_relu_forward(z, negative_slope) if negative_slope > 0 else xp.maximum(z, 0)
    return maxpool_forward(activated, window)


def bias_leaky_maxpool_backward(dy, y, argmax, negative_slope, window):
    """The gradient through MaxPooling2D, LeakyReLU and the bias, in one step.

    dy, y, argmax: (N, OH, OW, F) (y and argmax from the forward) -> (dz, d_bias):
    dz (N, H, W, F) = d loss / d z and d_bias (F,) = dz summed over N, H, W.
    Only a window's winner gets a gradient, and the LeakyReLU slope there is known
    from the pooled output: y > 0 exactly when the winner's z + bias > 0.
    """
    xp = get_array_module(dy)
    slope_dy = xp.where(y > 0, dy, dy * dy.dtype.type(negative_slope))   # LeakyReLU's slope at each winner
    dz = maxpool_backward(slope_dy, argmax, window)
    return dz, sum_rows(dz.reshape(-1, dz.shape[-1]))


def leaky_relu_forward(z, negative_slope):
    """y = z where z > 0, else negative_slope * z (elementwise, any shape)."""
    xp = get_array_module(z)
    return xp.where(z > 0, z, z * z.dtype.type(negative_slope))


def leaky_relu_backward(dy, z, negative_slope):
    """dz = dy where z > 0, else negative_slope * dy."""
    xp = get_array_module(dy)
    return xp.where(z > 0, dy, dy * dy.dtype.type(negative_slope))


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

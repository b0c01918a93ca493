"""CPU kernels compiled by Numba: the loops of reference.py, written out one pixel at a time.

Same functions, same arguments, same numbers as reference.py (read that file first:
it is the definition). Here every loop is explicit and Numba compiles it to machine
code, so a loop costs what it would cost in C.

Each kernel comes in three small pieces:
  - `_..._image`: the loops for ONE image: this is the algorithm;
  - `_..._batch`: runs it on every image of the batch;
  - the public wrapper: reads the sizes from the `window` (kernels.Window), allocates
    the output in the input's dtype (float32 stays float32, float64 stays float64) and
    calls `_..._batch`.

Threads. The batch loops are written with `numba.prange`: images are independent and
each writes only its own slice of the output, so compiled with `parallel=True` they
could run on all cores with no two threads ever writing the same cell. We compile
them serially (PARALLEL = False; prange then is a plain range), because that measured
faster for the lab model: its matrix products already keep every core busy with
NumPy's BLAS threads, and Numba's OpenMP threads, spinning between kernel calls,
fought them for the cores (the conv/pool part of a training step got slower on 2
cores: benchmarks/RESULTS.md). Numba's workqueue threads, which do not spin, gained nothing
either: these kernels move memory, and on the machines measured a second thread does not
move it faster. `python benchmarks/bench_kernels.py --parallel` measures it.

Compiled code is cached on disk (`cache=True`, in __pycache__ next to this file), so
only the first run on a machine pays the compile time; later processes load it.

`import numba` fails when Numba is missing; the dispatcher in kernels/__init__.py
then falls back to reference.py.
"""
import numba  # ImportError here -> kernels/__init__.py uses reference.py instead
import numpy as np
from numba import prange

from minicnn.kernels import reference

PARALLEL = False                                           # see "Threads" above
# error_model="numpy": a float division by zero gives inf or nan, as in NumPy (and in
# reference.py), instead of Python's ZeroDivisionError. Checking for that exception
# in every iteration also kept LLVM from vectorizing the loops (benchmarks/RESULTS.md).
compiled = numba.njit(cache=True, error_model="numpy")                           # a loop, compiled
compiled_batch = numba.njit(cache=True, error_model="numpy", parallel=PARALLEL)  # the loop over the images


# --- im2col ---------------------------------------------------------------------
@compiled
def _im2col_image(x, col, sh, sw, top, left):
    """col[a, b, i, j, :] = x[a*SH - top + i, b*SW - left + j, :], or 0 in the padding.

    x: (H, W, C); col: (OH, OW, KH, KW, C), filled in place.
    """
    h, w, channels = x.shape
    oh, ow, kh, kw, _ = col.shape
    for a in range(oh):
        for b in range(ow):
            for i in range(kh):
                r = a * sh - top + i                # input row of window cell (i, .)
                for j in range(kw):
                    s = b * sw - left + j           # input column of window cell (., j)
                    if 0 <= r < h and 0 <= s < w:
                        for c in range(channels):
                            col[a, b, i, j, c] = x[r, s, c]
                    else:                           # a padding cell
                        for c in range(channels):
                            col[a, b, i, j, c] = 0


@compiled_batch
def _im2col_batch(x, col, sh, sw, top, left):
    """x: (N, H, W, C) -> col: (N, OH, OW, KH, KW, C), image by image."""
    for n in prange(x.shape[0]):
        _im2col_image(x[n], col[n], sh, sw, top, left)


def im2col(x, window):
    """x (N, H, W, C) -> col (N*OH*OW, KH*KW*C), rows ordered (kh, kw, c). See reference.im2col."""
    if x.shape[3] == 1:
        # One channel: the reference's KH*KW strided copies beat this loop for the lab's
        # first layer (benchmarks/RESULTS.md); from 2 channels on, the loop wins.
        return reference.im2col(x, window)
    x = np.ascontiguousarray(x)
    n, c = x.shape[0], x.shape[3]
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    col = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    _im2col_batch(x, col, window.sh, window.sw, window.top, window.left)
    return col.reshape(n * oh * ow, kh * kw * c)      # a view: col is contiguous


# --- col2im ---------------------------------------------------------------------
@compiled
def _col2im_image(col, dx, sh, sw, top, left):
    """dx[a*SH - top + i, b*SW - left + j, :] += col[a, b, i, j, :], padding dropped.

    col: (OH, OW, KH, KW, C); dx: (H, W, C), overwritten (zeroed here, then added into).
    A scatter: walk col in memory order and add each entry to its pixel. (The
    gather, each pixel collecting from the windows that cover it, gives the same
    sums but reads col out of order.)
    """
    h, w, channels = dx.shape
    oh, ow, kh, kw, _ = col.shape
    dx[:] = 0     # here rather than np.zeros for the batch: zeroed just before use, still in cache
    for a in range(oh):
        for b in range(ow):
            for i in range(kh):
                r = a * sh - top + i
                if r < 0 or r >= h:
                    continue                        # a padding row: dropped
                for j in range(kw):
                    s = b * sw - left + j
                    if s < 0 or s >= w:
                        continue                    # a padding column: dropped
                    for c in range(channels):
                        dx[r, s, c] += col[a, b, i, j, c]


@compiled_batch
def _col2im_batch(col, dx, sh, sw, top, left):
    """col: (N, OH, OW, KH, KW, C) -> dx: (N, H, W, C). Image n adds only into dx[n]."""
    for n in prange(dx.shape[0]):
        _col2im_image(col[n], dx[n], sh, sw, top, left)


def col2im(col, window):
    """col (N*OH*OW, KH*KW*C) -> dx (N, H, W, C), overlaps summed. See reference.col2im."""
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    n, c = col.shape[0] // (oh * ow), col.shape[1] // (kh * kw)
    col = np.ascontiguousarray(col).reshape(n, oh, ow, kh, kw, c)
    dx = np.empty((n, window.h, window.w, c), dtype=col.dtype)     # each image's kernel zeroes its part
    _col2im_batch(col, dx, window.sh, window.sw, window.top, window.left)
    return dx


# --- max-pooling forward --------------------------------------------------------
@compiled
def _maxpool_forward_image(x, y, argmax, ph, pw, sh, sw, top, left):
    """y[a, b, c] = max of x over window (a, b); argmax = i*PW + j of the first winner.

    x: (H, W, C); y, argmax: (OH, OW, C), filled in place.
    Padding cells are skipped, which is the same as padding with -inf.
    The channel loop has no branch (`a if win else b`), so that it vectorizes: see the
    fused kernel below.
    """
    h, w, channels = x.shape
    oh, ow, _ = y.shape
    for a in range(oh):
        for b in range(ow):
            y_ab, argmax_ab = y[a, b], argmax[a, b]
            for c in range(channels):
                y_ab[c] = -np.inf
                argmax_ab[c] = 0
            for i in range(ph):
                r = a * sh - top + i
                if r < 0 or r >= h:
                    continue
                for j in range(pw):
                    s = b * sw - left + j
                    if s < 0 or s >= w:
                        continue
                    cell, x_rs = i * pw + j, x[r, s]
                    for c in range(channels):
                        win = x_rs[c] > y_ab[c]   # strictly greater: on a tie the earlier cell keeps the win
                        y_ab[c] = x_rs[c] if win else y_ab[c]
                        argmax_ab[c] = cell if win else argmax_ab[c]


@compiled_batch
def _maxpool_forward_batch(x, y, argmax, ph, pw, sh, sw, top, left):
    """x: (N, H, W, C) -> y, argmax: (N, OH, OW, C), image by image."""
    for n in prange(x.shape[0]):
        _maxpool_forward_image(x[n], y[n], argmax[n], ph, pw, sh, sw, top, left)


def maxpool_forward(x, window):
    """x (N, H, W, C) -> (y, argmax int32), both (N, OH, OW, C). See reference.maxpool_forward."""
    x = np.ascontiguousarray(x)
    shape = (x.shape[0], window.oh, window.ow, x.shape[3])
    y, argmax = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int32)
    _maxpool_forward_batch(x, y, argmax, window.kh, window.kw, window.sh, window.sw, window.top, window.left)
    return y, argmax


# --- max-pooling backward -------------------------------------------------------
@compiled
def _maxpool_backward_image(dy, argmax, dx, ph, pw, sh, sw, top, left, zero):
    """dx[winner of window (a, b), c] += dy[a, b, c].

    dy, argmax: (OH, OW, C); dx: (H, W, C), overwritten (zeroed here, then added into).
    As in reference.py, visit each window cell (i, j) and pass on the gradient of
    the channels it won (comparing with i*PW + j is much cheaper than decoding
    argmax with // and %). Overlapping windows can share a winner: its gradients
    add up. Winners in the padding are dropped. Every cell gets `dy if it won else zero`
    added (no branch, so the channel loop vectorizes); zero is 0 in dx's dtype, since a
    literal 0 would make Numba do the addition in float64.
    """
    h, w, channels = dx.shape
    oh, ow, _ = dy.shape
    dx[:] = 0
    for a in range(oh):
        for b in range(ow):
            dy_ab, argmax_ab = dy[a, b], argmax[a, b]
            for i in range(ph):
                r = a * sh - top + i
                if r < 0 or r >= h:
                    continue
                for j in range(pw):
                    s = b * sw - left + j
                    if s < 0 or s >= w:
                        continue
                    cell, dx_rs = i * pw + j, dx[r, s]
                    for c in range(channels):
                        dx_rs[c] += dy_ab[c] if argmax_ab[c] == cell else zero


@compiled_batch
def _maxpool_backward_batch(dy, argmax, dx, ph, pw, sh, sw, top, left, zero):
    """dy, argmax: (N, OH, OW, C) -> dx: (N, H, W, C). Image n adds only into dx[n]."""
    for n in prange(dx.shape[0]):
        _maxpool_backward_image(dy[n], argmax[n], dx[n], ph, pw, sh, sw, top, left, zero)


def maxpool_backward(dy, argmax, window):
    """dy (N, OH, OW, C) -> dx (N, H, W, C). See reference.maxpool_backward."""
    dy = np.ascontiguousarray(dy)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    dx = np.empty((dy.shape[0], window.h, window.w, dy.shape[3]), dtype=dy.dtype)   # zeroed image by image
    _maxpool_backward_batch(dy, argmax, dx, window.kh, window.kw, window.sh, window.sw, window.top, window.left,
                            dy.dtype.type(0))
    return dx


# --- Conv2D's bias + LeakyReLU + max-pooling, fused --------------------------------
# Three layers, one pass: the convolution's output z is read once, and neither z + bias
# nor the activation's output is ever written out at full size. (Unfused, the lab's first
# block reads or writes its (64, 28, 28, 32) array eleven times a step; fused, three.)
@compiled
def _bias_leaky_maxpool_forward_image(z, bias, negative_slope, y, argmax, ph, pw, sh, sw, top, left):
    """y[a, b, c] = max over window (a, b) of leaky(z + bias[c]); argmax as in max-pooling.

    z: (H, W, F); y, argmax: (OH, OW, F), overwritten. The activation is applied
    before comparing, as the unfused layers do, so ties go to the same cell.
    The channel loop writes y and argmax on every cell, the old value or the new
    (`a if win else b`) rather than `if win: y[...] = v`: the same numbers, but with no
    branch in the loop, the compiler can do several channels in one instruction.
    """
    h, w, channels = z.shape
    oh, ow, _ = y.shape
    for a in range(oh):
        for b in range(ow):
            y_ab, argmax_ab = y[a, b], argmax[a, b]           # (F,) views: the window's outputs
            for c in range(channels):
                y_ab[c] = -np.inf
                argmax_ab[c] = 0
            for i in range(ph):
                r = a * sh - top + i
                if r < 0 or r >= h:
                    continue
                for j in range(pw):
                    s = b * sw - left + j
                    if s < 0 or s >= w:
                        continue
                    cell, z_rs = i * pw + j, z[r, s]
                    for c in range(channels):
                        v = z_rs[c] + bias[c]                 # the convolution's bias
                        # LeakyReLU; ReLU when negative_slope is 0 (0, even for -inf; NaN passes, as np.maximum)
                        v = v if not v <= 0 else (negative_slope * v if negative_slope > 0 else 0)
                        win = v > y_ab[c]                     # max-pooling: the first winner keeps a tie
                        y_ab[c] = v if win else y_ab[c]
                        argmax_ab[c] = cell if win else argmax_ab[c]


@compiled_batch
def _bias_leaky_maxpool_forward_batch(z, bias, negative_slope, y, argmax, ph, pw, sh, sw, top, left):
    for n in prange(z.shape[0]):
        _bias_leaky_maxpool_forward_image(z[n], bias, negative_slope, y[n], argmax[n], ph, pw, sh, sw, top, left)


def bias_leaky_maxpool_forward(z, bias, negative_slope, window):
    """z (N, H, W, F), bias (F,) or None -> (y, argmax int32), (N, OH, OW, F).
    See reference.bias_leaky_maxpool_forward."""
    z = np.ascontiguousarray(z)
    f = z.shape[3]
    bias = np.zeros(f, z.dtype) if bias is None else np.ascontiguousarray(bias, dtype=z.dtype)
    shape = (z.shape[0], window.oh, window.ow, f)
    y, argmax = np.empty(shape, dtype=z.dtype), np.empty(shape, dtype=np.int32)
    _bias_leaky_maxpool_forward_batch(z, bias, z.dtype.type(negative_slope), y, argmax, window.kh, window.kw,
                                      window.sh, window.sw, window.top, window.left)
    return y, argmax


@compiled
def _bias_leaky_maxpool_backward_image(dy, y, argmax, negative_slope, dz, d_bias, ph, pw, sh, sw, top, left):
    """dz[winner of (a, b), c] += slope * dy[a, b, c], and d_bias[c] += the same.

    dy, y, argmax: (OH, OW, F); dz: (H, W, F), overwritten (zeroed here, then added into);
    d_bias: (F,) float64 totals, added into. slope is 1 where the pooled output y > 0 (the
    winner's z + bias > 0), else negative_slope. A winner in the padding (a window of -inf or NaN
    keeps cell 0) passes nothing on, to dz or to the bias: d_bias is exactly dz's sum.
    Every cell of a window gets `g if it won else 0` added: no branch in the channel loop
    (see the forward), and adding 0 to dz changes nothing.
    """
    h, w, channels = dz.shape
    oh, ow, _ = dy.shape
    zero = negative_slope - negative_slope   # 0 in dz's precision: `g if won else 0` would compute in float64
    dz[:] = 0
    for a in range(oh):
        for b in range(ow):
            dy_ab, y_ab, argmax_ab = dy[a, b], y[a, b], argmax[a, b]
            r0, s0 = a * sh - top, b * sw - left               # the window's top-left cell
            inside = r0 >= 0 and s0 >= 0 and r0 + ph <= h and s0 + pw <= w
            if inside:   # no padding cell can have won: every window's gradient reaches the bias
                for c in range(channels):
                    d_bias[c] += dy_ab[c] if y_ab[c] > 0 else negative_slope * dy_ab[c]
            for i in range(ph):
                r = r0 + i
                if r < 0 or r >= h:
                    continue
                for j in range(pw):
                    s = s0 + j
                    if s < 0 or s >= w:
                        continue
                    cell, dz_rs = i * pw + j, dz[r, s]
                    for c in range(channels):
                        g = dy_ab[c] if y_ab[c] > 0 else negative_slope * dy_ab[c]
                        dz_rs[c] += g if argmax_ab[c] == cell else zero
                    if not inside:                     # at the border, only winners in the image count
                        for c in range(channels):
                            if argmax_ab[c] == cell:
                                d_bias[c] += dy_ab[c] if y_ab[c] > 0 else negative_slope * dy_ab[c]


@compiled
def _bias_leaky_maxpool_backward_batch(dy, y, argmax, negative_slope, dz, d_bias, ph, pw, sh, sw, top, left):
    """Image by image, serially on purpose: every image adds into the same d_bias."""
    for n in range(dy.shape[0]):
        _bias_leaky_maxpool_backward_image(dy[n], y[n], argmax[n], negative_slope, dz[n], d_bias, ph, pw, sh, sw, top, left)


def bias_leaky_maxpool_backward(dy, y, argmax, negative_slope, window):
    """dy, y, argmax (N, OH, OW, F) -> (dz (N, H, W, F), d_bias (F,)).
    See reference.bias_leaky_maxpool_backward."""
    dy, y = np.ascontiguousarray(dy), np.ascontiguousarray(y)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    dz = np.empty((dy.shape[0], window.h, window.w, dy.shape[3]), dtype=dy.dtype)   # zeroed image by image
    d_bias = np.zeros(dz.shape[-1], dtype=np.float64)
    _bias_leaky_maxpool_backward_batch(dy, y, argmax, dy.dtype.type(negative_slope), dz, d_bias, window.kh,
                                       window.kw, window.sh, window.sw, window.top, window.left)
    return dz, d_bias.astype(dy.dtype)


# --- elementwise: LeakyReLU and the Adam update -----------------------------------
# NumPy evaluates `where(z > 0, z, negative_slope * z)` in three passes over memory, each with
# its own temporary array; one compiled loop reads z once and writes y once.
@compiled
def _leaky_relu_forward_flat(z, y, negative_slope):
    for k in range(z.size):
        y[k] = z[k] if z[k] > 0 else negative_slope * z[k]


@compiled
def _leaky_relu_backward_flat(dy, z, dz, negative_slope):
    for k in range(dy.size):
        dz[k] = dy[k] if z[k] > 0 else negative_slope * dy[k]


def leaky_relu_forward(z, negative_slope):
    """y = z where z > 0, else negative_slope * z. See reference.leaky_relu_forward."""
    z = np.ascontiguousarray(z)
    y = np.empty_like(z)
    _leaky_relu_forward_flat(z.reshape(-1), y.reshape(-1), z.dtype.type(negative_slope))
    return y


def leaky_relu_backward(dy, z, negative_slope):
    """dz = dy where z > 0, else negative_slope * dy. See reference.leaky_relu_backward."""
    dy, z = np.ascontiguousarray(dy), np.ascontiguousarray(z)
    dz = np.empty_like(dy)
    _leaky_relu_backward_flat(dy.reshape(-1), z.reshape(-1), dz.reshape(-1), dy.dtype.type(negative_slope))
    return dz


@compiled
def _dropout_forward_flat(x, u, rate, scale, y, mask):
    for k in range(x.size):
        mask[k] = scale if u[k] >= rate else 0
        y[k] = x[k] * mask[k]


def dropout_forward(x, u, rate):
    """(y, mask) of inverted dropout in one pass (NumPy: compare, scale, multiply: three).
    See reference.dropout_forward."""
    x, u = np.ascontiguousarray(x), np.ascontiguousarray(u, dtype=x.dtype)
    y, mask = np.empty_like(x), np.empty_like(x)
    t = x.dtype.type
    _dropout_forward_flat(x.reshape(-1), u.reshape(-1), t(rate), t(1.0 / (1.0 - rate)), y.reshape(-1), mask.reshape(-1))
    return y, mask


@compiled
def _adam_update_flat(param, grad, m, v, step_size, rate_1, rate_2, epsilon):
    for k in range(param.size):
        m[k] += rate_1 * (grad[k] - m[k])
        v[k] += rate_2 * (grad[k] * grad[k] - v[k])
        param[k] -= step_size * m[k] / (np.sqrt(v[k]) + epsilon)


def adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon):
    """One Adam step in place on param, m and v, one pass over memory. See reference.adam_update."""
    if not (param.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("adam_update updates param, m and v in place: they must be contiguous arrays")
    t = param.dtype.type  # the arithmetic in the parameter's precision, exactly as the reference
    _adam_update_flat(param.reshape(-1), np.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1),
                      t(step_size), t(1 - beta_1), t(1 - beta_2), t(epsilon))


# --- sum of rows (bias gradients) --------------------------------------------------
@compiled
def _sum_rows(a, total):
    for r in range(a.shape[0]):
        for c in range(a.shape[1]):
            total[c] += a[r, c]


def sum_rows(a):
    """(M, F) -> (F,). NumPy's a.sum(axis=0) walks a column-wise reduction, much
    slower on the lab's (50176, 32) gradient (benchmarks/RESULTS.md); one pass over the rows, adding into
    float64 totals (so no precision is lost over 50,000 rows), is memory speed."""
    total = np.zeros(a.shape[1], dtype=np.float64)
    _sum_rows(np.ascontiguousarray(a), total)
    return total.astype(a.dtype)

"""GPU kernels written with Numba's CUDA target: the loops of reference.py, one thread per output cell.

Same functions, same arguments, same numbers as reference.py (read that file first: it is
the definition) and as cpu.py (read it second: the loops there are the loops here).

Layout. cpu.py walks one image with nested loops; here the outer loops are gone: every
cell of the output gets its own CUDA thread, and the body of the loop is what that one
thread computes. Each kernel comes in two pieces:
  - `_..._kernel` (`@cuda.jit`): the work of ONE thread. It finds which output cell is its
    own from its flat index (`cuda.grid(1)`, decoded by `_position` into (n, a, b, c)),
    does nothing if that index is past the end of the output, and writes only that cell;
  - the public wrapper: makes the inputs contiguous, reads the sizes from the `window`
    (kernels.Window), allocates the output and launches the kernel with `_launch`.

Launch. THREADS_PER_BLOCK threads form a block, and a launch runs blocks_for(size) blocks:
enough threads for all `size` output cells (the last block's extra threads return at once).
No two threads write the same cell, so no atomics are needed: where the CPU code adds into
a pixel from several windows (col2im, the max-pooling backward), the GPU thread of that
pixel gathers the contributions of every window that covers it instead.

Arrays. Outputs are allocated with the input's array module
(`minicnn.backend.get_array_module(x)`: CuPy on a GPU, NumPy in the simulator) and in the
input's dtype: float32 stays float32, float64 stays float64. The kernels are compiled once
per dtype; scalars (slopes, 0, -inf) are cast to the arrays' dtype in the wrappers so that
the arithmetic in a thread stays in that precision too. A wrapper never waits for the GPU
and never copies to the host: it only queues kernels (a CUDA graph can capture them).

Where it runs. On a GPU the kernels run on CuPy arrays, read through the CUDA array
interface. Without a GPU, with NUMBA_ENABLE_CUDASIM=1 set before Numba is first imported
(tests/conftest.py does it), Numba's CUDA simulator runs the same kernels on NumPy arrays,
one Python thread per CUDA thread: slow, but it is the same code, so the tests can check it
against reference.py on any machine.

On a real GPU, NVVM (Numba's CUDA compiler) may fuse a multiplication and the addition that
follows it into one fused multiply-add, rounded once instead of twice, and Numba has no
switch to stop it. Where a kernel multiplies and then adds (the fused backward's slope on
overlapping windows, the Adam step), a GPU can therefore differ from reference.py in the
last bit; the simulator, which runs the kernels as plain Python, does not.

`from numba import cuda` fails when Numba is missing, and this module refuses to load where
Numba sees neither a GPU nor the simulator; kernels/__init__.py then uses reference.py.
"""
import math

import numpy as np
from numba import cuda  # ImportError here -> kernels/__init__.py uses reference.py instead

from minicnn import backend
from minicnn.backend import get_array_module, is_gpu_array

if not cuda.is_available():
    raise ImportError("numba.cuda finds no CUDA GPU; set NUMBA_ENABLE_CUDASIM=1 before numba is imported "
                      "to run the GPU kernels in Numba's CUDA simulator")

THREADS_PER_BLOCK = 256   # threads in one block: a multiple of the 32 threads a GPU runs in lockstep (a warp)


# --- launching -----------------------------------------------------------------------
def blocks_for(size):
    """How many blocks of THREADS_PER_BLOCK threads give each of `size` output cells a thread (at least 1)."""
    return max(1, -(-size // THREADS_PER_BLOCK))      # ceil(size / THREADS_PER_BLOCK)


def _launch(kernel, size, *args):
    """Queue kernel(*args) with one thread for each of the `size` cells of its output.

    CuPy arrays go in as Numba views of the same GPU memory, and the kernel is queued on
    CuPy's current stream, behind the CuPy work that made its inputs. (By default Numba
    would first wait, on the CPU, for the stream named in every CuPy array it is given; on
    that same stream the order is already right, and waiting would stall the CPU and break
    a CUDA graph capture.) NumPy arrays (the simulator) go in as they are.
    """
    if any(is_gpu_array(arg) for arg in args):
        stream_handle = backend.cupy.cuda.get_current_stream().ptr
        stream = cuda.external_stream(stream_handle) if stream_handle else 0   # 0: the default stream
        args = [cuda.as_cuda_array(arg, sync=False) if is_gpu_array(arg) else arg for arg in args]
    else:
        stream = 0
    kernel[blocks_for(size), THREADS_PER_BLOCK, stream](*args)


# --- small device functions, called by the threads -----------------------------------------
@cuda.jit(device=True)
def _position(index, shape):
    """(n, a, b, c): the cell at flat position `index` of a C-ordered array of shape (N, A, B, C)."""
    c = index % shape[3]
    b = index // shape[3] % shape[2]
    a = index // (shape[3] * shape[2]) % shape[1]
    n = index // (shape[3] * shape[2] * shape[1])
    return n, a, b, c


@cuda.jit(device=True)
def _window_at(p, stride, count):
    """Which window a (0 <= a < count) starts at position p = a * stride; -1 if none does.

    A pixel at row r is cell i of window a exactly when a * SH - top + i = r, that is when
    the window starts at p = r + top - i: the gathers ask this for every cell i.
    """
    if p < 0 or p % stride != 0 or p // stride >= count:
        return -1
    return p // stride


# --- im2col ---------------------------------------------------------------------
@cuda.jit
def _im2col_kernel(x, col, kw, sh, sw, top, left, zero):
    """One thread = one entry of col: col[n, a, b, (i*KW + j)*C + c] = x[n, a*SH - top + i, b*SW - left + j, c],
    or 0 in the padding.

    x: (N, H, W, C); col: (N, OH, OW, KH*KW*C), each row's entries ordered (i, j, c).
    """
    index = cuda.grid(1)
    if index < col.size:
        n, a, b, k = _position(index, col.shape)
        h, w, channels = x.shape[1], x.shape[2], x.shape[3]
        c = k % channels
        j = k // channels % kw
        i = k // (channels * kw)
        r = a * sh - top + i                        # input row of window cell (i, .)
        s = b * sw - left + j                       # input column of window cell (., j)
        if 0 <= r < h and 0 <= s < w:
            col[n, a, b, k] = x[n, r, s, c]
        else:                                       # a padding cell
            col[n, a, b, k] = zero


def im2col(x, window):
    """x (N, H, W, C) -> col (N*OH*OW, KH*KW*C), rows ordered (kh, kw, c). See reference.im2col."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c = x.shape[0], x.shape[3]
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    col = xp.empty((n, oh, ow, kh * kw * c), dtype=x.dtype)
    _launch(_im2col_kernel, col.size, x, col, kw, window.sh, window.sw, window.top, window.left, x.dtype.type(0))
    return col.reshape(n * oh * ow, kh * kw * c)      # a view: col is contiguous


# --- col2im ---------------------------------------------------------------------
@cuda.jit
def _col2im_kernel(col, dx, kh, kw, sh, sw, top, left, zero):
    """One thread = one pixel: dx[n, r, s, c] = the sum of col[n, a, b, i, j, c] over the
    windows (a, b) whose cell (i, j) lands on (r, s).

    col: (N, OH, OW, KH, KW, C); dx: (N, H, W, C). A gather: the thread walks the window cells
    (i, j) in row-major order, the order in which reference.py adds them, so the sums come out
    equal to the last bit. zero is 0 in dx's dtype: the sum starts there and stays in that precision.
    """
    index = cuda.grid(1)
    if index < dx.size:
        n, r, s, c = _position(index, dx.shape)
        oh, ow = col.shape[1], col.shape[2]
        total = zero
        for i in range(kh):
            a = _window_at(r + top - i, sh, oh)     # the window whose row i is row r, if any
            if a < 0:
                continue
            for j in range(kw):
                b = _window_at(s + left - j, sw, ow)
                if b < 0:
                    continue
                total += col[n, a, b, i, j, c]
        dx[n, r, s, c] = total


def col2im(col, window):
    """col (N*OH*OW, KH*KW*C) -> dx (N, H, W, C), overlaps summed. See reference.col2im."""
    xp = get_array_module(col)
    kh, kw, oh, ow = window.kh, window.kw, window.oh, window.ow
    n, c = col.shape[0] // (oh * ow), col.shape[1] // (kh * kw)
    col = xp.ascontiguousarray(col).reshape(n, oh, ow, kh, kw, c)
    dx = xp.empty((n, window.h, window.w, c), dtype=col.dtype)   # every pixel is written by its thread
    _launch(_col2im_kernel, dx.size, col, dx, kh, kw, window.sh, window.sw, window.top, window.left,
            col.dtype.type(0))
    return dx


# --- max-pooling forward --------------------------------------------------------
@cuda.jit
def _maxpool_forward_kernel(x, y, argmax, ph, pw, sh, sw, top, left, minus_inf):
    """One thread = one pooled cell: y[n, a, b, c] = max of x over window (a, b); argmax = i*PW + j
    of the first winner.

    x: (N, H, W, C); y, argmax: (N, OH, OW, C). Padding cells are skipped, which is the same as
    padding with -inf. minus_inf is -inf in x's dtype, the start of the running max.
    """
    index = cuda.grid(1)
    if index < y.size:
        n, a, b, c = _position(index, y.shape)
        h, w = x.shape[1], x.shape[2]
        best, best_cell = minus_inf, 0
        for i in range(ph):
            r = a * sh - top + i
            if r < 0 or r >= h:
                continue
            for j in range(pw):
                s = b * sw - left + j
                if s < 0 or s >= w:
                    continue
                # strictly greater: on a tie the earlier cell keeps the win
                if x[n, r, s, c] > best:
                    best, best_cell = x[n, r, s, c], i * pw + j
        y[n, a, b, c] = best
        argmax[n, a, b, c] = best_cell


def maxpool_forward(x, window):
    """x (N, H, W, C) -> (y, argmax int32), both (N, OH, OW, C). See reference.maxpool_forward."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    shape = (x.shape[0], window.oh, window.ow, x.shape[3])
    y, argmax = xp.empty(shape, dtype=x.dtype), xp.empty(shape, dtype=xp.int32)
    _launch(_maxpool_forward_kernel, y.size, x, y, argmax, window.kh, window.kw, window.sh, window.sw,
            window.top, window.left, x.dtype.type(-np.inf))
    return y, argmax


# --- max-pooling backward -------------------------------------------------------
@cuda.jit
def _maxpool_backward_kernel(dy, argmax, dx, ph, pw, sh, sw, top, left, zero):
    """One thread = one input pixel: dx[n, r, s, c] = the sum of dy[n, a, b, c] over the windows
    (a, b) that this pixel won.

    dy, argmax: (N, OH, OW, C); dx: (N, H, W, C). A gather, like col2im: for each window cell
    (i, j), in reference.py's order, the window that puts that cell on this pixel (if any)
    passes its gradient when its winner is that cell (argmax == i*PW + j). Overlapping windows
    can share a winner: its gradients add up. A window won by a padding cell reaches no pixel.
    """
    index = cuda.grid(1)
    if index < dx.size:
        n, r, s, c = _position(index, dx.shape)
        oh, ow = dy.shape[1], dy.shape[2]
        total = zero
        for i in range(ph):
            a = _window_at(r + top - i, sh, oh)
            if a < 0:
                continue
            for j in range(pw):
                b = _window_at(s + left - j, sw, ow)
                if b >= 0 and argmax[n, a, b, c] == i * pw + j:
                    total += dy[n, a, b, c]
        dx[n, r, s, c] = total


def maxpool_backward(dy, argmax, window):
    """dy (N, OH, OW, C) -> dx (N, H, W, C). See reference.maxpool_backward."""
    xp = get_array_module(dy)
    dy = xp.ascontiguousarray(dy)
    argmax = xp.ascontiguousarray(argmax, dtype=xp.int32)
    dx = xp.empty((dy.shape[0], window.h, window.w, dy.shape[3]), dtype=dy.dtype)
    _launch(_maxpool_backward_kernel, dx.size, dy, argmax, dx, window.kh, window.kw, window.sh, window.sw,
            window.top, window.left, dy.dtype.type(0))
    return dx


# --- Conv2D's bias + LeakyReLU + max-pooling, fused --------------------------------
@cuda.jit
def _bias_leaky_maxpool_forward_kernel(z, bias, negative_slope, y, argmax, ph, pw, sh, sw, top, left,
                                       zero, minus_inf):
    """One thread = one pooled cell: y[n, a, b, c] = max over window (a, b) of leaky(z + bias[c]);
    argmax as in max-pooling.

    z: (N, H, W, F); y, argmax: (N, OH, OW, F). The activation is applied before comparing,
    as the unfused layers do, so ties go to the same cell.
    """
    index = cuda.grid(1)
    if index < y.size:
        n, a, b, c = _position(index, y.shape)
        h, w = z.shape[1], z.shape[2]
        best, best_cell = minus_inf, 0
        for i in range(ph):
            r = a * sh - top + i
            if r < 0 or r >= h:
                continue
            for j in range(pw):
                s = b * sw - left + j
                if s < 0 or s >= w:
                    continue
                v = z[n, r, s, c] + bias[c]           # the convolution's bias
                if v <= 0:                            # LeakyReLU; ReLU when negative_slope is 0 (0, even
                    v = negative_slope * v if negative_slope > 0 else zero   # for -inf; NaN passes, as np.maximum)
                if v > best:                          # max-pooling: the first winner keeps a tie
                    best, best_cell = v, i * pw + j
        y[n, a, b, c] = best
        argmax[n, a, b, c] = best_cell


def bias_leaky_maxpool_forward(z, bias, negative_slope, window):
    """z (N, H, W, F), bias (F,) or None -> (y, argmax int32), (N, OH, OW, F).
    See reference.bias_leaky_maxpool_forward."""
    xp = get_array_module(z)
    z = xp.ascontiguousarray(z)
    f = z.shape[3]
    bias = xp.zeros(f, dtype=z.dtype) if bias is None else xp.ascontiguousarray(bias, dtype=z.dtype)
    shape = (z.shape[0], window.oh, window.ow, f)
    y, argmax = xp.empty(shape, dtype=z.dtype), xp.empty(shape, dtype=xp.int32)
    t = z.dtype.type
    _launch(_bias_leaky_maxpool_forward_kernel, y.size, z, bias, t(negative_slope), y, argmax, window.kh,
            window.kw, window.sh, window.sw, window.top, window.left, t(0), t(-np.inf))
    return y, argmax


@cuda.jit
def _bias_leaky_maxpool_backward_kernel(dy, y, argmax, negative_slope, dz, ph, pw, sh, sw, top, left, zero):
    """One thread = one pixel of dz: dz[n, r, s, c] = the sum, over the windows (a, b) this pixel
    won, of slope * dy[n, a, b, c], where slope = 1 if the pooled y[n, a, b, c] > 0 (the winner's
    z + bias > 0), else negative_slope.

    dy, y, argmax: (N, OH, OW, F); dz: (N, H, W, F). The gather of the max-pooling backward,
    with LeakyReLU's slope on each window's gradient. A window won by a padding cell (a window
    of -inf or NaN keeps cell 0) reaches no pixel: it passes nothing on.
    """
    index = cuda.grid(1)
    if index < dz.size:
        n, r, s, c = _position(index, dz.shape)
        oh, ow = dy.shape[1], dy.shape[2]
        total = zero
        for i in range(ph):
            a = _window_at(r + top - i, sh, oh)
            if a < 0:
                continue
            for j in range(pw):
                b = _window_at(s + left - j, sw, ow)
                if b >= 0 and argmax[n, a, b, c] == i * pw + j:
                    g = dy[n, a, b, c]
                    total += g if y[n, a, b, c] > 0 else negative_slope * g
        dz[n, r, s, c] = total


def bias_leaky_maxpool_backward(dy, y, argmax, negative_slope, window):
    """dy, y, argmax (N, OH, OW, F) -> (dz (N, H, W, F), d_bias (F,)).
    See reference.bias_leaky_maxpool_backward.

    Two launches: the gather above for dz, then sum_rows for d_bias = dz summed over N, H, W
    (in float64), so that d_bias is exactly the sum of what dz received.
    """
    xp = get_array_module(dy)
    dy, y = xp.ascontiguousarray(dy), xp.ascontiguousarray(y)
    argmax = xp.ascontiguousarray(argmax, dtype=xp.int32)
    dz = xp.empty((dy.shape[0], window.h, window.w, dy.shape[3]), dtype=dy.dtype)
    t = dy.dtype.type
    _launch(_bias_leaky_maxpool_backward_kernel, dz.size, dy, y, argmax, t(negative_slope), dz, window.kh,
            window.kw, window.sh, window.sw, window.top, window.left, t(0))
    return dz, sum_rows(dz.reshape(-1, dz.shape[-1]))


# --- elementwise: LeakyReLU, dropout and the Adam update -----------------------------
# The arrays are flattened (contiguous, so the views share memory): one thread per element k.
@cuda.jit
def _leaky_relu_forward_kernel(z, y, negative_slope):
    """One thread = one element: y[k] = z[k] if z[k] > 0 else negative_slope * z[k]."""
    k = cuda.grid(1)
    if k < z.size:
        y[k] = z[k] if z[k] > 0 else negative_slope * z[k]


@cuda.jit
def _leaky_relu_backward_kernel(dy, z, dz, negative_slope):
    """One thread = one element: dz[k] = dy[k] if z[k] > 0 else negative_slope * dy[k]."""
    k = cuda.grid(1)
    if k < dy.size:
        dz[k] = dy[k] if z[k] > 0 else negative_slope * dy[k]


def leaky_relu_forward(z, negative_slope):
    """y = z where z > 0, else negative_slope * z. See reference.leaky_relu_forward."""
    xp = get_array_module(z)
    z = xp.ascontiguousarray(z)
    y = xp.empty_like(z)
    _launch(_leaky_relu_forward_kernel, z.size, z.reshape(-1), y.reshape(-1), z.dtype.type(negative_slope))
    return y


def leaky_relu_backward(dy, z, negative_slope):
    """dz = dy where z > 0, else negative_slope * dy. See reference.leaky_relu_backward."""
    xp = get_array_module(dy)
    dy, z = xp.ascontiguousarray(dy), xp.ascontiguousarray(z)
    dz = xp.empty_like(dy)
    _launch(_leaky_relu_backward_kernel, dy.size, dy.reshape(-1), z.reshape(-1), dz.reshape(-1),
            dy.dtype.type(negative_slope))
    return dz


@cuda.jit
def _dropout_forward_kernel(x, u, rate, scale, zero, y, mask):
    """One thread = one element: mask[k] = scale if u[k] >= rate else 0; y[k] = x[k] * mask[k]."""
    k = cuda.grid(1)
    if k < x.size:
        keep = scale if u[k] >= rate else zero
        mask[k] = keep
        y[k] = x[k] * keep


def dropout_forward(x, u, rate):
    """(y, mask) of inverted dropout, one pass. See reference.dropout_forward."""
    xp = get_array_module(x)
    x, u = xp.ascontiguousarray(x), xp.ascontiguousarray(u)
    y, mask = xp.empty_like(x), xp.empty_like(x)
    t = x.dtype.type
    # rate in u's dtype, as the reference compares; the scale 1 / (1 - rate) in x's dtype
    _launch(_dropout_forward_kernel, x.size, x.reshape(-1), u.reshape(-1), u.dtype.type(rate),
            t(1.0 / (1.0 - rate)), t(0), y.reshape(-1), mask.reshape(-1))
    return y, mask


@cuda.jit
def _adam_update_kernel(param, grad, m, v, step_size, rate_1, rate_2, epsilon):
    """One thread = one parameter: its Adam step, in place on param[k], m[k] and v[k]."""
    k = cuda.grid(1)
    if k < param.size:
        m[k] += rate_1 * (grad[k] - m[k])
        v[k] += rate_2 * (grad[k] * grad[k] - v[k])
        param[k] -= step_size * m[k] / (math.sqrt(v[k]) + epsilon)


def adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon):
    """One Adam step in place on param, m and v, one launch. See reference.adam_update."""
    if not (param.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        raise ValueError("adam_update updates param, m and v in place: they must be contiguous arrays")
    xp = get_array_module(param)
    t = param.dtype.type  # the arithmetic in the parameter's precision, exactly as the reference
    _launch(_adam_update_kernel, param.size, param.reshape(-1), xp.ascontiguousarray(grad).reshape(-1),
            m.reshape(-1), v.reshape(-1), t(step_size), t(1 - beta_1), t(1 - beta_2), t(epsilon))


# --- sum of rows (bias gradients) --------------------------------------------------
# Two passes, both in float64. First, one thread per (chunk of rows, column) adds up its
# chunk; then one thread per column adds up the chunks. With chunks of about sqrt(M) rows,
# each thread of either pass adds about sqrt(M) numbers, and the first pass has about
# sqrt(M) * F threads to spread over the GPU. Neighbouring threads read neighbouring
# columns of a row: neighbouring addresses, which the GPU fetches together.
@cuda.jit
def _sum_chunks_kernel(a, partial, rows_per_chunk, zero):
    """One thread = one partial sum: partial[q, c] = the sum of a[q*R : (q+1)*R, c], R = rows_per_chunk.

    a: (M, F); partial: (Q, F) float64, with zero its 0 (so that the sum is float64 from the start).
    """
    index = cuda.grid(1)
    if index < partial.size:
        q, c = index // partial.shape[1], index % partial.shape[1]
        total = zero
        for row in range(q * rows_per_chunk, min((q + 1) * rows_per_chunk, a.shape[0])):
            total += a[row, c]
        partial[q, c] = total


@cuda.jit
def _sum_partials_kernel(partial, total, zero):
    """One thread = one column: total[c] = the sum of partial[:, c], stored in total's dtype."""
    c = cuda.grid(1)
    if c < total.size:
        column_total = zero
        for q in range(partial.shape[0]):
            column_total += partial[q, c]
        total[c] = column_total


def sum_rows(a):
    """(M, F) -> (F,), the column totals, added up in float64 and returned in a's dtype. See reference.sum_rows."""
    xp = get_array_module(a)
    a = xp.ascontiguousarray(a)
    m, f = a.shape
    rows_per_chunk = max(1, math.isqrt(m))
    chunks = -(-m // rows_per_chunk)                  # ceil(M / rows_per_chunk)
    partial = xp.empty((chunks, f), dtype=xp.float64)
    _launch(_sum_chunks_kernel, partial.size, a, partial, rows_per_chunk, np.float64(0))
    total = xp.empty(f, dtype=a.dtype)
    _launch(_sum_partials_kernel, f, partial, total, np.float64(0))
    return total

"""Winograd F(2x2, 3x3): a 3x3 convolution (stride 1) with 2.25x fewer multiplications.

Conv2D's im2col path (reference.im2col, then one matrix product) is the readable definition;
this module computes the same numbers another way, to spend fewer multiplications on them.

1-D first: F(2, 3), two outputs of a 3-tap correlation.
Four inputs d0..d3 and a filter g0, g1, g2 give two outputs

    y0 = d0 g0 + d1 g1 + d2 g2
    y1 = d1 g0 + d2 g1 + d3 g2                   6 multiplications.

Winograd (1980) found four products that are enough:

    m0 = (d0 - d2) g0                  m1 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d1 - d3) g2                  m2 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m0 + m1 + m2                  y1 = m1 - m2 - m3          4 multiplications.

(Expand m1 + m2 = d1 g1 + d2 (g0 + g2) and m1 - m2 = d1 (g0 + g2) + d2 g1 and check.) The filter
sums are worked out once per filter, not once per output. As matrices, with the tile of
inputs d (4,), the filter g (3,) and the outputs y (2,):

    y = A^T [ (G g) * (B^T d) ]          * elementwise, over 4 "transformed positions"

    B^T (4, 4): the input transform      G (4, 3): the filter transform    A^T (2, 4): the output transform
    [[1,  0, -1,  0],                    [[1,    0,   0  ],                [[1, 1,  1,  0],
     [0,  1,  1,  0],                     [1/2,  1/2, 1/2],                 [0, 1, -1, -1]]
     [0, -1,  1,  0],                     [1/2, -1/2, 1/2],
     [0,  1,  0, -1]]                     [0,    0,   1  ]]

2-D: F(2x2, 3x3) nests the 1-D rule along rows and along columns. A 4x4 tile of the input
d and a 3x3 filter g give a 2x2 tile of outputs:

    Y = A^T [ (G g G^T) * (B^T d B) ] A          16 multiplications instead of 2*2*9 = 36.

With C input channels and F filters, each output also sums over the channels: at each of the
16 transformed positions (alpha, beta) that sum is a matrix product,

    U = G g G^T      (16, C, F)             once per kernel
    V = B^T d B      (16, N*tiles, C)       every 4x4 input tile, in every image
    M = V @ U        (16, N*tiles, F)       16 matrix products: np.matmul batches them (sgemm each)
    Y = A^T M A      (N, OH, OW, F)         the 2x2 output tiles, put in place

Only the products cost multiplications of order N*tiles*C*F: 16 per 2x2 tile where im2col's
product spends 36 (per channel pair), 2.25x fewer. B^T and A^T hold only 0 and +-1, so
the input and output transforms are additions (`_mix`); G has halves, but it only touches the
small kernel. The output is cut into 2x2 tiles starting at even rows and columns; tile
(ty, tx) reads the 4x4 input tile at padded rows 2 ty ... 2 ty + 3 (neighbouring tiles
overlap by 2). When OH or OW is odd, the last tiles stick out: the padded input gets extra
zeros, and the surplus outputs are cut off.

Backward, both gradients are again Winograd computations:
  - input: dx is a 3x3 correlation of dz (padded by 2 - pad on each side) with the kernel
    rotated by 180 degrees and its C and F axes swapped: the same forward machinery;
  - kernel: dL/dg of every tile's Y = A^T [ U * V ] A is G^T [ V * (A dY A^T) ] G: the
    transposes of the forward's matrices, i.e. Winograd F(3x3, 2x2) with the 2x2 output
    gradient dY as the "filter" and 3x3 outputs. Summed over the tiles and images, that is
    again 16 matrix products, V^T @ W with W = A dY A^T (16, N*tiles, F), and d_kernel = G^T P G.
    V is recomputed from x (a pass at memory speed), so a layer needs to keep only x.

Two implementations of the transforms. The array code (`_..._arrays`, with `_mix`) is the
definition: whole-array additions, one pass over memory per row of a matrix. On the lab's
shapes those passes cost as much as the multiplications saved, so on NumPy arrays the same
additions run as compiled loops (`_..._loops`, Numba), one pass over memory for all of them;
the tests check that both give the same bits. TRANSFORMS picks one; CuPy arrays take the arrays.

Chunks. V is 4x and M 16x (per output channel) the size of the 2x2 tiles. The batch goes
through a few images at a time (CHUNK_BYTES), so that a chunk's V and M are still in the cache
when the products and the output transform read them.

Rounding. The transformed values are larger than the data (|V| <= 4 max|x|, |U| <= 2.25
max|k|, and A^T . A adds 9 of the 16 products per output), so the worst-case float32 error
(`float32_bound`) is 81/9 = 9x the im2col path's. Measured on the lab's shapes, the error is
0.7-2x the im2col path's own (root mean square against float64; the tests check <= 4x).

The functions use `xp` only, so they are written to take CuPy arrays too, but nothing has run them on
CuPy or a GPU yet; the tests check NumPy.

Status (issue #16): Conv2D does not use this module. Measured against the im2col path, it pays only
for some passes of the lab's second and third convolutions and loses on the first (one input
channel): the table is in benchmarks/RESULTS.md, "Winograd".
"""
import numpy as np

from minicnn.backend import get_array_module, is_gpu_array

try:   # Numba compiles the transforms' loops (one pass over memory); without it the array code runs
    import numba
    _compiled = numba.njit(cache=True, error_model="numpy")
except ImportError:
    numba = None

TILE = 2         # m: outputs per tile side (F(2x2, 3x3))
KERNEL = 3       # r: the filter's side
INPUT_TILE = TILE + KERNEL - 1   # 4: input tile side, m + r - 1
POSITIONS = INPUT_TILE * INPUT_TILE   # 16 transformed positions (alpha, beta)

B_T = np.array([[1, 0, -1, 0],          # (4, 4) input transform: V = B^T d B
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]])
G = np.array([[1.0, 0.0, 0.0],          # (4, 3) filter transform: U = G g G^T
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0.0, 0.0, 1.0]])
A_T = np.array([[1, 1, 1, 0],           # (2, 4) output transform: Y = A^T M A
                [0, 1, -1, -1]])
A = A_T.T                               # (4, 2): the kernel gradient's W = A dY A^T
G_G = np.kron(G, G)                     # (16, 9): G_G[(alpha, beta), (i, j)] = G[alpha, i] G[beta, j]


def supports(window):
    """True when these kernels apply: a 3x3 window, stride 1, every pad 0, 1 or 2.

    Applies is not pays: with one input channel (the lab's first layer) the products have
    K = 1 and the im2col path is several times faster (benchmarks/bench_winograd.py).
    """
    return (window.kh, window.kw) == (KERNEL, KERNEL) and (window.sh, window.sw) == (1, 1) \
        and all(0 <= pad <= KERNEL - 1 for pad in window.pads)


def _mix(weights, parts, out):
    """out = sum_i weights[i] * parts[i], for weights in {-1, 0, 1}: one row of B^T, A^T or A.

    parts: arrays of one shape; out: an array of that shape, overwritten. Zero weights are
    skipped and +-1 become additions and subtractions (a +1 term first), so a row with
    two nonzeros costs one pass over memory.
    """
    xp = get_array_module(out)
    terms = sorted(((int(w), p) for w, p in zip(weights, parts) if w != 0), key=lambda t: -t[0])
    (w0, p0), rest = terms[0], terms[1:]
    if not rest:                            # a single term: a copy, or a copy with the sign flipped
        if w0 == 1:
            xp.copyto(out, p0)
        else:
            xp.negative(p0, out=out)
        return out
    (w1, p1), rest = rest[0], rest[1:]
    if w0 == 1:
        (xp.add if w1 == 1 else xp.subtract)(p0, p1, out=out)
    else:                                   # sorted: every weight is -1
        xp.negative(xp.add(p0, p1, out=out), out=out)
    for w, p in rest:
        (xp.add if w == 1 else xp.subtract)(out, p, out=out)
    return out


def _tiles(oh, ow):
    """(TH, TW): 2x2 output tiles per column and per row, the last ones partial when odd."""
    return -(-oh // TILE), -(-ow // TILE)


# --- the three transforms -------------------------------------------------------------
def transform_kernel(kernel):
    """U = G g G^T for every (channel, filter): kernel (3, 3, C, F) -> U (16, C, F).

    One matrix product: U[(alpha, beta)] = sum_(i, j) G[alpha, i] G[beta, j] g[i, j] is the
    Kronecker product G_G = kron(G, G) (16, 9) times the kernel's 9 taps.
    """
    xp = get_array_module(kernel)
    c, f = kernel.shape[2], kernel.shape[3]
    g_g = xp.asarray(G_G, dtype=kernel.dtype)
    return (g_g @ kernel.reshape(KERNEL * KERNEL, c * f)).reshape(POSITIONS, c, f)   # (16, 9) @ (9, C*F)


def _padded_for_tiles(x, top, left, th, tw):
    """x (N, H, W, C) inside zeros (N, 2 TH + 2, 2 TW + 2, C), its first pixel at (top, left).

    The 4x4 input tiles of TH x TW output tiles cover exactly these rows and columns;
    past x's bottom and right, and any 'same' padding, it is zeros.
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    padded = xp.zeros((n, TILE * th + KERNEL - 1, TILE * tw + KERNEL - 1, c), dtype=x.dtype)
    padded[:, top:top + h, left:left + w, :] = x
    return padded


# --- the transforms as array code: the readable definition ----------------------------------
# Each small matrix is applied along one tile axis at a time, as whole-array additions over
# every tile of every image at once (strided slices pick a tile row or column everywhere).
def _input_transform_arrays(padded, v):
    """V = B^T d B for every 4x4 tile d of padded (N, 2TH+2, 2TW+2, C) -> v (4, 4, N, TH, TW, C).

    Tile (ty, tx) is padded rows 2 ty + i and columns 2 tx + j, i, j = 0..3. B^T is applied
    along the rows first, on whole padded rows (neighbouring tiles share them), then along
    the columns of each tile.
    """
    xp = get_array_module(padded)
    th, tw = v.shape[3], v.shape[4]
    rows = [padded[:, i:i + TILE * th:TILE] for i in range(INPUT_TILE)]   # each (N, TH, 2TW+2, C)
    r = xp.empty((INPUT_TILE,) + rows[0].shape, dtype=padded.dtype)  # (alpha, N, TH, 2TW+2, C)
    for alpha in range(INPUT_TILE):
        _mix(B_T[alpha], rows, out=r[alpha])                         # r[alpha] = sum_i B^T[alpha, i] row i
    columns = [r[:, :, :, j:j + TILE * tw:TILE] for j in range(INPUT_TILE)]   # each (4, N, TH, TW, C)
    for beta in range(INPUT_TILE):
        _mix(B_T[beta], columns, out=v[:, beta])                     # v[:, beta] = sum_j B^T[beta, j] column j


def _output_transform_arrays(m, z):
    """Y = A^T M A for every tile: m (4, 4, N, TH, TW, F) -> z (N, OH, OW, F), the surplus cut off."""
    xp = get_array_module(m)
    n, oh, ow, f = z.shape
    th, tw = m.shape[3], m.shape[4]
    s = xp.empty((TILE,) + m.shape[1:], dtype=m.dtype)               # (a, beta, N, TH, TW, F)
    for a in range(TILE):
        _mix(A_T[a], [m[alpha] for alpha in range(INPUT_TILE)], out=s[a])   # sum_alpha A^T[a, alpha] m[alpha]
    y = xp.empty((n, th, TILE, tw, TILE, f), dtype=m.dtype)          # output pixel (2 ty + a, 2 tx + b)
    y_by_a = y.transpose(2, 0, 1, 3, 4, 5)                           # (a, N, TH, TW, b, F), a view
    for b in range(TILE):
        _mix(A_T[b], [s[:, beta] for beta in range(INPUT_TILE)], out=y_by_a[:, :, :, :, b])
    z[...] = y.reshape(n, TILE * th, TILE * tw, f)[:, :oh, :ow]      # odd OH or OW: drop the surplus


def _output_gradient_transform_arrays(dz, w):
    """W = A dY A^T for every 2x2 tile dY of dz (N, OH, OW, F) -> w (4, 4, N, TH, TW, F).

    The forward's output transform, transposed: each tile's 2x2 gradient spreads over the
    16 positions. Surplus outputs (odd OH or OW) get a zero gradient.
    """
    xp = get_array_module(dz)
    n, oh, ow, f = dz.shape
    th, tw = w.shape[3], w.shape[4]
    if (TILE * th, TILE * tw) != (oh, ow):
        padded = xp.zeros((n, TILE * th, TILE * tw, f), dtype=dz.dtype)
        padded[:, :oh, :ow] = dz
        dz = padded
    rows = [dz[:, a::TILE] for a in range(TILE)]                     # each (N, TH, 2TW, F)
    q = xp.empty((INPUT_TILE,) + rows[0].shape, dtype=dz.dtype)      # (alpha, N, TH, 2TW, F)
    for alpha in range(INPUT_TILE):
        _mix(A[alpha], rows, out=q[alpha])                           # q[alpha] = sum_a A[alpha, a] row a
    columns = [q[:, :, :, b::TILE] for b in range(TILE)]             # each (4, N, TH, TW, F)
    for beta in range(INPUT_TILE):
        _mix(A[beta], columns, out=w[:, beta])


# --- the same transforms as compiled loops: one pass over memory -------------------------------
# The array code above makes a pass over memory for every row of B^T or A^T, and on the
# lab's shapes those passes cost as much as the multiplications saved. Here Numba walks the
# tiles once: each tile's 16 values per channel are read, transformed in small scratch
# arrays that stay in the cache, and written out. The three helpers are the matrices
# written out for 4 (or 2) numbers:
def _b_t(d0, d1, d2, d3):
    """B^T @ (d0, d1, d2, d3)."""
    return d0 - d2, d1 + d2, d2 - d1, d1 - d3


def _a_t(m0, m1, m2, m3):
    """A^T @ (m0, m1, m2, m3)."""
    return m0 + m1 + m2, m1 - m2 - m3


def _a(y0, y1):
    """A @ (y0, y1), A = (A^T)^T."""
    return y0, y0 + y1, y0 - y1, -y1


def _input_transform_loops(x, top, left, v):
    """As _input_transform_arrays, reading x (N, H, W, C) itself: outside it (the padding, and
    past its bottom and right edge) the tile is zeros. -> v (4, 4, N, TH, TW, C)."""
    n_images, h, w, channels = x.shape
    th, tw = v.shape[3], v.shape[4]
    d = np.empty((4, 4, channels), dtype=v.dtype)       # (i, j, C): the 4x4 tile
    t = np.empty((4, 4, channels), dtype=v.dtype)       # (alpha, j, C): B^T applied along the rows
    for n in range(n_images):
        for ty in range(th):
            for tx in range(tw):
                for i in range(4):                      # gather the tile, as im2col does (kernels/cpu.py)
                    r = TILE * ty + i - top
                    for j in range(4):
                        s = TILE * tx + j - left
                        if 0 <= r < h and 0 <= s < w:
                            for c in range(channels):
                                d[i, j, c] = x[n, r, s, c]
                        else:
                            for c in range(channels):
                                d[i, j, c] = 0
                for j in range(4):
                    for c in range(channels):
                        t[0, j, c], t[1, j, c], t[2, j, c], t[3, j, c] = _b_t(d[0, j, c], d[1, j, c],
                                                                              d[2, j, c], d[3, j, c])
                for alpha in range(4):
                    for c in range(channels):
                        (v[alpha, 0, n, ty, tx, c], v[alpha, 1, n, ty, tx, c],
                         v[alpha, 2, n, ty, tx, c], v[alpha, 3, n, ty, tx, c]) = _b_t(
                            t[alpha, 0, c], t[alpha, 1, c], t[alpha, 2, c], t[alpha, 3, c])


def _output_transform_loops(m, z):
    """As _output_transform_arrays: m (4, 4, N, TH, TW, F) -> z (N, OH, OW, F)."""
    n_images, oh, ow, channels = z.shape
    th, tw = m.shape[3], m.shape[4]
    s = np.empty((2, 4, channels), dtype=z.dtype)       # (a, beta, F): A^T applied along alpha
    y = np.empty((2, 2, channels), dtype=z.dtype)       # (a, b, F): the tile's outputs
    for n in range(n_images):
        for ty in range(th):
            for tx in range(tw):
                for beta in range(4):
                    for c in range(channels):
                        s[0, beta, c], s[1, beta, c] = _a_t(m[0, beta, n, ty, tx, c], m[1, beta, n, ty, tx, c],
                                                            m[2, beta, n, ty, tx, c], m[3, beta, n, ty, tx, c])
                for a in range(2):
                    for c in range(channels):
                        y[a, 0, c], y[a, 1, c] = _a_t(s[a, 0, c], s[a, 1, c], s[a, 2, c], s[a, 3, c])
                for a in range(min(2, oh - TILE * ty)):          # the surplus of a last tile is dropped
                    for b in range(min(2, ow - TILE * tx)):
                        for c in range(channels):
                            z[n, TILE * ty + a, TILE * tx + b, c] = y[a, b, c]


def _output_gradient_transform_loops(dz, w):
    """As _output_gradient_transform_arrays: dz (N, OH, OW, F) -> w (4, 4, N, TH, TW, F)."""
    n_images, oh, ow, channels = dz.shape
    th, tw = w.shape[3], w.shape[4]
    dy = np.empty((2, 2, channels), dtype=w.dtype)      # (a, b, F): the tile's output gradient
    q = np.empty((4, 2, channels), dtype=w.dtype)       # (alpha, b, F): A applied along a
    for n in range(n_images):
        for ty in range(th):
            for tx in range(tw):
                for a in range(2):
                    for b in range(2):
                        row, col = TILE * ty + a, TILE * tx + b
                        inside = row < oh and col < ow  # a surplus output: zero gradient
                        for c in range(channels):
                            dy[a, b, c] = dz[n, row, col, c] if inside else 0
                for b in range(2):
                    for c in range(channels):
                        q[0, b, c], q[1, b, c], q[2, b, c], q[3, b, c] = _a(dy[0, b, c], dy[1, b, c])
                for alpha in range(4):
                    for c in range(channels):
                        (w[alpha, 0, n, ty, tx, c], w[alpha, 1, n, ty, tx, c],
                         w[alpha, 2, n, ty, tx, c], w[alpha, 3, n, ty, tx, c]) = _a(q[alpha, 0, c], q[alpha, 1, c])


if numba is not None:
    _b_t, _a_t, _a = _compiled(_b_t), _compiled(_a_t), _compiled(_a)
    _input_transform_loops = _compiled(_input_transform_loops)
    _output_transform_loops = _compiled(_output_transform_loops)
    _output_gradient_transform_loops = _compiled(_output_gradient_transform_loops)

# Which transforms run on NumPy arrays: "loops" (compiled, the default when Numba is installed)
# or "arrays" (the definition above; CuPy arrays always take it). Tests run both.
TRANSFORMS = "loops" if numba is not None else "arrays"


def _loops(x):
    return TRANSFORMS == "loops" and not is_gpu_array(x)


def _transform_input(x, top, left, th, tw):
    """x (N, H, W, C), its pixel (0, 0) at padded (top, left) -> V (16, N*TH*TW, C)."""
    xp = get_array_module(x)
    n, c = x.shape[0], x.shape[3]
    v = xp.empty((INPUT_TILE, INPUT_TILE, n, th, tw, c), dtype=x.dtype)   # (alpha, beta, N, TH, TW, C)
    if _loops(x):
        _input_transform_loops(xp.ascontiguousarray(x), top, left, v)
    else:
        _input_transform_arrays(_padded_for_tiles(x, top, left, th, tw), v)   # padded: (N, 2TH+2, 2TW+2, C)
    return v.reshape(POSITIONS, n * th * tw, c)


def _transform_output(m, z):
    """M (16, N*TH*TW, F) -> z (N, OH, OW, F), written in place."""
    n, oh, ow, f = z.shape
    th, tw = _tiles(oh, ow)
    m = m.reshape(INPUT_TILE, INPUT_TILE, n, th, tw, f)
    (_output_transform_loops if _loops(m) else _output_transform_arrays)(m, z)


def _transform_output_gradient(dz, th, tw):
    """dz (N, OH, OW, F) -> W (16, N*TH*TW, F)."""
    xp = get_array_module(dz)
    n, f = dz.shape[0], dz.shape[3]
    w = xp.empty((INPUT_TILE, INPUT_TILE, n, th, tw, f), dtype=dz.dtype)
    dz = xp.ascontiguousarray(dz)
    (_output_gradient_transform_loops if _loops(dz) else _output_gradient_transform_arrays)(dz, w)
    return w.reshape(POSITIONS, n * th * tw, f)


# --- the public kernels -------------------------------------------------------------------
# The images go through in chunks: the transformed arrays are 4x (V) and 16x (M, per output
# channel) larger than a 2x2 tile, and a chunk's V and M stay in the cache between the transform,
# the products and the output transform, where the whole batch's would go out to memory and back.
CHUNK_BYTES = 2 ** 20    # about this many bytes of M (or W) per chunk


def _chunks(n, tiles_per_image, channels, itemsize):
    """Slices of the batch, each holding about CHUNK_BYTES of transformed values."""
    per_image = POSITIONS * tiles_per_image * channels * itemsize
    step = max(1, CHUNK_BYTES // per_image)
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _check(window, who):
    if not supports(window):
        raise ValueError(f"{who}: Winograd F(2x2, 3x3) needs a 3x3 window, stride 1, pads 0-2; got "
                         f"size {window.size}, strides {window.strides}, pads {window.pads}")


def _correlate(x, kernel, top, left, oh, ow):
    """The Winograd pipeline: x (N, H, W, C), kernel (3, 3, C, F) -> z (N, OH, OW, F), where
    z[n, a, b] = sum_{i, j, c} x[n, a + i - top, b + j - left, c] kernel[i, j, c] (zero outside x)."""
    xp = get_array_module(x, kernel)
    n, f = x.shape[0], kernel.shape[3]
    th, tw = _tiles(oh, ow)
    u = transform_kernel(kernel)                                     # (16, C, F), once
    z = xp.empty((n, oh, ow, f), dtype=x.dtype)
    for images in _chunks(n, th * tw, max(x.shape[3], f), x.dtype.itemsize):
        v = _transform_input(x[images], top, left, th, tw)          # (16, n*TH*TW, C)
        m = xp.matmul(v, u)                                          # (16, n*TH*TW, F): 16 sgemm
        _transform_output(m, z[images])                              # (n, OH, OW, F)
    return z


def conv3x3_forward(x, kernel, window):
    """z = the 3x3 correlation of x with kernel, stride 1, by Winograd F(2x2, 3x3).

    x (N, H, W, C), kernel (3, 3, C, F) -> z (N, OH, OW, F); the same numbers as
    im2col(x, window) @ kernel.reshape(-1, F), up to rounding (float32_bound).
    """
    _check(window, "conv3x3_forward")
    return _correlate(x, kernel, window.top, window.left, window.oh, window.ow)


def conv3x3_backward_input(dz, kernel, window):
    """dx = d loss / d x: dz (N, OH, OW, F), kernel (3, 3, C, F) -> dx (N, H, W, C).

    dx[n, r, s, c] = sum_{i, j, f} dz[n, r + top - i, s + left - j, f] kernel[i, j, c, f]: a 3x3
    correlation of dz, padded by 2 - top above (2 - left on the left), with the kernel rotated
    by 180 degrees, kernel[2 - i, 2 - j, f, c]. Equals col2im(dz @ kernel^T) up to rounding.
    """
    _check(window, "conv3x3_backward_input")
    xp = get_array_module(dz, kernel)
    rotated = xp.ascontiguousarray(kernel[::-1, ::-1].transpose(0, 1, 3, 2))   # (3, 3, F, C)
    return _correlate(dz, rotated, KERNEL - 1 - window.top, KERNEL - 1 - window.left, window.h, window.w)


def conv3x3_backward_kernel(x, dz, window):
    """d_kernel = d loss / d kernel: x (N, H, W, C), dz (N, OH, OW, F) -> (3, 3, C, F).

    Equals col^T @ dz (col = im2col(x)) up to rounding. Per position: P = V^T @ W, 16 products
    (C, N*TH*TW) @ (N*TH*TW, F), summed over the chunks; then d_kernel = G^T P G.
    """
    _check(window, "conv3x3_backward_kernel")
    xp = get_array_module(x, dz)
    n, c, f = x.shape[0], x.shape[3], dz.shape[3]
    th, tw = _tiles(window.oh, window.ow)
    p = xp.zeros((POSITIONS, c, f), dtype=x.dtype)
    for images in _chunks(n, th * tw, max(c, f), x.dtype.itemsize):
        v = _transform_input(x[images], window.top, window.left, th, tw)   # (16, n*TH*TW, C)
        w = _transform_output_gradient(dz[images], th, tw)                  # (16, n*TH*TW, F)
        p += xp.matmul(v.transpose(0, 2, 1), w)                              # (16, C, F): 16 sgemm
    g_g = xp.asarray(G_G, dtype=p.dtype)
    d_kernel = g_g.T @ p.reshape(POSITIONS, c * f)                          # G^T P G: (9, 16) @ (16, C*F)
    return d_kernel.reshape(KERNEL, KERNEL, c, f)


# --- rounding --------------------------------------------------------------------------------
# How much larger than the data the transformed values can get (see float32_bound):
FORWARD_GROWTH = 81           # 4 (|B^T d B|) * 2.25 (|G g G^T|) * 9 (A^T . A adds 9 of 16 positions)
KERNEL_GRADIENT_GROWTH = 64   # 4 (|B^T d B|) * 4 (|A dY A^T|) * 4 (G^T . G: |G| column sums 2, 1, 2)
EXTRA_ROUNDINGS = 14          # roundings in a term's path besides the dot product's own


def float32_bound(a_max, b_max, terms, growth=FORWARD_GROWTH, dtype=np.float32):
    """A worst-case bound on |computed - exact| for every output, from the standard error analysis.

    Forward: z = A^T [ U * V ] A, each of its 16 positions a dot product over the C channels.
    In exact arithmetic the absolute values of the terms of one output add up to at most
        S = growth * terms * a_max * b_max,    here growth = 81, terms = C, a = x, b = kernel:
    |V| <= 4 max|x| (each row of B^T has two +-1: 2 * 2 entries add up), |U| <= 2.25 max|k|
    (|G|'s row sums are at most 1.5, squared), and A^T . A adds 9 of the 16 positions (three
    +-1 in each row of A^T, squared). Every term meets at most n = terms + 14 roundings on its way
    (2 in V, 8 in U, 1 product, terms - 1 additions in the dot product, 4 in A^T . A), each
    a factor (1 + delta), |delta| <= u = 2^-24 in float32, so (Higham, "Accuracy and Stability of
    Numerical Algorithms", gamma_n):

        |error| <= gamma_n * S,    gamma_n = n u / (1 - n u).

    Input gradient: the same with terms = F, a = dz. Kernel gradient: growth = 64 (|V| <= 4 max|x|,
    |A dY A^T| <= 4 max|dz|, and G^T . G weighs the 16 positions by at most 2 * 2 = 4), terms =
    N * TH * TW tiles, a = x, b = dz. The exact im2col path obeys the same bound with growth 1 and
    terms = 9 C (forward), 9 F (input gradient), N * OH * OW (kernel gradient).

    It is a worst case, and loose for long sums (the kernel gradient's N*TH*TW terms): random data
    stay orders of magnitude below it. What matters for training is measured instead: on the lab's
    shapes Winograd's float32 error is 0.7-2 times the im2col path's own (root mean square against
    float64; tests/test_kernels_winograd.py checks <= 4x, benchmarks/bench_winograd.py prints the
    largest errors of both).
    """
    u = np.finfo(dtype).eps / 2
    n = terms + EXTRA_ROUNDINGS
    return n * u / (1 - n * u) * growth * terms * a_max * b_max


__all__ = ["supports", "conv3x3_forward", "conv3x3_backward_input", "conv3x3_backward_kernel",
           "transform_kernel", "float32_bound", "B_T", "G", "A_T"]

"""Exercise maxpool_backward: route each window's gradient to the cell that won it.

    dx[n, a*SH + i - top, b*SW + j - left, c] += dy[n, a, b, c]    where argmax[n, a, b, c] = i * PW + j
Only the winner moved the output, so only it gets the gradient; a cell that wins several overlapping
windows gets the sum; a gradient that would land on a padding cell is dropped (padding never wins anyway).
minicnn's answer is minicnn.kernels.reference.maxpool_backward (it needs no x: argmax says who won).
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.col2im import overlaps_overwritten
from minicnn.exercises.maxpool_forward import window_cells
from minicnn.exercises.plugging import attributes_replaced, layers_of
from minicnn.kernels import reference
from minicnn.layers import MaxPooling2D


def reference_maxpool_backward(dy, x, argmax, window):
    return reference.maxpool_backward(dy, argmax, window)


def run(f, dy, x, argmax, window):
    return returned(f.maxpool_backward(dy, x, argmax, window), ["dx"], "maxpool_backward")


def pool_case(label, x, dy, window):
    """A case from the forward input x: argmax as minicnn's forward pass finds it."""
    _, argmax = reference.maxpool_forward(x, window)
    return Case(label, {"dy": dy, "x": x, "argmax": argmax, "window": window})


def hand_made(dtype):
    pool = inputs.window(4, 4, 2, 2, 2, 2)
    dy = np.array([1, 2, 3, 4], dtype).reshape(1, 2, 2, 1)
    shuffled = np.array([3, 16, 5, 9, 12, 1, 14, 2, 7, 10, 4, 15, 8, 13, 6, 11], dtype).reshape(1, 4, 4, 1)
    tied = np.array([[5, 5, 1, 2], [0, 5, 2, 2], [-1, -1, 4, 0], [-1, -1, 0, 4]], dtype).reshape(1, 4, 4, 1)
    centre = np.array([[1, 2, 3], [4, 9, 5], [6, 7, 8]], dtype).reshape(1, 3, 3, 1)
    overlapping = inputs.window(3, 3, 2, 2)
    padded = inputs.window(3, 3, 2, 2, 2, 2, "same")
    negative = -np.arange(1, 10, dtype=dtype).reshape(1, 3, 3, 1)
    return [
        pool_case("x = [[3, 16, 5, 9], [12, 1, 14, 2], [7, 10, 4, 15], [8, 13, 6, 11]], dy = [[1, 2], [3, 4]]\n"
                  + inputs.describe(pool), shuffled, dy, pool),
        pool_case("ties: x = [[5, 5, 1, 2], [0, 5, 2, 2], [-1, -1, 4, 0], [-1, -1, 0, 4]], dy = [[1, 2], [3, 4]]\n"
                  + inputs.describe(pool), tied, dy, pool),
        pool_case("overlapping windows: x = [[1, 2, 3], [4, 9, 5], [6, 7, 8]], dy = [[1, 2], [3, 4]]; the 9 wins "
                  "all four windows\n" + inputs.describe(overlapping), centre, dy, overlapping),
        pool_case("all negative: x = -1, ..., -9 in shape (1, 3, 3, 1), dy = [[1, 2], [3, 4]]\n"
                  + inputs.describe(padded), negative, dy, padded),
    ]


def drawn(dtype):
    def make(generator, window, batch, channels, dtype):
        x = inputs.with_ties(generator, (batch, window.h, window.w, channels), dtype)
        dy = inputs.normal(generator, (batch, window.oh, window.ow, channels), dtype)
        return pool_case(inputs.describe(window, channels, batch) + ", x whole numbers -3..1 (ties), dy normal",
                         x, dy, window)
    return inputs.geometry_cases(make, dtype)


def gradient(f):
    """L = sum(maxpool(x) * R): your dx against central differences of minicnn's forward."""
    window = inputs.window(5, 5, 3, 3, 2, 2, "same")
    x = inputs.distinct(inputs.rng(), (2, 5, 5, 2), np.float64)      # no ties: each window has one winner
    r = inputs.projection((2, window.oh, window.ow, 2))
    case = pool_case("", x, r, window)
    dx = run(f, **case.inputs)["dx"]
    numeric = inputs.numerical(lambda: (reference.maxpool_forward(x, window)[0] * r).sum(), x)
    return ("2 images 5x5x2, distinct values, window 3x3, strides 2 (overlapping), padding 'same', "
            "L = sum(maxpool(x) * R)", [GradientCheck("dx", dx, numeric)])


def plug(model, f):
    """Every MaxPooling2D layer keeps its input and runs your backward (such a layer is not fused)."""
    def forward_of(layer, seen):
        def forward(x, training=False):
            seen["x"] = x
            return MaxPooling2D.forward(layer, x, training)
        return forward

    def backward_of(layer, seen):
        def backward(dy):
            return f.maxpool_backward(dy, seen["x"], layer.argmax, layer.window)
        return backward

    replacements = []
    for layer in layers_of(model, MaxPooling2D):
        seen = {}
        replacements += [(layer, "forward", forward_of(layer, seen)), (layer, "backward", backward_of(layer, seen))]
    return attributes_replaced(replacements)


# --- planted mistakes ---------------------------------------------------------------------------
def as_col(cells):
    """(N, OH, OW, PH*PW, C) -> im2col's layout (N*OH*OW, PH*PW*C), for col2im."""
    n, oh, ow, k, c = cells.shape
    return cells.reshape(n * oh * ow, k * c)


def every_tied_cell(dy, x, argmax, window):
    cells = window_cells(x, window)
    tied = cells == cells.max(axis=3, keepdims=True)                   # x == max marks every tied cell
    return reference.col2im(as_col(tied * dy[:, :, :, None, :]), window)


def windows_assigned(dy, x, argmax, window):
    winner = np.arange(window.kh * window.kw)[:, None] == argmax[:, :, :, None, :]   # one-hot in each window
    return overlaps_overwritten(as_col((winner * dy[:, :, :, None, :]).astype(dy.dtype)), window)


def argmax_read_column_first(dy, x, argmax, window):
    row, column = argmax % window.kw, argmax // window.kw
    return reference.maxpool_backward(dy, (row * window.kw + column).astype(argmax.dtype), window)


def spread_over_window(dy, x, argmax, window):
    share = dy / dy.dtype.type(window.kh * window.kw)
    cells = np.broadcast_to(share[:, :, :, None, :], argmax.shape[:3] + (window.kh * window.kw, dy.shape[3]))
    return reference.col2im(as_col(np.ascontiguousarray(cells)), window)


MISTAKES = [
    Mistake("gradient sent to every tied cell", {"maxpool_backward": every_tied_cell},
            "send each window's gradient to its one winner, argmax. A mask x == max marks every tied cell, "
            "and the gradient would be counted once for each of them; the forward pass picked the first."),
    Mistake("whole windows assigned", {"maxpool_backward": windows_assigned},
            "a cell that wins several overlapping windows gets the sum of their gradients: add (+=) into dx, "
            "and do not assign a whole window's patch (=), which overwrites the neighbours' gradients with 0."),
    Mistake("argmax read column-first", {"maxpool_backward": argmax_read_column_first},
            "argmax = i * PW + j, counted row by row: row i = argmax // PW, column j = argmax % PW."),
    Mistake("gradient spread over the window", {"maxpool_backward": spread_over_window},
            "max-pooling is not average-pooling: only the winning cell changed the output, so only it gets "
            "the gradient, all of it."),
]

EXERCISE = Exercise(
    name="maxpool_backward", summary="max-pooling backward: each gradient to its window's winner",
    functions=("maxpool_backward",), reference={"maxpool_backward": reference_maxpool_backward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="in the first hand-made input each window has one winner: dx is dy placed at the four winners.")

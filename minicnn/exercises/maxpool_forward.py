"""Exercise maxpool_forward: the largest value of every window, and which cell of the window held it.

    y[n, a, b, c]      = max over i < PH, j < PW of x_padded[n, a*SH + i, b*SW + j, c]
    argmax[n, a, b, c] = i * PW + j of that winner; on a tie the first cell (row-major) wins
    padding cells are -inf: they never win.
minicnn's answer is minicnn.kernels.reference.maxpool_forward.
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import kernels_replaced
from minicnn.kernels import reference

OUTPUTS = ["y", "argmax"]


def run(f, x, window):
    return returned(f.maxpool_forward(x, window), OUTPUTS, "maxpool_forward")


def hand_made(dtype):
    shuffled = np.array([3, 16, 5, 9, 12, 1, 14, 2, 7, 10, 4, 15, 8, 13, 6, 11], dtype).reshape(1, 4, 4, 1)
    tied = np.array([[5, 5, 1, 2], [0, 5, 2, 2], [-1, -1, 4, 0], [-1, -1, 0, 4]], dtype).reshape(1, 4, 4, 1)
    negative = -np.arange(1, 10, dtype=dtype).reshape(1, 3, 3, 1)
    pool = inputs.window(4, 4, 2, 2, 2, 2)
    return [
        Case("x = [[3, 16, 5, 9], [12, 1, 14, 2], [7, 10, 4, 15], [8, 13, 6, 11]]\n" + inputs.describe(pool),
             {"x": shuffled, "window": pool}),
        Case("ties: x = [[5, 5, 1, 2], [0, 5, 2, 2], [-1, -1, 4, 0], [-1, -1, 0, 4]]\n" + inputs.describe(pool),
             {"x": tied, "window": pool}),
        Case("all negative: x = -1, ..., -9 in shape (1, 3, 3, 1)\n" + inputs.describe(inputs.window(
            3, 3, 2, 2, 2, 2, "same")), {"x": negative, "window": inputs.window(3, 3, 2, 2, 2, 2, "same")}),
    ]


def drawn(dtype):
    def make(generator, window, batch, channels, dtype):
        x = inputs.with_ties(generator, (batch, window.h, window.w, channels), dtype)
        return Case(inputs.describe(window, channels, batch) + ", whole numbers -3..1 (ties)",
                    {"x": x, "window": window})
    return inputs.geometry_cases(make, dtype)


def gradient(f):
    """max-pooling's backward routes each gradient to argmax: minicnn's maxpool_backward, given your
    argmax, must be the gradient of your y. L = sum(y * R)."""
    window = inputs.window(5, 5, 3, 3, 2, 2, "same")
    x = inputs.distinct(inputs.rng(), (2, 5, 5, 2), np.float64)      # no ties: each window has one winner
    r = inputs.projection((2, window.oh, window.ow, 2))
    numeric = inputs.numerical(lambda: (run(f, x, window)["y"] * r).sum(), x)
    dx = reference.maxpool_backward(r, run(f, x.copy(), window)["argmax"], window)
    return ("2 images 5x5x2, distinct values, window 3x3, strides 2, padding 'same', L = sum(y * R)",
            [GradientCheck("dx", dx, numeric, source="minicnn's maxpool_backward of your argmax")])


def plug(model, f):
    return kernels_replaced(maxpool_forward=f.maxpool_forward)


# --- planted mistakes ---------------------------------------------------------------------------
def padded(x, window, value):
    """x with the window's padding cells around it, filled with value."""
    return np.pad(x, ((0, 0), (window.top, window.bottom), (window.left, window.right), (0, 0)),
                  constant_values=value)


def window_cells(x, window):
    """The cells of every window, (N, OH, OW, PH*PW, C) in row-major window order; padding is -inf."""
    col = reference.im2col(padded(x, window, -np.inf), inputs.over_padded(window))
    return col.reshape(len(x), window.oh, window.ow, window.kh * window.kw, x.shape[3])


def padded_with_zeros(x, window):
    return reference.maxpool_forward(padded(x, window, 0), inputs.over_padded(window))


def last_tied_cell_wins(x, window):
    cells = window_cells(x, window)
    y = cells.max(axis=3)
    tied = cells == y[:, :, :, None, :]
    last = cells.shape[3] - 1 - np.argmax(tied[:, :, :, ::-1, :], axis=3)     # the last tied cell
    return y, last.astype(np.int32)


def argmax_column_first(x, window):
    y, argmax = reference.maxpool_forward(x, window)
    i, j = argmax // window.kw, argmax % window.kw
    return y, (j * window.kh + i).astype(argmax.dtype)


def stride_ignored(x, window):
    return reference.maxpool_forward(x, inputs.stride_one(window))


MISTAKES = [
    Mistake("padding with zeros", {"maxpool_forward": padded_with_zeros},
            "pad with -inf, not 0: a padding cell must never win, even in a window whose real values are all "
            "negative."),
    Mistake("last tied cell wins", {"maxpool_forward": last_tied_cell_wins},
            "on a tie the first cell in row-major order wins: replace the running maximum only when a cell "
            "is strictly greater (>), not greater or equal (>=)."),
    Mistake("argmax column-first", {"maxpool_forward": argmax_column_first},
            "argmax is the winner's index inside its window counted row by row: i * PW + j for row i, column j."),
    Mistake("stride ignored", {"maxpool_forward": stride_ignored},
            "the window moves by the strides (window.sh, window.sw): there are window.oh x window.ow windows."),
]

EXERCISE = Exercise(
    name="maxpool_forward", summary="max-pooling forward: y and the winner of each window",
    functions=("maxpool_forward",), reference={"maxpool_forward": reference.maxpool_forward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug, fusion=False,
    advice="find each window's maximum on paper for the first hand-made input, then its place in the window.")

"""Exercise im2col: unfold every sliding window of a batch of images into one row of a matrix.

    x (N, H, W, C) -> col (N*OH*OW, KH*KW*C)
    col[(n*OH + a)*OW + b, (i*KW + j)*C + c] = x_padded[n, a*SH + i, b*SW + j, c]
Then a convolution is one matrix product, col @ kernel.reshape(KH*KW*C, F).
minicnn's answer is minicnn.kernels.reference.im2col.
"""
import dataclasses

import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import kernels_replaced
from minicnn.kernels import Window, reference


def run(f, x, window):
    return returned(f.im2col(x, window), ["col"], "im2col")


def counting(shape, dtype):
    """1, 2, 3, ... in an array of `shape`: every entry tells where it came from."""
    return np.arange(1, int(np.prod(shape)) + 1, dtype=dtype).reshape(shape)


def hand_made(dtype):
    cases = []
    for shape, geometry in [((1, 4, 4, 1), (2, 2, 2, 2, "valid")), ((1, 3, 3, 2), (2, 2, 1, 1, "valid")),
                            ((1, 3, 3, 1), (2, 2, 2, 2, "same")), ((1, 3, 3, 1), (3, 3, 1, 1, "same"))]:
        window = inputs.window(shape[1], shape[2], *geometry)
        x = counting(shape, dtype)
        cases.append(Case(f"x = 1, 2, ..., {x.size} in shape {shape}\n" + inputs.describe(window),
                          {"x": x, "window": window}))
    return cases


def drawn(dtype):
    def make(generator, window, batch, channels, dtype):
        x = inputs.normal(generator, (batch, window.h, window.w, channels), dtype)
        return Case(inputs.describe(window, channels, batch) + ", normal values", {"x": x, "window": window})
    return inputs.geometry_cases(make, dtype)


def gradient(f):
    """im2col's backward is col2im: minicnn's col2im must be the gradient of your im2col.
    L = sum(im2col(x) * R), so dL/dx = col2im(R)."""
    window = inputs.window(5, 5, 3, 3, 2, 2, "same")
    x = inputs.normal(inputs.rng(), (2, 5, 5, 2), np.float64)
    r = inputs.projection((2 * window.oh * window.ow, 3 * 3 * 2))
    numeric = inputs.numerical(lambda: (run(f, x, window)["col"] * r).sum(), x)
    dx = reference.col2im(r, window)
    return ("2 images 5x5x2, window 3x3, strides 2, padding 'same', L = sum(im2col(x) * R)",
            [GradientCheck("dx", dx, numeric, source="minicnn's col2im of your im2col")])


def plug(model, f):
    return kernels_replaced(im2col=f.im2col)


# --- planted mistakes ---------------------------------------------------------------------------
def channels_first_in_rows(x, window):
    col = reference.im2col(x, window)
    return col.reshape(len(col), window.kh, window.kw, -1).transpose(0, 3, 1, 2).reshape(len(col), -1)


def rows_by_column(x, window):
    col = reference.im2col(x, window)
    n = len(col) // (window.oh * window.ow)
    return col.reshape(n, window.oh, window.ow, -1).transpose(0, 2, 1, 3).reshape(len(col), -1)


def padding_on_the_wrong_side(x, window):
    swapped = dataclasses.replace(window, top=window.bottom, bottom=window.top, left=window.right, right=window.left)
    return reference.im2col(x, swapped)


def stride_ignored(x, window):
    return reference.im2col(x, inputs.stride_one(window))


def padding_ignored(x, window):
    return reference.im2col(x, Window.over((window.h, window.w), window.size, window.strides, "valid"))


MISTAKES = [
    Mistake("channels first in a row", {"im2col": channels_first_in_rows},
            "order each row (kh, kw, c), channel fastest: col[r, (i*KW + j)*C + c]. The kernel (KH, KW, C, F) "
            "reshaped to (KH*KW*C, F) reads its entries in that order, and the rows must match it."),
    Mistake("rows in column order", {"im2col": rows_by_column},
            "row r = (n*OH + a)*OW + b: the window positions go along each output row first (b fastest), "
            "so that col @ kernel reshapes to (N, OH, OW, F)."),
    Mistake("padding on the wrong side", {"im2col": padding_on_the_wrong_side},
            "an odd total padding puts the extra cell at the bottom and right: pad window.top rows above, "
            "window.bottom below, window.left columns before, window.right after (they can differ)."),
    Mistake("stride ignored", {"im2col": stride_ignored},
            "the window moves by the strides: output position (a, b) starts at row a*SH and column b*SW, "
            "and there are OH = (H + top + bottom - KH) // SH + 1 of them down (window.oh)."),
    Mistake("no padding", {"im2col": padding_ignored},
            "pad the image with zeros first (window.top, window.bottom, window.left, window.right cells): with "
            "padding 'same' the window also sits over the border, and there are window.oh x window.ow positions."),
]

EXERCISE = Exercise(
    name="im2col", summary="im2col: every sliding window of an image batch as one row", functions=("im2col",),
    reference={"im2col": reference.im2col},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="the hand-made x counts 1, 2, 3, ...: each entry of your col says which pixel it copied.")

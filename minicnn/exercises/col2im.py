"""Exercise col2im: the adjoint of im2col, the step that carries a convolution's gradient back to the image.

    dcol (N*OH*OW, KH*KW*C) -> dx (N, H, W, C)
    every entry dcol[(n*OH + a)*OW + b, (i*KW + j)*C + c] is added to the pixel it came from,
    x_padded[n, a*SH + i, b*SW + j, c]; a pixel under several windows receives the sum;
    the entries that came from padding cells are dropped.
minicnn's answer is minicnn.kernels.reference.col2im.
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.im2col import counting
from minicnn.exercises.plugging import kernels_replaced
from minicnn.kernels import reference


def run(f, col, window):
    return returned(f.col2im(col, window), ["dx"], "col2im")


def rows(window, batch, channels):
    return (batch * window.oh * window.ow, window.kh * window.kw * channels)


def hand_made(dtype):
    window = inputs.window(3, 3, 2, 2)
    cases = [Case("col = all ones (4 windows of 2x2), 1 image 3x3x1, window 2x2, strides (1, 1), no padding: "
                  "each pixel should count the windows that cover it", {"col": np.ones((4, 4), dtype),
                                                                        "window": window})]
    for channels, geometry in [(2, (2, 2, 1, 1, "valid")), (1, (2, 2, 2, 2, "same")), (1, (3, 3, 1, 1, "same"))]:
        window = inputs.window(3, 3, *geometry)
        col = counting(rows(window, 1, channels), dtype)
        cases.append(Case(f"col = 1, 2, ..., {col.size} in shape {col.shape}\n" + inputs.describe(window, channels, 1),
                          {"col": col, "window": window}))
    return cases


def drawn(dtype):
    def make(generator, window, batch, channels, dtype):
        col = inputs.normal(generator, rows(window, batch, channels), dtype)
        return Case(inputs.describe(window, channels, batch) + ", normal values", {"col": col, "window": window})
    return inputs.geometry_cases(make, dtype)


def gradient(f):
    """col2im is the gradient of im2col: L = sum(im2col(x) * R) has dL/dx = col2im(R)."""
    window = inputs.window(5, 5, 3, 3, 2, 2, "same")
    x = inputs.normal(inputs.rng(), (2, 5, 5, 2), np.float64)
    r = inputs.projection(rows(window, 2, 2))
    dx = run(f, r.copy(), window)["dx"]
    numeric = inputs.numerical(lambda: (reference.im2col(x, window) * r).sum(), x)
    return ("2 images 5x5x2, window 3x3, strides 2, padding 'same', L = sum(im2col(x) * R)",
            [GradientCheck("dx", dx, numeric)])


def plug(model, f):
    return kernels_replaced(col2im=f.col2im)


# --- planted mistakes ---------------------------------------------------------------------------
def padded_sums(col, window):
    """The sums over the padded image, (N, top + H + bottom, left + W + right, C): col2im before the crop."""
    return reference.col2im(col, inputs.over_padded(window))


def padding_not_removed(col, window):
    return padded_sums(col, window)


def cropped_at_the_corner(col, window):
    return padded_sums(col, window)[:, :window.h, :window.w, :]


def padding_added_back(col, window):
    """The sums that land on padding cells added to the nearest border pixels instead of dropped."""
    padded, top, left = padded_sums(col, window), window.top, window.left
    row_end, column_end = top + window.h, left + window.w
    kept = padded[:, top:row_end].copy()                                     # rows of the image
    kept[:, 0] += padded[:, :top].sum(axis=1)
    kept[:, -1] += padded[:, row_end:].sum(axis=1)
    dx = kept[:, :, left:column_end].copy()                                  # then its columns
    dx[:, :, 0] += kept[:, :, :left].sum(axis=2)
    dx[:, :, -1] += kept[:, :, column_end:].sum(axis=2)
    return dx


def overlaps_overwritten(col, window):
    """Each window assigned (=) into place in turn: where windows overlap, the last one wins."""
    n = len(col) // (window.oh * window.ow)
    patches = col.reshape(n, window.oh, window.ow, window.kh, window.kw, -1)
    padded = np.zeros_like(padded_sums(col, window))
    for a in range(window.oh):
        for b in range(window.ow):
            top, left = a * window.sh, b * window.sw                   # the window's corner
            padded[:, top:top + window.kh, left:left + window.kw, :] = patches[:, a, b]
    return padded[:, window.top:window.top + window.h, window.left:window.left + window.w, :]


def rows_read_channels_first(col, window):
    """Each row read as if ordered (c, kh, kw): im2col's channel-order mistake, undone the wrong way."""
    kh_kw = window.kh * window.kw
    reordered = col.reshape(len(col), -1, kh_kw).transpose(0, 2, 1).reshape(len(col), -1)
    return reference.col2im(reordered, window)


MISTAKES = [
    Mistake("overlaps overwritten", {"col2im": overlaps_overwritten},
            "a pixel under several windows gets the sum of their gradients: add into place (+=), do not "
            "assign (=), or the last window overwrites the others."),
    Mistake("padding cells added back", {"col2im": padding_added_back},
            "the gradients that land on padding cells belong to no pixel: drop them (crop the padded sums to "
            "the image), do not add them to the border pixels."),
    Mistake("cropped at the corner", {"col2im": cropped_at_the_corner},
            "the padded sums have window.top rows and window.left columns before the image: keep "
            "padded[:, top:top + H, left:left + W]."),
    Mistake("padding not removed", {"col2im": padding_not_removed},
            "dx has the shape of the image, (N, H, W, C): crop the padding cells off the padded sums."),
    Mistake("rows read channels first", {"col2im": rows_read_channels_first},
            "read each row in im2col's order, (kh, kw, c) with the channel fastest: entry (i*KW + j)*C + c."),
]

EXERCISE = Exercise(
    name="col2im", summary="col2im: add each row's entries back to the pixels they came from",
    functions=("col2im",), reference={"col2im": reference.col2im},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    advice="with col all ones, each pixel of dx counts the windows that cover it: check those counts first.")

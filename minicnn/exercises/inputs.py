"""Inputs for the checks: sliding-window geometries, arrays drawn with fixed seeds, readable labels,
and the numerical gradients of the gradient stage."""
import numpy as np

from minicnn import gradcheck
from minicnn.kernels import Window

SEED = 2024              # every drawn input comes from this seed: the same inputs on every run
GAP = 0.01               # drawn values kept this far apart (no ties, no kinks within a gradient step)

# (H, W, KH, KW, SH, SW, padding): the geometries every window exercise is checked on, chosen to
# cover overlapping windows (stride < window), gaps (stride > window), 'same' padding with an odd
# total (the extra cell goes bottom/right), 1x1 windows and non-square everything.
GEOMETRIES = [
    (5, 5, 3, 3, 1, 1, "same"),
    (6, 7, 2, 3, 2, 1, "valid"),
    (7, 7, 2, 2, 2, 2, "same"),
    (5, 6, 3, 2, 2, 3, "same"),
    (4, 4, 1, 1, 1, 1, "valid"),
    (6, 5, 3, 3, 3, 2, "valid"),
    (7, 6, 3, 3, 2, 2, "same"),
    (3, 3, 3, 3, 1, 1, "same"),
    (8, 5, 2, 2, 1, 1, "valid"),
    (5, 7, 2, 3, 3, 3, "same"),
]


def window(h, w, kh, kw, sh=1, sw=1, padding="valid"):
    return Window.over((h, w), (kh, kw), (sh, sw), padding)


def over_padded(win):
    """The same window over the image already padded: no padding of its own, h and w the padded size."""
    t, b, l, r = win.pads
    return Window(win.kh, win.kw, win.sh, win.sw, 0, 0, 0, 0, win.h + t + b, win.w + l + r, win.oh, win.ow)


def stride_one(win):
    """The same window moved by 1 instead of its strides (same padding): it takes more positions."""
    t, b, l, r = win.pads
    return Window(win.kh, win.kw, 1, 1, t, b, l, r, win.h, win.w, win.h + t + b - win.kh + 1,
                  win.w + l + r - win.kw + 1)


def describe(win, channels=None, batch=None):
    """'2 images 5x5x3, window 3x3, strides (1, 1), pads top/bottom/left/right 1/1/1/1'."""
    image = f"{win.h}x{win.w}" + (f"x{channels}" if channels is not None else "")
    who = f"{batch} image{'s' if batch != 1 else ''} {image}" if batch is not None else f"input {image}"
    pads = "no padding" if not any(win.pads) else "pads top/bottom/left/right " + "/".join(map(str, win.pads))
    return f"{who}, window {win.kh}x{win.kw}, strides ({win.sh}, {win.sw}), {pads}, output {win.oh}x{win.ow}"


def rng(offset=0):
    return np.random.default_rng(SEED + offset)


def normal(generator, shape, dtype):
    return generator.standard_normal(shape).astype(dtype)


def distinct(generator, shape, dtype):
    """Values pairwise at least GAP apart, centred on 0 (max-pooling without ties, LeakyReLU off its kink)."""
    size = int(np.prod(shape))
    return ((generator.permutation(size) - size / 2) * GAP + GAP / 3).reshape(shape).astype(dtype)


def with_ties(generator, shape, dtype):
    """Small whole numbers: many windows hold equal values (ties), some only negative ones."""
    return generator.integers(-3, 2, shape).astype(dtype)


def geometry_cases(make, dtype, offset=0):
    """[make(generator, Window, N, C, dtype)] over GEOMETRIES, batch and channels drawn."""
    cases = []
    for i, (h, w, kh, kw, sh, sw, padding) in enumerate(GEOMETRIES):
        generator = rng(offset + i)
        batch, channels = int(generator.integers(1, 4)), int(generator.integers(1, 4))
        cases.append(make(generator, window(h, w, kh, kw, sh, sw, padding), batch, channels, dtype))
    return cases


def numerical(f, array):
    """Central differences of the scalar f() with respect to `array` (changed in place and put back), shaped like it."""
    return gradcheck.numerical_gradient(f, array).reshape(array.shape)


def projection(shape, offset=0):
    """A fixed random array R: a gradient check differentiates L = sum(output * R), so dL/d output = R."""
    return rng(1000 + offset).standard_normal(shape)

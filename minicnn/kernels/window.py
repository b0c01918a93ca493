"""Where a sliding window goes: the one home of the padding and output-size rule.

A Conv2D kernel and a MaxPooling2D window both slide over an (H, W) image. Everything
the loops need to know about that walk is one small value, made once when the layer
is built and handed to every kernel:

    window size (KH, KW), strides (SH, SW), pads (top, bottom, left, right),
    input size (H, W) and output size (OH, OW), where
        OH = (H + top + bottom - KH) // SH + 1      (and likewise OW)

Output cell (a, b) covers the input rows a*SH - top ... a*SH - top + KH - 1 (and
likewise the columns); rows or columns outside 0 ... H - 1 are padding.
"""
from dataclasses import dataclass


def padding_amounts(size, window, stride, padding):
    """(pad_before, pad_after) along one axis, for padding 'valid' or 'same' (as Keras/TF).

    'same' gives ceil(size / stride) outputs; an odd total pad puts the extra cell
    after (bottom / right), so a 7-pixel row pooled by 2 becomes 4 with one pad cell at the end.
    """
    if padding == "valid":
        return 0, 0
    out = -(-size // stride)  # ceil(size / stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def output_size(size, window, stride, pad_before, pad_after):
    """How many window positions fit along one axis of the padded input."""
    return (size + pad_before + pad_after - window) // stride + 1


@dataclass(frozen=True)
class Window:
    """A window of (kh, kw) cells moved by (sh, sw) over an (h, w) input padded by
    (top, bottom, left, right); it stops at (oh, ow) positions. Use Window.over(...)."""
    kh: int
    kw: int
    sh: int
    sw: int
    top: int
    bottom: int
    left: int
    right: int
    h: int
    w: int
    oh: int
    ow: int

    @classmethod
    def over(cls, input_hw, size, strides, padding):
        """The window of `size` (KH, KW) moved by `strides` over an input of `input_hw` (H, W),
        padding 'valid' (none) or 'same' (Keras's rule, see padding_amounts).

        Raises ValueError when the window does not fit the input at least once.
        """
        (h, w), (kh, kw), (sh, sw) = input_hw, size, strides
        top, bottom = padding_amounts(h, kh, sh, padding)
        left, right = padding_amounts(w, kw, sw, padding)
        oh, ow = output_size(h, kh, sh, top, bottom), output_size(w, kw, sw, left, right)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"window {(kh, kw)} does not fit input {(h, w)} with padding {padding!r}")
        return cls(*(int(v) for v in (kh, kw, sh, sw, top, bottom, left, right, h, w, oh, ow)))

    @property
    def size(self):
        return self.kh, self.kw

    @property
    def strides(self):
        return self.sh, self.sw

    @property
    def pads(self):
        return self.top, self.bottom, self.left, self.right

    @property
    def output_hw(self):
        return self.oh, self.ow

"""Exercise maxpool_forward: max-pooling, and where each maximum came from.

A (PH, PW) window moves over each channel of each image by the strides; each output is the largest value
under the window:
    y[n, a, b, c] = max over i < PH, j < PW of x_padded[n, a*SH + i, b*SW + j, c]
The backward pass will need to know which cell won, so return that too, as its index inside the window:
    argmax[n, a, b, c] = i * PW + j          (row i, column j of the window)
On a tie the first cell in row-major order wins (the smallest i * PW + j).
With padding='same' the padding cells must never win: they count as -inf (not 0: a window of negative
numbers has a negative maximum).

window: a minicnn.kernels.Window with fields kh, kw (= PH, PW), sh, sw, top, bottom, left, right, h, w,
oh, ow; OH = (H + top + bottom - PH) // SH + 1 positions down, likewise OW.

Check it:          python -m minicnn.exercises check maxpool_forward maxpool_forward.py
Train with it:     python -m minicnn.exercises check maxpool_forward maxpool_forward.py --train
"""
import numpy as np


def maxpool_forward(x, window):
    """Max over every window position, per channel.

    x: (N, H, W, C); window: a minicnn.kernels.Window.
    Returns (y, argmax): y (N, OH, OW, C) in x's dtype, argmax (N, OH, OW, C) of integers.
    """
    # your code here
    raise NotImplementedError("write maxpool_forward")

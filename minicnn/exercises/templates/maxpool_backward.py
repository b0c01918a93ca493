"""Exercise maxpool_backward: send each window's gradient to the cell that won it.

Only the winning cell of a window changed its output, so the output's gradient goes to that cell alone:
    dx[n, a*SH + i - top, b*SW + j - left, c] += dy[n, a, b, c]    where argmax[n, a, b, c] = i * PW + j
With overlapping windows (stride < pool size) a cell can win several windows: it gets the sum.
argmax comes from the forward pass (the maxpool_forward exercise): on a tie it names the first of the tied
cells, and only that one gets the gradient. x is given too, but argmax already says everything you need.

window: a minicnn.kernels.Window with fields kh, kw (= PH, PW), sh, sw, top, bottom, left, right, h, w, oh, ow.

Check it:          python -m minicnn.exercises check maxpool_backward maxpool_backward.py
Train with it:     python -m minicnn.exercises check maxpool_backward maxpool_backward.py --train
"""
import numpy as np


def maxpool_backward(dy, x, argmax, window):
    """dx = dL/dx from dy = dL/dy.

    dy: (N, OH, OW, C); x: (N, H, W, C), the forward input; argmax: (N, OH, OW, C), each window's
    winner as i * PW + j; window: a minicnn.kernels.Window.
    Returns dx: (N, H, W, C), in dy's dtype.
    """
    # your code here
    raise NotImplementedError("write maxpool_backward")

"""Exercise im2col: turn a convolution into one matrix product.

A Conv2D kernel (KH, KW, C, F) slides over the images; at every position it takes the KH x KW x C values
under it. im2col copies those values into one row per position, so that the convolution becomes
    z = col @ kernel.reshape(KH*KW*C, F)          (N*OH*OW, F)

window: a minicnn.kernels.Window with these fields (all ints)
    kh, kw                      the window's height and width
    sh, sw                      its strides: how far it moves between positions
    top, bottom, left, right    zero padding around the image ('same' padding; an odd total puts the
                                extra cell at the bottom / right)
    h, w                        the image size; oh, ow the number of positions:
                                OH = (H + top + bottom - KH) // SH + 1, likewise OW
Row r = (n*OH + a)*OW + b of col is the window at output position (a, b) of image n, and
    col[r, (i*KW + j)*C + c] = x_padded[n, a*SH + i, b*SW + j, c]
with x_padded the image with the zero padding added: entries ordered (i, j, c), the channel fastest.

Check it:          python -m minicnn.exercises check im2col im2col.py
Train with it:     python -m minicnn.exercises check im2col im2col.py --train
"""
import numpy as np


def im2col(x, window):
    """Every window position of x as one row.

    x: (N, H, W, C) images, channels last; window: a minicnn.kernels.Window (see above).
    Returns col: (N*OH*OW, KH*KW*C), in x's dtype (float32 stays float32).
    """
    # your code here
    raise NotImplementedError("write im2col")

"""Exercise conv2d_backward: the three gradients of a convolution.

Forward, Conv2D unfolded its input with im2col and multiplied:
    col = im2col(x)                                      (N*OH*OW, KH*KW*C), kept for backward
    z   = col @ kernel.reshape(KH*KW*C, F) + bias        (N*OH*OW, F), seen as (N, OH, OW, F)
Backward, it gets dz = dL/dz (N, OH, OW, F). With dz2 = dz.reshape(N*OH*OW, F):
    d_bias   = dz2 summed over its rows                           (F,)
    d_kernel = (col^T @ dz2).reshape(KH, KW, C, F)                the patches times the output gradient
    dcol     = dz2 @ kernel.reshape(KH*KW*C, F)^T                 (N*OH*OW, KH*KW*C)
    dx       = col2im(dcol, window)                               (N, H, W, C)
It is Dense's backward (python -m minicnn.exercises start dense_backward) with col in the place of x,
and col2im to bring the rows' gradients back to the pixels.

You may use minicnn's col2im (below) or your own from the col2im exercise.

Check it:          python -m minicnn.exercises check conv2d_backward conv2d_backward.py
Train with it:     python -m minicnn.exercises check conv2d_backward conv2d_backward.py --train
"""
import numpy as np

from minicnn.kernels.reference import col2im   # or your own, from the col2im exercise


def conv2d_backward(dz, col, kernel, window):
    """The Conv2D layer's backward pass.

    dz: (N, OH, OW, F); col: (N*OH*OW, KH*KW*C), im2col of the forward input;
    kernel: (KH, KW, C, F); window: the layer's minicnn.kernels.Window (col2im needs it).
    Returns (dx, d_kernel, d_bias) with shapes (N, H, W, C), (KH, KW, C, F), (F,), in dz's dtype.
    """
    # your code here
    raise NotImplementedError("write conv2d_backward")

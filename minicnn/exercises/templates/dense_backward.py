"""Exercise dense_backward: the gradients of a Dense (fully connected) layer.

Forward, the layer computed z = x @ kernel + bias for a batch of N rows:
    x (N, in)  @  kernel (in, units)  +  bias (units,)  ->  z (N, units)
Backward, it receives dz = dL/dz (N, units) and returns three gradients:
    dx       = dL/dx      = dz @ kernel^T          (N, in)
    d_kernel = dL/dkernel = x^T @ dz               (in, units)   sums over the batch
    d_bias   = dL/dbias   = dz summed over rows    (units,)      the bias touched every row
Each gradient has the shape of the thing it is the gradient of. dz already carries the loss's 1/N.

Check it:          python -m minicnn.exercises check dense_backward dense_backward.py
Train with it:     python -m minicnn.exercises check dense_backward dense_backward.py --train
"""
import numpy as np


def dense_backward(dz, x, kernel):
    """The Dense layer's backward pass.

    dz: (N, units), the gradient of the loss with respect to z
    x: (N, in), the input the forward pass saw
    kernel: (in, units)
    Returns (dx, d_kernel, d_bias) with shapes (N, in), (in, units), (units,), in dz's dtype.
    """
    # your code here
    raise NotImplementedError("write dense_backward")

"""Exercise leaky_relu: LeakyReLU, forward and backward.

LeakyReLU lets a little of the negative side through, so that a unit below 0 still learns:

    forward:   y = z                     where z > 0
               y = negative_slope * z    elsewhere (z <= 0)
    backward:  dz = dL/dz = dy * f'(z),  f'(z) = 1 where z > 0, else negative_slope

Check it:          python -m minicnn.exercises check leaky_relu leaky_relu.py
Train with it:     python -m minicnn.exercises check leaky_relu leaky_relu.py --train
"""
import numpy as np


def leaky_relu_forward(z, negative_slope):
    """y = LeakyReLU(z), elementwise.

    z: any shape, e.g. (N, H, W, C) after a Conv2D or (N, units) after a Dense layer.
    negative_slope: a float >= 0 (the lab uses 0.1).
    Returns y, same shape and dtype as z (float32 stays float32).
    """
    # your code here
    raise NotImplementedError("write leaky_relu_forward")


def leaky_relu_backward(dy, z, negative_slope):
    """dz = dL/dz from dy = dL/dy, elementwise.

    dy, z: the same shape; z is the input the forward pass saw.
    Returns dz, same shape and dtype as dy: dy where z > 0, negative_slope * dy elsewhere.
    """
    # your code here
    raise NotImplementedError("write leaky_relu_backward")

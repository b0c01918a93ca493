"""Exercise dropout_forward: inverted dropout.

During training each unit is dropped (set to 0) with probability `rate`; the units that stay are scaled
up by 1 / (1 - rate), so that the expected output is x and nothing changes at test time ("inverted"
dropout, as in Keras). The random numbers come in as u, uniform in [0, 1):
    keep = u >= rate
    mask = keep / (1 - rate)          0 for a dropped unit, 1 / (1 - rate) for a kept one
    y    = x * mask
The backward pass is then dx = dy * mask, which is why the mask is returned too.

Check it:          python -m minicnn.exercises check dropout_forward dropout_forward.py
Train with it:     python -m minicnn.exercises check dropout_forward dropout_forward.py --train
                   (trains the lab's network with Dropout layers)
"""
import numpy as np


def dropout_forward(x, u, rate):
    """Inverted dropout with the uniform numbers u.

    x: any shape; u: the same shape, uniform in [0, 1); rate: the probability of dropping, 0 <= rate < 1.
    Returns (y, mask), both shaped and typed like x (the mask is not a boolean array).
    """
    # your code here
    raise NotImplementedError("write dropout_forward")

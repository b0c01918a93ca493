"""Exercise softmax_cross_entropy_gradient: where backpropagation starts.

The network's last layer gives logits z (N, K), one row per image and one column per class. Softmax turns
each row into probabilities and the cross-entropy compares them with the one-hot targets y (N, K):
    p_nk  = exp(z_nk) / sum_j exp(z_nj)                  each row of p sums to 1
    loss  = -1/N * sum_n sum_k y_nk * log(p_nk)          the mean over the batch
Its gradient with respect to the logits is remarkably simple:
    dL/dz = (p - y) / N
Numerically, exp(1000) overflows: softmax(z) = softmax(z - max of the row), and then every exponent is <= 0.

Check it:          python -m minicnn.exercises check softmax_cross_entropy_gradient softmax_cross_entropy_gradient.py
Train with it:     ... the same, with --train
"""
import numpy as np


def softmax_cross_entropy_gradient(z, y):
    """dL/dz of the mean cross-entropy of softmax(z) against y.

    z: (N, K) logits; y: (N, K) one-hot targets (each row one 1 and K-1 zeros).
    Returns dz (N, K), in z's dtype.
    """
    # your code here
    raise NotImplementedError("write softmax_cross_entropy_gradient")

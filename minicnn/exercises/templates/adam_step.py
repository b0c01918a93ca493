"""Exercise adam_step: one step of the Adam optimizer, on one parameter array, in place.

Adam keeps two running means per parameter, m of the gradient and v of its square, both starting at 0:
    m = beta_1 * m + (1 - beta_1) * grad
    v = beta_2 * v + (1 - beta_2) * grad**2
Because they start at 0 they are too small in the first steps; at step t (1, 2, 3, ...) dividing by
(1 - beta**t) corrects that ("bias correction"):
    m_hat = m / (1 - beta_1**t)
    v_hat = v / (1 - beta_2**t)
    param = param - learning_rate * m_hat / (sqrt(v_hat) + epsilon)
(minicnn and Keras fold both corrections into the step size, learning_rate * sqrt(1 - beta_2**t) /
(1 - beta_1**t), which moves epsilon slightly; either form passes.)

param, m and v must be changed in place (param -= ..., m[...] = ...): the optimizer keeps m and v for the
next step, and the model keeps param. `m = ...` would only make a new local array.

Check it:          python -m minicnn.exercises check adam_step adam_step.py
Train with it:     python -m minicnn.exercises check adam_step adam_step.py --train
"""
import numpy as np


def adam_step(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Update param, m and v in place for update number t (1 for the first). Returns nothing.

    param, grad, m, v: arrays of one shape and dtype (any shape: a kernel, a bias).
    """
    # your code here
    raise NotImplementedError("write adam_step")

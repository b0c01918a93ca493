"""Exercise dropout_forward: inverted dropout, given the uniform random numbers u.

    keep = u >= rate                         a unit is dropped with probability rate
    mask = keep / (1 - rate)                 the survivors scaled up: E[y] = x, nothing to do at test time
    y    = x * mask                          and backward is dx = dy * mask
minicnn's answer is minicnn.kernels.reference.dropout_forward. --train trains the lab's dropout model.
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import kernels_replaced
from minicnn.kernels import reference

OUTPUTS = ["y", "mask"]


def run(f, x, u, rate):
    return returned(f.dropout_forward(x, u, rate), OUTPUTS, "dropout_forward")


def hand_made(dtype):
    x = np.array([[1, 2, 3, 4, 5]], dtype)
    u = np.array([[0.1, 0.5, 0.7, 0.3, 0.95]], dtype)
    return [Case("x = [[1, 2, 3, 4, 5]], u = [[0.1, 0.5, 0.7, 0.3, 0.95]], rate 0.5",
                 {"x": x, "u": u, "rate": 0.5}),
            Case("x = [[1, 2, 3, 4, 5]], u = [[0.1, 0.5, 0.7, 0.3, 0.95]], rate 0.3 (u = 0.3 is kept)",
                 {"x": x, "u": u, "rate": 0.3})]


def drawn(dtype):
    cases = []
    for i, (shape, rate) in enumerate([((4, 10), 0.25), ((2, 5, 5, 3), 0.4), ((64, 128), 0.3), ((3, 7), 0.9)]):
        generator = inputs.rng(i)
        case_inputs = {"x": inputs.normal(generator, shape, dtype), "u": generator.random(shape, dtype=dtype),
                       "rate": rate}
        cases.append(Case(f"x normal and u uniform of shape {shape}, rate {rate}", case_inputs))
    return cases


def gradient(f):
    """minicnn's backward is dx = dy * mask: your mask must be the gradient of your y. L = sum(y * R)."""
    generator = inputs.rng()
    x, u = inputs.normal(generator, (6, 7), np.float64), generator.random((6, 7))
    r = inputs.projection((6, 7))
    mask = run(f, x.copy(), u, 0.4)["mask"]
    numeric = inputs.numerical(lambda: (run(f, x, u, 0.4)["y"] * r).sum(), x)
    return "x normal, u uniform, shape (6, 7), rate 0.4, L = sum(y * R)", [
        GradientCheck("dx = R * mask", r * mask, numeric, source="minicnn's backward (dy * mask) of your mask")]


def plug(model, f):
    return kernels_replaced(dropout_forward=f.dropout_forward)


# --- planted mistakes ---------------------------------------------------------------------------
def not_rescaled(x, u, rate):
    keep = (u >= rate).astype(x.dtype)
    return x * keep, keep


def scaled_by_keep_rate(x, u, rate):
    mask = (u >= rate) * x.dtype.type(1 - rate)
    return x * mask, mask


def wrong_units_kept(x, u, rate):
    mask = (u < rate) * x.dtype.type(1 / (1 - rate))
    return x * mask, mask


def boolean_mask(x, u, rate):
    keep = u >= rate
    return x * keep / x.dtype.type(1 - rate), keep


MISTAKES = [
    Mistake("dropout not rescaled", {"dropout_forward": not_rescaled},
            "inverted dropout scales the units it keeps by 1 / (1 - rate), so that the expected output stays x "
            "and the network needs no change at test time: mask = (u >= rate) / (1 - rate)."),
    Mistake("multiplied by 1 - rate", {"dropout_forward": scaled_by_keep_rate},
            "divide the kept units by (1 - rate), do not multiply: they must make up for the dropped ones."),
    Mistake("the wrong units kept", {"dropout_forward": wrong_units_kept},
            "a unit is dropped with probability rate: keep it where u >= rate (u < rate keeps a share rate of "
            "them, and drops the others)."),
    Mistake("a boolean mask", {"dropout_forward": boolean_mask},
            "the mask is what backward multiplies dy by: an array of x's dtype holding 0 or 1 / (1 - rate), "
            "not booleans."),
]

EXERCISE = Exercise(
    name="dropout_forward", summary="inverted dropout, forward (the mask is the backward)",
    functions=("dropout_forward",), reference={"dropout_forward": reference.dropout_forward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug, model="dropout",
    advice="for the first hand-made input, which units survive u >= 0.5, and what is each one scaled by?")

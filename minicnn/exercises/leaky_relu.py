"""Exercise leaky_relu: LeakyReLU forward and backward.

    forward:  y  = z                   where z > 0, else negative_slope * z
    backward: dz = dy                  where z > 0, else negative_slope * dy
"""
import numpy as np

from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, GradientCheck, Mistake, returned
from minicnn.exercises.plugging import kernels_replaced
from minicnn.kernels import reference

FUNCTIONS = ("leaky_relu_forward", "leaky_relu_backward")
SLOPES = (0.1, 0.3, 0.01)          # the lab's 0.1, Keras's default 0.3, and a small one


def run(f, z, dy, negative_slope):
    y = returned(f.leaky_relu_forward(z, negative_slope), ["y"], "leaky_relu_forward")
    dz = returned(f.leaky_relu_backward(dy, z, negative_slope), ["dz"], "leaky_relu_backward")
    return {**y, **dz}


def hand_made(dtype):
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]], dtype)
    dy = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]], dtype)
    return [Case("z = [[-2, -0.5, 0, 0.5, 2]], dy = [[1, 2, 3, 4, 5]], negative_slope 0.1",
                 {"z": z, "dy": dy, "negative_slope": 0.1})]


def drawn(dtype):
    cases = []
    for i, shape in enumerate([(4, 6), (2, 5, 5, 3), (3, 7, 4, 2), (64, 128)]):
        generator = inputs.rng(i)
        slope = SLOPES[i % len(SLOPES)]
        case_inputs = {"z": inputs.normal(generator, shape, dtype), "dy": inputs.normal(generator, shape, dtype),
                       "negative_slope": slope}
        cases.append(Case(f"z and dy normal of shape {shape}, negative_slope {slope}", case_inputs))
    return cases


def gradient(f):
    """Your backward against central differences of minicnn's forward, L = sum(leaky_relu(z) * R)."""
    shape = (3, 4, 5)
    z = inputs.distinct(inputs.rng(), shape, np.float64)           # no entry within a step of the kink
    r = inputs.projection(shape)
    dz = returned(f.leaky_relu_backward(r, z.copy(), 0.1), ["dz"], "leaky_relu_backward")["dz"]
    numeric = inputs.numerical(lambda: (reference.leaky_relu_forward(z, 0.1) * r).sum(), z)
    return f"z of shape {shape}, no entry near 0, negative_slope 0.1", [GradientCheck("dz", dz, numeric)]


def plug(model, f):
    return kernels_replaced(leaky_relu_forward=f.leaky_relu_forward, leaky_relu_backward=f.leaky_relu_backward)


# --- planted mistakes ---------------------------------------------------------------------------
def relu_forward(z, negative_slope):
    return np.maximum(z, 0)


def slope_on_positive_side(z, negative_slope):
    return np.where(z > 0, z * z.dtype.type(negative_slope), z)


def backward_without_dy(dy, z, negative_slope):
    return np.where(z > 0, 1, negative_slope).astype(dy.dtype)


def backward_of_relu(dy, z, negative_slope):
    return np.where(z > 0, dy, 0).astype(dy.dtype)


def backward_slope_one_at_zero(dy, z, negative_slope):
    return np.where(z >= 0, dy, dy * dy.dtype.type(negative_slope))


MISTAKES = [
    Mistake("ReLU instead of LeakyReLU", {"leaky_relu_forward": relu_forward},
            "negative inputs are multiplied by negative_slope, not set to 0: y = negative_slope * z where z <= 0."),
    Mistake("slope on the wrong side", {"leaky_relu_forward": slope_on_positive_side},
            "positive inputs pass unchanged (y = z where z > 0); the slope applies to the others."),
    Mistake("backward ignores dy", {"leaky_relu_backward": backward_without_dy},
            "backward returns dL/dz = dy * f'(z), the incoming gradient times the local slope, not the slope "
            "alone."),
    Mistake("ReLU's backward", {"leaky_relu_backward": backward_of_relu},
            "where z <= 0 the slope is negative_slope, not 0: dz = negative_slope * dy there."),
    Mistake("slope 1 at z = 0", {"leaky_relu_backward": backward_slope_one_at_zero},
            "at z = 0 exactly, minicnn (like Keras and TensorFlow) takes the negative side's slope: test z > 0, "
            "not z >= 0 (the same test as in forward)."),
]

EXERCISE = Exercise(
    name="leaky_relu", summary="LeakyReLU forward and backward (elementwise)", functions=FUNCTIONS,
    reference={"leaky_relu_forward": reference.leaky_relu_forward,
               "leaky_relu_backward": reference.leaky_relu_backward},
    run=run, hand_made=hand_made, drawn=drawn, gradient=gradient, mistakes=MISTAKES, plug=plug,
    fusion=False, advice="work the hand-made input through on paper: each entry is z or negative_slope * z.")

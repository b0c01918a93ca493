"""Exercise adam_step: one Adam update of a parameter, in place, at step t = 1, 2, 3, ...

    m     = beta_1 * m + (1 - beta_1) * grad                the running mean of the gradient
    v     = beta_2 * v + (1 - beta_2) * grad**2             the running mean of its square
    m_hat = m / (1 - beta_1**t),  v_hat = v / (1 - beta_2**t)          bias correction (m, v start at 0)
    param = param - learning_rate * m_hat / (sqrt(v_hat) + epsilon)
minicnn (as Keras) folds both corrections into the step size, learning_rate * sqrt(1 - beta_2**t) / (1 - beta_1**t),
which moves epsilon a little; both forms pass. minicnn's answer: optimizers.Adam.step_size and kernels'
adam_update.
"""
import math

import numpy as np

from minicnn import optimizers
from minicnn.exercises import inputs
from minicnn.exercises.checking import Case, Exercise, LearnerError, Mistake, differing, first_difference
from minicnn.exercises.plugging import attributes_replaced
from minicnn.kernels import reference

STATE = ("param", "m", "v")


def reference_adam_step(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """What optimizers.Adam does to one parameter at its update number t."""
    adam = optimizers.Adam(learning_rate, beta_1, beta_2, epsilon)
    adam.iterations = t - 1                       # step_size() is for update iterations + 1
    reference.adam_update(param, grad, m, v, adam.step_size(), beta_1, beta_2, epsilon)


def run(f, param, grads, learning_rate):
    """len(grads) steps from m = v = 0, t = 1, 2, ...; the arrays as the learner's function leaves them."""
    m, v = np.zeros_like(param), np.zeros_like(param)
    for t, grad in enumerate(grads, start=1):
        f.adam_step(param, grad, m, v, t, learning_rate=learning_rate)
    return {"param": param, "m": m, "v": v}


def hand_made(dtype):
    param = np.array([1.0, -1.0, 0.5, 0.0], dtype)
    grads = np.array([[0.1, -0.2, 0.3, 0.0], [0.2, -0.1, -0.3, 1.0], [0.1, 0.0, 0.3, -1.0]], dtype)
    return [Case("param = [1, -1, 0.5, 0], one step with grad = [0.1, -0.2, 0.3, 0], learning_rate 0.001",
                 {"param": param, "grads": grads[:1], "learning_rate": 0.001}),
            Case("param = [1, -1, 0.5, 0], three steps with grads [0.1, -0.2, 0.3, 0], [0.2, -0.1, -0.3, 1], "
                 "[0.1, 0, 0.3, -1], learning_rate 0.001", {"param": param, "grads": grads, "learning_rate": 0.001})]


def drawn(dtype):
    cases = []
    for i, (shape, steps, learning_rate) in enumerate([((5,), 10, 0.001), ((3, 3, 2, 4), 4, 0.01), ((7, 3), 30, 0.1)]):
        generator = inputs.rng(i)
        case_inputs = {"param": inputs.normal(generator, shape, dtype),
                       "grads": inputs.normal(generator, (steps,) + shape, dtype), "learning_rate": learning_rate}
        cases.append(Case(f"param of shape {shape}, {steps} steps with normal gradients, learning_rate "
                          f"{learning_rate}", case_inputs))
    return cases


def float64_values(f):
    """No backward to check: instead, ten steps in float64 must stay float64 and agree with minicnn's."""
    case = drawn(np.float64)[0]
    yours = run(f, case.inputs["param"].copy(), case.inputs["grads"], case.inputs["learning_rate"])
    expected = run(EXERCISE.reference_functions(), case.inputs["param"].copy(), case.inputs["grads"],
                   case.inputs["learning_rate"])
    for name in STATE:
        if yours[name].dtype != np.float64:
            raise LearnerError(f"float64 in, {yours[name].dtype} out for {name}: keep the arrays' dtype")
        if differing(yours[name], expected[name]).any():
            raise LearnerError("in float64, " + first_difference(name, yours[name], expected[name]))
    return None


def plug(model, f):
    """The model's Adam updates every parameter with your adam_step."""
    adam = model.optimizer

    def update(index, param, grad):
        f.adam_step(param, grad, adam.slots["m"][index], adam.slots["v"][index], adam.iterations + 1,
                    learning_rate=float(adam.learning_rate), beta_1=adam.beta_1, beta_2=adam.beta_2, epsilon=adam.epsilon)
    return attributes_replaced([(adam, "update", update)])


# --- planted mistakes ---------------------------------------------------------------------------
def no_bias_correction(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    reference.adam_update(param, grad, m, v, learning_rate, beta_1, beta_2, epsilon)


def state_not_in_place(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    m, v = m.copy(), v.copy()                   # as `m = beta_1 * m + ...` makes a new local array
    reference_adam_step(param, grad, m, v, t, learning_rate, beta_1, beta_2, epsilon)


def param_not_in_place(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    reference_adam_step(param.copy(), grad, m, v, t, learning_rate, beta_1, beta_2, epsilon)


def t_from_zero(param, grad, m, v, t, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    step_size = learning_rate * math.sqrt(1 - beta_2 ** (t - 1)) / max(1 - beta_1 ** (t - 1), 1e-30)
    reference.adam_update(param, grad, m, v, step_size, beta_1, beta_2, epsilon)


MISTAKES = [
    Mistake("Adam without bias correction", {"adam_step": no_bias_correction},
            "m and v start at 0, so in the first steps they are too small by the factors (1 - beta_1**t) and "
            "(1 - beta_2**t): divide them out (m_hat, v_hat), or scale the step by sqrt(1 - beta_2**t) / "
            "(1 - beta_1**t)."),
    Mistake("m and v not updated in place", {"adam_step": state_not_in_place},
            "update m and v in place (m[...] = ..., or m *= ...; m += ...): `m = beta_1 * m + ...` makes a new "
            "local array, and the optimizer keeps the old one for the next step."),
    Mistake("param not updated in place", {"adam_step": param_not_in_place},
            "change param in place (param -= ...): `param = param - ...` makes a new local array and the "
            "model's weights never move."),
    Mistake("t counted from 0", {"adam_step": t_from_zero},
            "t is the number of this update, 1 for the first: the corrections are 1 - beta**t with t >= 1."),
]

EXERCISE = Exercise(
    name="adam_step", summary="one Adam update, in place, with bias correction", functions=("adam_step",),
    reference={"adam_step": reference_adam_step},
    run=run, hand_made=hand_made, drawn=drawn, gradient=float64_values, mistakes=MISTAKES, plug=plug,
    advice="follow the hand-made first step on paper: m = 0.1 * grad, v = 0.001 * grad**2, then the step.")

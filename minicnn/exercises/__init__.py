"""Learn by writing it: graded exercises for every backward pass (and the forward steps they undo).

    python -m minicnn.exercises                              the list
    python -m minicnn.exercises start conv2d_backward        writes conv2d_backward.py here: fill it in
    python -m minicnn.exercises check conv2d_backward conv2d_backward.py
    python -m minicnn.exercises check conv2d_backward conv2d_backward.py --train

Each exercise is one module of this package and has
  - a template, templates/NAME.py: the signature, the shapes and the maths, the body left to write;
  - minicnn's own answer (the reference): minicnn's own code wherever it exists, so there is one definition;
  - planted mistakes, the classic wrong versions, each with the hint the checker gives when a learner's
    output equals that mistake's output;
  - a way to plug the learner's function into the lab's network (`--train`, see training.py).
checking.py runs the stages (defined, runs, shapes and dtypes, hand-made values, drawn values, gradient).

From Python:

    from minicnn import exercises
    report = exercises.check("im2col", my_module)     # anything with the exercise's functions as attributes
    print(report.text())
"""
from minicnn.exercises import (adam_step, col2im, conv2d_backward, dense_backward, dropout_forward, im2col,
                               leaky_relu, maxpool_backward, maxpool_forward, softmax_cross_entropy_gradient)
from minicnn.exercises.checking import Exercise, Report
from minicnn.exercises.checking import check as check_exercise

# In the order a learner might take them: elementwise steps, dense layers and the loss, then convolution,
# pooling, and the optimizer.
EXERCISES = {exercise.name: exercise for exercise in (
    leaky_relu.EXERCISE, dense_backward.EXERCISE, softmax_cross_entropy_gradient.EXERCISE, dropout_forward.EXERCISE,
    im2col.EXERCISE, col2im.EXERCISE, conv2d_backward.EXERCISE, maxpool_forward.EXERCISE,
    maxpool_backward.EXERCISE, adam_step.EXERCISE)}


def get(name):
    """The Exercise called `name`; a KeyError that lists the exercises otherwise."""
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def check(name, functions, path=None):
    """Check `functions` (a module, or any object with the exercise's functions) against exercise `name`."""
    return check_exercise(get(name), functions, path)


__all__ = ["EXERCISES", "Exercise", "Report", "get", "check"]

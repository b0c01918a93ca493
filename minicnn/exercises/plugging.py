"""Plug a learner's functions into a whole model, for `check ... --train`.

Two sanctioned routes (see minicnn/kernels/__init__.py and minicnn/plan.py):
  - a kernel (im2col, col2im, max-pooling, LeakyReLU, dropout) is routed to the learner's function
    with kernels.override, on every layer that calls it;
  - a layer-level function (Dense or Conv2D backward, the max-pooling backward) replaces a method on
    the layer object itself; the step plan never fuses such a layer away, so the learner's code runs.
Everything is put back when the block ends.
"""
import contextlib

from minicnn import kernels


@contextlib.contextmanager
def kernels_replaced(**functions):
    """Within the block, kernels.<name> runs functions[name] (kernels.override for each)."""
    with contextlib.ExitStack() as stack:
        for name, function in functions.items():
            stack.enter_context(kernels.override(name, function))
        yield


@contextlib.contextmanager
def attributes_replaced(replacements):
    """replacements: [(object, attribute name, value)], set on each object for the block, then removed."""
    try:
        for target, name, value in replacements:
            setattr(target, name, value)
        yield
    finally:
        for target, name, _ in replacements:
            vars(target).pop(name, None)


def layers_of(model, cls):
    """The model's layers of exactly this class, in order."""
    return [layer for layer in model.layers if type(layer) is cls]

"""What functional models are made of: Input, InputLayer, and Add for skip connections.

    inputs = Input(shape=(28, 28, 1))
    x = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    y = Conv2D(16, 3, padding="same")(x)
    x = Add()([x, y])            # or x = x + y: a residual connection
    ...
    model = Model(inputs, outputs)

Calling a layer on a SymbolicTensor records the call (the layer and the tensors it was called
on); Model(inputs, outputs) reads the graph back from `outputs` (models.py).
"""
from minicnn.layers.base import Layer, SymbolicTensor, check_shape, unique_name


def Input(shape=None, batch_size=None, name=None, batch_shape=None):
    """The start of a functional model: Input(shape=(28, 28, 1)). Returns a SymbolicTensor."""
    if batch_shape is not None:
        if not isinstance(batch_shape, (tuple, list)) or len(batch_shape) < 2:
            raise ValueError(f"Input: batch_shape must be a tuple such as (None, 28, 28, 1), got {batch_shape!r}")
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("Input: give the shape of one sample, e.g. Input(shape=(28, 28, 1))")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"Input: name must be a string, got {name!r}")
    return SymbolicTensor((batch_size,) + check_shape(shape, "shape", "Input"),
                          name=name or unique_name("input_layer"))


class InputLayer(Layer):
    """Declares the input shape of a Sequential model, as Keras's InputLayer does:
    Sequential([InputLayer(input_shape=(28, 28, 1)), Conv2D(...), ...]). It computes nothing
    and does not become one of model.layers (Keras 3 does the same)."""

    def __init__(self, input_shape=None, batch_size=None, name=None, shape=None, batch_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        if batch_shape is None and shape is None:
            raise ValueError("InputLayer: give the shape of one sample, e.g. InputLayer(shape=(28, 28, 1))")
        super().__init__(name=name or unique_name("input_layer"), batch_input_shape=batch_shape,
                         input_shape=shape if batch_shape is None else None, **kwargs)

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy


class Add(Layer):
    """The elementwise sum of its inputs, all of one shape: Add()([a, b]) (or a + b).

    forward:  y = x_1 + x_2 + ... + x_m
    backward: dx_i = dy for every input (d y / d x_i is the identity): a skip connection
              hands the gradient to both paths unchanged, which is why residual networks
              train deep. Where a tensor feeds several layers, the model adds up the
              gradients that come back along each (Model's graph plan).
    """
    takes_list = True     # called on a list of tensors; forward gets the list, backward returns one

    def build(self, input_shape):
        shapes = _check_list(self, input_shape)
        first = shapes[0]
        for shape in shapes[1:]:
            if tuple(shape[1:]) != tuple(first[1:]):
                raise ValueError(f"layer {self.name!r} (Add) adds inputs of one shape, got "
                                 f"{[tuple(s) for s in shapes]}")
        super().build([tuple(shape) for shape in shapes])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def check_input_shape(self, shapes):
        expected = self.input_shape
        if expected is None:
            return
        shapes = _check_list(self, shapes)
        if len(shapes) != len(expected) or any(tuple(s[1:]) != tuple(e[1:]) for s, e in zip(shapes, expected)):
            raise ValueError(f"layer {self.name!r} (Add) was built for inputs {expected}, got {shapes}")

    def forward(self, xs, training=False):
        self.count = len(xs)
        y = xs[0] + xs[1]                     # a new array: the inputs stay as they were
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy):
        # dx_i = dy for each input; each its own copy, since the layers on the paths back may
        # change the gradient they receive in place (as Saitoh's ReLU does: dout[mask] = 0)
        return [dy] + [dy.copy() for _ in range(self.count - 1)]

    cached = ("count",)


def _check_list(layer, shapes):
    if not isinstance(shapes, (list, tuple)) or len(shapes) < 2 or not all(
            isinstance(shape, (list, tuple)) for shape in shapes):
        raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is called on a list of at least two "
                         f"tensors, e.g. {type(layer).__name__}()([x, y]); got {shapes!r}")
    return list(shapes)


def add(inputs):
    """Keras's functional form: add([x, y]) = Add()([x, y])."""
    return Add()(inputs)


__all__ = ["Input", "InputLayer", "Add", "add", "SymbolicTensor"]

"""The step plan: what a model runs for one batch, in order.

A model could simply call its layers one after the other, and with `model.fusion = False`
it does. But some runs of layers are cheaper as one step with the same numbers, so a
model turns its layers into a plan: a list of steps, made once (`make_plan`) and made
again only when the layers, the loss or the fusion switch change (see Model.plan).

Every step keeps the layer contract:

    step.forward(x, training=False) -> y        keeps what its backward needs
    step.backward(dy) -> dx                      fills the grads of the layers it runs
    step.layers, step.name                       the layers it runs, and what to call it

The steps:

    LayerStep(layer)        one layer, its own forward and backward
    ConvActivationPool      Conv2D -> LeakyReLU/ReLU -> MaxPooling2D as one step: the
                            convolution's output is read once, and the bias, the activation
                            and the pooling happen in one pass over it (kernels.
                            bias_leaky_maxpool_forward / _backward)
    SoftmaxCrossEntropy     the last layer when it ends in softmax and the loss is a
                            cross-entropy: its backward takes d loss / d z = (p - y) / N,
                            the exact and cheap form of the two gradients together

One batch through a plan (Model.compute_gradients, and Model.train_step for every batch of fit):

    y_pred = plan.forward(x, training)           step by step
    loss   = plan.loss(y)                        from the logits z when softmax is fused
    dx     = plan.backward(y)                    the steps in reverse; fills every layer's grads

Observers (trace, profile, gradient checks, benchmarks) listen around every step: each
gets before_forward / after_forward / before_backward / after_backward calls (see Observer).

Fusion changes how layers run, never what they compute: tests/test_plan.py checks
fused against layer by layer. Only minicnn's own code is fused away. A layer runs on its
own, so that the code a learner changes is the code that runs, when (see `replaced`)
  - its forward, backward, linear or backward_linear was set on the object (a patch);
  - it is a subclass, or a method of its class differs from the one minicnn defined
    (`LeakyReLU.backward = my_backward` after import);
  - the same holds for its activation object (`activations.LeakyReLU.backward = ...`);
  - a kernel that the fused step would skip is overridden (kernels.override).
The same holds for SoftmaxCrossEntropy, which skips the last layer's backward and Softmax.backward.
To run every layer on its own anyway: `model.fusion = False`, or `with model.layer_by_layer():`.
"""
from minicnn import activations, kernels
from minicnn.layers.advanced_activations import LeakyReLU, ReLU
from minicnn.layers.base import ActivationMixin
from minicnn.layers.convolutional import Conv2D
from minicnn.layers.core import Activation, Dense
from minicnn.layers.pooling import MaxPooling2D


class Observer:
    """Called around every step of a plan; subclass and override what you need.

    x, y, dy and dx are the arrays the step received and returned. In SoftmaxCrossEntropy's
    backward, dy is d loss / d z (the pre-activation), not d loss / d output.
    """

    def before_forward(self, step, x):
        pass

    def after_forward(self, step, x, y):
        pass

    def before_backward(self, step, dy):
        pass

    def after_backward(self, step, dy, dx):
        pass


class LayerStep:
    """One layer run on its own: forward and backward are the layer's."""

    def __init__(self, layer):
        self.layer = layer
        self.layers = [layer]
        self.name = layer.name

    def forward(self, x, training=False):
        return self.layer.forward(x, training=training)

    def backward(self, dy):
        return self.layer.backward(dy)

    def __repr__(self):
        return f"<LayerStep {self.name}>"


class ConvActivationPool:
    """Conv2D, its LeakyReLU / ReLU and a MaxPooling2D, run as one step.

    forward:  z       = correlate(x) = im2col(x) @ kernel       (N, H, W, F), no bias yet
              y, arg  = maxpool(leaky(z + bias))                one pass over z, (N, OH, OW, F)
    backward: dz, d_bias = the winner of each window gets       one pass, dz (N, H, W, F)
                           slope * dy (slope 1 where y > 0)
              d_kernel, dx = conv.backward_correlate(dz)        as Conv2D's own backward

    The same numbers as the three layers: the kernel applies the bias and the activation
    before it compares, so the same cell wins every window (ties, inf and NaN included);
    backward, y > 0 exactly where the winner's z + bias > 0. The bias gradient is added up
    in float64 in window order rather than row order (tests/test_plan.py).
    The layers keep their weights and gradients; the step only changes how they run.
    """

    def __init__(self, conv, activation_layer, pool, negative_slope):
        self.conv, self.pool = conv, pool
        self.negative_slope = negative_slope
        self.layers = [layer for layer in (conv, activation_layer, pool) if layer is not None]
        self.name = "+".join(layer.name for layer in self.layers)

    def forward(self, x, training=False):
        for layer in self.layers:
            layer.forget()                  # their own backward must not run on this batch
        conv = self.conv
        z = conv.correlate(x)                                                   # (N, H, W, F)
        bias = conv.params["bias"] if conv.use_bias else None
        self.y, self.argmax = kernels.bias_leaky_maxpool_forward(z, bias, self.negative_slope, self.pool.window)
        return self.y                                                           # (N, OH, OW, F)

    def backward(self, dy):
        dz, d_bias = kernels.bias_leaky_maxpool_backward(dy, self.y, self.argmax, self.negative_slope,
                                                         self.pool.window)      # (N, H, W, F), (F,)
        if self.conv.use_bias:
            self.conv.grads["bias"] = d_bias
        return self.conv.backward_correlate(dz)                                 # (N, H', W', C)

    def __repr__(self):
        return f"<ConvActivationPool {self.name}>"


class SoftmaxCrossEntropy:
    """The last layer, ending in softmax, when a cross-entropy loss follows it.

    forward:  z = layer.linear(x); p = softmax(z)    (N, K); z is kept for the loss
    loss:     -1/N sum y * log_softmax(z)            exact, even where p rounds to 0
    backward(dz) takes dz = d loss / d z = (p - y) / N (losses.py derives it) and returns
    layer.backward_linear(dz): softmax's own Jacobian never needs to be formed.
    """

    def __init__(self, layer):
        self.layer = layer
        self.layers = [layer]
        self.name = layer.name

    def forward(self, x, training=False):
        self.z = self.layer.linear(x)
        return self.layer.apply_activation(self.z)

    def backward(self, dz):
        return self.layer.backward_linear(dz)

    def __repr__(self):
        return f"<SoftmaxCrossEntropy {self.name}>"


class Plan:
    """The steps of a model, and its loss: forward, loss, backward for one batch."""

    def __init__(self, steps, loss=None):
        self.steps = list(steps)
        self.loss_function = loss
        self.y_pred = None

    @property
    def softmax_fused(self):
        return bool(self.steps) and isinstance(self.steps[-1], SoftmaxCrossEntropy)

    def forward(self, x, training=False, observers=()):
        """x (N, ...) -> y_pred (N, ...), step by step."""
        for step in self.steps:
            for observer in observers:
                observer.before_forward(step, x)
            y = step.forward(x, training=training)
            for observer in observers:
                observer.after_forward(step, x, y)
            x = y
        self.y_pred = x
        return x

    def loss(self, y, sample_weight=None):
        """The mean loss of the last forward pass against the targets y (each sample weighted
        by sample_weight, if given), plus the layers' weight penalties (kernel_regularizer...),
        whose gradients the layers add in their own backward."""
        if self.softmax_fused:
            loss = self.loss_function.forward_from_logits(y, self.steps[-1].z, sample_weight)
        else:
            loss = self.loss_function.forward(y, self.y_pred, sample_weight)
        penalty = sum(layer.regularization_loss() for step in self.steps for layer in step.layers)
        return loss + penalty if penalty else loss

    def backward(self, y, observers=(), sample_weight=None):
        """Back through every step from the loss's gradient; returns d loss / d x."""
        if self.softmax_fused:
            d = self.loss_function.gradient_from_logits(y, self.y_pred, sample_weight)  # (p - y) / N
        else:
            d = self.loss_function.gradient(y, self.y_pred, sample_weight)              # d loss / d y_pred
        for step in reversed(self.steps):
            for observer in observers:
                observer.before_backward(step, d)
            dx = step.backward(d)
            for observer in observers:
                observer.after_backward(step, d, dx)
            d = dx
        return d

    def __repr__(self):
        return f"<Plan {[step.name for step in self.steps]}>"


INPUT = -1   # in connections (Model.connections): the model's input


class GraphPlan(Plan):
    """The plan of a functional model with skip connections: one step per layer, each fed
    from the outputs of the steps (or the input) that `connections` names.

    forward:  out[i] = step_i(out[j] for j in connections[i])      out[INPUT] = x
    backward: from the last step back, each step's dx goes to the steps that fed it; where
              one output fed several steps, the gradients that come back are added up
              (d loss / d out[j] = sum over the steps k that read out[j] of their dx).
    No Conv2D -> activation -> pooling fusion here (an output in the middle may be read twice).
    """

    def __init__(self, steps, loss=None, connections=()):
        super().__init__(steps, loss)
        self.connections = [tuple(inputs) for inputs in connections]

    def forward(self, x, training=False, observers=()):
        outputs = {INPUT: x}
        for index, (step, inputs) in enumerate(zip(self.steps, self.connections)):
            arriving = [outputs[source] for source in inputs]
            x = arriving if step.layers[0].takes_list else arriving[0]
            for observer in observers:
                observer.before_forward(step, x)
            outputs[index] = step.forward(x, training=training)
            for observer in observers:
                observer.after_forward(step, x, outputs[index])
        self.y_pred = outputs[len(self.steps) - 1]
        return self.y_pred

    def backward(self, y, observers=(), sample_weight=None):
        if self.softmax_fused:
            d = self.loss_function.gradient_from_logits(y, self.y_pred, sample_weight)  # (p - y) / N
        else:
            d = self.loss_function.gradient(y, self.y_pred, sample_weight)
        gradients = {len(self.steps) - 1: d}   # d loss / d out[i], summed over the steps that read out[i]
        for index in reversed(range(len(self.steps))):
            step, inputs = self.steps[index], self.connections[index]
            dy = gradients.pop(index)
            for observer in observers:
                observer.before_backward(step, dy)
            dx = step.backward(dy)
            for observer in observers:
                observer.after_backward(step, dy, dx)
            for source, grad in zip(inputs, dx if step.layers[0].takes_list else [dx]):
                if grad is None:           # a first layer that skipped d loss / d x
                    continue
                gradients[source] = gradients[source] + grad if source in gradients else grad
        return gradients.get(INPUT)


# --- making a plan ----------------------------------------------------------------------------
ACTIVATION_LAYERS = (Activation, LeakyReLU, ReLU)   # exactly these classes
LAYER_METHODS = ("forward", "backward", "linear", "backward_linear", "apply_activation")
ACTIVATION_METHODS = ("forward", "backward")
# Kernels that a layer calls and that the fused step does not: overriding one of them
# (kernels.override) turns fusion off for the layers that call it.
SKIPPED_KERNELS = {Conv2D: ("sum_rows",), MaxPooling2D: ("maxpool_forward", "maxpool_backward"),
                   activations.LeakyReLU: ("leaky_relu_forward", "leaky_relu_backward")}


def _methods(classes, names):
    """{class: {name: the function the class has for it}}, for the names it has, as minicnn defines them."""
    return {cls: {name: getattr(cls, name) for name in names if hasattr(cls, name)} for cls in classes}


# The methods as minicnn defined them, taken when minicnn is imported (before any learner's patch).
ORIGINAL_METHODS = {
    **_methods((Conv2D, MaxPooling2D, Dense, Activation, LeakyReLU, ReLU, ActivationMixin), LAYER_METHODS),
    **_methods((activations.Linear, activations.ReLU, activations.LeakyReLU, activations.Softmax),
               ACTIVATION_METHODS),
}


def _differs(thing, names):
    """True when one of `names` is set on the object, or its class has another function for it than
    minicnn's own class it comes from (the nearest in its MRO that minicnn defines)."""
    if any(name in vars(thing) for name in names):
        return True
    own = next((ORIGINAL_METHODS[cls] for cls in type(thing).__mro__ if cls in ORIGINAL_METHODS), None)
    return own is not None and any(getattr(type(thing), name, None) is not function for name, function in own.items())


def _kernel_overridden(thing):
    # kernels._overrides: the kernels that kernels.override routes elsewhere just now
    return any(name in kernels._overrides for name in SKIPPED_KERNELS.get(type(thing), ()))


def replaced(layer):
    """True when the code `layer` runs is not minicnn's own (see the module notes): forward,
    backward, linear or backward_linear replaced on the object or on its class (or changed by a
    subclass), or its activation's forward or backward replaced, or a kernel it calls overridden.
    The plan never fuses such a layer away; Model.plan makes a new plan when this changes."""
    activation = getattr(layer, "activation", None)
    return (_differs(layer, LAYER_METHODS) or _kernel_overridden(layer)
            or (activation is not None and (_differs(activation, ACTIVATION_METHODS)
                                            or _kernel_overridden(activation))))


def _exactly(layer, cls):
    return type(layer) is cls and not replaced(layer)


def _negative_slope(activation):
    """The negative-side slope of a ReLU-like activation object (ReLU: 0), or None if it is something else."""
    if type(activation) is activations.ReLU:
        return 0.0
    if type(activation) is activations.LeakyReLU and activation.negative_slope > 0:
        return activation.negative_slope
    return None


def _fusable_at(layers, i):
    """(step, number of layers it covers) if a fusable run starts at layers[i], else None.

    Conv2D(activation=None) -> LeakyReLU() / ReLU() / Activation('relu') -> MaxPooling2D, or
    Conv2D(activation='relu' or a LeakyReLU) -> MaxPooling2D, with ReLU or a LeakyReLU slope > 0
    (monotone, so pooling and the activation can swap places; LeakyReLU(0) differs from ReLU at -inf).
    """
    conv = layers[i]
    if not _exactly(conv, Conv2D):
        return None
    own = _negative_slope(conv.activation)
    if own is not None:                       # Conv2D(activation='relu') -> MaxPooling2D
        if i + 1 < len(layers) and _exactly(layers[i + 1], MaxPooling2D):
            return ConvActivationPool(conv, None, layers[i + 1], own), 2
        return None
    if type(conv.activation) is not activations.Linear or i + 2 >= len(layers):
        return None
    activation_layer, pool = layers[i + 1], layers[i + 2]
    if not any(_exactly(activation_layer, cls) for cls in ACTIVATION_LAYERS) or not _exactly(pool, MaxPooling2D):
        return None
    slope = _negative_slope(activation_layer.activation)
    if slope is None:
        return None
    return ConvActivationPool(conv, activation_layer, pool, slope), 3


def _softmax_fusable(layer, loss):
    """The last layer's softmax and a cross-entropy loss on probabilities fuse into (p - y) / N."""
    return (loss is not None and loss.softmax_cross_entropy and not loss.from_logits
            and hasattr(layer, "backward_linear")
            and isinstance(getattr(layer, "activation", None), activations.Softmax) and not replaced(layer))


def make_plan(layers, loss=None, fusion=True, connections=None):
    """The plan for `layers` followed by `loss`: with fusion, every fusable
    Conv2D -> activation -> MaxPooling2D run is one ConvActivationPool step. The softmax of
    the last layer always meets a cross-entropy loss as SoftmaxCrossEntropy (no fusion of
    layers there, only of two gradients: it is the exact form, kept with fusion off too).
    With `connections` (a functional model that is not a chain): a GraphPlan, a step per layer."""
    if connections is not None:
        steps = [LayerStep(layer) for layer in layers[:-1]]
        last = layers[-1]
        steps.append(SoftmaxCrossEntropy(last) if _softmax_fusable(last, loss) else LayerStep(last))
        return GraphPlan(steps, loss, connections)
    steps, i = [], 0
    while i < len(layers):
        last = i == len(layers) - 1
        found = None if last or not fusion else _fusable_at(layers, i)
        if found is not None:
            step, covered = found
        elif last and _softmax_fusable(layers[i], loss):
            step, covered = SoftmaxCrossEntropy(layers[i]), 1
        else:
            step, covered = LayerStep(layers[i]), 1
        steps.append(step)
        i += covered
    return Plan(steps, loss)

"""Layer fusion: Conv2D -> LeakyReLU (or ReLU) -> MaxPooling2D run as one step.

Every layer of minicnn is written to be read on its own, and a model could simply run
them one after the other. On the CPU that wastes time after each convolution: its
bias, its activation and the pooling are each one pass over the whole (N, H, W, F)
array, reading it from memory and writing a new one, for almost no arithmetic. For
the lab's first block, (64, 28, 28, 32) floats = 6.4 MB, that is most of the layer
time that is not matrix products.

Fused, one kernel reads the convolution's output once and writes only the pooled
result (a quarter of the size for 2x2 pools), and its backward pass writes dz once and
adds up the bias gradient on the way (kernels.bias_leaky_maxpool_forward / _backward).

The numbers do not change: the fused kernel applies the bias and the activation
before it compares, as the layers do, so the same cell wins every window (ties, inf
and NaN included) and y has the same values (a zero's sign aside). Backward, the slope
at a window's winner is read from the pooled output (y > 0 exactly where the winner's
z + bias > 0); dz is the same too, up to rounding where overlapping windows share a
winner. The bias gradient is added up in float64 in window order rather than row
order: the same float32 result in every case we tested, though not guaranteed bit
for bit. tests/test_fusion.py checks all of it against the layers run one by one.

How a model uses it: Model.forward and Model.compute_gradients run `steps(layers)`,
the layer list with every fusable run replaced by one ConvLeakyPool. Set
`model.fusion = False`, or use `with model.layer_by_layer():`, to run the layers one
by one; minicnn.inspect does that, since it watches each layer's own forward and backward.

Fusable runs (a Conv2D, its activation, then a MaxPooling2D):
    Conv2D(activation=None)  ->  LeakyReLU() / ReLU() / Activation('relu')  ->  MaxPooling2D
    Conv2D(activation='relu' or a LeakyReLU)  ->  MaxPooling2D
with ReLU, or LeakyReLU(alpha) with alpha > 0 (monotone, so max-pooling and the
activation can swap roles; LeakyReLU(0) differs from ReLU at -inf and is left alone).
The layers must be minicnn's own classes, not subclasses that could change them.
"""
from minicnn import activations, kernels
from minicnn.layers.advanced_activations import LeakyReLU, ReLU
from minicnn.layers.convolutional import Conv2D
from minicnn.layers.core import Activation
from minicnn.layers.pooling import MaxPooling2D

ACTIVATION_LAYERS = (Activation, LeakyReLU, ReLU)   # exactly these classes


def _slope(activation):
    """The negative-side slope of a ReLU-like activation object (ReLU: 0), or None if it is something else."""
    if type(activation) is activations.ReLU:
        return 0.0
    if type(activation) is activations.LeakyReLU and activation.alpha > 0:
        return activation.alpha
    return None


class ConvLeakyPool:
    """Conv2D, its LeakyReLU / ReLU and a MaxPooling2D, run as one step.

    The layers keep their weights and their gradients (the block holds no state of its
    own beyond what its backward pass needs); the block only changes how they are run.

    forward:  z       = im2col(x) @ kernel              conv.correlate, (N, H, W, F)
              y, arg  = maxpool(leaky(z + bias))        one pass over z, (N, OH, OW, F)
    backward: dz, d_bias = winner gets slope * dy       one pass, dz (N, H, W, F)
              d_kernel, dx as Conv2D's backward          conv.backward_preactivation
    """

    def __init__(self, conv, activation_layer, pool, slope):
        self.conv, self.activation_layer, self.pool = conv, activation_layer, pool
        self.slope = slope
        self.layers = [layer for layer in (conv, activation_layer, pool) if layer is not None]
        self.name = "+".join(layer.name for layer in self.layers)

    def forward(self, x, training=False):
        conv, pool = self.conv, self.pool
        z = conv.correlate(x)                                        # (N, H, W, F), no bias yet
        self._z_shape = z.shape
        pads, _ = pool._geometry(z.shape)
        self._pool_args = pool.pool_size + (pool.strides, pads)      # ph, pw, stride, pads
        bias = conv.params["bias"] if conv.use_bias else None
        self._y, self._argmax = kernels.bias_leaky_maxpool_forward(z, bias, self.slope, *self._pool_args)
        self._forget_layer_state()
        return self._y                                               # (N, OH, OW, F)

    def _forget_layer_state(self):
        """Drop what the layers' own backward passes would read from an earlier, unfused run:
        after a fused forward only the block's backward is valid, and a stale array must not
        pass for a fresh one."""
        for layer in self.layers:
            for name in ("_z", "_y", "_argmax"):
                if name in vars(layer):
                    setattr(layer, name, None)

    def backward(self, dy):
        dz, d_bias = kernels.bias_leaky_maxpool_backward(dy, self._y, self._argmax, self._z_shape,
                                                         self.slope, *self._pool_args)
        return self.conv.backward_preactivation(dz, bias_grad=d_bias)

    def __repr__(self):
        return f"<ConvLeakyPool {self.name}>"


def _fusable_at(layers, i):
    """(block, number of layers it covers) if a fusable run starts at layers[i], else None."""
    conv = layers[i]
    if type(conv) is not Conv2D:
        return None
    own = _slope(conv.activation)
    if own is not None:                       # Conv2D(activation='relu') -> MaxPooling2D
        if i + 1 < len(layers) and type(layers[i + 1]) is MaxPooling2D:
            return ConvLeakyPool(conv, None, layers[i + 1], own), 2
        return None
    if type(conv.activation) is not activations.Linear or i + 2 >= len(layers):
        return None
    activation_layer, pool = layers[i + 1], layers[i + 2]
    if type(activation_layer) not in ACTIVATION_LAYERS or type(pool) is not MaxPooling2D:
        return None
    slope = _slope(activation_layer.activation)
    if slope is None:
        return None
    return ConvLeakyPool(conv, activation_layer, pool, slope), 3


def steps(layers):
    """The layers, with every fusable Conv2D -> activation -> MaxPooling2D run as one ConvLeakyPool."""
    out, i = [], 0
    while i < len(layers):
        found = _fusable_at(layers, i)
        if found is None:
            out.append(layers[i])
            i += 1
        else:
            block, covered = found
            out.append(block)
            i += covered
    return out

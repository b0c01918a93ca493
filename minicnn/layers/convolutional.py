"""Conv2D by im2col: every output pixel is one row of a matrix product."""
from minicnn import activations, kernels, regularizers
from minicnn import initializers as init_module
from minicnn.layers.base import ActivationMixin, Layer, as_pair, check_padding, check_window, sliding_window
from minicnn.utils.checks import check_bool, check_int


class Conv2D(ActivationMixin, Layer):
    """2-D convolution (cross-correlation, as in every framework), channels-last.

    x (N, H, W, C), kernel (KH, KW, C, F), bias (F,) -> y (N, OH, OW, F).

    forward:  col = im2col(x)                  (N*OH*OW, KH*KW*C)     correlate
              z   = col @ kernel.reshape(-1, F) + bias                linear
              y   = activation(z)                                     forward
    backward: dz       = activation'(z) * dy                          backward
              d_bias   = sum of dz over N, OH, OW                     backward_linear
              d_kernel = col^T @ dz            (the patches times the output gradient)
              dx       = col2im(dz @ kernel^T) (each patch's gradient added back in place)
              with kernel_regularizer / bias_regularizer, d_kernel and d_bias also get the
              penalty's gradient (minicnn/regularizers.py), in backward_correlate
    Why: z = col @ kernel + bias is a Dense layer applied to every patch, with the same weights
    for all of them. A weight used by every patch collects a gradient from each (d_kernel sums over
    the patches, d_bias is a row sum), and a pixel copied into several overlapping patches collects
    the gradients of all its copies, which is why col2im adds. Derivation in index notation:
    docs/derivations/conv2d.md; the same sums as plain loops: examples/conv_from_maths_to_code.py.
    forward and backward themselves come from ActivationMixin (layers/base.py).
    """
    cached = ActivationMixin.cached + ("col",)

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Conv2D: only data_format='channels_last' (NHWC) is supported, got {data_format!r}")
        if as_pair(dilation_rate, "dilation_rate", "Conv2D") != (1, 1):
            raise ValueError(f"Conv2D: dilation_rate other than 1 is not supported, got {dilation_rate!r}")
        self.filters = check_int(filters, "filters", "Conv2D")
        self.kernel_size = as_pair(kernel_size, "kernel_size", "Conv2D")
        self.strides = as_pair(strides, "strides", "Conv2D")
        self.padding = check_padding(padding, "Conv2D")
        self.activation = activations.get(activation)
        self.use_bias = check_bool(use_bias, "use_bias", "Conv2D")
        self.kernel_initializer = init_module.get(kernel_initializer)
        self.bias_initializer = init_module.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"layer {self.name!r} (Conv2D) expects input of rank 4 (batch, height, width, channels), "
                f"got shape {tuple(input_shape)}; for 28x28 grey images use x.reshape(-1, 28, 28, 1)"
            )
        window = self._window(input_shape)   # fails early when the kernel does not fit the input
        kh, kw = self.kernel_size
        self.add_weight("kernel", (kh, kw, input_shape[-1], self.filters), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        super().build(input_shape)
        self.window = window                 # kernels.Window: sizes, strides, pads, OH, OW

    def _window(self, input_shape):
        return sliding_window(self, input_shape, self.kernel_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (input_shape[0], window.oh, window.ow, self.filters)

    # --- forward: z = x (*) kernel + bias, y = activation(z) ----------------------------------
    def linear(self, x):
        """z = correlate(x) + bias: (N, H, W, C) -> (N, OH, OW, F)."""
        z = self.correlate(x)
        if self.use_bias:
            z += self.params["bias"]
        return z

    def correlate(self, x):
        """The convolution alone, no bias: x (N, H, W, C) -> (N, OH, OW, F). Keeps col for backward."""
        check_window(self, x)
        window, f = self.window, self.filters
        self.col = kernels.im2col(x, window)                            # (N*OH*OW, KH*KW*C)
        z = self.col @ self.params["kernel"].reshape(-1, f)             # (N*OH*OW, F)
        return z.reshape(x.shape[0], window.oh, window.ow, f)

    # --- backward: from dz = d loss / d z to the gradients ---------------------------------------
    def backward_linear(self, dz):
        """dz (N, OH, OW, F) -> dx (N, H, W, C); fills grads["kernel"] and grads["bias"]."""
        if self.use_bias:
            self.grads["bias"] = kernels.sum_rows(dz.reshape(-1, self.filters))   # (F,)
        return self.backward_correlate(dz)

    def backward_correlate(self, dz):
        """The convolution's part of backward: fills grads["kernel"], returns dx (None when the
        model needs no input gradient, as for its first layer).

        Called after grads["bias"] is set (by backward_linear, or by the fused step in plan.py),
        it also adds the penalties' gradients to both, so that fused and unfused runs agree."""
        f = self.filters
        kernel = self.params["kernel"]
        dz = dz.reshape(-1, f)                                                 # (N*OH*OW, F)
        self.grads["kernel"] = (self.col.T @ dz).reshape(kernel.shape)         # (KH, KW, C, F)
        self.add_regularization_gradients()          # + d penalty / d weight, if a regularizer is set
        if not self.input_gradient:
            return None
        # kernel^T copied to its own contiguous array (it is small): OpenBLAS multiplies by it
        # faster than by the transposed view (benchmarks/RESULTS.md)
        kernel_t = kernel.reshape(-1, f).T.copy()                              # (F, KH*KW*C)
        dcol = dz @ kernel_t                                                   # (N*OH*OW, KH*KW*C)
        return kernels.col2im(dcol, self.window)                               # (N, H, W, C)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": init_module.serialize(self.kernel_initializer),
                "bias_initializer": init_module.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

"""Conv2D by im2col: every output pixel is one row of a matrix product."""
from minicnn import activations, kernels
from minicnn import initializers as init_module
from minicnn.layers.base import Layer, as_pair, check_padding, window_geometry
from minicnn.layers.core import ActivationMixin
from minicnn.utils.checks import check_bool, check_int


class Conv2D(ActivationMixin, Layer):
    """2-D convolution (cross-correlation, as in every framework), channels-last.

    x (N, H, W, C), kernel (KH, KW, C, F), bias (F,) -> y (N, OH, OW, F).

    forward:  col = im2col(x)                  (N*OH*OW, KH*KW*C)
              z   = col @ kernel.reshape(-1, F) + bias
    backward: d_kernel = col^T @ dz            (the patches times the output gradient)
              d_bias   = sum of dz over N, OH, OW
              dx       = col2im(dz @ kernel^T) (each patch's gradient added back in place)
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
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

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"layer {self.name!r} (Conv2D) expects input of rank 4 (batch, height, width, channels), "
                f"got shape {tuple(input_shape)}; for 28x28 grey images use x.reshape(-1, 28, 28, 1)"
            )
        kh, kw = self.kernel_size
        self.add_weight("kernel", (kh, kw, input_shape[-1], self.filters), self.kernel_initializer)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer)
        super().build(input_shape)
        self._geometry(input_shape)  # fails early when the kernel does not fit the input

    def _geometry(self, input_shape):
        return window_geometry(self, input_shape, self.kernel_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        _, (oh, ow) = self._geometry(input_shape)
        return (input_shape[0], oh, ow, self.filters)

    def forward(self, x, training=False):
        z = self.correlate(x)                                             # (N, OH, OW, F)
        if self.use_bias:
            z += self.params["bias"]
        return self.apply_activation(z)

    def correlate(self, x):
        """The convolution alone, no bias: x (N, H, W, C) -> (N, OH, OW, F). Keeps col for backward."""
        (kh, kw), f = self.kernel_size, self.filters
        self._pads, (oh, ow) = self._geometry(x.shape)
        self._x_shape = x.shape
        self._col = kernels.im2col(x, kh, kw, self.strides, self._pads)  # (N*OH*OW, KH*KW*C)
        z = self._col @ self.params["kernel"].reshape(-1, f)              # (N*OH*OW, F)
        return z.reshape(x.shape[0], oh, ow, f)

    def backward_preactivation(self, dz, bias_grad=None):
        """dz = d loss / d z -> dx. bias_grad: d_bias when the caller has it already (fusion.py)."""
        (kh, kw), f = self.kernel_size, self.filters
        kernel = self.params["kernel"]
        dz = dz.reshape(-1, f)                                                 # (N*OH*OW, F)
        self.grads["kernel"] = (self._col.T @ dz).reshape(kernel.shape)        # (KH, KW, C, F)
        if self.use_bias:
            self.grads["bias"] = kernels.sum_rows(dz) if bias_grad is None else bias_grad   # (F,)
        if not self.input_gradient:
            return None
        # kernel^T copied to its own contiguous array (it is small): OpenBLAS multiplies by it
        # 1.1-1.5x faster than by the transposed view for the lab's shapes (benchmarks/RESULTS.md)
        kernel_t = kernel.reshape(-1, f).T.copy()                              # (F, KH*KW*C)
        dcol = dz @ kernel_t                                                   # (N*OH*OW, KH*KW*C)
        return kernels.col2im(dcol, self._x_shape, kh, kw, self.strides, self._pads)  # (N, H, W, C)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": init_module.serialize(self.kernel_initializer),
                "bias_initializer": init_module.serialize(self.bias_initializer)}

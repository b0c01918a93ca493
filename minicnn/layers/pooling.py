"""MaxPooling2D."""
from minicnn import kernels
from minicnn.layers.base import Layer, as_pair, check_padding, check_window, sliding_window


class MaxPooling2D(Layer):
    """Max over (PH, PW) windows moved by `strides` (default: the pool size).

    x (N, H, W, C) -> y (N, OH, OW, C). padding='same' pads at the bottom/right
    with -inf (28 -> 14, 7 -> 4 for a 2x2 pool), so padding never wins.
    backward: each output gradient goes to the input cell that won its window;
    on a tie, to the first such cell; overlapping windows add up.
    Why: near its input, a max equals its winner, so d y / d winner = 1 and 0 for the
    other cells (docs/derivations/maxpool.md). At a tie it has no derivative: a kink.
    """
    cached = ("argmax",)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"MaxPooling2D: only data_format='channels_last' is supported, got {data_format!r}")
        self.pool_size = as_pair(pool_size, "pool_size", "MaxPooling2D")
        self.strides = as_pair(strides, "strides", "MaxPooling2D") if strides is not None else self.pool_size
        self.padding = check_padding(padding, "MaxPooling2D")

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"layer {self.name!r} (MaxPooling2D) expects input of rank 4 (batch, height, width, "
                f"channels), got shape {tuple(input_shape)}"
            )
        window = self._window(input_shape)
        super().build(input_shape)
        self.window = window          # kernels.Window: sizes, strides, pads, OH, OW

    def _window(self, input_shape):
        return sliding_window(self, input_shape, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (input_shape[0], window.oh, window.ow, input_shape[3])

    def forward(self, x, training=False):
        check_window(self, x)
        y, self.argmax = kernels.maxpool_forward(x, self.window)   # both (N, OH, OW, C)
        return y

    def backward(self, dy):
        return kernels.maxpool_backward(dy, self.argmax, self.window)   # (N, H, W, C)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}

"""Pooling: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and GlobalMaxPooling2D."""
from minicnn import kernels
from minicnn.backend import get_array_module
from minicnn.layers.base import Layer, as_pair, check_padding, check_window, sliding_window
from minicnn.utils.checks import check_bool


def check_channels_last(data_format, who):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{who}: only data_format='channels_last' is supported, got {data_format!r}")


def check_images(layer, input_shape):
    if len(input_shape) != 4:
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}) expects input of rank 4 (batch, height, width, "
            f"channels), got shape {tuple(input_shape)}"
        )


class Pooling2D(Layer):
    """What MaxPooling2D and AveragePooling2D share: a (PH, PW) window moved by `strides`
    (default: the pool size), padding 'valid' or 'same', x (N, H, W, C) -> y (N, OH, OW, C).
    Subclasses write forward and backward."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = type(self).__name__
        check_channels_last(data_format, who)
        self.pool_size = as_pair(pool_size, "pool_size", who)
        self.strides = as_pair(strides, "strides", who) if strides is not None else self.pool_size
        self.padding = check_padding(padding, who)

    def build(self, input_shape):
        check_images(self, input_shape)
        window = self._window(input_shape)
        super().build(input_shape)
        self.window = window          # kernels.Window: sizes, strides, pads, OH, OW

    def _window(self, input_shape):
        return sliding_window(self, input_shape, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        window = self._window(input_shape)
        return (input_shape[0], window.oh, window.ow, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


class MaxPooling2D(Pooling2D):
    """Max over (PH, PW) windows moved by `strides` (default: the pool size).

    x (N, H, W, C) -> y (N, OH, OW, C). padding='same' pads at the bottom/right
    with -inf (28 -> 14, 7 -> 4 for a 2x2 pool), so padding never wins.
    backward: each output gradient goes to the input cell that won its window;
    on a tie, to the first such cell; overlapping windows add up.
    Why: near its input, a max equals its winner, so d y / d winner = 1 and 0 for the
    other cells (docs/derivations/maxpool.md). At a tie it has no derivative: a kink.
    """
    cached = ("argmax",)

    def forward(self, x, training=False):
        check_window(self, x)
        y, self.argmax = kernels.maxpool_forward(x, self.window)   # both (N, OH, OW, C)
        return y

    def backward(self, dy):
        return kernels.maxpool_backward(dy, self.argmax, self.window)   # (N, H, W, C)


class AveragePooling2D(Pooling2D):
    """Mean over (PH, PW) windows moved by `strides` (default: the pool size).

    x (N, H, W, C) -> y (N, OH, OW, C):  y[a, b] = sum of the window's real cells / count[a, b]
    count[a, b] is the number of real (not padding) cells in window (a, b): PH * PW with
    padding='valid'; fewer at the edges with 'same', as in Keras (7 -> 4 for a 2x2 pool: the
    last window holds 2 cells, or 1 in the corner, and is their mean).
    backward: each cell of a window gets dy[a, b] / count[a, b]; overlapping windows add up.

    The sums loop over the PH * PW offsets (i, j) of the window, not over pixels: the cells at
    offset (i, j) of all windows are one strided slice of the padded input,
        padded[:, i : i + SH*(OH-1) + 1 : SH, j : j + SW*(OW-1) + 1 : SW, :]   (N, OH, OW, C)
    The same sum over an image of ones counts the real cells.
    """
    cached = ("count",)

    def _slices(self, i, j):
        """The cells at offset (i, j) of every window: a (rows, columns) pair of slices of the padded input."""
        w = self.window
        return slice(i, i + w.sh * (w.oh - 1) + 1, w.sh), slice(j, j + w.sw * (w.ow - 1) + 1, w.sw)

    def _window_sums(self, x):
        """x (N, H, W, C) -> (N, OH, OW, C): the sum of each window, padding counting 0."""
        xp, w = get_array_module(x), self.window
        padded = xp.pad(x, ((0, 0), (w.top, w.bottom), (w.left, w.right), (0, 0)))   # zeros
        sums = xp.zeros((x.shape[0], w.oh, w.ow, x.shape[3]), dtype=x.dtype)
        for i in range(w.kh):
            for j in range(w.kw):
                rows, columns = self._slices(i, j)
                sums += padded[:, rows, columns, :]
        return sums

    def forward(self, x, training=False):
        check_window(self, x)
        xp = get_array_module(x)
        self.count = self._window_sums(xp.ones((1, x.shape[1], x.shape[2], 1), dtype=x.dtype))  # (1, OH, OW, 1)
        return self._window_sums(x) / self.count                                                # (N, OH, OW, C)

    def backward(self, dy):
        xp, w = get_array_module(dy), self.window
        share = dy / self.count                                  # (N, OH, OW, C): what each cell gets
        n, c = dy.shape[0], dy.shape[3]
        dpadded = xp.zeros((n, w.top + w.h + w.bottom, w.left + w.w + w.right, c), dtype=dy.dtype)
        for i in range(w.kh):
            for j in range(w.kw):
                rows, columns = self._slices(i, j)
                dpadded[:, rows, columns, :] += share            # one slice: no cell twice
        return dpadded[:, w.top:w.top + w.h, w.left:w.left + w.w, :]   # dx (N, H, W, C), padding dropped


class GlobalPooling2D(Layer):
    """What the two global poolings share: x (N, H, W, C) -> y (N, C), or (N, 1, 1, C) with keepdims=True."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        check_channels_last(data_format, type(self).__name__)
        self.keepdims = check_bool(keepdims, "keepdims", type(self).__name__)

    def build(self, input_shape):
        check_images(self, input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], 1, 1, input_shape[3])
        return (input_shape[0], input_shape[3])

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


class GlobalAveragePooling2D(GlobalPooling2D):
    """The mean of each channel over the whole image: y[n, c] = sum_{h, w} x[n, h, w, c] / (H * W).

    backward: every cell gets dy[n, c] / (H * W).
    """
    cached = ("x_shape",)

    def forward(self, x, training=False):
        self.x_shape = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)            # (N, C) or (N, 1, 1, C)

    def backward(self, dy):
        xp = get_array_module(dy)
        n, h, w, c = self.x_shape
        share = dy.reshape(n, 1, 1, c) / (h * w)                      # (N, 1, 1, C)
        return xp.broadcast_to(share, self.x_shape).copy()            # dx (N, H, W, C)


class GlobalMaxPooling2D(GlobalPooling2D):
    """The largest value of each channel over the whole image: y[n, c] = max_{h, w} x[n, h, w, c].

    backward: dy[n, c] goes to the cell that won (the first one on a tie, as MaxPooling2D), 0 elsewhere.
    """
    cached = ("x_shape", "argmax")

    def forward(self, x, training=False):
        n, h, w, c = self.x_shape = x.shape
        cells = x.reshape(n, h * w, c)                                 # (N, H*W, C)
        self.argmax = cells.argmax(axis=1)                             # (N, C): where each max sits
        y = cells.max(axis=1)                                          # (N, C)
        return y.reshape(n, 1, 1, c) if self.keepdims else y

    def backward(self, dy):
        xp = get_array_module(dy)
        n, h, w, c = self.x_shape
        # winner[n, k, c] is True where cell k won channel c of sample n
        winner = xp.arange(h * w).reshape(1, h * w, 1) == self.argmax.reshape(n, 1, c)   # (N, H*W, C)
        dx = winner * dy.reshape(n, 1, c)                              # (N, H*W, C)
        return dx.reshape(self.x_shape)

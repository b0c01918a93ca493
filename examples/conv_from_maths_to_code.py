"""Conv2D from the maths to the code: one convolution computed three ways, all equal; then its backward pass.

Run it from the repository root:

    python examples/conv_from_maths_to_code.py        # prints every step; draws out/conv_from_maths_to_code/*.png

1. The formula, and the im2col matrix shapes of the lab's first layer (and of its other two), read
   from the lab's own model (minicnn.lab, the one examples/fashion_mnist_lab.py trains) after a forward pass.
2. im2col on a tiny image, printed: every row of the matrix is one window of the image.
3. A small convolution (2 images, 2 channels, 3 filters) computed by plain loops over the formula,
   by im2col + one matrix product (the reference im2col, plain NumPy), by the fast kernel (Numba),
   and by minicnn's Conv2D layer. Small integer values make every sum exact, so the four results
   must be equal to the last bit, not merely close.
4. The backward pass, the same way: d_kernel, d_bias and dx by plain loops over the formulas of
   docs/derivations/conv2d.md, by im2col's matrix products (col.T @ dz, row sums, col2im(dz @ kernel.T)),
   and by the Conv2D layer's own backward: equal to the last bit. Conv2D is a Dense layer applied to
   every patch with the same weights, so the kernel gradient sums over the patches, and a pixel that
   several windows use collects all their gradients: col2im adds. col2im(ones) counts those windows,
   printed and drawn (col2im_ones.png).
5. What fit actually runs: the model's plan (model.plan, minicnn/plan.py), where each Conv2D with its
   LeakyReLU and its MaxPooling2D is one fused step. The lab's model on a batch of 64, fused and layer by
   layer (model.fusion = False): the same loss, outputs and gradients to the last bit, and the time of a
   forward + backward pass each way.

Where a window goes (its size, strides, padding and output size) is one value, a kernels.Window, made by
Window.over(...) (minicnn/kernels/window.py): the layers make theirs when they are built (layer.window),
and every kernel takes one.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # minicnn from this checkout

from minicnn import backend, kernels, plotting            # noqa: E402
from minicnn.kernels import Window, reference             # noqa: E402
from minicnn.lab import IMAGE_SHAPE, lab_model            # noqa: E402
from minicnn.layers import Conv2D                         # noqa: E402
from minicnn.layers.base import reset_names               # noqa: E402
from minicnn.utils import to_categorical                  # noqa: E402

plt = plotting.plt
LAB_BATCH = 64                     # the lab's batch size
SMALL_CASES = [((1, 1), "same"), ((2, 2), "valid")]   # (strides, padding) of the small convolution
COUNT_CASES = [((1, 1), "same"), ((2, 2), "valid")]   # 3x3 windows over a 6x6 image, for col2im(ones)


def step(title):
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)


# --- the three ways ------------------------------------------------------------------------------
def zero_padded(x, window):
    """x (N, H, W, C) with the window's zero padding (top, bottom, left, right) around H and W."""
    top, bottom, left, right = window.pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))


def conv2d_loops(x, kernel, bias, window):
    """The formula, one multiply-add at a time:

        y[n, a, b, f] = bias[f] + sum over i, j, c of  xpad[n, a*SH + i, b*SW + j, c] * kernel[i, j, c, f]

    x (N, H, W, C), kernel (KH, KW, C, F), bias (F,) -> y (N, OH, OW, F). The window (a kernels.Window)
    gives the strides (SH, SW), the zero padding (top, bottom, left, right) around xpad, and (OH, OW).
    """
    n_images, _, _, channels = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw, oh, ow = window.sh, window.sw, window.oh, window.ow
    xpad = zero_padded(x, window)
    y = np.zeros((n_images, oh, ow, filters), dtype=x.dtype)
    for n in range(n_images):
        for a in range(oh):
            for b in range(ow):
                for f in range(filters):
                    total = bias[f]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(channels):
                                total += xpad[n, a * sh + i, b * sw + j, c] * kernel[i, j, c, f]
                    y[n, a, b, f] = total
    return y


def conv2d_im2col(x, kernel, bias, window, im2col):
    """The same sum as one matrix product: y = im2col(x) @ kernel.reshape(KH*KW*C, F) + bias.

    `im2col` is reference.im2col (plain NumPy) or kernels.im2col (the fast kernel for x's device).
    """
    filters = kernel.shape[3]
    col = im2col(x, window)                                 # (N*OH*OW, KH*KW*C)
    z = col @ kernel.reshape(-1, filters) + bias            # (N*OH*OW, F)
    return z.reshape(x.shape[0], window.oh, window.ow, filters)   # (N, OH, OW, F)


def built_conv2d(x, kernel, bias, strides, padding):
    """minicnn's Conv2D layer with the given weights, built for x (in x's float type)."""
    layer = Conv2D(kernel.shape[3], kernel.shape[:2], strides=strides, padding=padding)
    previous = backend.floatx()
    backend.set_floatx(str(x.dtype))
    try:
        layer.build((None,) + x.shape[1:])
    finally:
        backend.set_floatx(previous)
    layer.set_weights([kernel, bias])
    return layer


def conv2d_layer(x, kernel, bias, strides, padding):
    """The output of minicnn's Conv2D layer with the given weights."""
    return built_conv2d(x, kernel, bias, strides, padding).forward(x)


# --- the backward pass, three ways --------------------------------------------------------------------
def conv2d_backward_loops(x, kernel, dz, window):
    """The backward formulas (docs/derivations/conv2d.md), one multiply-add at a time. With
    dz[n, a, b, f] = d loss / d z[n, a, b, f] and xpad the zero-padded input:

        d_kernel[i, j, c, f] = sum over n, a, b of  dz[n, a, b, f] * xpad[n, a*SH + i, b*SW + j, c]
        d_bias[f]            = sum over n, a, b of  dz[n, a, b, f]
        dxpad[n, a*SH + i, b*SW + j, c] = sum over the (a, b, i, j) that reach it, and f, of
                                          dz[n, a, b, f] * kernel[i, j, c, f]

    The same weight is used at every output pixel, so its gradient is a sum over all of them; a pixel
    that several windows cover receives a share from each (+=). dx is dxpad without the padding.
    x (N, H, W, C), kernel (KH, KW, C, F), dz (N, OH, OW, F) -> d_kernel, d_bias (F,), dx (N, H, W, C).
    """
    n_images, height, width, channels = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw, oh, ow = window.sh, window.sw, window.oh, window.ow
    xpad = zero_padded(x, window)
    d_kernel, d_bias, dxpad = np.zeros_like(kernel), np.zeros(filters, dtype=dz.dtype), np.zeros_like(xpad)
    for n in range(n_images):
        for a in range(oh):
            for b in range(ow):
                for f in range(filters):
                    d_bias[f] += dz[n, a, b, f]
                    for i in range(kh):
                        for j in range(kw):
                            for c in range(channels):
                                d_kernel[i, j, c, f] += dz[n, a, b, f] * xpad[n, a * sh + i, b * sw + j, c]
                                dxpad[n, a * sh + i, b * sw + j, c] += dz[n, a, b, f] * kernel[i, j, c, f]
    dx = dxpad[:, window.top:window.top + height, window.left:window.left + width, :]
    return d_kernel, d_bias, dx


def conv2d_backward_im2col(x, kernel, dz, window, im2col, col2im):
    """The same three sums as matrix products, as Conv2D.backward_linear computes them.

    Each row of col is one patch, and z = col @ kernel_matrix + bias is a Dense layer on the patches:
    d_kernel = col.T @ dz (summed over the patches), d_bias = the column sums of dz, and the patches'
    gradients dcol = dz @ kernel_matrix.T added back to their pixels by col2im.
    """
    filters = kernel.shape[3]
    col = im2col(x, window)                                     # (N*OH*OW, KH*KW*C)
    dz = dz.reshape(-1, filters)                                # (N*OH*OW, F)
    d_kernel = (col.T @ dz).reshape(kernel.shape)               # (KH, KW, C, F)
    d_bias = dz.sum(axis=0)                                     # (F,)
    dx = col2im(dz @ kernel.reshape(-1, filters).T, window)     # (N, H, W, C)
    return d_kernel, d_bias, dx


def conv2d_layer_backward(x, kernel, bias, dz, strides, padding):
    """minicnn's Conv2D layer: forward, then its own backward(dz) (activation None, so dz = dy)."""
    layer = built_conv2d(x, kernel, bias, strides, padding)
    layer.forward(x)
    dx = layer.backward(dz)
    return layer.grads["kernel"], layer.grads["bias"], dx


def windows_per_pixel(height, width, size, strides, padding):
    """col2im(ones): how many windows use each pixel of an (height, width) image, (height, width) ints.

    im2col copies each pixel into one row per window that covers it; col2im adds the rows back,
    so on a col of ones it counts the windows. This is how many gradients each pixel collects.
    """
    window = Window.over((height, width), size, strides, padding)
    ones = np.ones((window.oh * window.ow, size[0] * size[1]))       # one image, one channel
    return reference.col2im(ones, window)[0, :, :, 0].astype(int)


# --- 1. shapes of the lab's layers ----------------------------------------------------------------
def lab_shapes():
    """Run the lab's baseline forward on a batch of 64 and its first Conv2D layer backward, printing the shapes."""
    step("1. The maths, and the shapes of the lab's first layer")
    print("y[n, a, b, f] = bias[f] + sum_{i, j, c} xpad[n, a + i, b + j, c] * kernel[i, j, c, f]")
    print("im2col puts each window xpad[n, a:a+3, b:b+3, :] in one row, so the sum becomes a matrix product.\n")
    reset_names()                                               # conv2d, leaky_re_lu, ...: as in a fresh session
    model = lab_model()                                         # the lab's baseline (minicnn/lab.py)
    x = np.random.default_rng(0).random((LAB_BATCH,) + IMAGE_SHAPE, dtype=np.float32)
    model.forward(x)                                            # every Conv2D keeps its col for backward
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    layer, f = convs[0], convs[0].filters
    y = layer.forward(x)
    kernel_matrix = layer.params["kernel"].reshape(-1, f)
    dz = np.ones_like(y)
    dx = layer.backward(dz)
    rows = [
        ("x: a batch of images", x.shape),
        (f"padding 'same': (top, bottom, left, right) = {layer.window.pads}", None),
        ("col = im2col(x): one row per output pixel", layer.col.shape),
        ("kernel (KH, KW, C, F)", layer.params["kernel"].shape),
        ("kernel.reshape(KH*KW*C, F)", kernel_matrix.shape),
        ("z = col @ kernel + bias", (layer.col.shape[0], f)),
        ("y = z.reshape(N, OH, OW, F)", y.shape),
        ("backward: dz (N*OH*OW, F)", dz.reshape(-1, f).shape),
        ("d_kernel = col.T @ dz, reshaped", layer.grads["kernel"].shape),
        ("dcol = dz @ kernel.T", (layer.col.shape[0], kernel_matrix.shape[0])),
        ("dx = col2im(dcol)", dx.shape),
    ]
    for text, shape in rows:
        print(f"  {text:<58}{'' if shape is None else str(tuple(shape))}".rstrip())

    print("\nThe lab's three Conv2D layers (batch 64, float32): the im2col matrix grows with the channels")
    print(f"  {'layer':<10}{'input':<18}{'col':<18}{'kernel matrix':<16}{'col size':>10}")
    for conv in convs:
        col, input_shape = conv.col, (len(x),) + conv.input_shape[1:]
        print(f"  {conv.name:<10}{str(input_shape):<18}{str(col.shape):<18}"
              f"{str(conv.params['kernel'].reshape(-1, conv.filters).shape):<16}{col.nbytes / 1e6:>8.1f} MB")


# --- 2. im2col on a tiny image ------------------------------------------------------------------------
def tiny_im2col(output):
    """A 4x4 image with values 1..16, 3x3 windows, no padding: the 4 x 9 im2col matrix, and its picture."""
    step("2. im2col on a tiny image")
    x = np.arange(1, 17, dtype=np.float64).reshape(1, 4, 4, 1)
    col = reference.im2col(x, Window.over((4, 4), (3, 3), (1, 1), "valid"))
    print("image (4 x 4):")
    print(x[0, :, :, 0].astype(int))
    print("im2col (one row per 3x3 window, read row by row):")
    print(col.astype(int))
    figure = draw_im2col(x[0, :, :, 0], col)
    plotting.save_figure(figure, output / "im2col.png")
    plt.close(figure)
    print(f"Saved figure {output / 'im2col.png'}")
    return col


def draw_im2col(image, col):
    """The image with its first window outlined, beside the im2col matrix with its first row outlined."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [4, 9]})
    for ax, values, title in [(left, image, "image, first 3x3 window"), (right, col, "im2col: one window per row")]:
        ax.imshow(values, cmap="Blues", vmin=0, vmax=image.max() * 1.6)
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, str(int(v)), ha="center", va="center", fontsize=9)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    left.add_patch(plt.Rectangle((-0.5, -0.5), 3, 3, fill=False, edgecolor="red", linewidth=2))
    right.add_patch(plt.Rectangle((-0.5, -0.5), col.shape[1], 1, fill=False, edgecolor="red", linewidth=2))
    fig.tight_layout()
    return fig


# --- 3. one small convolution, three ways -------------------------------------------------------------
def compare_ways(seed=0):
    """Loops, reference im2col + matmul, fast im2col + matmul, Conv2D: are they equal? Returns True if all are."""
    step("3. One small convolution, computed three ways (and by the Conv2D layer)")
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (2, 6, 6, 2)).astype(np.float64)         # small integers: exact sums
    kernel = rng.integers(-2, 3, (3, 3, 2, 3)).astype(np.float64)
    bias = rng.integers(-2, 3, 3).astype(np.float64)
    fast = kernels.implementation(x).__name__
    print(f"x {x.shape}, kernel {kernel.shape}, bias {bias.shape}; the fast kernel for this array is {fast}")
    all_equal = True
    for strides, padding in SMALL_CASES:
        window = Window.over(x.shape[1:3], kernel.shape[:2], strides, padding)   # pads and (OH, OW)
        loops = conv2d_loops(x, kernel, bias, window)
        ways = {"im2col (reference) + matmul": conv2d_im2col(x, kernel, bias, window, reference.im2col),
                "im2col (fast kernel) + matmul": conv2d_im2col(x, kernel, bias, window, kernels.im2col),
                "Conv2D layer": conv2d_layer(x, kernel, bias, strides, padding)}
        print(f"\nstrides {strides}, padding {padding!r} (pads {window.pads}): y {loops.shape}; "
              f"filter 0 of image 0 by the loops:\n{loops[0, :, :, 0].astype(int)}")
        for name, y in ways.items():
            equal = bool(np.array_equal(y, loops))
            print(f"  {name:<32} max |difference| from the loops = {np.abs(y - loops).max():.1e}   "
                  f"{'equal' if equal else 'DIFFERENT'}")
            all_equal = all_equal and equal
    if all_equal:
        print("\nAll equal: the loops, im2col + matmul and the fast kernel compute the same convolution.")
    else:
        print("\nMISMATCH: see the DIFFERENT lines above.")
    return all_equal


# --- 4. the backward pass, three ways -------------------------------------------------------------------
def compare_backward(seed=0):
    """Loops, im2col + matmul (reference and fast kernels), the Conv2D layer's backward: equal? True if all are."""
    step("4. The backward pass: d_kernel, d_bias and dx, computed three ways")
    print("Conv2D is a Dense layer applied to every patch, with the same weights for all of them (why these "
          "sums: docs/derivations/conv2d.md):")
    print("  d_kernel[i, j, c, f] = sum_{n, a, b} dz[n, a, b, f] * xpad[n, a*SH + i, b*SW + j, c]   = col.T @ dz")
    print("  d_bias[f]            = sum_{n, a, b} dz[n, a, b, f]                                  = row sum of dz")
    print("  dx[n, h, w, c]       = sum over the windows (a, b) covering (h, w), and f, of dz * kernel "
          "= col2im(dz @ kernel.T)")
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (2, 6, 6, 2)).astype(np.float64)         # small integers: exact sums
    kernel = rng.integers(-2, 3, (3, 3, 2, 3)).astype(np.float64)
    bias = rng.integers(-2, 3, 3).astype(np.float64)
    all_equal = True
    for strides, padding in SMALL_CASES:
        window = Window.over(x.shape[1:3], kernel.shape[:2], strides, padding)
        dz = rng.integers(-3, 4, (2, window.oh, window.ow, 3)).astype(np.float64)   # d loss / d z, integers too
        loops = conv2d_backward_loops(x, kernel, dz, window)
        ways = {"im2col (reference) + matmul": conv2d_backward_im2col(x, kernel, dz, window, reference.im2col,
                                                                      reference.col2im),
                "im2col (fast kernel) + matmul": conv2d_backward_im2col(x, kernel, dz, window, kernels.im2col,
                                                                        kernels.col2im),
                "Conv2D layer's backward": conv2d_layer_backward(x, kernel, bias, dz, strides, padding)}
        print(f"\nstrides {strides}, padding {padding!r}: dz {dz.shape} -> d_kernel {loops[0].shape}, "
              f"d_bias {loops[1].shape}, dx {loops[2].shape}")
        for name, grads in ways.items():
            equal = all(np.array_equal(got, want) for got, want in zip(grads, loops))
            difference = max(float(np.abs(got - want).max()) for got, want in zip(grads, loops))
            print(f"  {name:<32} max |difference| from the loops = {difference:.1e}   "
                  f"{'equal' if equal else 'DIFFERENT'}")
            all_equal = all_equal and equal
    print("\nAll equal: the loops over the formulas and the layer's backward compute the same gradients."
          if all_equal else "\nMISMATCH: see the DIFFERENT lines above.")
    return all_equal


def count_windows(output):
    """col2im(ones) for 3x3 windows over a 6x6 image: how many windows use (and send a gradient to) each pixel."""
    print("\ncol2im(ones): how many 3x3 windows use each pixel of a 6x6 image, so how many gradients it adds up")
    counts = {}
    for strides, padding in COUNT_CASES:
        counts[(strides, padding)] = windows_per_pixel(6, 6, (3, 3), strides, padding)
        print(f"strides {strides}, padding {padding!r}:\n{counts[(strides, padding)]}")
    figure = draw_window_counts(counts)
    plotting.save_figure(figure, output / "col2im_ones.png")
    plt.close(figure)
    print(f"Saved figure {output / 'col2im_ones.png'}")
    return counts


def draw_window_counts(counts):
    """One panel per case: the image's pixels, each labelled with how many windows use it."""
    fig, axes = plt.subplots(1, len(counts), figsize=(3.6 * len(counts), 3.6), squeeze=False)
    top = max(int(c.max()) for c in counts.values())
    for ax, ((strides, padding), count) in zip(axes[0], counts.items()):
        ax.imshow(count, cmap="Oranges", vmin=0, vmax=top * 1.3)
        for (r, c), v in np.ndenumerate(count):
            ax.text(c, r, str(v), ha="center", va="center", fontsize=10)
        ax.set_title(f"3x3 windows, strides {strides[0]}, {padding!r}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("col2im(ones): windows that use each pixel (= gradients it adds up)")
    fig.tight_layout()
    return fig


# --- 5. what fit runs: three layers as one fused step ---------------------------------------------------
def fused_blocks(seed=0, repeats=5):
    """The lab's model fused and layer by layer: equal to the last bit? Returns True if so; prints the times."""
    step("5. What fit runs: Conv2D -> LeakyReLU -> MaxPooling2D as one fused step")
    reset_names()                                # the names of a fresh session, not conv2d_3, leaky_re_lu_4...
    model = lab_model()
    rng = np.random.default_rng(seed)
    x = rng.random((LAB_BATCH,) + IMAGE_SHAPE, dtype=np.float32)
    y = to_categorical(rng.integers(0, 10, LAB_BATCH), 10)
    print(f"fit, evaluate and predict run the steps of model.plan (model.fusion = {model.fusion}, the default):")
    for plan_step in model.plan.steps:
        print(f"  {plan_step.name:<40} {type(plan_step).__name__}")
    with model.layer_by_layer():                                # model.fusion = False inside
        steps = model.plan.steps
        print(f"with model.fusion = False: {len(steps)} steps, one per layer (the last is still a "
              f"{type(steps[-1]).__name__}: softmax's gradient is taken with the loss's, see minicnn/plan.py)")

    def gradients():
        loss, y_pred, _ = model.compute_gradients(x, y, input_gradient=False)
        return [np.asarray(loss), y_pred] + [layer.grads[key].copy() for layer, key in model.trainable_params()]

    def best_ms(run):
        run()                                                   # warm-up: Numba loads its kernels
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return 1e3 * min(times)

    fused = gradients()
    with model.layer_by_layer():                                # model.fusion = False inside
        plain = gradients()
        plain_ms = best_ms(gradients)
    fused_ms = best_ms(gradients)
    equal = all(a.tobytes() == b.tobytes() for a, b in zip(fused, plain))   # bit for bit
    print(f"\nloss, predictions and all {len(fused) - 2} gradients, fused vs layer by layer: "
          f"{'equal to the last bit' if equal else 'DIFFERENT'}")
    print(f"forward + backward of a batch of {LAB_BATCH}: layer by layer {plain_ms:.1f} ms, fused {fused_ms:.1f} ms "
          "(best of a few; the matrix products are the same, the passes over memory fewer)")
    return equal


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("out/conv_from_maths_to_code"),
                        help="folder for im2col.png and col2im_ones.png (default out/conv_from_maths_to_code)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the small convolution's values")
    args = parser.parse_args(argv)
    lab_shapes()
    tiny_im2col(args.output)
    all_equal = compare_ways(args.seed)
    all_equal = compare_backward(args.seed) and all_equal
    count_windows(args.output)
    return 0 if fused_blocks(args.seed) and all_equal else 1


if __name__ == "__main__":
    raise SystemExit(main())

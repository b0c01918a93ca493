"""Matplotlib helpers: training curves, image grids, confusion matrix (the Fashion-MNIST lab), and
pictures of the inside of a model: first-layer filters, feature maps, activation histograms,
gradient norms over training, and the time profile of a training step (see minicnn.inspection).

Every helper draws one figure and returns it (a ``matplotlib.figure.Figure``). Give ``path`` and the
figure is also written there as a PNG, atomically: into a temporary file in the same folder first, then
renamed over ``path``, so a reader never sees half a picture.

On a machine without a display (no $DISPLAY / $WAYLAND_DISPLAY on Linux) the non-interactive Agg
backend is selected, so the helpers work on servers and in tests. Close figures you no longer need
with ``plt.close(fig)``: pyplot keeps every open figure in memory.
"""
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.ticker import EngFormatter, MaxNLocator, NullLocator


def has_display():
    """True when windows can be opened: a Linux session with $DISPLAY or $WAYLAND_DISPLAY, or macOS/Windows."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _use_agg_without_display():
    """Select Agg when there is no display, unless the user or a notebook already chose a backend."""
    chosen_elsewhere = "MPLBACKEND" in os.environ or "ipykernel" in sys.modules
    if not has_display() and not chosen_elsewhere:
        matplotlib.use("Agg")


_use_agg_without_display()
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from minicnn import backend  # noqa: E402
from minicnn.inspection import trace  # noqa: E402
from minicnn.layers import Conv2D  # noqa: E402
from minicnn.utils.files import atomic_write  # noqa: E402

PNG_DPI = 100                  # pixels per inch of saved figures
IMAGE_SIDE = 28                # Fashion-MNIST images are 28 x 28
HISTORY_FIGSIZE = (11, 4)      # inches: two panels side by side
GRID_CELL_INCHES = 2.2         # each image of a grid gets a square this big
CONFUSION_FIGSIZE = (8, 7)
SMALL_CELL_INCHES = 1.1        # filters and feature maps: many small squares
PANEL_INCHES = (3.2, 2.4)      # one histogram panel
FILTER_CMAP = "bwr"            # blue < 0, white = 0, red > 0: the sign of a weight at a glance
FEATURE_CMAP = "viridis"

ACCURACY_KEYS = ("accuracy", "acc")          # Keras 3 name first, then the old Keras 2 name
VAL_ACCURACY_KEYS = ("val_accuracy", "val_acc")


# --- saving ----------------------------------------------------------------------------------------
def save_figure(fig, path, dpi=PNG_DPI):
    """Write `fig` to `path` as a PNG atomically (temporary file in the same folder, then os.replace).

    Creates the folder if needed. Returns the path as a Path.
    """
    path = Path(path)
    with atomic_write(path) as out:
        fig.savefig(out, format="png", dpi=dpi)
    return path


def _finish(fig, path):
    """Tidy the layout, save when a path is given, and return the figure."""
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


# --- training curves -------------------------------------------------------------------------------
def history_dict(history):
    """The metric lists of a History (``history.history``) or of a plain dict, as a plain dict."""
    metrics = getattr(history, "history", history)
    if not hasattr(metrics, "items"):
        raise TypeError(f"expected a History or a dict of metric lists, got {type(history).__name__}")
    return {key: [float(v) for v in values] for key, values in metrics.items()}


def _label_epochs(ax, ylabel):
    """x axis: whole epochs only; y axis: the metric's name."""
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _series(metrics, keys):
    """The first of `keys` present in `metrics` (e.g. 'accuracy' or 'acc'), else None."""
    for key in keys:
        if key in metrics:
            return metrics[key]
    return None


def plot_history(history, title, path=None):
    """The lab's two plots in one figure: training ('bo') vs validation ('b') accuracy, then loss.

    history: a History from fit() or a dict with 'loss', 'accuracy' (or 'acc') and, when fit had
    validation data, 'val_loss', 'val_accuracy' (or 'val_acc'). Epochs are numbered from 1, as fit
    prints them. Returns the Figure (2 axes); `title` becomes the figure's title.
    """
    metrics = history_dict(history)
    panels = [("accuracy", _series(metrics, ACCURACY_KEYS), _series(metrics, VAL_ACCURACY_KEYS)),
              ("loss", metrics.get("loss"), metrics.get("val_loss"))]
    fig, axes = plt.subplots(1, 2, figsize=HISTORY_FIGSIZE)
    for ax, (name, train, valid) in zip(axes, panels):
        if train:
            epochs = range(1, len(train) + 1)
            ax.plot(epochs, train, "bo", label=f"Training {name}")
        if valid:
            ax.plot(range(1, len(valid) + 1), valid, "b", label=f"Validation {name}")
        ax.set_title(f"Training and validation {name}")
        _label_epochs(ax, name)
        if train or valid:
            ax.legend()
    fig.suptitle(title)
    return _finish(fig, path)


def plot_comparison(histories, path=None):
    """Validation accuracy and validation loss of several models, one line per model, in one figure.

    histories: dict name -> History (or dict of metric lists). The lowest validation loss of each
    model is marked with a dot. Returns the Figure (2 axes).
    """
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=HISTORY_FIGSIZE)
    for name, history in histories.items():
        metrics = history_dict(history)
        val_acc = _series(metrics, VAL_ACCURACY_KEYS) or []
        val_loss = metrics.get("val_loss") or []
        acc_ax.plot(range(1, len(val_acc) + 1), val_acc, label=name)
        line, = loss_ax.plot(range(1, len(val_loss) + 1), val_loss, label=name)
        if val_loss:
            best = int(np.argmin(val_loss))
            loss_ax.plot(best + 1, val_loss[best], "o", color=line.get_color())
    for ax, name in [(acc_ax, "accuracy"), (loss_ax, "loss")]:
        ax.set_title(f"Validation {name}")
        _label_epochs(ax, name)
        ax.legend()
    fig.suptitle("Model comparison")
    return _finish(fig, path)


# --- images -----------------------------------------------------------------------------------------
def _as_2d_image(image):
    """(28, 28) or (28, 28, 1) -> (28, 28), for imshow."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"expected a grayscale image of shape (H, W) or (H, W, 1), got {image.shape}")
    return image


def plot_images(images, titles, path=None, rows=3, cols=3):
    """A rows x cols grid of grayscale images, each with its title (the lab's 3 x 3 grids).

    images: (N, H, W) or (N, H, W, 1); titles: N strings. Shows the first rows*cols images; cells
    without an image are left blank. Returns the Figure (rows*cols axes).
    """
    images = list(images)
    titles = list(titles)
    if len(titles) != len(images):
        raise ValueError(f"plot_images: got {len(images)} images but {len(titles)} titles")
    fig, axes = plt.subplots(rows, cols, figsize=(GRID_CELL_INCHES * cols, GRID_CELL_INCHES * rows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(_as_2d_image(images[i]), cmap="gray", interpolation="none")
            ax.set_title(titles[i], fontsize=9)
    return _finish(fig, path)


def plot_sample_images(train_X, train_Y, test_X, test_Y, class_names=None, path=None):
    """The lab's first figure: the first training image and the first test image, with their labels.

    train_X/test_X: (N, 28, 28) or (N, 28, 28, 1); train_Y/test_Y: integer labels (N,).
    Returns the Figure (2 axes), titled 'Ground Truth : 9 (Ankle boot)'.
    """
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.6))
    for ax, images, labels, where in [(axes[0], train_X, train_Y, "First training image"),
                                      (axes[1], test_X, test_Y, "First test image")]:
        label = int(labels[0])
        name = f" ({class_names[label]})" if class_names is not None else ""
        ax.imshow(_as_2d_image(images[0]), cmap="gray")
        ax.set_title(f"Ground Truth : {label}{name}")
        ax.set_xlabel(where)
    return _finish(fig, path)


# --- confusion matrix --------------------------------------------------------------------------------
def plot_confusion_matrix(y_true, y_pred, class_names, path=None):
    """A confusion matrix as a picture: row = true class, column = predicted class, counts in cells.

    y_true, y_pred: integer labels (N,) in [0, len(class_names)). The image data is exactly
    sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(len(class_names))).
    Returns the Figure (the matrix axes first, then its colour bar).
    """
    from sklearn.metrics import confusion_matrix

    classes = len(class_names)
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(classes)))
    fig, ax = plt.subplots(figsize=CONFUSION_FIGSIZE)
    shown = ax.imshow(matrix, cmap="Blues", interpolation="nearest")
    fig.colorbar(shown, ax=ax)
    dark_from = matrix.max() / 2 if matrix.size else 0   # white text on dark cells
    for row in range(classes):
        for col in range(classes):
            count = matrix[row, col]
            ax.text(col, row, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > dark_from else "black")
    ax.set_xticks(range(classes), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(classes), labels=class_names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title("Confusion matrix")
    return _finish(fig, path)


# --- inside the layers --------------------------------------------------------------------------------
def _image_grid(rows, cols, cell_height=SMALL_CELL_INCHES):
    """A figure of rows x cols small axes for images, without ticks (a y label still shows)."""
    fig, axes = plt.subplots(rows, cols, figsize=(SMALL_CELL_INCHES * cols, cell_height * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _remove_unused(axes, used):
    """Take the axes after the first `used` (in row order) off the figure, so fig.axes lists only drawn ones."""
    for ax in list(axes.flat)[used:]:
        ax.remove()


def first_conv_kernel(model_or_kernel):
    """The kernel (KH, KW, C, F) of a model's first Conv2D layer, or the given kernel, as a NumPy array."""
    if hasattr(model_or_kernel, "layers"):
        convs = [layer for layer in model_or_kernel.layers if isinstance(layer, Conv2D)]
        if not convs:
            raise ValueError("plot_filters: the model has no Conv2D layer")
        model_or_kernel = convs[0].params["kernel"]
    kernel = backend.to_numpy(model_or_kernel)
    if kernel.ndim != 4:
        raise ValueError(f"plot_filters: expected a Conv2D kernel of shape (KH, KW, C, F), got {kernel.shape}")
    return kernel


def plot_filters(model_or_kernel, channel=0, cols=8, path=None):
    """The filters of a model's first Conv2D layer (or of a kernel (KH, KW, C, F)), one image each.

    Cell f shows kernel[:, :, channel, f], the weights filter f applies to input channel `channel`.
    One colour scale for all, symmetric around 0: blue negative, white 0, red positive.
    Returns the Figure: F axes (filter order), then the colour bar.
    """
    kernel = first_conv_kernel(model_or_kernel)
    filters = kernel.shape[3]
    limit = float(np.abs(kernel[:, :, channel, :]).max()) or 1.0
    cols = min(cols, filters)
    fig, axes = _image_grid(-(-filters // cols), cols)
    for f, ax in enumerate(axes.flat[:filters]):
        shown = ax.imshow(kernel[:, :, channel, f], cmap=FILTER_CMAP, vmin=-limit, vmax=limit,
                          interpolation="none")
        ax.set_title(f"#{f}", fontsize=8)
    _remove_unused(axes, filters)
    fig.suptitle(f"First-layer filters {kernel.shape[0]}x{kernel.shape[1]}, input channel {channel}")
    fig.tight_layout()
    fig.colorbar(shown, ax=fig.axes, shrink=0.6)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_feature_maps(model, image, max_maps=8, path=None):
    """What every Conv2D layer makes of one image: its first `max_maps` output channels.

    image: (H, W) or (H, W, C), as the model takes it (one image, no batch axis). The first row
    shows the image; then one row per Conv2D layer, in order, channel k in column k
    (the layer's output, inference mode). Returns the Figure: the image's axes, then the maps row by row.
    """
    image = np.asarray(image)
    if image.ndim == len(model.input_shape) - 2:     # (H, W) for a one-channel model
        image = image[..., None]
    records = trace(model, image[None], training=False)
    convs = [r for r in records if isinstance(model.layers[r.index], Conv2D)]
    cols = max(1, min(max_maps, max([r.output.shape[-1] for r in convs], default=1)))
    fig, axes = _image_grid(1 + len(convs), cols, cell_height=1.15 * SMALL_CELL_INCHES)  # room for titles
    axes[0, 0].imshow(_as_2d_image(image[..., :1]), cmap="gray", interpolation="none")
    axes[0, 0].set_title("input", fontsize=8)
    for ax in axes[0, 1:]:
        ax.remove()
    for row, record in zip(axes[1:], convs):
        maps = record.output[0]                      # (OH, OW, F)
        shown = min(cols, maps.shape[-1])
        for k, ax in enumerate(row[:shown]):
            ax.imshow(maps[:, :, k], cmap=FEATURE_CMAP, interpolation="none")
            ax.set_title(f"#{k}", fontsize=8)
        row[0].set_ylabel(f"{record.name}\n{'x'.join(map(str, maps.shape))}", fontsize=8)
        for ax in row[shown:]:
            ax.remove()
    fig.suptitle("Feature maps of each Conv2D layer")
    return _finish(fig, path)


def _histogram_data(record, value):
    """(the array to draw, a note for the title) of one record; (None, None) when it has none.

    A last layer whose softmax is fused with the cross-entropy never receives dL/d output:
    for 'grad_output' it shows dL/dz = (p - y) / N, the gradient that enters it, and says so.
    """
    data = getattr(record, value)
    if data is None and value == "grad_output" and record.grad_preactivation is not None:
        return record.grad_preactivation, "dL/dz (softmax fused with the loss)"
    return data, None


def plot_activation_histograms(records, value="output", bins=50, cols=4, log=False, path=None):
    """A histogram per layer of one array of trace() records: 'output' (default), 'preactivation',
    'grad_output' or 'grad_input'. Flatten layers are skipped (their output is their input).

    Each panel counts every entry of the batch in `bins` equal bins, titled with the layer's name,
    mean and std of what it shows. ReLU / LeakyReLU panels also give the share of the layer's
    *inputs* (pre-activations) below 0, whatever `value` is: how many units sit on the flat side of
    the kink. A last layer with softmax fused into the loss has no grad_output: its panel shows
    dL/dz, and says so. Layers without the array are named in the figure's title, never dropped
    silently. log=True draws the counts on a log scale, which shows the tails (useful for gradients).
    Returns the Figure.
    """
    drawn, missing = [], []
    for record in records:
        if record.type == "Flatten":
            continue
        data, note = _histogram_data(record, value)
        if data is None:
            missing.append(record.name)
        else:
            drawn.append((record, data, note))
    if not drawn:
        raise ValueError(f"plot_activation_histograms: no record holds {value!r} "
                         "(gradients need trace(model, x, y) with targets y)")
    cols = min(cols, len(drawn))
    rows = -(-len(drawn) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows), squeeze=False)
    for ax, (record, data, note) in zip(axes.flat, drawn):
        data = data.astype(np.float64).ravel()
        ax.hist(data, bins=bins, color="tab:blue", log=log)
        if log:
            ax.yaxis.set_minor_locator(NullLocator())      # powers of ten only: drawing many minor ticks is slow
        else:
            ax.yaxis.set_major_formatter(EngFormatter())   # 500 k, 1 M: no '1e6' over the title
        title = f"{record.name}" + (f": {note}" if note else "") + f"\nmean {data.mean():.3g}, std {data.std():.3g}"
        if record.activation in ("relu", "leaky_relu") and record.preactivation is not None:
            title += f"; inputs < 0: {100 * np.mean(record.preactivation < 0):.0f}%"
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
    _remove_unused(axes, len(drawn))
    suptitle = f"{value} of each layer, one batch"
    if missing:
        suptitle += f"\nno {value} in: {', '.join(missing)}"
    fig.suptitle(suptitle)
    return _finish(fig, path)


def plot_gradient_norms(norms, path=None):
    """Each layer's gradient norm ||dL/d params|| over training, one line per layer, log scale.

    norms: a minicnn.inspection.GradientNormLogger (its batch_norms; dotted lines mark the epoch ends)
    or a dict layer name -> values, one per batch. Batches are numbered from 1. Returns the Figure.
    """
    series = getattr(norms, "batch_norms", norms)
    fig, ax = plt.subplots(figsize=HISTORY_FIGSIZE)
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    for end in getattr(norms, "epoch_ends", [])[:-1]:
        ax.axvline(end + 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel("gradient norm")
    ax.set_title("Gradient norm of each layer during training")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_profile(profile, path=None):
    """The time profile of a training step (minicnn.inspection.profile) as bars: forward and backward
    milliseconds of each layer, then the optimizer update and the rest. Returns the Figure."""
    layers = len(profile.layers)
    labels = [t.name for t in profile.layers] + ["optimizer update", "other (loss, Python)"]
    forward = [t.forward_ms for t in profile.layers]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) + 1.5))
    ax.barh(range(layers), forward, color="tab:blue", label="forward")
    ax.barh(range(layers), [t.backward_ms for t in profile.layers], left=forward, color="tab:orange",
            label="backward")
    ax.barh([layers, layers + 1], [profile.optimizer_ms, max(profile.other_ms, 0.0)], color="tab:gray",
            label="rest of the step")
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()                                   # first layer on top
    ax.set_xlabel("milliseconds per training step")
    ax.set_title(f"Time per training step: {profile.step_ms:.1f} ms "
                 f"(batch {profile.batch_size}, {profile.device})")
    ax.legend(fontsize=8)
    return _finish(fig, path)


__all__ = ["has_display", "save_figure", "history_dict", "plot_history", "plot_comparison",
           "plot_images", "plot_sample_images", "plot_confusion_matrix", "first_conv_kernel", "plot_filters",
           "plot_feature_maps", "plot_activation_histograms", "plot_gradient_norms", "plot_profile"]


def plot_model(model, to_file="model.png", show_shapes=False, show_layer_names=True, show_dtype=False,
               show_layer_activations=False, dpi=PNG_DPI, **ignored):
    """The layer graph as a PNG, as keras.utils.plot_model draws it, with matplotlib alone (no graphviz).

    One box per layer, top to bottom in the order the layers run, an arrow from each layer to
    the layers that take its output; an arrow that skips boxes (a skip connection) curves to
    the right. show_shapes adds each layer's input and output shape. Returns the figure; writes
    it to `to_file` (None: write nothing). Keras's other options (rankdir, expand_nested...)
    are accepted and ignored.
    """
    if not model.built:
        raise ValueError("plot_model: the model is not built yet; give the first layer input_shape=..., "
                         "or call model.build((None, 28, 28, 1)), or fit it first")
    input_name = model.input_name or "input"
    boxes = [(f"{input_name} (InputLayer)" if show_layer_names else "InputLayer", None, model.input_shape)]
    for layer in model.layers:
        label = f"{layer.name} ({type(layer).__name__})" if show_layer_names else type(layer).__name__
        activation = getattr(getattr(layer, "activation", None), "name", None)
        if show_layer_activations and activation not in (None, "linear"):
            label += f"\nactivation: {activation}"
        if show_dtype:
            label += f"\ndtype: {backend.floatx()}"
        input_shape = layer.input_shape
        boxes.append((label, input_shape, layer.output_shape))
    step = 1.0 + 0.35 * show_shapes + 0.25 * (show_layer_activations or show_dtype)
    fig, ax = plt.subplots(figsize=(5.5, 0.2 + 0.75 * step * len(boxes)))
    ax.set_xlim(-1.6, 1.9)
    ax.set_ylim(-step * (len(boxes) - 0.5), step * 0.5)
    ax.axis("off")
    for row, (label, shape_in, shape_out) in enumerate(boxes):
        text = label
        if show_shapes:
            text += f"\nin: {shape_in if shape_in is not None else '-'}   out: {shape_out}"
        ax.text(0, -row * step, text, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fb", "edgecolor": "#4a6fa5"})
    # box 0 is the input; layer i is box i + 1, and INPUT (-1) is box 0
    for target, sources in enumerate(model.connections):
        for source in sources:
            start, end = source + 1, target + 1
            curved = end - start > 1
            ax.annotate("", xy=(0.9 if curved else 0, -end * step + 0.28), xytext=(0.9 if curved else 0,
                        -start * step - 0.28), arrowprops={
                            "arrowstyle": "->", "color": "#333333",
                            "connectionstyle": "arc3,rad=-0.35" if curved else "arc3"})
    fig.tight_layout()
    if to_file is not None:
        save_figure(fig, to_file, dpi=dpi)
    return fig

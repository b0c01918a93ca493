"""Tests for minicnn/plotting.py: each helper on small synthetic data.

Every helper must return a Figure with the expected axes, titles and images, draw the right values,
and, given a path, write a valid PNG atomically (no temporary file left behind).
"""
import os

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from minicnn import plotting
from minicnn.utils.files import new_file_mode
from minicnn.callbacks import History

plt = plotting.plt
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = ["zero", "one", "two", "three"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_png(path):
    """The file exists, starts with the PNG signature, and only it is in its folder (no temp files)."""
    data = path.read_bytes()
    assert data[:len(PNG_SIGNATURE)] == PNG_SIGNATURE
    assert len(data) > 1000
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def history_values(epochs=4):
    return {"loss": [1.0, 0.6, 0.4, 0.3][:epochs], "accuracy": [0.5, 0.7, 0.8, 0.9][:epochs],
            "val_loss": [0.9, 0.5, 0.55, 0.7][:epochs], "val_accuracy": [0.55, 0.75, 0.8, 0.78][:epochs]}


def as_history(values):
    """A History filled the way fit fills it, epoch by epoch."""
    history = History()
    for epoch in range(len(values["loss"])):
        history.on_epoch_end(epoch, {key: series[epoch] for key, series in values.items()})
    return history


def line(ax, label):
    [found] = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return found


# --- backend -----------------------------------------------------------------------------------------
def test_without_a_display_the_backend_is_not_interactive():
    if plotting.has_display() or "MPLBACKEND" in os.environ:
        pytest.skip("a display is available, or MPLBACKEND chose the backend")
    assert matplotlib.get_backend().lower() == "agg"


# --- plot_history ------------------------------------------------------------------------------------
@pytest.mark.parametrize("wrap", [as_history, dict], ids=["History", "dict"])
def test_plot_history_draws_the_labs_two_plots_in_one_figure(wrap):
    values = history_values()
    fig = plotting.plot_history(wrap(values), "Baseline model")
    assert isinstance(fig, Figure)
    acc_ax, loss_ax = fig.axes
    assert acc_ax.get_title() == "Training and validation accuracy"
    assert loss_ax.get_title() == "Training and validation loss"
    assert fig._suptitle.get_text() == "Baseline model"
    for ax, name in [(acc_ax, "accuracy"), (loss_ax, "loss")]:
        train, valid = line(ax, f"Training {name}"), line(ax, f"Validation {name}")
        assert train.get_marker() == "o" and train.get_linestyle() == "None"     # 'bo'
        assert valid.get_marker() == "None" and valid.get_linestyle() == "-"     # 'b'
        assert matplotlib.colors.to_hex(train.get_color()) == "#0000ff"
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])          # epochs from 1
        np.testing.assert_allclose(train.get_ydata(), values[name])
        np.testing.assert_allclose(valid.get_ydata(), values[f"val_{name}"])


def test_plot_history_reads_the_old_keras_keys():
    old = {"loss": [1.0, 0.5], "acc": [0.5, 0.8], "val_loss": [0.9, 0.6], "val_acc": [0.6, 0.7]}
    fig = plotting.plot_history(old, "old keys")
    np.testing.assert_allclose(line(fig.axes[0], "Training accuracy").get_ydata(), [0.5, 0.8])
    np.testing.assert_allclose(line(fig.axes[0], "Validation accuracy").get_ydata(), [0.6, 0.7])


def test_plot_history_without_validation_draws_training_only():
    fig = plotting.plot_history({"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]}, "no validation")
    assert [ln.get_label() for ln in fig.axes[1].get_lines()] == ["Training loss"]


def test_plot_history_rejects_something_else():
    with pytest.raises(TypeError, match="History or a dict"):
        plotting.plot_history([0.1, 0.2], "a list")


def test_plot_history_saves_a_png(tmp_path):
    path = tmp_path / "history.png"
    fig = plotting.plot_history(history_values(), "saved", path=path)
    assert isinstance(fig, Figure)
    assert_png(path)


# --- plot_comparison ----------------------------------------------------------------------------------
def test_plot_comparison_draws_one_validation_curve_per_model(tmp_path):
    baseline = history_values()
    dropout = {**history_values(), "val_loss": [0.8, 0.6, 0.5, 0.45]}
    path = tmp_path / "comparison.png"
    fig = plotting.plot_comparison({"baseline": as_history(baseline), "dropout": dropout}, path=path)
    acc_ax, loss_ax = fig.axes
    assert acc_ax.get_title() == "Validation accuracy"
    assert loss_ax.get_title() == "Validation loss"
    np.testing.assert_allclose(line(loss_ax, "baseline").get_ydata(), baseline["val_loss"])
    np.testing.assert_allclose(line(loss_ax, "dropout").get_ydata(), dropout["val_loss"])
    np.testing.assert_allclose(line(acc_ax, "dropout").get_ydata(), dropout["val_accuracy"])
    # the lowest validation loss of each model is marked: baseline at epoch 2, dropout at epoch 4
    marks = sorted((float(ln.get_xdata()[0]), float(ln.get_ydata()[0]))
                   for ln in loss_ax.get_lines() if ln.get_marker() == "o")
    assert marks == [(2.0, 0.5), (4.0, 0.45)]
    assert_png(path)


# --- plot_images -------------------------------------------------------------------------------------
def test_plot_images_draws_a_3x3_grid_with_titles(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((9, 28, 28, 1)).astype(np.float32)
    titles = [f"Predicted {i}, Class {i}" for i in range(9)]
    path = tmp_path / "grid.png"
    fig = plotting.plot_images(images, titles, path=path)
    assert len(fig.axes) == 9
    assert [ax.get_title() for ax in fig.axes] == titles
    for ax, image in zip(fig.axes, images):
        [shown] = ax.images
        np.testing.assert_array_equal(shown.get_array(), image[..., 0])
        assert shown.get_cmap().name == "gray"
    assert_png(path)


def test_plot_images_leaves_cells_without_images_blank():
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    fig = plotting.plot_images(images, list("abcd"), rows=2, cols=3)
    assert len(fig.axes) == 6
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1, 1, 0, 0]


def test_plot_images_shows_at_most_rows_times_cols():
    fig = plotting.plot_images(np.zeros((12, 28, 28)), [str(i) for i in range(12)], rows=2, cols=2)
    assert sum(len(ax.images) for ax in fig.axes) == 4


def test_plot_images_needs_one_title_per_image():
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        plotting.plot_images(np.zeros((3, 28, 28)), ["a", "b"])


def test_plot_images_rejects_colour_images():
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, 1\)"):
        plotting.plot_images(np.zeros((1, 28, 28, 3)), ["rgb"])


# --- plot_sample_images ---------------------------------------------------------------------------------
def test_plot_sample_images_shows_the_first_train_and_test_image(tmp_path):
    rng = np.random.default_rng(1)
    train_X = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    test_X = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    train_Y, test_Y = np.array([3, 0, 1, 2, 1]), np.array([1, 2, 3])
    path = tmp_path / "samples.png"
    fig = plotting.plot_sample_images(train_X, train_Y, test_X, test_Y, CLASS_NAMES, path=path)
    train_ax, test_ax = fig.axes
    assert train_ax.get_title() == "Ground Truth : 3 (three)"
    assert test_ax.get_title() == "Ground Truth : 1 (one)"
    np.testing.assert_array_equal(train_ax.images[0].get_array(), train_X[0])
    np.testing.assert_array_equal(test_ax.images[0].get_array(), test_X[0])
    assert_png(path)


def test_plot_sample_images_accepts_a_channel_axis_and_no_names():
    images = np.ones((2, 28, 28, 1), dtype=np.float32)
    fig = plotting.plot_sample_images(images, [9, 0], images, [9, 0])
    assert fig.axes[0].get_title() == "Ground Truth : 9"


# --- plot_confusion_matrix --------------------------------------------------------------------------------
def test_plot_confusion_matrix_shows_sklearns_matrix(tmp_path):
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 4, 200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 4, 200))
    path = tmp_path / "cm.png"
    fig = plotting.plot_confusion_matrix(y_true, y_pred, CLASS_NAMES, path=path)
    ax = fig.axes[0]
    expected = confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(ax.images[0].get_array(), expected)
    assert ax.get_title() == "Confusion matrix"
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASS_NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASS_NAMES
    # one count written in every cell, row by row
    assert [t.get_text() for t in ax.texts] == [str(v) for v in expected.ravel()]
    assert_png(path)


def test_plot_confusion_matrix_keeps_classes_that_never_occur():
    fig = plotting.plot_confusion_matrix([0, 0, 1], [0, 1, 1], CLASS_NAMES)
    expected = np.zeros((4, 4), dtype=int)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = 1
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), expected)


# --- save_figure --------------------------------------------------------------------------------------------
def test_save_figure_replaces_an_existing_file_and_creates_folders(tmp_path):
    path = tmp_path / "new" / "folder" / "fig.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old contents")
    fig = plotting.plot_images(np.zeros((1, 28, 28)), ["x"], rows=1, cols=1)
    assert plotting.save_figure(fig, path) == path
    assert_png(path)
    assert (path.stat().st_mode & 0o777) == new_file_mode()


def test_save_figure_leaves_no_file_when_drawing_fails(tmp_path, monkeypatch):
    fig = plotting.plot_images(np.zeros((1, 28, 28)), ["x"], rows=1, cols=1)

    def broken_savefig(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        plotting.save_figure(fig, tmp_path / "fig.png")
    assert os.listdir(tmp_path) == []


# --- inside the layers: filters, feature maps, histograms, gradient norms, profile ------------------------
def conv_model(filters=(4, 6)):
    """Two Conv2D layers (with LeakyReLU and pooling between) on 8x8 images, then a softmax classifier."""
    from minicnn.layers import Conv2D, Dense, Flatten, LeakyReLU, MaxPooling2D
    from minicnn.models import Sequential

    model = Sequential([Conv2D(filters[0], 3, padding="same", input_shape=(8, 8, 1)), LeakyReLU(alpha=0.1),
                        MaxPooling2D(2), Conv2D(filters[1], 3, padding="same"), Flatten(),
                        Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def test_plot_filters_shows_each_kernel_slice_on_one_symmetric_scale(tmp_path):
    model = conv_model(filters=(5, 6))
    kernel = model.layers[0].params["kernel"]
    path = tmp_path / "filters.png"
    fig = plotting.plot_filters(model, cols=3, path=path)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 5 and len(fig.axes) == 5 + 1     # 5 filters, then the colour bar
    limit = np.abs(kernel).max()
    assert fig.axes[-1].get_ylim() == pytest.approx((-limit, limit))
    for f, ax in enumerate(image_axes):
        np.testing.assert_array_equal(ax.images[0].get_array(), kernel[:, :, 0, f])
        assert ax.images[0].get_clim() == pytest.approx((-limit, limit))
        assert ax.get_title() == f"#{f}"
    assert_png(path)


def test_plot_filters_takes_a_kernel_and_a_channel():
    kernel = np.random.default_rng(0).standard_normal((3, 3, 2, 4))
    fig = plotting.plot_filters(kernel, channel=1)
    for f in range(4):
        np.testing.assert_array_equal(fig.axes[f].images[0].get_array(), kernel[:, :, 1, f])
    with pytest.raises(ValueError, match=r"\(KH, KW, C, F\)"):
        plotting.plot_filters(np.zeros((3, 3)))


def test_plot_filters_needs_a_conv_layer():
    from minicnn.layers import Dense
    from minicnn.models import Sequential

    with pytest.raises(ValueError, match="no Conv2D"):
        plotting.plot_filters(Sequential([Dense(2, input_shape=(3,))]))


def test_plot_feature_maps_shows_every_conv_layers_output(tmp_path):
    model = conv_model(filters=(4, 12))
    image = np.random.default_rng(1).random((8, 8, 1)).astype(np.float32)
    expected, a = [], image[None]
    for layer in model.layers:                       # the conv outputs, computed here layer by layer
        a = layer.forward(a)
        if type(layer).__name__ == "Conv2D":
            expected.append(a[0])
    path = tmp_path / "maps.png"
    fig = plotting.plot_feature_maps(model, image, max_maps=8, path=path)
    assert len(fig.axes) == 1 + 4 + 8                 # the image, 4 maps, then the first 8 of 12
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), image[..., 0])
    shown = fig.axes[1:]
    for k in range(4):
        np.testing.assert_allclose(shown[k].images[0].get_array(), expected[0][:, :, k], rtol=1e-6)
    for k in range(8):
        np.testing.assert_allclose(shown[4 + k].images[0].get_array(), expected[1][:, :, k], rtol=1e-6)
    assert shown[0].get_ylabel() == f"{model.layers[0].name}\n8x8x4"
    assert_png(path)


def test_plot_feature_maps_accepts_an_image_without_channel_axis():
    model = conv_model()
    fig = plotting.plot_feature_maps(model, np.ones((8, 8)), max_maps=2)
    assert len(fig.axes) == 1 + 2 + 2


def traced(model, n=6):
    from minicnn import inspection
    from minicnn.utils import to_categorical

    rng = np.random.default_rng(2)
    return inspection.trace(model, rng.random((n, 8, 8, 1)), to_categorical(rng.integers(0, 3, n), 3))


def test_plot_activation_histograms_counts_each_layers_values(tmp_path):
    model = conv_model()
    records = traced(model)
    path = tmp_path / "hist.png"
    fig = plotting.plot_activation_histograms(records, bins=20, path=path)
    shown = [r for r in records if r.type != "Flatten"]
    assert len(fig.axes) == len(shown)
    for ax, record in zip(fig.axes, shown):
        counts, edges = np.histogram(record.output.astype(np.float64).ravel(), bins=20)
        np.testing.assert_array_equal([p.get_height() for p in ax.patches], counts)
        np.testing.assert_allclose([p.get_x() for p in ax.patches], edges[:-1])
        assert ax.get_title().startswith(record.name + "\n")
    leaky = fig.axes[1]
    assert f"inputs < 0: {100 * np.mean(records[1].input < 0):.0f}%" in leaky.get_title()
    assert "no output" not in fig._suptitle.get_text()
    assert_png(path)


def test_plot_activation_histograms_of_gradients():
    """Every layer but Flatten gets a panel; the last one, whose softmax is fused with the loss,
    shows dL/dz and says so; a LeakyReLU panel says its share below 0 is of its inputs."""
    records = traced(conv_model())
    fig = plotting.plot_activation_histograms(records, value="grad_output", bins=10, log=True)
    shown = [r for r in records if r.type != "Flatten"]
    assert [ax.get_title().split("\n")[0].split(":")[0] for ax in fig.axes] == [r.name for r in shown]
    counts, _ = np.histogram(records[0].grad_output.ravel(), bins=10)
    np.testing.assert_array_equal([p.get_height() for p in fig.axes[0].patches], counts)
    assert fig.axes[0].get_yscale() == "log"
    last, dense = fig.axes[-1], records[-1]
    assert dense.grad_output is None and "dL/dz (softmax fused with the loss)" in last.get_title()
    counts, _ = np.histogram(dense.grad_preactivation.ravel(), bins=10)
    np.testing.assert_array_equal([p.get_height() for p in last.patches], counts)
    share = 100 * np.mean(records[1].preactivation < 0)
    assert f"inputs < 0: {share:.0f}%" in fig.axes[1].get_title()
    preactivations = plotting.plot_activation_histograms(records, value="preactivation")
    missing = [r.name for r in shown if r.preactivation is None]      # conv (linear), pooling
    assert preactivations._suptitle.get_text().endswith("no preactivation in: " + ", ".join(missing))
    from minicnn import inspection
    forward_only = inspection.trace(conv_model(), np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="grad_output"):
        plotting.plot_activation_histograms(forward_only, value="grad_output")


def test_plot_gradient_norms_draws_one_line_per_layer(tmp_path):
    from minicnn import inspection
    from minicnn.utils import to_categorical

    model = conv_model()
    logger = inspection.GradientNormLogger()
    rng = np.random.default_rng(3)
    model.fit(rng.random((12, 8, 8, 1)), to_categorical(rng.integers(0, 3, 12), 3), batch_size=4, epochs=3,
              verbose=0, callbacks=[logger])
    path = tmp_path / "norms.png"
    fig = plotting.plot_gradient_norms(logger, path=path)
    ax = fig.axes[0]
    for name, values in logger.batch_norms.items():
        np.testing.assert_allclose(line(ax, name).get_ydata(), values)
        np.testing.assert_array_equal(line(ax, name).get_xdata(), range(1, 10))
    epoch_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in epoch_lines] == [3.5, 6.5]     # between epochs 1|2 and 2|3
    assert ax.get_yscale() == "log"
    assert_png(path)


def test_plot_gradient_norms_takes_a_dict():
    fig = plotting.plot_gradient_norms({"conv": [1.0, 0.5], "dense": [2.0, 3.0]})
    np.testing.assert_allclose(line(fig.axes[0], "dense").get_ydata(), [2.0, 3.0])


def test_plot_profile_draws_the_milliseconds_as_bars(tmp_path):
    from minicnn.inspection import LayerTiming, Profile

    timings = [LayerTiming("conv", "Conv2D", 2.0, 3.0), LayerTiming("dense", "Dense", 0.5, 0.25)]
    profile = Profile("cpu", 64, 3, timings, optimizer_ms=1.0, step_ms=7.0)
    path = tmp_path / "profile.png"
    fig = plotting.plot_profile(profile, path=path)
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == [2.0, 0.5, 3.0, 0.25, 1.0, 0.25]    # forward bars, backward bars, optimizer, other
    assert [p.get_x() for p in ax.patches[2:4]] == [2.0, 0.5]   # backward stacked after forward
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conv", "dense", "optimizer update",
                                                           "other (loss, Python)"]
    assert "7.0 ms" in ax.get_title()
    assert_png(path)

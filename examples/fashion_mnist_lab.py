"""The Keras Fashion-MNIST lab (shared/lab/keras_fashion_mnist_lab.md), step by step, on minicnn.

Run it from the repository root:

    python examples/fashion_mnist_lab.py             # the lab's recipe: 20 epochs, batch 64 (slow on a CPU)
    python examples/fashion_mnist_lab.py --quick     # 2,000 train / 1,000 test images, 2 epochs (timings:
                                                     # benchmarks/RESULTS.md)

It follows the lab in order: load the data, look at it, preprocess it, train the baseline model, evaluate
it, plot its history, then the same for the model with dropout; save and reload the model; predict
classes, show correctly and incorrectly classified images, print the classification report and the
confusion matrix; and finally compare the two models. Every figure is a PNG in the --output folder,
which also receives `report.md` (the numbers and the figures) and `results.json` (the same numbers).
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

try:
    import minicnn
except ImportError:  # running from a checkout without `pip install -e .`: use the package next door
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import minicnn

from minicnn import backend, lab, plotting
from minicnn.callbacks import Callback
from minicnn.datasets import fashion_mnist
from minicnn.models import load_model
from minicnn.utils import set_random_seed, to_categorical
from minicnn.utils.files import atomic_write

import matplotlib.pyplot as plt  # noqa: E402  (minicnn.plotting has chosen the backend)

NUM_CLASSES = lab.NUM_CLASSES    # 10 kinds of clothing
IMAGE_SHAPE = lab.IMAGE_SHAPE    # (28, 28, 1): grey images, channels last
VALIDATION_FRACTION = 0.2      # the lab keeps 20 % of the training images for validation
SPLIT_RANDOM_STATE = 13        # the lab's train_test_split(random_state=13)
# the settings describe() prints for each layer (those of get_config() that tell the lab's layers apart)
LAYER_SETTINGS = ("filters", "kernel_size", "pool_size", "padding", "negative_slope", "rate", "units", "activation")
GRID_SIZE = 9                  # 3 x 3 grids of correct / incorrect predictions
RELOAD_CHECK_IMAGES = 500      # test images predicted by the saved and the reloaded model
# evaluate/predict keep no activations for a backward pass, so they can take bigger batches than
# training (Keras's default is 32); the batch size changes the speed, not the numbers (up to rounding).
INFERENCE_BATCH_SIZE = 256
QUICK_TRAIN_IMAGES = 2000
QUICK_TEST_IMAGES = 1000
QUICK_EPOCHS = 2
LAB_EPOCHS = 20
LAB_BATCH_SIZE = 64
MODEL_NAMES = ("baseline", "dropout")
# Keras 3.15 on TensorFlow, the lab's full recipe on this split (DESIGN.md): test accuracy / loss.
KERAS_REFERENCE = {"baseline": (0.9145, 0.503), "dropout": (0.9216, 0.230)}


def step(title):
    """Print a visible heading for one step of the lab."""
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)), flush=True)


# --- 1. Load the data -----------------------------------------------------------------------------------
def load_fashion_mnist(train_limit=None, test_limit=None):
    """fashion_mnist.load_data(), optionally cut to the first train_limit / test_limit images."""
    step("1. Load the data")
    (train_X, train_Y), (test_X, test_Y) = fashion_mnist.load_data()
    print("(train_X, train_Y), (test_X, test_Y) = fashion_mnist.load_data()")
    if train_limit is not None or test_limit is not None:
        train_X, train_Y = train_X[:train_limit], train_Y[:train_limit]
        test_X, test_Y = test_X[:test_limit], test_Y[:test_limit]
        print(f"Using a subset: the first {len(train_X)} training and {len(test_X)} test images")
    return train_X, train_Y, test_X, test_Y


# --- 2. Analyze the data -------------------------------------------------------------------------------
def analyze_data(train_X, train_Y, test_X, test_Y, output, figures):
    """Shapes, the classes, and the first training and test image."""
    step("2. Analyze the data")
    print("Training data shape : ", train_X.shape, train_Y.shape)
    print("Testing data shape : ", test_X.shape, test_Y.shape)
    classes = np.unique(train_Y)
    print("Total number of outputs : ", len(classes))
    print("Output classes : ", classes)
    for label, name in enumerate(fashion_mnist.CLASS_NAMES):
        print(f"  {label}: {name}")
    figures["sample_images"] = save(plotting.plot_sample_images(
        train_X, train_Y, test_X, test_Y, fashion_mnist.CLASS_NAMES), output, "sample_images.png")
    return {"train_shape": list(train_X.shape), "test_shape": list(test_X.shape),
            "classes": [int(c) for c in classes]}


# --- 3. Preprocess --------------------------------------------------------------------------------------
class LabData(NamedTuple):
    """The arrays the lab trains and tests on, after preprocessing."""
    train_X: np.ndarray         # (N_train, 28, 28, 1) float32 in [0, 1]
    valid_X: np.ndarray         # (N_valid, 28, 28, 1)
    train_label: np.ndarray     # (N_train, 10) one-hot
    valid_label: np.ndarray     # (N_valid, 10)
    test_X: np.ndarray          # (N_test, 28, 28, 1)
    test_Y_one_hot: np.ndarray  # (N_test, 10)


def preprocess(train_X, train_Y, test_X, test_Y):
    """Reshape to (N, 28, 28, 1), rescale to [0, 1] float32, one-hot labels, 80/20 train/validation split."""
    from sklearn.model_selection import train_test_split

    step("3. Preprocess the data")
    train_X = train_X.reshape(-1, *IMAGE_SHAPE).astype("float32") / 255.
    test_X = test_X.reshape(-1, *IMAGE_SHAPE).astype("float32") / 255.
    print("After reshape and rescaling:", train_X.shape, test_X.shape, train_X.dtype,
          f"values in [{train_X.min():.1f}, {train_X.max():.1f}]")
    train_Y_one_hot = to_categorical(train_Y, NUM_CLASSES)
    test_Y_one_hot = to_categorical(test_Y, NUM_CLASSES)
    print("Original label:", train_Y[0])
    print("After conversion to one-hot:", train_Y_one_hot[0])
    train_X, valid_X, train_label, valid_label = train_test_split(
        train_X, train_Y_one_hot, test_size=VALIDATION_FRACTION, random_state=SPLIT_RANDOM_STATE)
    print("train_X, valid_X, train_label, valid_label:",
          train_X.shape, valid_X.shape, train_label.shape, valid_label.shape)
    return LabData(train_X, valid_X, train_label, valid_label, test_X, test_Y_one_hot)


# --- 4. The models ------------------------------------------------------------------------------------
def build_model(with_dropout):
    """The lab's network, built by minicnn/lab.py (the one place every script and test builds it from):

        3 x [Conv2D(32, 64, 128 filters, 3x3, padding='same') -> LeakyReLU(alpha=0.1)
             -> MaxPooling2D(2x2, padding='same') (-> Dropout 0.25, 0.25, 0.4 with_dropout)]
        Flatten -> Dense(128) -> LeakyReLU(alpha=0.1) (-> Dropout 0.3) -> Dense(10, softmax)

    compiled as the lab compiles it: categorical cross-entropy, Adam, accuracy.
    """
    return lab.lab_model(dropout=with_dropout)


def describe(model):
    """Each layer with its settings, read from the model itself (model.summary() shows the shapes)."""
    for layer in model.layers:
        config = layer.get_config()
        settings = ", ".join(f"{key}={config[key]!r}" for key in LAYER_SETTINGS if key in config)
        print(f"  {type(layer).__name__}({settings})")


class EpochTimer(Callback):
    """Seconds per epoch (training and validation), measured around each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def train(model, data, args):
    """model.fit as the lab calls it; returns (History, seconds of each epoch)."""
    timer = EpochTimer()
    history = model.fit(data.train_X, data.train_label, batch_size=args.batch_size, epochs=args.epochs,
                        verbose=1, validation_data=(data.valid_X, data.valid_label), callbacks=[timer])
    return history, timer.seconds


def evaluate_on_test(model, test_X, test_Y_one_hot):
    """model.evaluate on the test set -> (loss, accuracy)."""
    test_loss, test_accuracy = model.evaluate(test_X, test_Y_one_hot, batch_size=INFERENCE_BATCH_SIZE,
                                              verbose=0)
    print("Test loss:", test_loss)
    print("Test accuracy:", test_accuracy)
    return float(test_loss), float(test_accuracy)


def best_val_loss_epoch(history):
    """The epoch (numbered from 1) with the lowest validation loss, and that loss."""
    val_loss = history["val_loss"]
    best = int(np.argmin(val_loss))
    return best + 1, float(val_loss[best])


def save_and_reload(model, test_X, output, name):
    """model.save(...h5py) as the lab, load_model, and check both predict the same probabilities."""
    path = output / f"fashion_model_{name}.h5py"
    model.save(str(path))
    reloaded = load_model(str(path))
    sample = test_X[:RELOAD_CHECK_IMAGES]
    identical = bool(np.array_equal(model.predict(sample, batch_size=INFERENCE_BATCH_SIZE),
                                   reloaded.predict(sample, batch_size=INFERENCE_BATCH_SIZE)))
    print(f"Saved to {path}; reloaded with load_model: predictions on {len(sample)} test images "
          f"identical = {identical}")
    if not identical:
        print("WARNING: the reloaded model predicts differently from the one saved")
    return path.name, identical


def run_model(name, data, args, output, figures):
    """One model of the lab: build, summary, fit, evaluate on the test set, plot history, save/reload."""
    with_dropout = name == "dropout"
    step(f"4. The {name} model" + (" (with Dropout)" if with_dropout else ""))
    model = build_model(with_dropout)
    model.to(args.device)
    print("The lab's network (built by minicnn.lab.lab_model):")
    describe(model)
    model.summary()
    print(f"fit: batch_size={args.batch_size}, epochs={args.epochs}, device={args.device}")
    history, epoch_seconds = train(model, data, args)
    metrics = plotting.history_dict(history)

    step(f"5. Evaluate the {name} model on the test set")
    test_loss, test_accuracy = evaluate_on_test(model, data.test_X, data.test_Y_one_hot)
    best_epoch, best_loss = best_val_loss_epoch(metrics)
    print(f"Lowest validation loss {best_loss:.4f} at epoch {best_epoch} of {len(metrics['val_loss'])}")
    figures[f"{name}_history"] = save(
        plotting.plot_history(history, f"{name.capitalize()} model"), output, f"{name}_history.png")

    step(f"6. Save the {name} model and load it again")
    saved_to, identical = save_and_reload(model, data.test_X, output, name)
    result = {
        "params": int(model.count_params()),
        "test_loss": test_loss, "test_accuracy": test_accuracy,
        "history": metrics,
        "best_val_loss_epoch": best_epoch, "best_val_loss": best_loss,
        "epoch_seconds": [float(s) for s in epoch_seconds],
        "seconds_per_epoch": float(np.mean(epoch_seconds)) if epoch_seconds else 0.0,
        "saved_to": saved_to, "reload_identical": identical,
    }
    return model, result


# --- 7. Predict labels ---------------------------------------------------------------------------------
def predict_classes(model, test_X, test_Y):
    """Probabilities -> classes, the lab's way (argmax of rounded probabilities) and the plain argmax."""
    step("7. Predict labels")
    probabilities = model.predict(test_X, batch_size=INFERENCE_BATCH_SIZE)
    # The lab rounds first: np.argmax(np.round(p), axis=1). Rounding turns each probability into 0 or 1,
    # so when no class reaches 0.5 the row becomes all zeros and argmax answers class 0 (T-shirt/top)
    # whatever the model thought. The plain argmax picks the most probable class, the same rule that
    # model.evaluate uses for its accuracy. The two differ only on such uncertain images.
    lab_classes = np.argmax(np.round(probabilities), axis=1)
    classes = np.argmax(probabilities, axis=1)
    differ = int(np.count_nonzero(lab_classes != classes))
    lab_accuracy = float(np.mean(lab_classes == test_Y))
    accuracy = float(np.mean(classes == test_Y))
    print(f"Accuracy with the lab's argmax(round(p)): {lab_accuracy:.4f}")
    print(f"Accuracy with the plain argmax(p):        {accuracy:.4f}")
    print(f"The two rules disagree on {differ} of {len(test_Y)} test images (no class reached 0.5)")
    summary = {"accuracy_rounded_argmax": lab_accuracy, "accuracy_argmax": accuracy,
               "images_where_rules_differ": differ}
    return classes, lab_classes, summary


def title(predicted, true):
    """'Predicted Coat, Class Shirt': the lab's grid titles, with class names."""
    names = fashion_mnist.CLASS_NAMES
    return f"Predicted {names[predicted]},\nClass {names[true]}"


def plot_prediction_grids(test_X, test_Y, classes, output, figures):
    """The lab's 3 x 3 grids of correctly and incorrectly classified test images."""
    correct = np.where(classes == test_Y)[0]
    incorrect = np.where(classes != test_Y)[0]
    print(f"Found {len(correct)} correct labels")
    print(f"Found {len(incorrect)} incorrect labels")
    for key, indices in [("correct_predictions", correct), ("incorrect_predictions", incorrect)]:
        shown = indices[:GRID_SIZE]
        if len(shown) == 0:
            print(f"No {key.replace('_', ' ')} to show")
            continue
        fig = plotting.plot_images(test_X[shown], [title(classes[i], test_Y[i]) for i in shown])
        figures[key] = save(fig, output, f"{key}.png")
    return {"correct": int(len(correct)), "incorrect": int(len(incorrect))}


# --- 8. Classification report and confusion matrix ------------------------------------------------------
def classification_reports(test_Y, classes, lab_classes, output, figures):
    """sklearn's classification_report the lab's way ('Class i', rounded argmax) and with class names."""
    from sklearn.metrics import classification_report, confusion_matrix

    step("8. Classification report")
    labels = list(range(NUM_CLASSES))
    target_names = ["Class {}".format(i) for i in range(NUM_CLASSES)]
    lab_text = classification_report(test_Y, lab_classes, labels=labels, target_names=target_names,
                                      zero_division=0)
    print("As in the lab (predicted classes = argmax(round(p))):")
    print(lab_text)
    names = fashion_mnist.CLASS_NAMES
    named_text = classification_report(test_Y, classes, labels=labels, target_names=names, zero_division=0)
    named_dict = classification_report(test_Y, classes, labels=labels, target_names=names, zero_division=0,
                                       output_dict=True)
    print("With class names (predicted classes = argmax(p)):")
    print(named_text)
    matrix = confusion_matrix(test_Y, classes, labels=labels)
    print("Confusion matrix (rows: true class, columns: predicted class):")
    print(matrix)
    figures["confusion_matrix"] = save(
        plotting.plot_confusion_matrix(test_Y, classes, names), output, "confusion_matrix.png")
    return {"classification_report_lab": lab_text, "classification_report": named_text,
            "classification_report_dict": named_dict, "confusion_matrix": matrix.tolist()}


# --- 9. Compare the models ------------------------------------------------------------------------------
def compare_models(models, output, figures):
    """A table of both models, and their validation curves in one figure."""
    step("9. Compare the models")
    print(comparison_table(models))
    if len(models) > 1:
        histories = {name: result["history"] for name, result in models.items()}
        figures["comparison"] = save(plotting.plot_comparison(histories), output, "comparison.png")


def comparison_table(models):
    """Markdown table: params, test accuracy/loss, best validation-loss epoch, seconds per epoch."""
    lines = ["| model | params | test accuracy | test loss | lowest val loss (epoch) | s / epoch |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in models.items():
        lines.append(f"| {name} | {r['params']:,} | {r['test_accuracy']:.4f} | {r['test_loss']:.4f} | "
                     f"{r['best_val_loss']:.4f} ({r['best_val_loss_epoch']}) | {r['seconds_per_epoch']:.1f} |")
    return "\n".join(lines)


# --- 10. The report ---------------------------------------------------------------------------------------
def history_table(result):
    """Markdown table of one model's history, one row per epoch."""
    h = result["history"]
    lines = ["| epoch | loss | accuracy | val_loss | val_accuracy | seconds |", "|---:|---:|---:|---:|---:|---:|"]
    for i, loss in enumerate(h["loss"]):
        mark = " **(lowest val loss)**" if i + 1 == result["best_val_loss_epoch"] else ""
        lines.append(f"| {i + 1}{mark} | {loss:.4f} | {h['accuracy'][i]:.4f} | {h['val_loss'][i]:.4f} | "
                     f"{h['val_accuracy'][i]:.4f} | {result['epoch_seconds'][i]:.1f} |")
    return "\n".join(lines)


def matrix_table(matrix):
    """Markdown table of the confusion matrix, with class numbers as headers."""
    header = "| true \\ predicted | " + " | ".join(str(i) for i in range(len(matrix))) + " |"
    lines = [header, "|---" * (len(matrix) + 1) + "|"]
    for i, row in enumerate(matrix):
        lines.append(f"| {i} {fashion_mnist.CLASS_NAMES[i]} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def figure(figures, key, caption):
    """A markdown image line for a figure, by relative path ('' when it was not drawn)."""
    return f"![{caption}]({figures[key]})\n" if key in figures else ""


def write_report(results, figures, output):
    """report.md: setup, data, each model, predictions, comparison, with the figures embedded."""
    cfg, data = results["config"], results["data"]
    parts = [
        "# Fashion-MNIST lab on minicnn\n",
        f"minicnn {results['minicnn_version']}; device {cfg['device']}; {cfg['epochs']} epochs, "
        f"batch size {cfg['batch_size']}; seed {cfg['seed']}; "
        f"{cfg['train_images']} training / {cfg['validation_images']} validation / "
        f"{cfg['test_images']} test images" + (" (a subset: --quick or --train-limit/--test-limit)"
                                               if cfg["subset"] else "") + ".\n",
        "## Data\n",
        f"Training data {tuple(data['train_shape'])}, test data {tuple(data['test_shape'])}, "
        f"classes {data['classes']}.\n",
        figure(figures, "sample_images", "First training and test image"),
    ]
    for name, r in results["models"].items():
        reference = KERAS_REFERENCE.get(name)
        parts += [
            f"## The {name} model\n",
            f"{r['params']:,} parameters. Test accuracy **{r['test_accuracy']:.4f}**, test loss "
            f"**{r['test_loss']:.4f}**. Lowest validation loss {r['best_val_loss']:.4f} at epoch "
            f"{r['best_val_loss_epoch']}. {r['seconds_per_epoch']:.1f} s per epoch. Saved as "
            f"`{r['saved_to']}`; reloaded predictions identical: {r['reload_identical']}.\n",
            (f"For reference, Keras on the lab's full recipe reaches {reference[0]} / {reference[1]} "
             "(test accuracy / loss).\n" if reference else ""),
            history_table(r) + "\n",
            figure(figures, f"{name}_history", f"{name} history"),
        ]
    p = results["predictions"]
    parts += [
        f"## Predictions of the {p['model']} model\n",
        f"Accuracy with the plain argmax: {p['accuracy_argmax']:.4f}; with the lab's "
        f"`np.argmax(np.round(p), axis=1)`: {p['accuracy_rounded_argmax']:.4f}. Rounding sends every image "
        "on which no class reaches probability 0.5 to class 0; the two rules differ on "
        f"{p['images_where_rules_differ']} images. The figures, the report with class names and the "
        "confusion matrix use the plain argmax; the 'Class i' report is the lab's.\n",
        f"{p['correct']} test images classified correctly, {p['incorrect']} incorrectly.\n",
        figure(figures, "correct_predictions", "Correctly classified"),
        figure(figures, "incorrect_predictions", "Incorrectly classified"),
        "### Classification report (as in the lab)\n",
        "```\n" + p["classification_report_lab"] + "```\n",
        "### Classification report with class names\n",
        "```\n" + p["classification_report"] + "```\n",
        "### Confusion matrix\n",
        matrix_table(p["confusion_matrix"]) + "\n",
        figure(figures, "confusion_matrix", "Confusion matrix"),
        "## The models side by side\n",
        comparison_table(results["models"]) + "\n",
        figure(figures, "comparison", "Validation curves of the models"),
    ]
    atomic_write_text(output / "report.md", "\n".join(part for part in parts if part))


# --- files -------------------------------------------------------------------------------------------------
def atomic_write_text(path, text):
    """Write text to a temporary file beside `path`, then rename it over `path`."""
    with atomic_write(path, "w", encoding="utf-8") as out:
        out.write(text)


def to_json(value):
    """json.dumps fallback for NumPy scalars and arrays (sklearn's report holds some)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save(fig, output, filename):
    """Save a figure as a PNG in the output folder; close it unless it is to be shown. Returns filename."""
    plotting.save_figure(fig, output / filename)
    print(f"Saved figure {output / filename}")
    if not SHOW_FIGURES:
        plt.close(fig)
    return filename


SHOW_FIGURES = False   # set by main() from --show


# --- command line ---------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {LAB_EPOCHS}, or {QUICK_EPOCHS} with --quick)")
    parser.add_argument("--batch-size", type=int, default=LAB_BATCH_SIZE, help=f"default {LAB_BATCH_SIZE}")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="model.to(device); default cpu")
    parser.add_argument("--output", type=Path, default=Path("lab_output"),
                        help="folder for the figures, the saved models, report.md and results.json "
                             "(default lab_output)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a quick run: the first {QUICK_TRAIN_IMAGES} training / {QUICK_TEST_IMAGES} test "
                             f"images and {QUICK_EPOCHS} epochs")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="use only the first N training images (before the validation split)")
    parser.add_argument("--test-limit", type=int, default=None, help="use only the first N test images")
    parser.add_argument("--seed", type=int, default=None, help="minicnn.utils.set_random_seed(seed); default: not seeded")
    parser.add_argument("--models", default=",".join(MODEL_NAMES),
                        help="comma-separated models to train, in order (default baseline,dropout); "
                             "the last one is used for the predictions")
    parser.add_argument("--show", action="store_true", help="also show the figures (when a display exists)")
    args = parser.parse_args(argv)

    if args.quick:
        args.epochs = QUICK_EPOCHS if args.epochs is None else args.epochs
        args.train_limit = args.train_limit or QUICK_TRAIN_IMAGES
        args.test_limit = args.test_limit or QUICK_TEST_IMAGES
    args.epochs = LAB_EPOCHS if args.epochs is None else args.epochs
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODEL_NAMES]
    if unknown or not args.models:
        parser.error(f"--models: expected a comma-separated list of {', '.join(MODEL_NAMES)}, got {unknown}")
    for option in ("epochs", "batch_size", "train_limit", "test_limit"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.train_limit is not None and args.train_limit < 10:
        parser.error("--train-limit must be at least 10 (20 % of it is kept for validation)")
    if args.device == "gpu" and not backend.gpu_available():
        parser.error("--device gpu needs CuPy and a CUDA GPU; none was found")
    return args


def main(argv=None):
    global SHOW_FIGURES
    args = parse_args(argv)
    SHOW_FIGURES = args.show and plotting.has_display()
    output = args.output
    output.mkdir(parents=True, exist_ok=True)
    if args.seed is not None:
        set_random_seed(args.seed)
    started = time.perf_counter()
    figures = {}

    train_X, train_Y, test_X, test_Y = load_fashion_mnist(args.train_limit, args.test_limit)
    data_summary = analyze_data(train_X, train_Y, test_X, test_Y, output, figures)
    data = preprocess(train_X, train_Y, test_X, test_Y)

    models = {}
    for name in args.models:
        model, result = run_model(name, data, args, output, figures)
        models[name] = result

    # The lab predicts with the last model it trained: the dropout model.
    classes, lab_classes, predictions = predict_classes(model, data.test_X, test_Y)
    predictions["model"] = args.models[-1]
    predictions.update(plot_prediction_grids(data.test_X, test_Y, classes, output, figures))
    predictions.update(classification_reports(test_Y, classes, lab_classes, output, figures))
    compare_models(models, output, figures)

    config = {
        "epochs": args.epochs, "batch_size": args.batch_size, "device": args.device, "seed": args.seed,
        "models": args.models, "subset": args.train_limit is not None or args.test_limit is not None,
        "train_images": len(data.train_X), "validation_images": len(data.valid_X), "test_images": len(test_Y),
    }
    results = {
        "minicnn_version": minicnn.__version__, "config": config, "data": data_summary, "models": models,
        "predictions": predictions, "figures": figures, "total_seconds": time.perf_counter() - started,
    }
    step("10. Write the report")
    write_report(results, figures, output)
    atomic_write_text(output / "results.json", json.dumps(results, indent=2, default=to_json) + "\n")
    print(f"Wrote {output / 'report.md'} and {output / 'results.json'} "
          f"({results['total_seconds']:.0f} s in all)")
    if SHOW_FIGURES:
        plt.show()


if __name__ == "__main__":
    main()

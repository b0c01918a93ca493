"""Tests for examples/: the Fashion-MNIST lab script, run end to end on a tiny slice of the real data.

The end-to-end test runs `examples/fashion_mnist_lab.py --quick` with 500 training / 200 test images and
2 epochs in a subprocess (about 20 s on 2 CPU cores), then checks report.md, results.json and the figures.
It is skipped when the Fashion-MNIST files are nowhere on this machine (it never downloads them), except
in CI, where a missing dataset fails (conftest.needs_fashion_mnist, MINICNN_REQUIRE_DATA).
"""
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, load_example, needs_fashion_mnist, run_script
from minicnn.datasets import fashion_mnist
from minicnn.lab import lab_model

LAB_SCRIPT = REPO / "examples" / "fashion_mnist_lab.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_LIMIT, TEST_LIMIT, EPOCHS = 500, 200, 2
LAB_PARAMS = 356_234
FIGURES = ["sample_images", "baseline_history", "dropout_history", "correct_predictions",
           "incorrect_predictions", "confusion_matrix", "comparison"]


def load_lab_module():
    """examples/fashion_mnist_lab.py as a module (examples/ is not a package)."""
    return load_example("fashion_mnist_lab")


# --- command line (no data needed) ------------------------------------------------------------------
def test_quick_sets_a_small_subset_and_two_epochs():
    args = load_lab_module().parse_args(["--quick"])
    assert (args.train_limit, args.test_limit, args.epochs) == (2000, 1000, 2)
    assert args.models == ["baseline", "dropout"]


def test_defaults_are_the_labs_recipe():
    args = load_lab_module().parse_args([])
    assert (args.epochs, args.batch_size, args.device) == (20, 64, "cpu")
    assert args.train_limit is None and args.test_limit is None
    assert args.output == Path("lab_output")


def test_explicit_options_win_over_quick():
    args = load_lab_module().parse_args(["--quick", "--epochs", "3", "--train-limit", "100", "--models", "dropout"])
    assert (args.train_limit, args.test_limit, args.epochs, args.models) == (100, 1000, 3, ["dropout"])


@pytest.mark.parametrize("argv", [["--models", "baseline,resnet"], ["--epochs", "0"], ["--train-limit", "5"]])
def test_bad_options_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        load_lab_module().parse_args(argv)
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("with_dropout", [False, True])
def test_the_labs_model_is_minicnn_lab_model(with_dropout):
    """The script builds the one lab model (minicnn/lab.py) that the tests and benchmarks use."""
    built, expected = load_lab_module().build_model(with_dropout), lab_model(dropout=with_dropout)

    def described(model):
        return [(type(layer), {k: v for k, v in layer.get_config().items() if k != "name"}) for layer in model.layers]
    assert described(built) == described(expected)
    assert (built.loss.name, built.optimizer.get_config(), built.metrics_names) == (
        expected.loss.name, expected.optimizer.get_config(), expected.metrics_names)


# --- the whole lab, end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    """Run the lab once in quick mode on a tiny subset; return (output folder, stdout)."""
    output = tmp_path_factory.mktemp("lab_output")
    stdout = run_script(LAB_SCRIPT, "--quick", "--train-limit", TRAIN_LIMIT, "--test-limit", TEST_LIMIT,
                        "--epochs", EPOCHS, "--seed", 0, "--output", output)
    return output, stdout


@needs_fashion_mnist
def test_the_lab_prints_every_step(lab_run):
    _, stdout = lab_run
    for heading in ["1. Load the data", "2. Analyze the data", "3. Preprocess the data", "4. The baseline model",
                    "4. The dropout model", "7. Predict labels", "8. Classification report",
                    "9. Compare the models", "10. Write the report"]:
        assert f"=== {heading}" in stdout
    assert "Total params: 356,234" in stdout
    assert "  Conv2D(filters=32, kernel_size=[3, 3], padding='same', activation='linear')" in stdout   # settings
    assert "  LeakyReLU(negative_slope=0.1)" in stdout and "  Dropout(rate=0.4)" in stdout
    assert f"Epoch {EPOCHS}/{EPOCHS}" in stdout


@needs_fashion_mnist
def test_the_lab_writes_every_figure_as_a_png(lab_run):
    output, _ = lab_run
    for name in FIGURES:
        data = (output / f"{name}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")], "temporary files left behind"


@needs_fashion_mnist
def test_results_json_holds_the_numbers(lab_run):
    output, _ = lab_run
    results = json.loads((output / "results.json").read_text())
    assert set(results) >= {"config", "data", "models", "predictions", "figures"}
    config = results["config"]
    assert config["train_images"] + config["validation_images"] == TRAIN_LIMIT
    assert config["validation_images"] == TRAIN_LIMIT // 5
    assert config["test_images"] == TEST_LIMIT
    assert config["epochs"] == EPOCHS and config["batch_size"] == 64

    assert list(results["models"]) == ["baseline", "dropout"]
    for name, model in results["models"].items():
        assert model["params"] == LAB_PARAMS
        assert 0.0 <= model["test_accuracy"] <= 1.0
        assert 0.0 < model["test_loss"] < 10.0 and math.isfinite(model["test_loss"])
        history = model["history"]
        assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(len(values) == EPOCHS for values in history.values())
        assert model["best_val_loss_epoch"] == int(np.argmin(history["val_loss"])) + 1
        assert model["best_val_loss"] == min(history["val_loss"])
        assert len(model["epoch_seconds"]) == EPOCHS and model["seconds_per_epoch"] > 0
        assert model["reload_identical"] is True
        assert (output / model["saved_to"]).is_file() and model["saved_to"].endswith(".h5py")

    predictions = results["predictions"]
    assert predictions["model"] == "dropout"
    assert predictions["correct"] + predictions["incorrect"] == TEST_LIMIT
    assert predictions["accuracy_argmax"] == pytest.approx(predictions["correct"] / TEST_LIMIT)
    # the plain argmax is the rule model.evaluate uses for its accuracy
    assert predictions["accuracy_argmax"] == pytest.approx(results["models"]["dropout"]["test_accuracy"])
    assert 0.0 <= predictions["accuracy_rounded_argmax"] <= 1.0
    matrix = np.array(predictions["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == TEST_LIMIT
    assert np.trace(matrix) == predictions["correct"]
    report = predictions["classification_report_dict"]
    assert set(fashion_mnist.CLASS_NAMES) <= set(report)
    assert "Class 6" in predictions["classification_report_lab"]
    assert set(results["figures"]) == set(FIGURES)


@needs_fashion_mnist
def test_report_md_holds_the_numbers_and_embeds_the_figures(lab_run):
    output, _ = lab_run
    report = (output / "report.md").read_text()
    results = json.loads((output / "results.json").read_text())
    for name, model in results["models"].items():
        assert f"## The {name} model" in report
        assert f"{model['test_accuracy']:.4f}" in report
        assert f"{model['test_loss']:.4f}" in report
    assert "| epoch | loss | accuracy | val_loss | val_accuracy | seconds |" in report
    assert "```\n" in report and "Ankle boot" in report and "Class 9" in report
    assert "| true \\ predicted |" in report
    embedded = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(embedded) == sorted(f"{name}.png" for name in FIGURES)
    assert all((output / path).is_file() for path in embedded)

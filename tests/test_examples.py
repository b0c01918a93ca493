"""Tests for examples/: the Fashion-MNIST lab script, run end to end on a tiny slice of the real data.

The end-to-end test runs `examples/fashion_mnist_lab.py --quick` with 500 training / 200 test images and
2 epochs in a subprocess (about 20 s on 2 CPU cores), then checks report.md, results.json and the figures.
It is skipped when the Fashion-MNIST files are nowhere on this machine (it never downloads them).
"""
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minicnn.datasets import fashion_mnist

REPO = Path(__file__).resolve().parent.parent
LAB_SCRIPT = REPO / "examples" / "fashion_mnist_lab.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_LIMIT, TEST_LIMIT, EPOCHS = 500, 200, 2
LAB_PARAMS = 356_234
FIGURES = ["sample_images", "baseline_history", "dropout_history", "correct_predictions",
           "incorrect_predictions", "confusion_matrix", "comparison"]
RUN_TIMEOUT_S = 300

needs_data = pytest.mark.skipif(
    fashion_mnist.find_data_dir() is None,
    reason=f"Fashion-MNIST not found ({fashion_mnist.SYSTEM_DIR} absent and $MINICNN_DATA not set); "
           "apt-get install dataset-fashion-mnist, or set MINICNN_DATA to a folder holding fashion-mnist/",
)


def load_lab_module():
    """Import examples/fashion_mnist_lab.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fashion_mnist_lab", LAB_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


# --- the whole lab, end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lab_run(tmp_path_factory):
    """Run the lab once in quick mode on a tiny subset; return (output folder, stdout)."""
    output = tmp_path_factory.mktemp("lab_output")
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    command = [sys.executable, str(LAB_SCRIPT), "--quick", "--train-limit", str(TRAIN_LIMIT),
               "--test-limit", str(TEST_LIMIT), "--epochs", str(EPOCHS), "--seed", "0", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"the lab failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return output, done.stdout


@needs_data
def test_the_lab_prints_every_step(lab_run):
    _, stdout = lab_run
    for heading in ["1. Load the data", "2. Analyze the data", "3. Preprocess the data", "4. The baseline model",
                    "4. The dropout model", "7. Predict labels", "8. Classification report",
                    "9. Compare the models", "10. Write the report"]:
        assert f"=== {heading}" in stdout
    assert "Total params: 356,234" in stdout
    assert f"Epoch {EPOCHS}/{EPOCHS}" in stdout


@needs_data
def test_the_lab_writes_every_figure_as_a_png(lab_run):
    output, _ = lab_run
    for name in FIGURES:
        data = (output / f"{name}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")], "temporary files left behind"


@needs_data
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


@needs_data
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

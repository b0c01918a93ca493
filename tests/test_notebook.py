"""examples/fashion_mnist_lab.ipynb: it runs headless, every cell, on its quick setting
(MINICNN_NOTEBOOK_QUICK=1: a subset, one epoch)."""
import os

import nbformat
from nbclient import NotebookClient

from conftest import REPO, SCRIPT_TIMEOUT_S, needs_fashion_mnist

NOTEBOOK = REPO / "examples" / "fashion_mnist_lab.ipynb"


def outputs(notebook, output_type=None):
    """Every output of every code cell, optionally of one type ('stream', 'display_data', 'error'...)."""
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
            if output_type is None or output.output_type == output_type]


def printed(notebook):
    return "".join(output.get("text", "") for output in outputs(notebook, "stream"))


def pictures(notebook):
    return [output for output in outputs(notebook) if "image/png" in output.get("data", {})]


def test_the_notebook_follows_the_lab():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    text = "\n".join(cell.source for cell in notebook.cells)
    for step in ["fashion_mnist.load_data()", "to_categorical(train_Y)", "train_test_split(", "Sequential()",
                 "LeakyReLU(alpha=0.1)", "fashion_model.summary()", "fashion_model.fit(", "fashion_model.evaluate(",
                 "Dropout(0.25)", "fashion_model.save(", "fashion_model.predict(", "classification_report(",
                 "fashion_model.plan", "fashion_model.trace(", "inspection.stats_table(", "MINICNN_NOTEBOOK_QUICK"]:
        assert step in text, step


@needs_fashion_mnist
def test_the_notebook_runs_headless_on_its_quick_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)          # the kernel's inline backend draws the PNGs
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=SCRIPT_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert not outputs(notebook, "error")
    text = printed(notebook)
    assert "QUICK = True: 1 epoch(s)" in text and "Epoch 1/1" in text
    assert "Total params: 356,234" in text and "the same predictions: True" in text
    assert "ConvActivationPool" in text and "|dL/dout| on its way back" in text
    assert len(pictures(notebook)) >= 8


def test_the_committed_notebook_holds_a_full_run():
    """The copy in the repository reads well on a repository page: the outputs of a full run
    (all the data, 20 epochs of both models), without errors, with its figures."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    text = printed(notebook)
    assert "QUICK = False: 20 epoch(s) at batch size 64" in text
    assert "Training data shape :  (60000, 28, 28) (60000,)" in text
    assert text.count("Epoch 20/20") == 2                       # the baseline and the dropout model
    assert not outputs(notebook, "error")
    assert len(pictures(notebook)) >= 8
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code_cells)   # every cell ran, in one session

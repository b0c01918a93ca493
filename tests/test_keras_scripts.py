"""Keras scripts, written the way tutorials and textbooks write them, run on minicnn with only their
imports swapped (tests/keras_scripts/, issue #18). Each runs headless on a few hundred real
Fashion-MNIST images (or synthetic data) and leaves a RESULT dict that is checked here."""
import runpy

import matplotlib.pyplot as plt
import numpy as np
import pytest

from conftest import REPO, needs_fashion_mnist

SCRIPTS = REPO / "tests" / "keras_scripts"


def run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # files the script writes land in tmp_path
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        return runpy.run_path(str(SCRIPTS / name), run_name="__main__")["RESULT"]
    finally:
        plt.close("all")


@needs_fashion_mnist
def test_tensorflow_classification_tutorial(tmp_path, monkeypatch):
    result = run("tf_classification_tutorial.py", tmp_path, monkeypatch)
    assert result["test_acc"] > 0.6
    np.testing.assert_allclose(result["sums"], 1, rtol=1e-5)      # Softmax on top of a logits model


@needs_fashion_mnist
def test_keras_io_convnet(tmp_path, monkeypatch):
    result = run("keras_io_mnist_convnet.py", tmp_path, monkeypatch)
    assert set(result["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result["score"][1] > 0.3


@needs_fashion_mnist
def test_textbook_chapter_on_training_deep_networks(tmp_path, monkeypatch):
    result = run("handson_ch11_training_deep_nets.py", tmp_path, monkeypatch)
    np.testing.assert_allclose(result["scheduled"], [0.01 * 0.1 ** (epoch / 20) for epoch in range(3)], rtol=1e-6)
    # min_delta=10: after the first epoch (better than nothing) the loss never improves enough, so the rate
    # halves at the end of epochs 2 and 3; the logs hold the rate each epoch trained with, as Keras's do
    assert result["reduced"] == pytest.approx([1e-3, 1e-3, 5e-4], rel=1e-5)
    assert result["final_lr"] == pytest.approx(2.5e-4, rel=1e-5)
    assert (result["std"] > 0).any()                                             # MC dropout samples differ


@needs_fashion_mnist
def test_functional_residual_cnn(tmp_path, monkeypatch):
    result = run("residual_cnn_functional.py", tmp_path, monkeypatch)
    assert list(result["results"]) == ["loss", "sparse_categorical_accuracy"]
    assert result["epochs_seen"] == [0, 1]
    assert result["csv"].splitlines()[0].split(",")[0] == "epoch" and len(result["csv"].splitlines()) == 3
    assert (tmp_path / "mini_resnet.png").exists()


@needs_fashion_mnist
def test_keras2_style_blog_cnn(tmp_path, monkeypatch):
    result = run("keras2_style_blog_cnn.py", tmp_path, monkeypatch)
    assert result["batches"] == 16 and len(result["rates"]) == 16
    np.testing.assert_allclose(result["rates"], 0.002 * 0.99 ** np.arange(1, 17), rtol=1e-5)
    assert len(result["acc"]) == 2


def test_regression_with_mse_and_mae(tmp_path, monkeypatch):
    result = run("regression_mse_mae.py", tmp_path, monkeypatch)
    assert result["loss"][-1] < result["loss"][0] / 4
    assert result["shape"] == (3, 1)

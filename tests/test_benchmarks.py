"""The benchmark scripts run and print their tables (tiny runs: this checks that they work,
not how fast anything is; speed is measured by running them, see benchmarks/RESULTS.md)."""
import json
import subprocess
import sys

import pytest

from conftest import REPO, load_script, needs_fashion_mnist, run_script
from minicnn.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D

BENCHMARKS = REPO / "benchmarks"


def run(script, *args):
    return run_script(BENCHMARKS / script, *args)


def spec_entry(layer):
    """A minicnn layer as benchmarks/lab.py's spec writes it, (kind, argument); None if spec has no such layer."""
    kind = type(layer)
    if kind is Conv2D and (layer.kernel_size, layer.strides, layer.padding) == ((3, 3), (1, 1), "same") \
            and layer.activation.name == "linear" and layer.use_bias:
        return "conv", layer.filters
    if kind is LeakyReLU:
        return "leaky", layer.negative_slope
    if kind is MaxPooling2D and layer.pool_size == layer.strides and layer.pool_size[0] == layer.pool_size[1] \
            and layer.padding == "same":
        return "pool", layer.pool_size[0]
    if kind is Dropout:
        return "dropout", layer.rate
    if kind is Flatten:
        return "flatten", None
    if kind is Dense and layer.activation.name in ("linear", "softmax"):
        return ("dense" if layer.activation.name == "linear" else "softmax_dense"), layer.units
    return None


@pytest.mark.parametrize("model_name", ["baseline", "dropout"])
def test_the_benchmarks_spec_is_the_lab_model_minicnn_builds(model_name):
    """PyTorch and Keras are built from lab.spec(); minicnn's model comes from minicnn.lab: they must agree."""
    bench_lab = load_script(BENCHMARKS / "lab.py")
    spec = bench_lab.spec(model_name)
    model = bench_lab.build_minicnn(model_name)
    assert [spec_entry(layer) for layer in model.layers] == spec
    assert [out for *_, out in bench_lab.trace_shapes(spec)] == [layer.output_shape[1:] for layer in model.layers]
    assert [tuple(w.shape) for w in model.get_weights()] == bench_lab.weight_shapes(spec)
    assert model.count_params() == bench_lab.count_params(spec) == 356_234


def test_conv_pieces_splits_each_block_into_its_parts():
    out = run("conv_pieces.py", "--steps", 2, "--warmup", 1)
    for block in ("conv2d", "conv2d_1", "conv2d_2"):
        assert any(line.startswith(block + " ") for line in out.splitlines()), block
    assert "matrix products (and glue)" in out and "im2col" in out and "col2im" in out


@needs_fashion_mnist
def test_bench_train_minicnn_steps_with_the_layer_table_and_json(tmp_path):
    json_path = tmp_path / "result.json"
    out = run("bench_train.py", "--steps", 3, "--frameworks", "minicnn", "--layer-steps", 2,
              "--json", json_path)
    assert "minicnn" in out and "FLOP floor" in out
    assert "conv2d+leaky_re_lu+max_pooling2d (fused" in out          # the per-step table, fused blocks
    record = json.loads(json_path.read_text())
    run_ = record["runs"][0]
    assert run_["framework"] == "minicnn" and run_["steps"] == 3
    assert record["summary"]["minicnn"]["epoch_s_median"] > 0


def test_bench_train_refuses_epochs_without_epoch():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train.py"), "--epochs", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--epochs" in result.stderr


def test_same_numbers_compare_tells_identical_from_different(tmp_path):
    import numpy as np
    same_numbers = load_script(BENCHMARKS / "same_numbers.py")
    np.savez(tmp_path / "a.npz", w=np.float32([1.0, 2.0]), p=np.zeros(3))
    np.savez(tmp_path / "b.npz", w=np.float32([1.0, 2.0]), p=np.zeros(3))
    np.savez(tmp_path / "c.npz", w=np.float32([1.0, np.nextafter(np.float32(2), np.float32(3))]), p=np.zeros(3))
    assert same_numbers.main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    assert same_numbers.main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "c.npz")]) == 1

"""The benchmark scripts run and print their tables (tiny runs: this checks that they work,
not how fast anything is; speed is measured by running them, see benchmarks/RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import needs_fashion_mnist

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script, *args, timeout=300):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


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

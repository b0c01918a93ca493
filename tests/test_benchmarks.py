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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OLD_RECORD = BENCHMARKS / "results_2026-11-25_cpu_epoch_fused.json"   # one batch size, before --batch-sizes


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One cheap bench_train.py run shared by the tests below: 2 steps of minicnn at batch 64 and 128,
    with the per-step table, the JSON record and the figure. Returns (stdout, record, folder)."""
    folder = tmp_path_factory.mktemp("bench_train")
    out = run("bench_train.py", "--steps", 2, "--frameworks", "minicnn", "--layer-steps", 2,
              "--batch-sizes", "64,128", "--json", folder / "result.json", "--plot", folder / "result.png")
    return out, json.loads((folder / "result.json").read_text()), folder


@needs_fashion_mnist
def test_bench_train_minicnn_steps_with_the_layer_table_and_json(bench_run):
    out, record, _ = bench_run
    assert "minicnn" in out and "FLOP floor" in out
    assert "conv2d+leaky_re_lu+max_pooling2d (fused" in out          # the per-step table, fused blocks
    run_ = record["runs"][0]
    assert run_["framework"] == "minicnn" and run_["steps"] == 2
    assert record["summary"]["minicnn"]["epoch_s_median"] > 0


@needs_fashion_mnist
def test_bench_train_batch_sizes_report_each_batch_with_its_steps_per_epoch(bench_run):
    out, record, _ = bench_run
    # the first batch size's report as it always was, then a section for 128, then the scaling table
    assert "batch 64, " in out and "extrapolated to 750 steps = 1 epoch" in out
    assert "=== batch 128: 375 steps per epoch (2 timed steps, extrapolated to 375 steps = 1 epoch) ===" in out
    assert "ms per batch of 64;" in out and "ms per batch of 128;" in out        # minicnn's layers at each batch
    scaling = out[out.index("Scaling with the batch"):].splitlines()
    assert [line.split()[:2] for line in scaling[4:6]] == [["64", "750"], ["128", "375"]]

    assert record["batch_sizes"] == [64, 128]
    for batch_size, steps_per_epoch in ((64, 750), (128, 375)):
        result = record["by_batch_size"][str(batch_size)]
        assert result["batch_size"] == batch_size and result["steps_per_epoch"] == steps_per_epoch
        assert result["flops"]["batch_size"] == batch_size
        assert result["floor"]["model_gemms"][0]["m"] == batch_size * 28 * 28       # the first conv's GEMM
        runs = [r for r in record["runs"] if r["batch_size"] == batch_size]
        assert len(runs) == 1 and runs[0]["steps"] == 2                              # 2 steps of that batch
        warm_s = runs[0]["warm_step_mean_s"]
        assert runs[0]["steps_per_epoch"] == steps_per_epoch
        assert runs[0]["extrapolated_epoch_s"] == pytest.approx(warm_s * steps_per_epoch)
        assert runs[0]["warm_images_per_s"] == pytest.approx(batch_size / warm_s)
        row = result["summary"]["minicnn"]
        assert row["epoch_s_median"] == pytest.approx(warm_s * steps_per_epoch)
        assert row["ms_per_image_median"] == pytest.approx(1e3 * warm_s / batch_size)
        assert row["minicnn_over_this_rounds"] == [1.0]
    # the single-batch layout stays where older readers look for it: the first batch size's results
    assert record["summary"] == record["by_batch_size"]["64"]["summary"]
    assert record["floor"] == record["by_batch_size"]["64"]["floor"]


@needs_fashion_mnist
def test_bench_train_plot_writes_a_png(bench_run):
    *_, folder = bench_run
    assert (folder / "result.png").read_bytes()[:8] == PNG_SIGNATURE


def bar_heights(ax):
    return [patch.get_height() for patch in ax.patches]


def load_bench_train(monkeypatch):
    """benchmarks/bench_train.py as a module (for plot_results). It puts benchmarks/ on sys.path to import
    its lab.py; the test's monkeypatch gives sys.path back afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    return load_script(BENCHMARKS / "bench_train.py")


@needs_fashion_mnist
def test_plot_results_draws_a_bar_per_framework_and_batch_size(bench_run, monkeypatch):
    from minicnn.plotting import plt
    _, record, _ = bench_run
    fig = load_bench_train(monkeypatch).plot_results(record)
    try:
        ax = fig.axes[0]
        medians = [record["by_batch_size"][b]["summary"]["minicnn"]["epoch_s_median"] for b in ("64", "128")]
        assert bar_heights(ax) == pytest.approx(medians)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["batch 64\n750 steps/epoch",
                                                                 "batch 128\n375 steps/epoch"]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(text.startswith("minicnn ") for text in legend)
        floor_s = record["floor"]["epoch_s"]
        assert any(text.startswith(f"FLOP floor {floor_s:.1f} s") for text in legend)   # one line: same floor
        assert "--steps 2" in ax.get_title() and record["date"][:10] in ax.get_title()
    finally:
        plt.close(fig)


def test_plot_from_an_old_single_batch_record(tmp_path, monkeypatch):
    """--plot-from reads the records written before --batch-sizes (summary and floor at the top level)."""
    from minicnn.plotting import plt
    png = tmp_path / "old.png"
    assert f"wrote {png}" in run("bench_train.py", "--plot-from", OLD_RECORD, "--plot", png)
    assert png.read_bytes()[:8] == PNG_SIGNATURE

    record = json.loads(OLD_RECORD.read_text())
    fig = load_bench_train(monkeypatch).plot_results(record)
    try:
        ax = fig.axes[0]
        summary = record["summary"]
        assert bar_heights(ax) == pytest.approx([summary[fw]["epoch_s_median"] for fw in ("minicnn", "torch", "keras")])
        labels = [t.get_text() for t in ax.texts]
        for fw in ("torch", "keras"):   # the ratios minicnn/this above the peers' bars
            assert f"{summary[fw]['epoch_s_median']:.1f} s\n{summary[fw]['minicnn_over_this']:.2f}" in labels
        assert [t.get_text() for t in ax.get_xticklabels()] == ["batch 64\n750 steps/epoch"]
        title = ax.get_title()
        assert "--epoch" in title and "Intel(R) Xeon(R) Processor, 2 thread(s)" in title and "2026-11-25" in title
    finally:
        plt.close(fig)


@needs_fashion_mnist
def test_plot_from_a_new_record_writes_beside_it(bench_run, tmp_path):
    *_, folder = bench_run
    json_path = tmp_path / "copy.json"
    json_path.write_text((folder / "result.json").read_text())
    run("bench_train.py", "--plot-from", json_path)                     # no --plot: copy.png beside it
    assert (tmp_path / "copy.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize("framework", ["minicnn", "torch"])
def test_bench_train_worker_trains_at_the_jobs_batch_size(framework, tmp_path):
    """A worker runs the job's batch size, a short last batch included (50 images at 48: 2 steps), as fit does."""
    import numpy as np
    if framework == "torch":
        pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", x_train=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 50))
    job = {"model": "baseline", "threads": 1, "epoch": True, "epochs": 1, "warmup": 1, "batch_size": 48,
           "data": str(tmp_path / "data.npz"), "init": None, "seed": 0, "eval_batch_size": 48, "layer_steps": 0}
    (tmp_path / "job.json").write_text(json.dumps(job))
    run("bench_train.py", "--worker", framework, "--job", tmp_path / "job.json", "--result", tmp_path / "result.json")
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["steps"] == 2 and len(result["step_times_s"]) == 2
    assert result["steps_per_epoch"] == 1000                                    # of the lab's 48,000 images
    assert result["warm_images_per_s"] == pytest.approx(48 / result["warm_step_mean_s"])
    assert np.isfinite(result["train_loss"])


def test_bench_train_refuses_epochs_without_epoch():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train.py"), "--epochs", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--epochs" in result.stderr


@pytest.mark.parametrize("batch_sizes", ["64,x", "0", "64,64"])
def test_bench_train_refuses_bad_batch_sizes(batch_sizes):
    result = subprocess.run([sys.executable, str(BENCHMARKS / "bench_train.py"), "--batch-sizes", batch_sizes],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--batch-sizes" in result.stderr


def test_same_numbers_compare_tells_identical_from_different(tmp_path):
    import numpy as np
    same_numbers = load_script(BENCHMARKS / "same_numbers.py")
    np.savez(tmp_path / "a.npz", w=np.float32([1.0, 2.0]), p=np.zeros(3))
    np.savez(tmp_path / "b.npz", w=np.float32([1.0, 2.0]), p=np.zeros(3))
    np.savez(tmp_path / "c.npz", w=np.float32([1.0, np.nextafter(np.float32(2), np.float32(3))]), p=np.zeros(3))
    assert same_numbers.main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    assert same_numbers.main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "c.npz")]) == 1

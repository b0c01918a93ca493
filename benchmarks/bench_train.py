"""Training speed of the lab's model: minicnn beside PyTorch and Keras, and the FLOP floor.

    python benchmarks/bench_train.py                    # 50 steps each, all installed frameworks
    python benchmarks/bench_train.py --steps 20 --repeats 3 --frameworks minicnn,torch
    python benchmarks/bench_train.py --epoch --model dropout --json results.json
    python benchmarks/bench_train.py --steps 300 --check-accuracy   # do they learn alike?
    python benchmarks/bench_train.py --batch-sizes 64,128,256 --plot results.png   # scaling with the batch
    python benchmarks/bench_train.py --plot-from results.json       # redraw the figure of an earlier run

What it does
  * The lab's recipe: Fashion-MNIST, the 48,000 / 12,000 split (train_test_split,
    random_state=13), batch 64, Adam defaults, categorical cross-entropy, the baseline
    (or --model dropout) model. Every framework starts from the same glorot_uniform
    weights (--init shared, the default) and sees the same batches in the same order.
  * --steps N times N training steps and extrapolates to an epoch of 750 steps (no
    validation); --epoch times one real epoch with validation, as the lab's fit does.
  * Each framework runs in its own subprocess, so thread settings are clean and the
    peak RSS is its own; with --repeats R the runs alternate A, B, C, A, B, C ...
    The table shows medians over repeats; "minicnn/this" is the median of the
    per-round ratios (the machine is shared and noisy: read ratios, not seconds).
  * --batch-sizes 64,128,256 runs the whole comparison at each batch size (default: the
    lab's 64 alone). An epoch is then ceil(48,000 / batch) steps (750, 375, 188; fit's last
    batch may be short), validation runs at the training batch (as fit does), and --steps N
    times N steps of that batch. The order of the runs is: for each round, for each batch
    size, for each framework (round 1: A64 B64 C64 A128 B128 C128, round 2: the same ...).
    A ratio minicnn/this is taken between runs of the same round at the same batch, which
    ran one right after the other, so they saw the same state of the shared machine; and a
    busy spell falls on every batch size of a round alike instead of on the whole comparison
    at one batch size (as running one batch size after the other would do), which keeps the
    per-image costs of different batch sizes comparable too. Each batch size gets its own
    table (the first one as the report always looked), then one table of how each framework
    scales: milliseconds per image of the warm training steps, s/epoch and minicnn/this.
  * Threads: --threads (default os.cpu_count()) for everyone: OMP/MKL/OPENBLAS and
    NUMBA_NUM_THREADS in each worker's environment, threadpoolctl limits in minicnn's,
    torch.set_num_threads / set_num_interop_threads, TF intra/inter-op threads.
  * The floor: the model's FLOPs (lab.count_flops: matrix products only, backward
    = 2x forward, without the first conv's input gradient; 2.2 TFLOP per epoch of the
    baseline) over the float32 matmul rate numpy reaches here (2048^3 sgemm, best of
    several, measured at the start and end of the run, in a worker with minicnn's
    environment). A second, more honest floor times the model's own GEMM shapes alone
    (at each batch size: the shapes grow with the batch).
  * minicnn's cold first step (Numba compilation included) is reported apart from the
    warm steps, and a forward/backward table of the steps fit runs (minicnn.inspection.profile:
    a layer, or a fused conv + activation + pooling block) is timed after training.
  * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are printed; --unset-openblas-env removes them
    from the workers' environment (they slow numpy's BLAS on some machines).
  * --json PATH keeps every number (the record's layout: see make_record); --plot PATH.png
    draws the table (plot_results): seconds per epoch per framework, grouped by batch size,
    the FLOP floor as a line, minicnn/this above the bars; --plot-from PATH.json draws the
    same figure from a record written earlier (old single-batch records included), and
    runs nothing.
"""
import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)       # run from a checkout without installing minicnn

import lab  # noqa: E402  (after the path set-up)

FRAMEWORKS = ("minicnn", "torch", "keras")
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
              "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
# recorded and printed, not changed: they decide how numba's and OpenMP's threads wait
OTHER_ENV = ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "NUMBA_CACHE_DIR")
SGEMM_SIZE = 2048
SGEMM_REPEATS = 7
GEMM_SHAPE_REPEATS = 20      # tries per model GEMM shape at batch 64 (small products: more tries to catch a quiet
GEMM_SHAPE_MIN_REPEATS = 5   # moment); a batch of B gets 20 * 64 / B, at least 5: about the same time per batch size
CHECK_EVAL_BATCH = 256     # batch for the (untimed) validation pass of --check-accuracy
NAMES = {"minicnn": "minicnn", "torch": "PyTorch", "keras": "Keras"}            # in the figure
COLORS = {"minicnn": "tab:blue", "torch": "tab:orange", "keras": "tab:red"}
PLOT_DPI = 120
PLOT_LEGEND_INCHES = 2.6     # the legend sits to the right of the bars
NOTE_CHARS_PER_INCH = 11     # the note under the bars is wrapped to their width (8-point text)
TITLE_CHARS_PER_INCH = 12    # the title (9-point text), likewise
SAME_FLOOR_TOLERANCE = 1e-9   # relative: floors this close are drawn as one line across the figure


def steps_per_epoch(batch_size):
    """Training steps fit runs in one epoch of the lab's 48,000 images: ceil(48,000 / batch), 750 at 64."""
    return math.ceil(lab.TRAIN_SIZE / batch_size)


# ===================================== workers ==========================================
# Each runs in a fresh process started by the driver with the thread variables set.

def run_minicnn(job):
    """Train minicnn with fit() as the lab does; then time each layer for a few steps."""
    threads = job["threads"]
    start = time.perf_counter()
    import numpy as np
    import threadpoolctl
    threadpoolctl.threadpool_limits(limits=threads)   # BLAS (and OpenMP) of numpy; kept for the process
    import minicnn
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    if hasattr(minicnn.backend, "set_random_seed"):
        minicnn.backend.set_random_seed(job["seed"])     # dropout masks
    layers = lab.spec(job["model"])                  # for the FLOP count of the layer table
    model = lab.build_minicnn(job["model"])          # minicnn.lab's model, the one the lab trains
    if job.get("init"):
        with np.load(job["init"]) as data:
            model.set_weights([data[f"w{i}"] for i in range(len(data.files))])
    x_train, labels_train = lab.load_arrays(job["data"], "train")
    x_valid, labels_valid = lab.load_arrays(job["data"], "valid")
    y_train = lab.one_hot(labels_train)
    y_valid = lab.one_hot(labels_valid) if x_valid is not None else None
    build_s = time.perf_counter() - start

    step_times, extra = lab.fit_one_epoch_timed(model, minicnn.callbacks.Callback, x_train, y_train,
                                                x_valid, y_valid, job)

    layer_table = (time_layers(model, layers, x_train, y_train, job["batch_size"], job["layer_steps"])
                   if job["layer_steps"] else None)
    kernel_module = minicnn.kernels.implementation(np.zeros(1, np.float32))
    numba_info = {}
    if "numba" in sys.modules:
        import numba
        numba_info = {"numba_version": numba.__version__, "numba_num_threads": numba.config.NUMBA_NUM_THREADS}
        try:
            numba_info["threading_layer"] = numba.threading_layer()
        except ValueError:   # no parallel kernel has run
            numba_info["threading_layer"] = "none used"
    summary = lab.summarize_steps(step_times, job["warmup"], job["batch_size"])
    return {**summary, **extra, "framework": "minicnn", "version": minicnn.__version__,
            "import_s": import_s, "build_s": build_s,
            "kernels": kernel_module.__name__, "threads": {"threadpoolctl_limit": threads, **numba_info},
            "backend_info": {"blas": blas_info()}, "layers": layer_table,
            "peak_rss_mb": lab.peak_rss_mb(), "step_times_s": [float(t) for t in step_times]}


def time_layers(model, spec, x, y, batch_size, steps):
    """Forward and backward time of each step of the model's plan over `steps` training steps.

    A step is a layer, or a fused Conv2D + LeakyReLU + MaxPooling2D block (minicnn/plan.py): the
    plan fit runs, timed by minicnn.inspection.profile as Model.train_step runs it, one training
    step per call so that medians can be taken (profile puts the weights back after each). `spec`
    is the lab.spec() the model was built from (for the FLOP count). Returns a list of rows: the
    steps, then 'other' (the loss and Python), 'optimizer' and the whole 'step' (times in ms;
    medians resist a busy machine).
    """
    import numpy as np
    from minicnn import inspection
    batches = max(1, len(x) // batch_size)
    profiles = []
    for step in range(steps):
        index = slice((step % batches) * batch_size, (step % batches + 1) * batch_size)
        profiles.append(inspection.profile(model, x[index], y[index], steps=1, warmup=0))

    def ms(values):
        return {"median": float(np.median(values)), "mean": float(np.mean(values))}
    none = ms([0.0])
    flops = lab.count_flops(spec, batch_size)["per_layer"]
    index_of = {id(layer): i for i, layer in enumerate(model.layers)}
    rows = []
    for i, plan_step in enumerate(model.plan.steps):         # the steps profile timed, in its order
        timings = [profile.layers[i] for profile in profiles]
        f = {kind: sum(flops[index_of[id(layer)]][kind] for layer in plan_step.layers)
             for kind in ("forward", "backward")}
        rows.append({"name": timings[0].name, "type": timings[0].type,
                     "output_shape": list(plan_step.layers[-1].output_shape[1:]),
                     "forward_ms": ms([t.forward_ms for t in timings]),
                     "backward_ms": ms([t.backward_ms for t in timings]),
                     "forward_flops": f["forward"], "backward_flops": f["backward"]})
    rows.append({"name": "other", "type": "loss, Python", "output_shape": [],
                 "forward_ms": ms([profile.other_ms for profile in profiles]), "backward_ms": none,
                 "forward_flops": 0, "backward_flops": 0})
    rows.append({"name": "optimizer", "type": type(model.optimizer).__name__, "output_shape": [],
                 "forward_ms": none, "backward_ms": ms([profile.optimizer_ms for profile in profiles]),
                 "forward_flops": 0, "backward_flops": 0})
    rows.append({"name": "step", "type": "total", "output_shape": [],
                 "forward_ms": ms([profile.step_ms for profile in profiles]), "backward_ms": none,
                 "steps": steps, "forward_flops": 0, "backward_flops": 0})
    return rows


def run_sgemm(job):
    """numpy's float32 matmul rate: a square 2048^3 product, and the model's own GEMM shapes at each
    batch size in job["gemm_batch_sizes"] (a dict by batch size, keys as strings, as JSON has them)."""
    import numpy as np
    import threadpoolctl
    threadpoolctl.threadpool_limits(limits=job["threads"])
    rng = np.random.default_rng(0)

    def best_time(fn, repeats):
        fn()                                                       # warm the caches and threads
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    n = SGEMM_SIZE
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    c = np.empty((n, n), np.float32)
    square_s = best_time(lambda: np.matmul(a, b, out=c), SGEMM_REPEATS)
    rate = 2 * n ** 3 / square_s

    gemms_by_batch = {}
    for batch_size in job["gemm_batch_sizes"]:
        repeats = max(GEMM_SHAPE_MIN_REPEATS, round(GEMM_SHAPE_REPEATS * lab.BATCH_SIZE / batch_size))
        shapes = []
        for op, m, k, f in lab.gemm_shapes(lab.spec(job["model"]), batch_size):
            col = rng.standard_normal((m, k), dtype=np.float32)      # im2col patches / layer input
            kernel = rng.standard_normal((k, f), dtype=np.float32)
            dz = rng.standard_normal((m, f), dtype=np.float32)
            fn = {"forward": lambda: col @ kernel, "kernel_grad": lambda: col.T @ dz,
                  "input_grad": lambda: dz @ kernel.T}[op]
            seconds = best_time(fn, repeats)
            shapes.append({"op": op, "m": m, "k": k, "f": f, "seconds": seconds, "repeats": repeats,
                           "gflops": 2 * m * k * f / seconds / 1e9})
        gemms_by_batch[str(batch_size)] = shapes
    return {"framework": "sgemm", "size": n, "repeats": SGEMM_REPEATS, "seconds": square_s,
            "flops_per_s": rate, "model_gemms_by_batch": gemms_by_batch,
            "model_gemm_step_s_by_batch": {b: sum(s["seconds"] for s in shapes)
                                           for b, shapes in gemms_by_batch.items()},
            "blas": blas_info(), "numpy_version": np.__version__, "peak_rss_mb": lab.peak_rss_mb()}


def blas_info():
    """threadpoolctl's view of the BLAS/OpenMP libraries loaded in this process."""
    import threadpoolctl
    keep = ("user_api", "internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads",
            "filepath")
    return [{key: info.get(key) for key in keep if key in info} for info in threadpoolctl.threadpool_info()]


def worker_main(framework, job_path, result_path):
    with open(job_path) as f:
        job = json.load(f)
    if framework == "minicnn":
        result = run_minicnn(job)
    elif framework == "sgemm":
        result = run_sgemm(job)
    else:
        import peers
        result = {"torch": peers.run_torch, "keras": peers.run_keras}[framework](job)
    if framework != "sgemm":
        # lab.summarize_steps extrapolates to the lab's 750 steps; an epoch at this batch has its own count
        result["steps_per_epoch"] = steps_per_epoch(job["batch_size"])
        result["extrapolated_epoch_s"] = result["warm_step_mean_s"] * result["steps_per_epoch"]
    result["env"] = {name: os.environ.get(name) for name in THREAD_ENV + OPENBLAS_ENV + OTHER_ENV}
    with open(result_path, "w") as f:
        json.dump(result, f)


# ===================================== driver ===========================================
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--steps", type=int, default=50,
                      help="time N training steps and extrapolate to an epoch of ceil(48,000 / batch) steps, "
                           "750 at batch 64 (default 50)")
    mode.add_argument("--epoch", action="store_true", help="time one full epoch, validation included")
    p.add_argument("--epochs", type=int, default=1,
                   help="with --epoch: fit this many epochs and report the last one (default 1). The first "
                        "epoch also pays one-time costs (Keras traces its graphs, fit prepares the data); "
                        "with 2 the table shows the steady state, and the first epoch in its own column")
    p.add_argument("--repeats", type=int, default=1, help="rounds of A, B, C runs (default 1)")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                   help="comma-separated subset of minicnn,torch,keras (missing ones are skipped)")
    p.add_argument("--model", choices=("baseline", "dropout"), default="baseline")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    p.add_argument("--warmup", type=int, default=1,
                   help="steps left out of the warm statistics (default 1: the cold first step)")
    p.add_argument("--layer-steps", type=int, default=10,
                   help="steps of minicnn's per-layer timing, after training (default 10; 0 skips it)")
    p.add_argument("--check-accuracy", action="store_true",
                   help="after the --steps, evaluate each framework on the 12,000 validation images")
    p.add_argument("--init", choices=("shared", "own"), default="shared",
                   help="shared: all start from the same glorot weights; own: each its own glorot init")
    p.add_argument("--seed", type=int, default=0, help="seed of the shared initial weights and of dropout")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="start the workers without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    p.add_argument("--fresh-numba-cache", action="store_true",
                   help="give each minicnn worker an empty NUMBA_CACHE_DIR, so its cold step compiles from scratch "
                        "(default: Numba's on-disk cache, filled by earlier runs, is used)")
    p.add_argument("--batch-sizes", default=str(lab.BATCH_SIZE), metavar="B1,B2,...",
                   help=f"run the whole comparison at each of these batch sizes, e.g. 64,128,256 (default: the "
                        f"lab's {lab.BATCH_SIZE}); the rounds go through every batch size")
    p.add_argument("--json", metavar="PATH", help="write every number, the machine and the command here")
    p.add_argument("--plot", metavar="PATH.png",
                   help="draw the table as a PNG: seconds per epoch per framework (median, min-max bar), "
                        "grouped by batch size, the FLOP floor as a line, minicnn/this above the bars")
    p.add_argument("--plot-from", metavar="PATH.json",
                   help="run nothing: draw the figure of a --json record written earlier, to --plot's path "
                        "(default: the record's path with .png)")
    p.add_argument("--verbose", action="store_true", help="show the workers' own output")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.threads < 1 or args.warmup < 0 or args.layer_steps < 0:
        p.error("--steps, --repeats and --threads must be >= 1; --warmup and --layer-steps >= 0")
    if args.epochs < 1 or (args.epochs > 1 and not args.epoch):
        p.error(f"--epochs must be >= 1, and more than 1 goes with --epoch (got --epochs {args.epochs})")
    try:
        args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        p.error(f"--batch-sizes takes whole numbers separated by commas, e.g. 64,128,256 (got {args.batch_sizes!r})")
    if not args.batch_sizes or min(args.batch_sizes) < 1 or len(set(args.batch_sizes)) < len(args.batch_sizes):
        p.error(f"--batch-sizes needs one or more different batch sizes >= 1 (got {args.batch_sizes})")
    return args


def installed(framework):
    if framework == "minicnn":
        return True
    if framework == "keras":
        return importlib.util.find_spec("keras") is not None and importlib.util.find_spec("tensorflow") is not None
    return importlib.util.find_spec(framework) is not None


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    model_name = None
    try:
        with open("/proc/cpuinfo") as f:
            model_name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    versions = {name: package_version(name) for name in
                ("numpy", "numba", "llvmlite", "threadpoolctl", "scikit-learn", "torch", "tensorflow",
                 "tensorflow-cpu", "keras")}
    try:
        import minicnn
        versions["minicnn"] = minicnn.__version__
    except Exception as exc:   # noqa: BLE001  (a broken checkout still gets its peers timed)
        versions["minicnn"] = f"import failed: {exc}"
    commit = None
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "minicnn"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit and dirty:
            commit += " (minicnn/ has uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu_model": model_name, "cpu_count": os.cpu_count(), "cpus_allowed": affinity,
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "versions": versions, "minicnn_commit": commit}


def prepare_data(args, workdir):
    """Load Fashion-MNIST with minicnn's loader, split as the lab, save what the workers need.

    Returns ({batch size: data file}, initial weights file or None, how the split was made). With
    --epoch every batch size trains on the same 48,000 images (one file); with --steps N a batch of
    B trains on the first N*B images, so each batch size has its own file.
    """
    import numpy as np
    from minicnn.datasets import fashion_mnist
    (images, labels), _ = fashion_mnist.load_data()
    train_idx, valid_idx, how = lab.split_indices(len(images))
    valid = {"x_valid": images[valid_idx], "y_valid": labels[valid_idx]} if args.epoch or args.check_accuracy else {}
    if args.epoch:
        path = os.path.join(workdir, "data.npz")
        np.savez(path, x_train=images[train_idx], y_train=labels[train_idx], **valid)
        data_paths = {batch_size: path for batch_size in args.batch_sizes}
    else:
        data_paths = {}
        for batch_size in args.batch_sizes:
            # --steps N: the first N*B training images of the split (wrapping round past 48,000)
            steps_idx = np.resize(train_idx, args.steps * batch_size)
            data_paths[batch_size] = os.path.join(workdir, f"data-{batch_size}.npz")
            np.savez(data_paths[batch_size], x_train=images[steps_idx], y_train=labels[steps_idx], **valid)
    init_path = None
    if args.init == "shared":
        weights = lab.glorot_weights(lab.spec(args.model), seed=args.seed)
        init_path = os.path.join(workdir, "init.npz")
        np.savez(init_path, **{f"w{i}": w for i, w in enumerate(weights)})
    return data_paths, init_path, how


def worker_env(args):
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(args.threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    if args.unset_openblas_env:
        for name in OPENBLAS_ENV:
            env.pop(name, None)
    return env


def run_worker(framework, job, workdir, env, verbose, tag):
    job_path = os.path.join(workdir, f"job-{tag}.json")
    result_path = os.path.join(workdir, f"result-{tag}.json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--job", job_path,
           "--result", result_path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if verbose and (proc.stdout or proc.stderr):
        print(f"--- {tag} output ---\n{proc.stdout}{proc.stderr}--- end {tag} ---", file=sys.stderr)
    if proc.returncode != 0 or not os.path.exists(result_path):
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        print(f"!! {framework} worker failed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
        return {"framework": framework, "failed": True, "returncode": proc.returncode, "error_tail": tail}
    with open(result_path) as f:
        result = json.load(f)
    result["process_wall_s"] = wall
    return result


def epoch_seconds(result, epoch_mode):
    """Seconds of the epoch the table reports: the last one fit ran (--epochs), validation included.

    With one epoch, fit's whole wall time (its set-up included); with more, the last epoch's own.
    """
    if not epoch_mode:
        return result["extrapolated_epoch_s"]
    walls = result.get("epoch_walls_s") or []
    return walls[-1] if len(walls) > 1 else result["fit_wall_s"]


def first_epoch_seconds(result):
    """fit's wall time less its later epochs: the first epoch with every one-time cost of fit."""
    walls = result.get("epoch_walls_s") or []
    return result["fit_wall_s"] - sum(walls[1:])


def images_per_second(result, epoch_mode):
    """Training images per second: the epoch's 48,000 over its training time (--epoch), or the warm steps'."""
    if epoch_mode:
        return lab.TRAIN_SIZE / result["train_s"]
    return result["warm_images_per_s"]


def summarize(args, runs, frameworks, floor, batch_size):
    """Per framework, of the runs at `batch_size`: medians over repeats, median per-round ratios
    minicnn/this (the ratios themselves in 'minicnn_over_this_rounds'), and milliseconds per image
    of the warm training steps."""
    table = {}
    by_round = {}
    runs = [run for run in runs if run["batch_size"] == batch_size]
    for run in runs:
        if not run.get("failed"):
            by_round.setdefault(run["round"], {})[run["framework"]] = run
    for fw in frameworks:
        ok = [r for r in runs if r["framework"] == fw and not r.get("failed")]
        if not ok:
            table[fw] = {"failed": True}
            continue
        epochs = [epoch_seconds(r, args.epoch) for r in ok]
        ratios = [epoch_seconds(rnd["minicnn"], args.epoch) / epoch_seconds(rnd[fw], args.epoch)
                  for _, rnd in sorted(by_round.items()) if "minicnn" in rnd and fw in rnd]
        warm_step_s = statistics.median(r["warm_step_mean_s"] for r in ok)
        row = {"runs": len(ok), "epoch_s_median": statistics.median(epochs), "epoch_s_min": min(epochs),
               "epoch_s_max": max(epochs),
               "images_per_s_median": statistics.median(images_per_second(r, args.epoch) for r in ok),
               "minicnn_over_this": statistics.median(ratios) if ratios else None,
               "minicnn_over_this_rounds": ratios,
               "batch_size": batch_size, "ms_per_image_median": 1e3 * warm_step_s / batch_size,
               "cold_step_s_median": statistics.median(r["cold_step_s"] for r in ok),
               "first_epoch_s_median": (statistics.median(first_epoch_seconds(r) for r in ok)
                                        if args.epoch and args.epochs > 1 else None),
               "warm_step_ms_median": 1e3 * warm_step_s,
               "peak_rss_mb_max": max(r["peak_rss_mb"] for r in ok),
               "version": ok[0].get("version")}
        row["over_floor"] = row["epoch_s_median"] / floor["epoch_s"] if floor else None
        row["over_gemm_floor"] = row["epoch_s_median"] / floor["gemm_epoch_s"] if floor else None
        for key in ("val_accuracy", "val_loss", "train_loss", "train_accuracy"):
            values = [r[key] for r in ok if r.get(key) is not None]
            if values:
                row[key] = statistics.median(values)
        table[fw] = row
    return table


def floor_info(args, sgemm_runs, flops, batch_size):
    """The FLOP floor and the GEMM floor of an epoch at `batch_size` (flops: lab.count_flops at that batch).

    Both count the epoch's images (48,000, and 12,000 of validation with --epoch): the FLOP floor is
    the same at every batch size, the GEMM floor times the products of that batch's shapes.
    """
    ok = [r for r in sgemm_runs if not r.get("failed")]
    if not ok:
        return None
    best = max(ok, key=lambda r: r["flops_per_s"])
    rate = best["flops_per_s"]
    # best time of each GEMM shape over all sgemm runs (the runs list the shapes in the same order)
    gemms = [dict(min(shapes, key=lambda s: s["seconds"]))
             for shapes in zip(*(r["model_gemms_by_batch"][str(batch_size)] for r in ok))]
    gemm_step = sum(s["seconds"] for s in gemms)
    train_flops = flops["train_per_step"] * lab.TRAIN_SIZE // batch_size   # exact: FLOPs grow with the batch
    val_flops = flops["forward_per_image"] * lab.VALID_SIZE if args.epoch else 0
    # the validation pass has only forward GEMMs: their share of the model-GEMM time
    fwd_share = sum(s["seconds"] for s in gemms if s["op"] == "forward") / max(gemm_step, 1e-12)
    gemm_epoch = gemm_step * (lab.TRAIN_SIZE / batch_size)
    if args.epoch:
        gemm_epoch += gemm_step * fwd_share * lab.VALID_SIZE / batch_size
    return {"sgemm_flops_per_s": rate, "sgemm_all": [r["flops_per_s"] for r in ok],
            "epoch_flops": train_flops + val_flops, "train_flops": train_flops, "valid_flops": val_flops,
            "epoch_s": (train_flops + val_flops) / rate, "gemm_step_s": gemm_step, "gemm_epoch_s": gemm_epoch,
            "blas": best["blas"], "model_gemms": gemms}


def fmt(value, spec, width):
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def print_report(args, table, frameworks, floor, flops, minicnn_runs, machine, openblas_env, env, batch_size):
    """The report of the first (or only) batch size: the machine, the floors, the table, minicnn's layers."""
    steps = steps_per_epoch(batch_size)
    mode = (f"1 epoch ({steps} steps + validation of 12,000 images), measured" if args.epoch else
            f"{args.steps} timed steps, extrapolated to {steps} steps = 1 epoch (no validation)")
    if args.epoch and args.epochs > 1:
        mode = (f"{args.epochs} epochs fitted; s/epoch is the last epoch ({steps} steps + validation of 12,000 "
                "images), measured; '1st epoch s' is fit's first epoch with its one-time costs")
    print(f"\nFashion-MNIST lab, {args.model} model, batch {batch_size}, {args.threads} thread(s); {mode}; "
          f"{args.repeats} repeat(s), init {args.init}")
    print(f"CPU: {machine['cpu_model']} ({machine['cpu_count']} logical CPUs, "
          f"{machine['cpus_allowed']} allowed); load average at start {machine['load_average_at_start']}")
    print("OpenBLAS env (driver): " + ", ".join(f"{k}={openblas_env[k]!r}" for k in OPENBLAS_ENV)
          + ("; workers run WITHOUT them (--unset-openblas-env)" if args.unset_openblas_env
             else "; workers inherit them"))
    print("threading env of the workers: " + ", ".join(
        f"{k}={env.get(k)}" for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS") + OTHER_ENV if env.get(k) is not None))
    if floor:
        blas = [f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture')}, "
                f"{b.get('num_threads')} threads, {os.path.basename(b.get('filepath') or '')})"
                for b in floor["blas"] if b.get("user_api") == "blas"]
        print(f"numpy BLAS (threadpoolctl): {'; '.join(blas) or 'none found'}")
        print(f"FLOPs: {flops['train_per_image'] / 1e6:.2f} MFLOP per training image "
              f"({flops['forward_per_image'] / 1e6:.2f} forward) -> {floor['train_flops'] / 1e12:.3f} TFLOP per epoch"
              + (f" + {floor['valid_flops'] / 1e12:.3f} for validation" if floor["valid_flops"] else ""))
        print(f"numpy sgemm {SGEMM_SIZE}^3: {floor['sgemm_flops_per_s'] / 1e9:.1f} GFLOP/s (best of "
              f"{len(floor['sgemm_all'])} measurements: " + ", ".join(f"{r / 1e9:.1f}" for r in floor["sgemm_all"])
              + f") -> FLOP floor {floor['epoch_s']:.1f} s/epoch")
        print(f"numpy GEMMs of the model's own shapes alone: {1e3 * floor['gemm_step_s']:.1f} ms/step -> "
              f"GEMM floor {floor['gemm_epoch_s']:.1f} s/epoch")
    print()
    print_table(args, table, frameworks)
    print("s/epoch: median over repeats; minicnn/this: median of per-round ratios of s/epoch (>1: minicnn slower);"
          "\nx floor: s/epoch over the floor; cold step: the first training step (minicnn: Numba compile"
          f" {'from scratch' if args.fresh_numba_cache else 'or load from its disk cache'} included; Keras: tracing); warm ms: mean step after --warmup steps; peak RSS of the worker process"
          " (data included).")
    for run in minicnn_runs[:1]:
        threads = run.get("threads", {})
        print(f"minicnn kernels: {run.get('kernels')}; numba {threads.get('numba_version', 'not loaded')}, "
              f"{threads.get('numba_num_threads', '-')} threads, threading layer "
              f"{threads.get('threading_layer', '-')}; BLAS limited to {threads.get('threadpoolctl_limit')} threads")
    if minicnn_runs and minicnn_runs[-1].get("layers"):
        print_layers(minicnn_runs[-1]["layers"], batch_size)


def print_table(args, table, frameworks):
    """One row per framework: s/epoch, the ratio minicnn/this, the floors, step times, memory."""
    show_val = any(table[fw].get("val_accuracy") is not None for fw in frameworks if not table[fw].get("failed"))
    show_first = args.epoch and args.epochs > 1
    header = (f"{'framework':<16}{'s/epoch':>9}{'(min-max)':>15}{'images/s':>10}{'minicnn/this':>13}"
              f"{'x FLOP floor':>13}{'x GEMM floor':>13}{'cold step s':>12}{'warm ms':>9}{'peak RSS MB':>12}")
    if show_first:
        header += f"{'1st epoch s':>12}"
    if show_val:
        header += f"{'train loss':>11}{'val loss':>9}{'val acc':>8}"
    print(header)
    print("-" * len(header))
    for fw in frameworks:
        row = table[fw]
        if row.get("failed"):
            print(f"{fw:<16}  failed (see above)")
            continue
        name = f"{fw} {row['version']}"[:15]
        spread = f"({row['epoch_s_min']:.1f}-{row['epoch_s_max']:.1f})" if row["runs"] > 1 else ""
        line = (f"{name:<16}{row['epoch_s_median']:>9.1f}{spread:>15}{row['images_per_s_median']:>10.0f}"
                f"{fmt(row['minicnn_over_this'], '.2f', 13)}{fmt(row['over_floor'], '.1f', 13)}"
                f"{fmt(row['over_gemm_floor'], '.1f', 13)}{row['cold_step_s_median']:>12.2f}"
                f"{row['warm_step_ms_median']:>9.1f}{row['peak_rss_mb_max']:>12.0f}")
        if show_first:
            line += fmt(row.get("first_epoch_s_median"), ".1f", 12)
        if show_val:
            line += (f"{fmt(row.get('train_loss'), '.3f', 11)}{fmt(row.get('val_loss'), '.3f', 9)}"
                     f"{fmt(row.get('val_accuracy'), '.4f', 8)}")
        print(line)


def print_batch_section(args, table, frameworks, floor, minicnn_runs, batch_size):
    """The report of a further --batch-sizes entry: its floors, its table and minicnn's layers at that batch."""
    steps = steps_per_epoch(batch_size)
    what = (f"{steps} steps + validation of 12,000 images, measured" if args.epoch else
            f"{args.steps} timed steps, extrapolated to {steps} steps = 1 epoch")
    print(f"\n=== batch {batch_size}: {steps} steps per epoch ({what}) ===")
    if floor:
        print(f"FLOP floor {floor['epoch_s']:.1f} s/epoch; numpy GEMMs of the model's own shapes at batch "
              f"{batch_size}: {1e3 * floor['gemm_step_s']:.1f} ms/step -> GEMM floor "
              f"{floor['gemm_epoch_s']:.1f} s/epoch")
    print()
    print_table(args, table, frameworks)
    if minicnn_runs and minicnn_runs[-1].get("layers"):
        print_layers(minicnn_runs[-1]["layers"], batch_size)


def print_scaling(tables, frameworks, batch_sizes):
    """How each framework scales with the batch: ms per image of the warm steps, s/epoch, minicnn/this."""
    print("\nScaling with the batch: ms/image = warm training step / batch (median over repeats); s/epoch as in"
          " the tables;\nminicnn/this = median of the per-round ratios of s/epoch at that batch")
    header = f"{'batch':>6}{'steps/epoch':>12}"
    for fw in frameworks:
        header += f"  {fw + ' ms/image':>18}{'s/epoch':>8}" + (f"{'minicnn/this':>13}" if fw != "minicnn" else "")
    print(header)
    print("-" * len(header))
    for batch_size in batch_sizes:
        line = f"{batch_size:>6}{steps_per_epoch(batch_size):>12}"
        for fw in frameworks:
            row = tables[batch_size][fw]
            failed = row.get("failed")
            line += (f"  {fmt(None if failed else row['ms_per_image_median'], '.3f', 18)}"
                     f"{fmt(None if failed else row['epoch_s_median'], '.1f', 8)}")
            if fw != "minicnn":
                line += fmt(None if failed else row["minicnn_over_this"], ".2f", 13)
        print(line)


def print_layers(rows, batch_size=lab.BATCH_SIZE):
    steps = rows[-1].get("steps")
    print(f"\nminicnn per step of the model (a layer, or a fused conv+leaky+pool block): median over {steps}"
          f" warm training steps (ms per batch of {batch_size}; share of the summed medians)")
    header = (f"{'layer':<40}{'output':>10}{'forward ms':>11}{'backward ms':>12}{'share':>7}"
              f"{'fwd GFLOP/s':>12}{'bwd GFLOP/s':>12}")
    print(header)
    print("-" * len(header))
    body = rows[:-1]
    total = sum(r["forward_ms"]["median"] + r["backward_ms"]["median"] for r in body)

    def gflops(flops, milliseconds):
        return flops / (milliseconds / 1e3) / 1e9 if flops and milliseconds > 0 else None

    for row in body:
        fwd, bwd = row["forward_ms"]["median"], row["backward_ms"]["median"]
        shape = "x".join(map(str, row["output_shape"]))
        print(f"{row['name'] + ' (' + row['type'] + ')':<40.39}{shape:>10}{fwd:>11.2f}{bwd:>12.2f}"
              f"{100 * (fwd + bwd) / total:>6.1f}%{fmt(gflops(row['forward_flops'], fwd), '.1f', 12)}"
              f"{fmt(gflops(row['backward_flops'], bwd), '.1f', 12)}")
    step = rows[-1]["forward_ms"]
    print(f"{'sum of the rows':<50}{total:>11.2f}")
    print(f"{'whole step, timed around it':<50}{step['median']:>11.2f}   (mean {step['mean']:.2f})")


def driver_main(args, argv):
    requested = [fw.strip() for fw in args.frameworks.split(",") if fw.strip()]
    unknown = [fw for fw in requested if fw not in FRAMEWORKS]
    if unknown:
        sys.exit(f"--frameworks: unknown {unknown}; choose from {list(FRAMEWORKS)}")
    frameworks = [fw for fw in requested if installed(fw)]
    skipped = [fw for fw in requested if fw not in frameworks]
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}", file=sys.stderr)

    batch_sizes = args.batch_sizes
    several = len(batch_sizes) > 1
    openblas_env = {name: os.environ.get(name) for name in OPENBLAS_ENV}
    machine = machine_info()
    flops = {batch_size: lab.count_flops(lab.spec(args.model), batch_size) for batch_size in batch_sizes}
    workdir = tempfile.mkdtemp(prefix="bench_train_")
    try:
        data_paths, init_path, split = prepare_data(args, workdir)
        env = worker_env(args)

        def job_at(batch_size):
            """The workers' job at one batch size (every framework reads its batch size from here)."""
            return {"model": args.model, "threads": args.threads, "epoch": args.epoch, "epochs": args.epochs,
                    "warmup": args.warmup,
                    "batch_size": batch_size, "data": data_paths[batch_size], "init": init_path, "seed": args.seed,
                    "eval_batch_size": batch_size if args.epoch else CHECK_EVAL_BATCH,   # fit validates at its batch
                    "layer_steps": args.layer_steps}

        sgemm_job = {**job_at(batch_sizes[0]), "gemm_batch_sizes": batch_sizes}
        sgemm_runs = [run_worker("sgemm", sgemm_job, workdir, env, args.verbose, "sgemm-start")]
        runs = []
        for rnd in range(args.repeats):               # the order is explained in the module docstring
            for batch_size in batch_sizes:
                for fw in frameworks:
                    fw_env = env
                    if fw == "minicnn" and args.fresh_numba_cache:
                        fw_env = {**env, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix=f"numba-{rnd}-", dir=workdir)}
                    result = run_worker(fw, job_at(batch_size), workdir, fw_env, args.verbose,
                                        f"{fw}-{rnd}-b{batch_size}")
                    result["round"] = rnd
                    result["batch_size"] = batch_size
                    runs.append(result)
                    if not result.get("failed"):
                        where = f"[round {rnd + 1}/{args.repeats}]" + (f" batch {batch_size:<4}" if several else "")
                        print(f"{where} {fw:<8} {epoch_seconds(result, args.epoch):8.1f} s/epoch"
                              f"  cold step {result['cold_step_s']:.2f} s  warm step "
                              f"{1e3 * result['warm_step_mean_s']:.1f} ms  ({result['process_wall_s']:.0f} s in all)",
                              file=sys.stderr, flush=True)
        sgemm_runs.append(run_worker("sgemm", sgemm_job, workdir, env, args.verbose, "sgemm-end"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    floors = {batch_size: floor_info(args, sgemm_runs, flops[batch_size], batch_size) for batch_size in batch_sizes}
    tables = {batch_size: summarize(args, runs, frameworks, floors[batch_size], batch_size)
              for batch_size in batch_sizes}

    def minicnn_runs(batch_size):
        return [r for r in runs if r["framework"] == "minicnn" and r["batch_size"] == batch_size
                and not r.get("failed")]
    first = batch_sizes[0]
    print_report(args, tables[first], frameworks, floors[first], flops[first], minicnn_runs(first), machine,
                 openblas_env, env, first)
    for batch_size in batch_sizes[1:]:
        print_batch_section(args, tables[batch_size], frameworks, floors[batch_size], minicnn_runs(batch_size),
                            batch_size)
    if several:
        print_scaling(tables, frameworks, batch_sizes)

    record = make_record(args, argv, frameworks, skipped, split, machine, openblas_env, env, flops, floors,
                         tables, sgemm_runs, runs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        print(f"\nwrote {args.json}")
    if args.plot:
        draw(record, args.plot)
    return 0 if all(not table[fw].get("failed") for table in tables.values() for fw in frameworks) else 1


def make_record(args, argv, frameworks, skipped, split, machine, openblas_env, env, flops, floors, tables,
                sgemm_runs, runs):
    """Everything the run measured, as --json writes it and plot_results reads it.

    Layout (keys of the top level):
      date, command, argv, settings (the options, with the frameworks that ran), split, machine,
      openblas_env, worker_env      the run and the machine
      batch_sizes                   [64, 128, ...] in the order they ran
      by_batch_size                 {"64": {batch_size, steps_per_epoch, flops, floor, summary}, ...}
                                    (keys are strings, as JSON writes them); summary holds a row per
                                    framework (s/epoch median/min/max, minicnn_over_this and its
                                    per-round values minicnn_over_this_rounds, ms_per_image_median ...)
      flops, flops_per_layer, floor, summary
                                    the first batch size's, where records before --batch-sizes had
                                    them (so that readers of the single-batch layout keep working)
      sgemm_runs                    the sgemm workers (model GEMMs timed per batch size:
                                    model_gemms_by_batch)
      runs                          every worker's result, with its round and batch_size
    """
    by_batch = {str(batch_size): {"batch_size": batch_size, "steps_per_epoch": steps_per_epoch(batch_size),
                                  "flops": {k: v for k, v in flops[batch_size].items() if k != "per_layer"},
                                  "floor": floors[batch_size], "summary": tables[batch_size]}
                for batch_size in args.batch_sizes}
    first = by_batch[str(args.batch_sizes[0])]
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python", sys.argv[0]] + list(argv)),
            "argv": list(argv), "settings": {**vars(args), "frameworks": frameworks, "skipped": skipped},
            "split": split, "machine": machine, "openblas_env": openblas_env,
            "worker_env": {name: env.get(name) for name in THREAD_ENV + OPENBLAS_ENV + OTHER_ENV},
            "flops": first["flops"], "flops_per_layer": flops[args.batch_sizes[0]]["per_layer"],
            "floor": first["floor"], "sgemm_runs": sgemm_runs, "summary": first["summary"],
            "batch_sizes": list(args.batch_sizes), "by_batch_size": by_batch, "runs": runs}


# ===================================== the figure =======================================
def batch_results(record):
    """The results of a --json record per batch size, in the order they ran: a list of dicts with
    batch_size, steps_per_epoch, summary (a row per framework) and floor (None if sgemm failed).

    Reads both layouts: 'by_batch_size' (records from --batch-sizes on) and the older records of one
    batch size, whose summary and floor sit at the top level.
    """
    if not isinstance(record, dict) or not ("by_batch_size" in record or "summary" in record):
        raise ValueError("not a record written by bench_train.py --json (it has no 'summary')")
    if "by_batch_size" in record:
        return [record["by_batch_size"][str(batch_size)] for batch_size in record["batch_sizes"]]
    batch_size = (record.get("flops") or {}).get("batch_size", lab.BATCH_SIZE)
    return [{"batch_size": batch_size, "steps_per_epoch": steps_per_epoch(batch_size),
             "summary": record["summary"], "floor": record.get("floor")}]


def describe_mode(settings):
    """How the seconds per epoch were measured, in words, from a record's settings."""
    epochs = settings.get("epochs") or 1
    if settings.get("epoch") and epochs > 1:
        return f"--epoch --epochs {epochs}: the last of {epochs} epochs, measured (validation included)"
    if settings.get("epoch"):
        return "--epoch: one epoch measured (validation included)"
    return f"--steps {settings.get('steps')}: warm steps extrapolated to an epoch (no validation)"


def plot_results(record, path=None):
    """Draw a --json record as a bar chart and return the matplotlib Figure (saved to `path` as a PNG if given).

    One group of bars per batch size, one bar per framework: the median seconds per epoch, with the
    min-max over the rounds as an error bar; above each bar its median and, for the peers, the ratio
    minicnn/this (median of the per-round ratios). The FLOP floor measured in the same run is a
    dashed line (one per group if the groups' floors differ), the GEMM floor a dotted line per group.
    Reads only the record (see batch_results), so a figure can be made for any earlier run.
    """
    from minicnn.plotting import plt, save_figure   # selects Agg where there is no display
    groups = batch_results(record)
    settings, machine = record.get("settings", {}), record.get("machine", {})
    frameworks = [fw for fw in settings.get("frameworks", FRAMEWORKS) if any(fw in g["summary"] for g in groups)]
    width = 0.8 / max(len(frameworks), 1)
    bars_inches = max(4.5, 1.0 + 0.7 * len(groups) * len(frameworks))
    # constrained layout makes room for the title, the legend beside the bars and the note under them
    fig, ax = plt.subplots(figsize=(bars_inches + PLOT_LEGEND_INCHES, 5.2), constrained_layout=True)
    top = 0.0
    for j, fw in enumerate(frameworks):
        rows = [(i, g["summary"][fw]) for i, g in enumerate(groups)
                if fw in g["summary"] and not g["summary"][fw].get("failed")]
        if not rows:
            continue
        x = [i + (j - (len(frameworks) - 1) / 2) * width for i, _ in rows]
        median = [row["epoch_s_median"] for _, row in rows]
        spread = [[row["epoch_s_median"] - row["epoch_s_min"] for _, row in rows],
                  [row["epoch_s_max"] - row["epoch_s_median"] for _, row in rows]]
        label = f"{NAMES.get(fw, fw)} {rows[0][1].get('version') or ''}".strip()
        ax.bar(x, median, width * 0.92, yerr=spread, capsize=3, color=COLORS.get(fw), label=label,
               error_kw={"elinewidth": 1})
        for xi, (_, row) in zip(x, rows):
            text = f"{row['epoch_s_median']:.1f} s"
            if fw != "minicnn" and row.get("minicnn_over_this") is not None:
                text += f"\n{row['minicnn_over_this']:.2f}"
            ax.annotate(text, (xi, row["epoch_s_max"]), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
            top = max(top, row["epoch_s_max"])

    floors = [g.get("floor") for g in groups]           # None where the sgemm worker failed
    flop_floors = [floor["epoch_s"] for floor in floors if floor]
    gemm_floors = [floor["gemm_epoch_s"] for floor in floors if floor and floor.get("gemm_epoch_s")]
    one_floor = (len(flop_floors) == len(groups)
                 and max(flop_floors) - min(flop_floors) <= SAME_FLOOR_TOLERANCE * max(flop_floors))
    if one_floor:   # the FLOP floor counts the epoch's images: the same at every batch size
        rate = floors[0]["sgemm_flops_per_s"] / 1e9
        ax.axhline(flop_floors[0], color="black", linestyle="--", linewidth=1,
                   label=f"FLOP floor {flop_floors[0]:.1f} s (numpy sgemm {rate:.0f} GFLOP/s)")
    flop_label, gemm_label = "FLOP floor (per batch size)", "GEMM floor (the model's products alone)"
    for i, floor in enumerate(floors):
        if not floor:
            continue
        if not one_floor:
            ax.hlines(floor["epoch_s"], i - 0.45, i + 0.45, color="black", linestyle="--", linewidth=1,
                      label=flop_label)
            flop_label = None                          # one legend entry for all the groups
        if floor.get("gemm_epoch_s"):
            ax.hlines(floor["gemm_epoch_s"], i - 0.45, i + 0.45, color="dimgray", linestyle=":", linewidth=1.5,
                      label=gemm_label)
            gemm_label = None
    top = max([top] + flop_floors + gemm_floors)

    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"batch {g['batch_size']}\n{g['steps_per_epoch']} steps/epoch" for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(0, 1.15 * top if top > 0 else 1)     # room for the numbers above the bars
    ax.set_ylabel("seconds per epoch" + ("" if settings.get("epoch") else " (extrapolated)"))
    note = ("Above the bars: median s/epoch and, for the peers, minicnn/this (the median of the per-round "
            f"ratios; > 1: minicnn slower). Error bars: min-max over {settings.get('repeats', 1)} round(s).")
    ax.set_xlabel(textwrap.fill(note, width=int(NOTE_CHARS_PER_INCH * bars_inches)), fontsize=8)
    cpu = machine.get("cpu_model") or "unknown CPU"     # the record's machine, not this one
    title = [f"Fashion-MNIST lab, {settings.get('model', 'baseline')} model: training time per epoch",
             describe_mode(settings),
             f"{cpu}, {settings.get('threads')} thread(s) of {machine.get('cpu_count')} logical CPUs; "
             f"{str(record.get('date', ''))[:10]}"]
    # each line wrapped to the bars' width (a one-batch-size figure is narrow), as the note below
    title_chars = int(TITLE_CHARS_PER_INCH * bars_inches)
    ax.set_title("\n".join(textwrap.fill(line, width=title_chars) for line in title), fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)   # beside the bars
    if path is not None:
        save_figure(fig, path, dpi=PLOT_DPI)
    return fig


def draw(record, path):
    """plot_results to `path`, then close the figure (pyplot keeps open figures)."""
    from minicnn.plotting import plt
    plt.close(plot_results(record, path))
    print(f"wrote {path}")


def plot_from_main(args):
    """--plot-from: the figure of an earlier --json record; nothing is run."""
    with open(args.plot_from) as f:
        record = json.load(f)
    try:
        batch_results(record)
    except ValueError as exc:
        sys.exit(f"--plot-from {args.plot_from}: {exc}")
    draw(record, args.plot or os.path.splitext(args.plot_from)[0] + ".png")
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.job, args.result)
        return 0
    if args.plot_from:
        return plot_from_main(args)
    return driver_main(args, argv)


if __name__ == "__main__":
    sys.exit(main())

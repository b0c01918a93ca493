"""Time the reference (NumPy) kernels against the Numba CPU kernels on the lab's shapes.

The shapes are those of the Fashion-MNIST lab model at batch 64:
  im2col / col2im   3x3 'same' convolutions on (64,28,28,1), (64,14,14,32), (64,7,7,64)
  maxpool fwd / bwd 2x2 stride 2 'same' pooling on (64,28,28,32), (64,14,14,64), (64,7,7,128)
                    (7 -> 4 with one padding row/column at the bottom/right)
  fused fwd / bwd   Conv2D's bias + LeakyReLU(0.1) + that pooling in one kernel (minicnn/plan.py),
                    on the same shapes; a second table times it against the three Numba steps
                    it replaces (bias add, LeakyReLU, max-pool; and back, with the bias gradient)

The first call of each Numba kernel is timed on its own: it compiles, or loads the
compiled code from Numba's disk cache. Then each repeat runs the reference and the
Numba kernel back to back (A, B, A, B, ...), so a noisy neighbour slows both alike;
the table shows medians (warm-up calls excluded) and their ratio.

--parallel also compiles the batch loops with parallel=True (prange over the images,
on all cores) and times them: alone, and inside the lab model's conv/pool sequence
with its matrix products, where Numba's threads and NumPy's BLAS threads share the cores.

    python benchmarks/bench_kernels.py                # float32, 50 repeats
    python benchmarks/bench_kernels.py --cold         # compile into an empty cache first
    python benchmarks/bench_kernels.py --parallel     # serial vs prange-parallel kernels
    python benchmarks/bench_kernels.py --dtype float64 --repeats 100
"""
import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

# These two slow NumPy's BLAS on some machines here (see DESIGN.md); they must go
# before NumPy loads it. The kernels use no BLAS, but we say which one is loaded.
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BATCH = 64
CONV_SHAPES = [(BATCH, 28, 28, 1), (BATCH, 14, 14, 32), (BATCH, 7, 7, 64)]     # input of each 3x3 conv
POOL_SHAPES = [(BATCH, 28, 28, 32), (BATCH, 14, 14, 64), (BATCH, 7, 7, 128)]   # input of each 2x2 pool
FILTERS = [32, 64, 128]                                                        # output channels of each conv
BATCH_LOOPS = ["_im2col_batch", "_col2im_batch", "_maxpool_forward_batch", "_maxpool_backward_batch"]
FUSED_LOOPS = ["_bias_leaky_maxpool_forward_batch", "_bias_leaky_maxpool_backward_batch"]   # serial only
SLOPE = 0.1


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per kernel (default 50)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--cold", action="store_true",
                        help="use an empty Numba cache, so the first calls show the compile time")
    parser.add_argument("--parallel", action="store_true",
                        help="also time the kernels compiled with parallel=True (prange on all cores)")
    return parser.parse_args()


def main():
    args = parse_args()
    if args.cold:  # must be set before Numba is imported
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="minicnn-numba-cache-")

    import numba
    import numpy as np

    from minicnn.kernels import Window, reference
    t0 = time.perf_counter()
    from minicnn.kernels import cpu
    import_ms = (time.perf_counter() - t0) * 1e3

    print_environment(np, numba, args)
    print(f"import minicnn.kernels.cpu: {import_ms:.0f} ms; cpu.PARALLEL = {cpu.PARALLEL}\n")
    dtype = np.dtype(args.dtype)
    cases = make_cases(np, Window, reference, dtype)

    first_calls(cpu, cases)

    parallel_loops = {}
    if args.parallel:
        t0 = time.perf_counter()
        parallel_loops = {name: numba.njit(parallel=True)(getattr(cpu, name).py_func) for name in BATCH_LOOPS}
        with swapped(cpu, parallel_loops):
            for _, _, call in cases:
                call(cpu)
        print(f"compiling the parallel=True twins (not cached): {time.perf_counter() - t0:.2f} s; "
              f"threading layer {numba.threading_layer()}, {numba.get_num_threads()} threads\n")

    kernel_table(np, cpu, reference, cases, parallel_loops, args)
    fusion_table(np, cpu, Window, reference, dtype, args)
    if args.parallel:
        sequence_table(np, numba, cpu, Window, parallel_loops, dtype, args)


def lab_windows(Window, shape):
    """The lab's windows over an (N, H, W, C) input: its 3x3 convolution and its 2x2 pooling, both 'same'."""
    hw = shape[1:3]
    return Window.over(hw, (3, 3), (1, 1), "same"), Window.over(hw, (2, 2), (2, 2), "same")


def make_cases(np, Window, reference, dtype):
    """[(kernel name, input shape, call(module))] for the lab's shapes."""
    rng = np.random.default_rng(0)
    cases = []
    for shape in CONV_SHAPES:
        _, h, w, c = shape
        conv, _ = lab_windows(Window, shape)
        x = rng.standard_normal(shape).astype(dtype)
        col = rng.standard_normal((BATCH * h * w, 9 * c)).astype(dtype)
        cases.append(("im2col 3x3", shape, lambda m, x=x, win=conv: m.im2col(x, win)))
        cases.append(("col2im 3x3", shape, lambda m, col=col, win=conv: m.col2im(col, win)))
    for shape in POOL_SHAPES:
        _, pool = lab_windows(Window, shape)
        x = rng.standard_normal(shape).astype(dtype)
        y, argmax = reference.maxpool_forward(x, pool)
        dy = rng.standard_normal(y.shape).astype(dtype)
        cases.append(("maxpool fwd 2x2", shape, lambda m, x=x, win=pool: m.maxpool_forward(x, win)))
        cases.append(("maxpool bwd 2x2", shape,
                      lambda m, dy=dy, a=argmax, win=pool: m.maxpool_backward(dy, a, win)))
    for shape, (z, bias, pool, y, argmax, dy) in zip(POOL_SHAPES, fused_inputs(np, Window, reference, dtype)):
        cases.append(("fused fwd", shape,
                      lambda m, z=z, b=bias, win=pool: m.bias_leaky_maxpool_forward(z, b, SLOPE, win)))
        cases.append(("fused bwd", shape,
                      lambda m, dy=dy, y=y, a=argmax, win=pool: m.bias_leaky_maxpool_backward(dy, y, a, SLOPE, win)))
    return cases


def fused_inputs(np, Window, reference, dtype):
    """For each pool shape: z (the convolution before its bias), bias, the pooling window, and y, argmax, dy."""
    rng = np.random.default_rng(2)
    inputs = []
    for shape in POOL_SHAPES:
        _, pool = lab_windows(Window, shape)
        z = rng.standard_normal(shape).astype(dtype)
        bias = rng.standard_normal(shape[3]).astype(dtype)
        y, argmax = reference.bias_leaky_maxpool_forward(z, bias, SLOPE, pool)
        inputs.append((z, bias, pool, y, argmax, rng.standard_normal(y.shape).astype(dtype)))
    return inputs


def fusion_table(np, cpu, Window, reference, dtype, args):
    """The fused kernels against the three Numba steps they replace, on the lab's shapes."""
    print("fused kernel vs the steps it replaces (all Numba), ms per call:")
    header = f"{'direction':10s} {'shape':13s} {'three steps':>11s} {'fused':>7s} {'speedup':>8s}"
    print(header)
    print("-" * len(header))
    for shape, (z, bias, pool, y, argmax, dy) in zip(POOL_SHAPES, fused_inputs(np, Window, reference, dtype)):
        zb = z + bias

        def three_forward():
            a = z + bias                                             # Conv2D adds its bias
            a = cpu.leaky_relu_forward(a, SLOPE)                     # LeakyReLU
            return cpu.maxpool_forward(a, pool)                      # MaxPooling2D

        def three_backward():
            d = cpu.maxpool_backward(dy, argmax, pool)
            d = cpu.leaky_relu_backward(d, zb, SLOPE)
            return d, cpu.sum_rows(d.reshape(-1, shape[-1]))         # the bias gradient

        for direction, three, fused in (
                ("forward", three_forward, lambda: cpu.bias_leaky_maxpool_forward(z, bias, SLOPE, pool)),
                ("backward", three_backward, lambda: cpu.bias_leaky_maxpool_backward(dy, y, argmax, SLOPE, pool))):
            three_ms, fused_ms = time_side_by_side(np, three, fused, args.repeats, args.warmup)
            print(f"{direction:10s} {str(shape[1:]):13s} {three_ms:11.3f} {fused_ms:7.3f} {three_ms / fused_ms:7.1f}x")
    print()


def first_calls(cpu, cases):
    """Time the first call of each kernel: a compile, or a load from Numba's disk cache."""
    print("first call of each Numba kernel for this dtype (compile, or load from the cache):")
    loops = dict(zip(["im2col 3x3", "col2im 3x3", "maxpool fwd 2x2", "maxpool bwd 2x2", "fused fwd", "fused bwd"],
                     [getattr(cpu, name) for name in BATCH_LOOPS + FUSED_LOOPS]))
    total = 0.0
    for kernel, _, call in cases:
        loop = loops[kernel]
        if loop.signatures:
            continue   # done for an earlier shape
        t0 = time.perf_counter()
        call(cpu)
        seconds = time.perf_counter() - t0
        total += seconds
        hits = sum(loop.stats.cache_hits.values())
        print(f"  {kernel:16s} {seconds:6.2f} s  ({'loaded from cache' if hits else 'compiled'})")
    print(f"  {'total':16s} {total:6.2f} s\n")


def kernel_table(np, cpu, reference, cases, parallel_loops, args):
    header = f"{'kernel':16s} {'shape':13s} {'reference ms':>12s} {'numba ms':>9s} {'speedup':>8s}"
    if parallel_loops:
        header += f" {'reference ms':>12s} {'parallel ms':>11s} {'speedup':>8s}"
    print(header)
    print("-" * len(header))
    for kernel, shape, call in cases:
        ref_ms, numba_ms = time_side_by_side(np, lambda: call(reference), lambda: call(cpu),
                                             args.repeats, args.warmup)
        line = f"{kernel:16s} {str(shape[1:]):13s} {ref_ms:12.3f} {numba_ms:9.3f} {ref_ms / numba_ms:7.1f}x"
        if parallel_loops and kernel.startswith("fused"):
            line += f" {'-':>12s} {'-':>11s} {'-':>8s}"    # no parallel twin: serial by design
        elif parallel_loops:
            with swapped(cpu, parallel_loops):
                ref2_ms, par_ms = time_side_by_side(np, lambda: call(reference), lambda: call(cpu),
                                                    args.repeats, args.warmup)
            line += f" {ref2_ms:12.3f} {par_ms:11.3f} {ref2_ms / par_ms:7.1f}x"
        print(line)
    print(f"\nms per call: medians of {args.repeats} interleaved repeats after {args.warmup} warm-up "
          f"calls; speedup = reference / numba.")
    print(f"load average: {load_average()} (above ~0.1, other processes shared the {os.cpu_count()} cores)\n")


def sequence_table(np, numba, cpu, Window, parallel_loops, dtype, args):
    """The kernels among the matrix products of the lab's three conv/pool blocks (forward and backward)."""
    rng = np.random.default_rng(1)
    blocks = []
    for shape, filters in zip(CONV_SHAPES, FILTERS):
        x = rng.standard_normal(shape).astype(dtype)
        kernel = rng.standard_normal((9 * shape[3], filters)).astype(dtype)   # (KH*KW*C, F)
        blocks.append((x, kernel))

    def training_step():
        for x, kernel in blocks:
            n, h, w, _ = x.shape
            conv, pool = lab_windows(Window, x.shape)
            col = cpu.im2col(x, conv)                                         # (N*H*W, 9*C)
            z = (col @ kernel).reshape(n, h, w, -1)                           # (N, H, W, F)
            y, argmax = cpu.maxpool_forward(z, pool)
            dz = cpu.maxpool_backward(y, argmax, pool).reshape(n * h * w, -1)
            _ = col.T @ dz                                                    # kernel gradient
            cpu.col2im(dz @ kernel.T, conv)                                   # input gradient

    def timed_block(steps):
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            training_step()
            times.append(time.perf_counter() - t0)
        return times

    # Blocks of steps, serial then parallel, a few rounds: a block lets each variant's
    # threads settle as they would in training (Numba's OpenMP threads spin after a call).
    times = {"serial": [], "parallel": []}
    for _ in range(3):
        for variant in times:
            with swapped(cpu, parallel_loops if variant == "parallel" else {}):
                training_step()
                times[variant] += timed_block(max(args.repeats // 5, 5))
    print("the lab's three conv/pool blocks, forward + backward, kernels among BLAS matrix products:")
    for variant, values in times.items():
        print(f"  numba {variant:8s}: median {np.median(values) * 1e3:7.2f} ms, min {min(values) * 1e3:7.2f} ms")
    print(f"  parallel / serial (medians): {np.median(times['parallel']) / np.median(times['serial']):.2f}")


@contextlib.contextmanager
def swapped(cpu, loops):
    """Let cpu.py's wrappers call other batch loops (the parallel twins) for a while."""
    saved = {name: getattr(cpu, name) for name in loops}
    for name, loop in loops.items():
        setattr(cpu, name, loop)
    try:
        yield
    finally:
        for name, loop in saved.items():
            setattr(cpu, name, loop)


def time_side_by_side(np, run_a, run_b, repeats, warmup):
    """Median ms of run_a and run_b, called in turn (A, B, A, B, ...)."""
    times_a, times_b = [], []
    for step in range(warmup + repeats):
        for run, times in ((run_a, times_a), (run_b, times_b)):
            t0 = time.perf_counter()
            run()
            if step >= warmup:
                times.append(time.perf_counter() - t0)
    return float(np.median(times_a)) * 1e3, float(np.median(times_b)) * 1e3


def print_environment(np, numba, args):
    from threadpoolctl import threadpool_info

    print(f"Python {sys.version.split()[0]}, NumPy {np.__version__}, Numba {numba.__version__}, "
          f"dtype {args.dtype}, batch {BATCH}")
    print(f"CPU cores: {os.cpu_count()}, Numba threads: {numba.get_num_threads()}, load average: {load_average()}")
    for pool in threadpool_info():   # the BLAS NumPy loaded (and any OpenMP runtime)
        print(f"{pool.get('user_api')}: {pool.get('internal_api')} {pool.get('version') or ''} "
              f"{'kernel ' + pool['architecture'] + ', ' if pool.get('architecture') else ''}"
              f"{pool.get('num_threads')} threads ({Path(pool.get('filepath', '')).name})")
    print(f"Numba cache: {os.environ.get('NUMBA_CACHE_DIR', 'next to minicnn/kernels/cpu.py (__pycache__)')}")


def load_average():
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()

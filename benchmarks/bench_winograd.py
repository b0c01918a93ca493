"""Winograd F(2x2, 3x3) against the im2col path, on the lab's three 3x3 convolutions (float32).

The shapes are the lab model's at batch 64 (minicnn/lab.py): 3x3 'same', stride 1, on
(28, 28, 1) -> 32, (14, 14, 32) -> 64, (7, 7, 64) -> 128. For each layer, four pairs:

  forward           kernels.im2col(x) @ kernel               vs winograd.conv3x3_forward
  backward input    kernels.col2im(dz @ kernel^T)            vs winograd.conv3x3_backward_input
  backward kernel   col^T @ dz, col kept from the forward    vs winograd.conv3x3_backward_kernel
  kernel, no col    im2col(x), then col^T @ dz               vs the same Winograd call: what the kernel
                    gradient costs a layer whose forward ran Winograd and so made no col

exactly as Conv2D.correlate and Conv2D.backward_correlate compute them (layers/convolutional.py).
Each pair is called in turn (im2col, Winograd, im2col, ...), so that a busy neighbour slows both
alike; the table shows the medians and their ratio (above 1: Winograd is faster), and each path's
largest float32 error against the exact result (the same path in float64).
With --rounds 2 the whole table is measured twice: the spread between rounds is the noise.

    python benchmarks/bench_winograd.py                           # 20 calls per pair, 2 rounds
    python benchmarks/bench_winograd.py --clock cpu --blas-threads 1
                    # CPU seconds of one thread: the work each path does, steadier on a busy machine
    python benchmarks/bench_winograd.py --layers conv2,conv3 --repeats 50
"""
import argparse
import os
import sys
import time
from pathlib import Path

# These two slow NumPy's BLAS on some machines here (see DESIGN.md); they must go before
# NumPy loads it (as in bench_kernels.py).
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np                                          # noqa: E402

from minicnn import kernels                                 # noqa: E402
from minicnn.kernels import Window, winograd                # noqa: E402

# (name, input (H, W, C), filters): the lab's three convolutions
LAYERS = [("conv1", (28, 28, 1), 32), ("conv2", (14, 14, 32), 64), ("conv3", (7, 7, 64), 128)]
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each side per pair (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="measure the whole table this many times (default 2)")
    parser.add_argument("--batch", type=int, default=64, help="images per batch (default 64, the lab's)")
    parser.add_argument("--layers", default="conv1,conv2,conv3", help="which layers (default all three)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of the process, all its threads")
    parser.add_argument("--chunk-kib", type=int, default=None,
                        help="winograd.CHUNK_BYTES in KiB: the batch goes through in chunks of about this size")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit NumPy's BLAS to this many threads (default: as loaded)")
    return parser.parse_args()


def lab_cases(batch, names, seed=0):
    """[(layer name, window, x, kernel, dz)] in float32, for the chosen layers."""
    rng = np.random.default_rng(seed)
    cases = []
    for name, (h, w, c), f in LAYERS:
        if name not in names:
            continue
        window = Window.over((h, w), (3, 3), (1, 1), "same")
        x = rng.standard_normal((batch, h, w, c), dtype=np.float32)
        kernel = rng.standard_normal((3, 3, c, f), dtype=np.float32) * np.float32(1 / np.sqrt(9 * c))
        dz = rng.standard_normal((batch, window.oh, window.ow, f), dtype=np.float32)
        cases.append((name, window, x, kernel, dz))
    return cases


def pairs(window, x, kernel, dz):
    """[(pass, im2col path, Winograd)] for one layer: functions of the arrays (x, kernel, dz), so that
    the same code also gives the exact float64 result (errors)."""
    n, f = x.shape[0], kernel.shape[3]

    def im2col_forward(x, kernel, dz):
        return (kernels.im2col(x, window) @ kernel.reshape(-1, f)).reshape(n, window.oh, window.ow, f)

    def im2col_backward_input(x, kernel, dz):
        kernel_t = kernel.reshape(-1, f).T.copy()                     # as Conv2D.backward_correlate
        return kernels.col2im(dz.reshape(-1, f) @ kernel_t, window)

    col = kernels.im2col(x, window)                                   # kept from the forward, as Conv2D does

    def im2col_backward_kernel(x, kernel, dz):
        kept = col if x.dtype == col.dtype else kernels.im2col(x, window)
        return (kept.T @ dz.reshape(-1, f)).reshape(kernel.shape)

    def im2col_backward_kernel_no_col(x, kernel, dz):
        return (kernels.im2col(x, window).T @ dz.reshape(-1, f)).reshape(kernel.shape)

    def winograd_forward(x, kernel, dz):
        return winograd.conv3x3_forward(x, kernel, window)

    def winograd_backward_input(x, kernel, dz):
        return winograd.conv3x3_backward_input(dz, kernel, window)

    def winograd_backward_kernel(x, kernel, dz):
        return winograd.conv3x3_backward_kernel(x, dz, window)

    return [("forward", im2col_forward, winograd_forward),
            ("backward input", im2col_backward_input, winograd_backward_input),
            ("backward kernel", im2col_backward_kernel, winograd_backward_kernel),
            ("kernel, no col", im2col_backward_kernel_no_col, winograd_backward_kernel)]


def errors(exact, fast, arrays):
    """max |result - exact float64 result| of the im2col path and of Winograd, in float32."""
    truth = exact(*(a.astype(np.float64) for a in arrays))
    return float(abs(exact(*arrays) - truth).max()), float(abs(fast(*arrays) - truth).max())


def time_side_by_side(run_a, run_b, repeats, warmup, clock):
    """Median ms of run_a and run_b, called in turn (A, B, A, B, ...)."""
    times_a, times_b = [], []
    for step in range(warmup + repeats):
        for run, times in ((run_a, times_a), (run_b, times_b)):
            t0 = clock()
            run()
            if step >= warmup:
                times.append(clock() - t0)
    return float(np.median(times_a)) * 1e3, float(np.median(times_b)) * 1e3


def print_environment(args):
    import numba
    from threadpoolctl import threadpool_info

    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"Python {sys.version.split()[0]}, NumPy {np.__version__}, Numba {numba.__version__}, float32, "
          f"batch {args.batch}, {args.repeats} calls per side, clock {args.clock}")
    print(f"CPU cores: {os.cpu_count()}, load average: {load}; winograd transforms: {winograd.TRANSFORMS}, "
          f"chunks of about {winograd.CHUNK_BYTES >> 10} KiB")
    for pool in threadpool_info():
        print(f"{pool.get('user_api')}: {pool.get('internal_api')} {pool.get('version') or ''} "
              f"{pool.get('num_threads')} threads")
    print()


def main():
    args = parse_args()
    limits = None
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=args.blas_threads, user_api="blas")
    chunk_bytes = winograd.CHUNK_BYTES
    if args.chunk_kib is not None:
        winograd.CHUNK_BYTES = args.chunk_kib << 10
    try:
        run(args)
    finally:
        winograd.CHUNK_BYTES = chunk_bytes
        if limits is not None:
            limits.restore_original_limits()


def run(args):
    print_environment(args)
    clock = CLOCKS[args.clock]
    cases = lab_cases(args.batch, args.layers.split(","))

    header = (f"{'layer':6s} {'shape':17s} {'pass':16s} {'im2col ms':>10s} {'winograd ms':>12s} {'ratio':>6s}"
              f" {'im2col err':>11s} {'winograd err':>12s}")
    ratios = {}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number} of {args.rounds} (ratio = im2col ms / winograd ms, above 1: Winograd is "
              f"faster; err = max |result - exact float64 result|)")
        print(header)
        print("-" * len(header))
        for name, window, x, kernel, dz in cases:
            shape = f"{x.shape[1:]}->{kernel.shape[3]}"
            arrays = (x, kernel, dz)
            for what, exact, fast in pairs(window, x, kernel, dz):
                exact_error, fast_error = errors(exact, fast, arrays)    # also the first (warm-up) calls
                exact_ms, fast_ms = time_side_by_side(lambda: exact(*arrays), lambda: fast(*arrays),
                                                      args.repeats, args.warmup, clock)
                ratio = exact_ms / fast_ms
                ratios.setdefault((name, what), []).append(ratio)
                print(f"{name:6s} {shape:17s} {what:16s} {exact_ms:10.2f} {fast_ms:12.2f} {ratio:6.2f}"
                      f" {exact_error:11.2e} {fast_error:12.2e}")
        print()
    if args.rounds > 1:
        print("ratio in each round:")
        for (name, what), values in ratios.items():
            print(f"  {name:6s} {what:16s} " + " ".join(f"{r:5.2f}" for r in values))


if __name__ == "__main__":
    main()

"""Where the time of the lab's convolutions goes, inside real training steps (minicnn only).

Trains the lab's baseline on random images with Model.train_step, the step fit runs, and puts a clock on:
  - each fused Conv2D + LeakyReLU + MaxPooling2D step's forward and backward (minicnn/plan.py's
    ConvActivationPool), through an observer of the plan (minicnn.plan.Observer);
  - the kernels they call: im2col, col2im, and the fused bias + LeakyReLU + pooling kernels.
What is left of a block's time is its matrix products (forward; kernel gradient and input
gradient in backward) and a little glue: that is the "matrix products" column.

    python benchmarks/conv_pieces.py              # 60 timed steps after 5 warm-up steps
    python benchmarks/conv_pieces.py --steps 200

Milliseconds per training step (batch 64), summed over the timed steps and divided by their number.
"""
import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lab                                        # noqa: E402  (benchmarks/lab.py)
import minicnn                                    # noqa: E402
from minicnn import kernels                       # noqa: E402
from minicnn.plan import ConvActivationPool, Observer   # noqa: E402

KERNELS = ["im2col", "bias_leaky_maxpool_forward", "col2im", "bias_leaky_maxpool_backward"]
BATCHES = 10                                      # random batches, used in turn


class BlockClock(Observer):
    """Seconds of each fused step's forward and backward; `block` names the one running."""

    def __init__(self, seconds):
        self.seconds = seconds                    # (block name, piece) -> seconds, shared with the kernel clocks
        self.block = None
        self.start = None

    def before_forward(self, step, x):
        self._begin(step)

    def before_backward(self, step, dy):
        self._begin(step)

    def after_forward(self, step, x, y):
        self._end(step, "forward")

    def after_backward(self, step, dy, dx):
        self._end(step, "backward")

    def _begin(self, step):
        self.block = step.conv.name if isinstance(step, ConvActivationPool) else None
        self.start = time.perf_counter()

    def _end(self, step, piece):
        if self.block is not None:
            self.seconds[self.block, piece] += time.perf_counter() - self.start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    args = parser.parse_args()

    minicnn.backend.set_random_seed(0)
    model = lab.build_minicnn("baseline")
    rng = np.random.default_rng(0)
    x = rng.random((BATCHES * lab.BATCH_SIZE,) + lab.INPUT_SHAPE, dtype=np.float32)
    y = lab.one_hot(rng.integers(0, lab.NUM_CLASSES, len(x)))
    rows = [slice(i * lab.BATCH_SIZE, (i + 1) * lab.BATCH_SIZE) for i in range(BATCHES)]
    batches = [model.prepare_batch(x[r], y[r]) for r in rows]       # checked and cast once, as fit does

    seconds = collections.defaultdict(float)     # (block name, piece) -> seconds
    clock = BlockClock(seconds)

    def clocked(function, piece):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            if clock.block is not None:
                seconds[clock.block, piece] += time.perf_counter() - start
            return result
        return run

    def step(i, observers=()):
        model.train_step(*batches[i % BATCHES], observers=observers)

    for i in range(args.warmup):
        step(i)
    originals = {name: getattr(kernels, name) for name in KERNELS}
    try:
        for name in KERNELS:     # Conv2D and the fused step call kernels.<name>: the clock sits in between
            setattr(kernels, name, clocked(originals[name], name))
        start = time.perf_counter()
        for i in range(args.steps):
            step(i, observers=[clock])
        step_s = (time.perf_counter() - start) / args.steps
    finally:
        for name, function in originals.items():
            setattr(kernels, name, function)

    def ms(block, piece):
        return 1e3 * seconds[block, piece] / args.steps

    print(f"lab baseline, batch {lab.BATCH_SIZE}, {args.steps} training steps: {1e3 * step_s:.1f} ms per step\n")
    header = (f"{'block (conv)':<12}{'forward':>9}{'im2col':>8}{'fused':>7}{'matrix products':>17}   "
              f"{'backward':>9}{'fused':>7}{'col2im':>8}{'matrix products':>17}")
    print(header)
    print("-" * len(header))
    totals = collections.Counter()
    blocks = [step.conv.name for step in model.plan.steps if isinstance(step, ConvActivationPool)]
    for block in blocks:
        fwd, bwd = ms(block, "forward"), ms(block, "backward")
        im2col, fused_fwd = ms(block, "im2col"), ms(block, "bias_leaky_maxpool_forward")
        col2im, fused_bwd = ms(block, "col2im"), ms(block, "bias_leaky_maxpool_backward")
        gemm_fwd, gemm_bwd = fwd - im2col - fused_fwd, bwd - col2im - fused_bwd
        totals.update({"blocks": fwd + bwd, "im2col": im2col, "col2im": col2im,
                       "fused": fused_fwd + fused_bwd, "gemm": gemm_fwd + gemm_bwd})
        print(f"{block:<12}{fwd:>9.2f}{im2col:>8.2f}{fused_fwd:>7.2f}{gemm_fwd:>17.2f}   "
              f"{bwd:>9.2f}{fused_bwd:>7.2f}{col2im:>8.2f}{gemm_bwd:>17.2f}")
    step_ms = 1e3 * step_s
    print(f"\nper step: matrix products (and glue) {totals['gemm']:.1f} ms ({100 * totals['gemm'] / step_ms:.0f} %), "
          f"im2col {totals['im2col']:.1f}, col2im {totals['col2im']:.1f}, fused kernels {totals['fused']:.1f}, "
          f"everything else (dense layers, loss, Adam, checks, Python) {step_ms - totals['blocks']:.1f} ms")


if __name__ == "__main__":
    main()

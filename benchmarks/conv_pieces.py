"""Where the time of the lab's convolutions goes, inside real training steps (minicnn only).

Trains the lab's baseline on random images with train_on_batch and puts a clock on:
  - each fused Conv2D + LeakyReLU + MaxPooling2D block's forward and backward (fusion.py);
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
from minicnn import fusion, kernels               # noqa: E402

KERNELS = ["im2col", "bias_leaky_maxpool_forward", "col2im", "bias_leaky_maxpool_backward"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps (default 60)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    args = parser.parse_args()

    minicnn.backend.set_random_seed(0)
    model = lab.build_minicnn(lab.spec("baseline"), minicnn)
    rng = np.random.default_rng(0)
    x = rng.random((10 * lab.BATCH_SIZE,) + lab.INPUT_SHAPE, dtype=np.float32)
    y = lab.one_hot(rng.integers(0, lab.NUM_CLASSES, len(x)))

    seconds = collections.defaultdict(float)     # (block name, piece) -> seconds
    current = {"block": None}                    # the block whose kernels are running

    def clocked(function, piece):
        def run(*args, **kwargs):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            seconds[current["block"], piece] += time.perf_counter() - start
            return result
        return run

    def clocked_block(method, piece):
        def run(block, argument, *args, **kwargs):
            current["block"] = block.conv.name
            start = time.perf_counter()
            result = method(block, argument, *args, **kwargs)
            seconds[block.conv.name, piece] += time.perf_counter() - start
            return result
        return run

    def step(i):
        rows = slice((i % 10) * lab.BATCH_SIZE, (i % 10 + 1) * lab.BATCH_SIZE)
        model.train_on_batch(x[rows], y[rows])

    for i in range(args.warmup):
        step(i)
    originals = {name: getattr(kernels, name) for name in KERNELS}
    block_methods = {"forward": fusion.ConvLeakyPool.forward, "backward": fusion.ConvLeakyPool.backward}
    try:
        for name in KERNELS:     # Conv2D and the block call kernels.<name>: the clock sits in between
            setattr(kernels, name, clocked(originals[name], name))
        for piece, method in block_methods.items():
            setattr(fusion.ConvLeakyPool, piece, clocked_block(method, piece))
        start = time.perf_counter()
        for i in range(args.steps):
            step(i)
        step_s = (time.perf_counter() - start) / args.steps
    finally:
        for name, function in originals.items():
            setattr(kernels, name, function)
        for piece, method in block_methods.items():
            setattr(fusion.ConvLeakyPool, piece, method)

    def ms(block, piece):
        return 1e3 * seconds[block, piece] / args.steps

    print(f"lab baseline, batch {lab.BATCH_SIZE}, {args.steps} training steps: {1e3 * step_s:.1f} ms per step\n")
    header = (f"{'block (conv)':<12}{'forward':>9}{'im2col':>8}{'fused':>7}{'matrix products':>17}   "
              f"{'backward':>9}{'fused':>7}{'col2im':>8}{'matrix products':>17}")
    print(header)
    print("-" * len(header))
    totals = collections.Counter()
    blocks = [s.conv.name for s in fusion.steps(model.layers) if isinstance(s, fusion.ConvLeakyPool)]
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

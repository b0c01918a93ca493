"""`check NAME FILE --train`: train the lab's network on Fashion-MNIST with the learner's function in it,
beside the same run with minicnn's own function, and compare the two loss curves.

An honest comparison changes one thing only. Both runs
  - start from the same initial weights (drawn once, copied into both models),
  - see the same batches in the same order (drawn once from a fixed seed),
  - draw the same dropout masks (the random generator is reset before each run),
  - plug their function into the model the same way (exercise.plug): only the function differs.
A correct function gives the same curve; float32 rounding in another order makes the two drift apart
slowly (a few thousandths of the loss after a few hundred steps), a wrong one much more.
"""
import time
from dataclasses import dataclass

import numpy as np

from minicnn import backend, lab, plotting
from minicnn.callbacks import ProgressBar
from minicnn.datasets import fashion_mnist
from minicnn.utils import to_categorical

import matplotlib.pyplot as plt  # noqa: E402  (after minicnn.plotting has chosen the backend)

DEFAULT_STEPS = 300
DEFAULT_BATCH_SIZE = 64
DEFAULT_SEED = 13
SUMMARY_ROWS = 12           # about this many rows in the terminal summary, unless --every says otherwise
# The runs agree when, in every row of the summary (means over `every` steps), the two mean losses differ
# by at most this much; rounding alone moves them by about a thousandth after 300 steps.
AGREEMENT = 0.02
PLOT_FIGSIZE = (8, 6)


@dataclass
class Run:
    """One training run: the loss of every step, how long it took, and what stopped it (None: nothing)."""
    losses: list
    seconds: float
    problem: str = None


def training_data(images=None):
    """Fashion-MNIST's first `images` training images (all by default) as the lab prepares them:
    x (N, 28, 28, 1) float32 in [0, 1], y one-hot (N, 10)."""
    (train_X, train_Y), _ = fashion_mnist.load_data()
    train_X, train_Y = train_X[:images], train_Y[:images]
    x = train_X.reshape(-1, *lab.IMAGE_SHAPE).astype(np.float32) / np.float32(255)
    return x, to_categorical(train_Y, lab.NUM_CLASSES)


def batch_indices(count, steps, batch_size, seed):
    """`steps` batches of image indices: shuffled passes over range(count), one after the other."""
    rng = np.random.default_rng(seed)
    passes = -(-steps * batch_size // count)                     # ceil: enough passes for every step
    order = np.concatenate([rng.permutation(count) for _ in range(passes)])
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def train(exercise, functions, x, y, batches, weights, seed, on_step=None):
    """The lab's model from `weights`, trained on `batches` with `functions` plugged in.
    on_step(steps done, {'loss': loss}) is called after every step (a progress bar)."""
    model = lab.lab_model(dropout=exercise.model == "dropout")
    model.set_weights(weights)
    model.fusion = exercise.fusion
    backend.set_random_seed(seed)                                # the same dropout masks in both runs
    losses, started = [], time.perf_counter()
    with exercise.plug(model, functions):
        for index in batches:
            loss, _, problem = model.train_step(x[index], y[index])
            losses.append(loss)
            if on_step is not None:
                on_step(len(losses), {"loss": loss})
            if problem:
                return Run(losses, time.perf_counter() - started, problem)
    return Run(losses, time.perf_counter() - started)


def train_with_progress(exercise, functions, x, y, batches, weights, seed):
    """train(), with a Keras-style progress bar (redrawn on a terminal, one final line in a log)."""
    bar = ProgressBar(len(batches))
    run = train(exercise, functions, x, y, batches, weights, seed, on_step=bar.update)
    bar.total = len(run.losses)                  # fewer than planned when the run stopped on a NaN
    bar.finish({"loss": run.losses[-1]})
    return run


def compare(exercise, functions, steps=DEFAULT_STEPS, batch_size=DEFAULT_BATCH_SIZE, images=None, every=None,
            seed=DEFAULT_SEED, plot_path=None, out=print):
    """Both runs, the terminal summary and (with plot_path) the PNG. Returns True when the curves agree."""
    x, y = training_data(images)
    batches = batch_indices(len(x), steps, batch_size, seed)
    every = min(every or max(1, steps // SUMMARY_ROWS), steps)
    saved_rng = backend.get_rng_state()
    try:
        backend.set_random_seed(seed)
        weights = lab.lab_model(dropout=exercise.model == "dropout").get_weights()
        network = f"the lab's {exercise.model} network"
        out(f"training {network} for {steps} steps of {batch_size} images (Fashion-MNIST, {len(x)} training "
            f"images) twice,\nfrom the same initial weights and on the same batches: with your "
            f"{', '.join(exercise.functions)}, then with minicnn's")
        out(f"with your {', '.join(exercise.functions)}:")
        yours = train_with_progress(exercise, functions, x, y, batches, weights, seed)
        out("with minicnn's:")
        minicnn = train_with_progress(exercise, exercise.reference_functions(), x, y, batches, weights, seed)
    finally:
        backend.set_rng_state(saved_rng)
    agree = report(yours, minicnn, every, out)
    if plot_path is not None:
        plot(exercise, yours, minicnn, every, plot_path, f"{network}, batches of {batch_size}")
        out(f"wrote {plot_path}")
    return agree


def window_means(losses, every):
    """[(last step of the window, mean loss over its `every` steps)] for complete windows."""
    return [(end, float(np.mean(losses[end - every:end]))) for end in range(every, len(losses) + 1, every)]


def report(yours, minicnn, every, out):
    """The table of mean losses and the verdict; True when the runs agree."""
    out(f"\n{'step':>6}  {'yours':>10}  {'minicnn':>10}  {'difference':>10}   (mean loss over the last "
        f"{every} step{'s' if every > 1 else ''})")
    gaps = []
    for (end, mine), (_, theirs) in zip(window_means(yours.losses, every), window_means(minicnn.losses, every)):
        gaps.append(abs(mine - theirs))
        out(f"{end:>6}  {mine:>10.4f}  {theirs:>10.4f}  {mine - theirs:>+10.4f}")
    for name, run in [("your run", yours), ("minicnn's run", minicnn)]:
        if run.problem:
            out(f"{name} stopped at step {len(run.losses)}: {run.problem}")
    agree = not yours.problem and not minicnn.problem and bool(gaps) and max(gaps) <= AGREEMENT
    largest = f"{max(gaps):.4f}" if gaps else "-"
    verdict = "the two runs agree" if agree else "the two runs DISAGREE"
    out(f"{verdict}: the largest difference of these means is {largest} (they agree within {AGREEMENT}); "
        f"the first step's losses: {yours.losses[0]:.6f} and {minicnn.losses[0]:.6f}")
    return agree


def plot(exercise, yours, minicnn, every, path, what):
    """Above: both loss curves, every step faint and the means over `every` steps bold (yours dashed, on top).
    Below: the difference of the per-step losses, yours minus minicnn's. Saved as a PNG."""
    fig, (losses, gaps) = plt.subplots(2, 1, figsize=PLOT_FIGSIZE, sharex=True, height_ratios=(3, 1))
    for label, run, colour, style in [("minicnn", minicnn, "tab:blue", "-"), ("yours", yours, "tab:orange", "--")]:
        losses.plot(np.arange(1, len(run.losses) + 1), run.losses, color=colour, alpha=0.3, linewidth=0.8)
        means = window_means(run.losses, every)
        if means:
            ends, values = zip(*means)
            middles = np.array(ends) - (every - 1) / 2                 # each mean drawn mid-window
            losses.plot(middles, values, color=colour, linestyle=style, linewidth=2, marker="o", markersize=3,
                        label=f"{label} (mean over {every} steps)")
    steps = min(len(yours.losses), len(minicnn.losses))
    gaps.plot(np.arange(1, steps + 1), np.subtract(yours.losses[:steps], minicnn.losses[:steps]), color="tab:gray",
              linewidth=0.8)
    gaps.axhline(0, color="black", linewidth=0.5)
    losses.set_ylabel("training loss")
    gaps.set_ylabel("difference")
    gaps.set_xlabel("training step")
    losses.set_title(f"{exercise.name}: your {', '.join(exercise.functions)} vs minicnn's\n{what}", fontsize=10)
    losses.legend()
    fig.tight_layout()
    plotting.save_figure(fig, path)
    plt.close(fig)

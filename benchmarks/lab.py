"""The lab's two models and its data split, written once for every framework the benchmarks compare.

spec() lists the layers of the Fashion-MNIST lab's baseline and dropout models in a
framework-neutral form; peers.py turns it into PyTorch and Keras models. The minicnn
model is minicnn's own lab model (minicnn/lab.py, build_minicnn() here), the one the
example and the tests train; tests/test_benchmarks.py checks that it and spec() agree,
layer by layer. glorot_weights() makes one set of initial
weights in Keras's order and shapes, so that every framework can start from the
same point. count_flops() says how much arithmetic one training step costs.
The rest (split_indices, load_arrays, summarize_steps, peak_rss_mb) is shared by
the worker processes of bench_train.py, one per framework.

Shapes (baseline, batch N):
    input            (N, 28, 28, 1)
    conv 32 + pool   (N, 28, 28, 32) -> (N, 14, 14, 32)
    conv 64 + pool   (N, 14, 14, 64) -> (N, 7, 7, 64)
    conv 128 + pool  (N, 7, 7, 128)  -> (N, 4, 4, 128)    'same' pooling: 7 -> 4
    flatten          (N, 2048)
    dense 128        (N, 128)
    dense 10         (N, 10)  softmax
356,234 parameters.
"""
import resource
import time

import numpy as np

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
LEAKY_SLOPE = 0.1
TRAIN_SIZE = 48_000       # the lab's split: 80 % of the 60,000 training images ...
VALID_SIZE = 12_000       # ... and 20 % for validation (train_test_split, random_state=13)
SPLIT_SEED = 13
BATCH_SIZE = 64
STEPS_PER_EPOCH = TRAIN_SIZE // BATCH_SIZE   # 750

# One entry per layer: (kind, argument). conv: filters (3x3, 'same'); pool: 2x2 'same';
# leaky: LeakyReLU(0.1); dropout: rate; dense: units; softmax_dense: the output layer.
_CONV_BLOCKS = (32, 64, 128)
_DROPOUT_AFTER_POOL = (0.25, 0.25, 0.4)
_DROPOUT_AFTER_DENSE = 0.3


def spec(model="baseline"):
    """The layer list of 'baseline' or 'dropout' as (kind, argument) pairs."""
    if model not in ("baseline", "dropout"):
        raise ValueError(f"model must be 'baseline' or 'dropout', got {model!r}")
    layers = []
    for filters, rate in zip(_CONV_BLOCKS, _DROPOUT_AFTER_POOL):
        layers += [("conv", filters), ("leaky", LEAKY_SLOPE), ("pool", 2)]
        if model == "dropout":
            layers.append(("dropout", rate))
    layers += [("flatten", None), ("dense", 128), ("leaky", LEAKY_SLOPE)]
    if model == "dropout":
        layers.append(("dropout", _DROPOUT_AFTER_DENSE))
    layers.append(("softmax_dense", NUM_CLASSES))
    return layers


def trace_shapes(layers, input_shape=INPUT_SHAPE):
    """[(kind, arg, in_shape, out_shape)] per layer, shapes without the batch axis (HWC)."""
    shape = tuple(input_shape)
    rows = []
    for kind, arg in layers:
        if kind == "conv":
            out = (shape[0], shape[1], arg)
        elif kind == "pool":
            out = (-(-shape[0] // arg), -(-shape[1] // arg), shape[2])   # 'same': ceil
        elif kind == "flatten":
            out = (int(np.prod(shape)),)
        elif kind in ("dense", "softmax_dense"):
            out = (arg,)
        else:
            out = shape
        rows.append((kind, arg, shape, out))
        shape = out
    return rows


def weight_shapes(layers, input_shape=INPUT_SHAPE):
    """Keras order: [kernel, bias] per conv (3, 3, in, out) and dense (in, out) layer."""
    shapes = []
    for kind, arg, shape_in, _ in trace_shapes(layers, input_shape):
        if kind == "conv":
            shapes += [(3, 3, shape_in[-1], arg), (arg,)]
        elif kind in ("dense", "softmax_dense"):
            shapes += [(shape_in[0], arg), (arg,)]
    return shapes


def glorot_weights(layers, seed=0):
    """Initial weights as Keras makes them: glorot_uniform kernels, zero biases.

    limit = sqrt(6 / (fan_in + fan_out)), fan = receptive field * channels in / out.
    Returned in Keras order, float32.
    """
    rng = np.random.default_rng(seed)
    weights = []
    for shape in weight_shapes(layers):
        if len(shape) == 1:
            weights.append(np.zeros(shape, np.float32))
            continue
        receptive = int(np.prod(shape[:-2]))
        fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, size=shape).astype(np.float32))
    return weights


def count_params(layers):
    return sum(int(np.prod(s)) for s in weight_shapes(layers))


def count_flops(layers, batch_size=BATCH_SIZE):
    """Floating-point operations of one training step, counted on the matrix products only.

    Per conv/dense layer with M = output pixels * batch, K = fan in, F = outputs:
      forward         2*M*K*F   (z = col @ kernel)
      kernel gradient 2*M*K*F   (col^T @ dz)
      input gradient  2*M*K*F   (dz @ kernel^T), not needed for the first layer
    so backward ~ 2x forward. Bias adds, activations, pooling, dropout, the loss
    and Adam are memory-bound and not counted (they are < 1 % of the products).

    Returns a dict: per-layer forward FLOPs, and per-step forward / backward /
    training totals (training excludes the first conv's input gradient).
    """
    per_layer = []
    first = True
    for kind, arg, shape_in, shape_out in trace_shapes(layers):
        if kind == "conv":
            m = batch_size * shape_out[0] * shape_out[1]
            k, f = 9 * shape_in[-1], arg
        elif kind in ("dense", "softmax_dense"):
            m, k, f = batch_size, shape_in[0], arg
        else:
            per_layer.append({"kind": kind, "forward": 0, "backward": 0})
            continue
        fwd = 2 * m * k * f
        bwd = fwd if first else 2 * fwd     # the first layer needs no input gradient
        per_layer.append({"kind": kind, "forward": fwd, "backward": bwd, "gemm": (m, k, f)})
        first = False
    forward = sum(row["forward"] for row in per_layer)
    backward = sum(row["backward"] for row in per_layer)
    return {"batch_size": batch_size, "per_layer": per_layer, "forward_per_step": forward,
            "backward_per_step": backward, "train_per_step": forward + backward,
            "forward_per_image": forward / batch_size, "train_per_image": (forward + backward) / batch_size}


def gemm_shapes(layers, batch_size=BATCH_SIZE):
    """Every matrix product of one training step as (op, M, K, F), to time them alone.

    A conv/dense layer with M = batch * output pixels, K = fan in, F = outputs does
      'forward'     col (M, K) @ kernel (K, F)
      'kernel_grad' col.T (K, M) @ dz (M, F)
      'input_grad'  dz (M, F) @ kernel.T (F, K)     (not for the first layer)
    """
    shapes = []
    for row in count_flops(layers, batch_size)["per_layer"]:
        if "gemm" not in row:
            continue
        m, k, f = row["gemm"]
        shapes += [("forward", m, k, f), ("kernel_grad", m, k, f)]
        if row["backward"] > row["forward"]:
            shapes.append(("input_grad", m, k, f))
    return shapes


def build_minicnn(model="baseline"):
    """The lab's 'baseline' or 'dropout' model in minicnn, compiled as the lab does (Adam, categorical CE):
    minicnn.lab.lab_model, imported here so that the peers' workers never load minicnn."""
    if model not in ("baseline", "dropout"):
        raise ValueError(f"model must be 'baseline' or 'dropout', got {model!r}")
    from minicnn.lab import lab_model
    return lab_model(dropout=model == "dropout", input_shape=INPUT_SHAPE, num_classes=NUM_CLASSES)


# --- shared by the worker processes ----------------------------------------------------
def split_indices(num_images=60_000):
    """(train, valid) row indices of the lab's split: train_test_split(test_size=0.2, random_state=13).

    Uses scikit-learn when installed (the lab's exact split); otherwise a seeded
    permutation of the same sizes (a different, equally random split). Returns
    (train_idx, valid_idx, how).
    """
    index = np.arange(num_images)
    try:
        from sklearn.model_selection import train_test_split
    except ImportError:
        order = np.random.default_rng(SPLIT_SEED).permutation(num_images)
        cut = num_images - num_images // 5
        return order[:cut], order[cut:], "numpy permutation (scikit-learn missing; not the lab's split)"
    train, valid = train_test_split(index, test_size=0.2, random_state=SPLIT_SEED)
    return train, valid, "sklearn train_test_split(test_size=0.2, random_state=13)"


def load_arrays(path, part):
    """(x, labels) of 'train' or 'valid' from the driver's .npz: x float32 (N, 28, 28, 1) in [0, 1],
    labels int64 (N,). Returns (None, None) when the part was not saved."""
    with np.load(path) as data:
        if f"x_{part}" not in data:
            return None, None
        x = data[f"x_{part}"].reshape(-1, *INPUT_SHAPE).astype(np.float32) / np.float32(255)
        return x, data[f"y_{part}"].astype(np.int64)


def one_hot(labels, num_classes=NUM_CLASSES):
    return np.eye(num_classes, dtype=np.float32)[labels]


def summarize_steps(step_times, warmup, batch_size=BATCH_SIZE):
    """Cold (first step) and warm (after `warmup` steps) statistics of per-step times in seconds."""
    times = np.asarray(step_times, dtype=float)
    warm = times[warmup:] if len(times) > warmup else times[-1:]
    mean = float(warm.mean())
    return {"steps": int(len(times)), "warmup": int(warmup), "cold_step_s": float(times[0]),
            "warm_steps": int(len(warm)), "warm_step_mean_s": mean,
            "warm_step_median_s": float(np.median(warm)), "warm_step_min_s": float(warm.min()),
            "warm_step_max_s": float(warm.max()), "warm_images_per_s": batch_size / mean,
            "extrapolated_epoch_s": mean * STEPS_PER_EPOCH}


def peak_rss_mb():
    """Peak resident memory of this process (ru_maxrss, KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_one_epoch_timed(model, callback_class, x_train, y_train, x_valid, y_valid, job):
    """Time model.fit with a Keras-style API (minicnn and Keras share it) for job["epochs"] epochs.

    callback_class is the framework's Callback base. y_valid is one-hot. Returns
    (step_times, extra): the wall time of every training step, and the loss/accuracy
    numbers with the seconds of the LAST epoch's training and validation. extra["epoch_walls_s"]
    holds each epoch's wall time, from its start to its end, validation included; the first
    epoch also pays one-time costs (Keras traces its graphs; minicnn loads its kernels), so
    with 2 or more epochs the last one is the steady state.
    """
    class Clock(callback_class):
        def __init__(self):
            super().__init__()
            self.step_times, self.epoch_begin, self.epoch_end, self.last_end = [], None, None, None
            self.epoch_walls = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_begin = time.perf_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self._t0 = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.last_end = time.perf_counter()
            self.step_times.append(self.last_end - self._t0)

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_end = time.perf_counter()
            self.epoch_walls.append(self.epoch_end - self.epoch_begin)

    clock = Clock()
    epochs = job.get("epochs", 1)
    validation = (x_valid, y_valid) if job["epoch"] and x_valid is not None else None
    fit_start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=job["batch_size"], epochs=epochs, verbose=0, shuffle=False,
                        validation_data=validation, callbacks=[clock])
    fit_wall = time.perf_counter() - fit_start
    logs = {key: float(values[-1]) for key, values in history.history.items()}
    last_start = fit_start if epochs == 1 else clock.epoch_begin   # epoch 1: fit's own set-up counts too
    extra = {"train_loss": logs.get("loss"), "train_accuracy": logs.get("accuracy"),
             "train_s": clock.last_end - last_start, "fit_wall_s": fit_wall, "epochs": epochs,
             "epoch_walls_s": clock.epoch_walls}
    if validation is not None:
        extra.update(val_loss=logs.get("val_loss"), val_accuracy=logs.get("val_accuracy"),
                     val_s=clock.epoch_end - clock.last_end)
    elif x_valid is not None:
        t0 = time.perf_counter()
        val_loss, val_acc = model.evaluate(x_valid, y_valid, batch_size=job["eval_batch_size"], verbose=0)
        extra.update(val_loss=float(val_loss), val_accuracy=float(val_acc), val_s=time.perf_counter() - t0)
    return clock.step_times, extra

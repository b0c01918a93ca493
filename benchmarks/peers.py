"""The yardsticks: the lab's model trained by PyTorch and by Keras (TensorFlow backend).

Each run_* function is the body of one worker process of bench_train.py: it gets a
job (a dict: model, threads, data file, initial weights...), trains, and returns a
dict of timings. Same recipe as minicnn: batches of job["batch_size"] (the lab's 64)
in the given order (no shuffling, the lab's split is already shuffled; an epoch is
ceil(images / batch) steps, the last one short when the batch does not divide the
images, as fit does), Adam(lr=1e-3, beta 0.9/0.999, epsilon=1e-7), categorical
cross-entropy with the softmax fused into the loss, glorot_uniform kernels and zero
biases (or the driver's shared initial weights).

Thread settings are made before either framework starts its thread pools: the
driver puts OMP/MKL/OPENBLAS_NUM_THREADS and TF_NUM_INTRAOP/INTEROP_THREADS in the
worker's environment, and each function below sets the framework's own knobs.
"""
import os
import time

import numpy as np

import lab


def _common_result(job, step_times, extra):
    summary = lab.summarize_steps(step_times, job["warmup"], job["batch_size"])
    return {**summary, **extra, "step_times_s": [float(t) for t in step_times]}


def _load(job):
    """Training and validation arrays for this job (validation only when it is used)."""
    x_train, y_train = lab.load_arrays(job["data"], "train")
    x_valid, y_valid = lab.load_arrays(job["data"], "valid")
    return x_train, y_train, x_valid, y_valid


def _init_weights(job):
    if not job.get("init"):
        return None
    with np.load(job["init"]) as data:
        return [data[f"w{i}"] for i in range(len(data.files))]


# --- PyTorch ----------------------------------------------------------------------------
def build_torch(layers, nn):
    """The spec as torch.nn.Sequential (NCHW). 'same' conv = padding 1 for a 3x3 kernel;
    'same' 2x2 pooling = ceil_mode=True (the odd last row/column pools alone, as with -inf padding)."""
    modules, channels, features = [], lab.INPUT_SHAPE[-1], None
    for kind, arg, shape_in, shape_out in lab.trace_shapes(layers):
        if kind == "conv":
            modules.append(nn.Conv2d(channels, arg, kernel_size=3, padding=1))
            channels = arg
        elif kind == "leaky":
            modules.append(nn.LeakyReLU(arg))
        elif kind == "pool":
            modules.append(nn.MaxPool2d(arg, ceil_mode=True))
        elif kind == "dropout":
            modules.append(nn.Dropout(arg))
        elif kind == "flatten":
            modules.append(nn.Flatten())
            features = shape_out[0]
        elif kind in ("dense", "softmax_dense"):   # softmax lives in the loss (cross_entropy on logits)
            modules.append(nn.Linear(features, arg))
            features = arg
    return nn.Sequential(*modules)


def keras_to_torch_weights(layers, weights):
    """Keras-order weights -> the torch model's parameters, in its order.

    conv kernel (KH, KW, C, F) -> (F, C, KH, KW); dense kernel (in, out) -> (out, in);
    the first dense after Flatten also reorders its inputs from Keras's (H, W, C)
    flattening to torch's (C, H, W).
    """
    out, it = [], iter(weights)
    flat_shape = None
    for kind, arg, shape_in, shape_out in lab.trace_shapes(layers):
        if kind == "flatten":
            flat_shape = shape_in                       # (H, W, C)
        if kind == "conv":
            kernel, bias = next(it), next(it)
            out += [np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), bias]
        elif kind in ("dense", "softmax_dense"):
            kernel, bias = next(it), next(it)
            if flat_shape is not None:
                h, w, c = flat_shape
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
                flat_shape = None
            out += [np.ascontiguousarray(kernel.T), bias]
    return out


def run_torch(job):
    threads = job["threads"]
    start = time.perf_counter()
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:   # only allowed before the first parallel work
        pass
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    torch.manual_seed(job["seed"])
    layers = lab.spec(job["model"])
    model = build_torch(layers, nn)
    init = _init_weights(job)
    with torch.no_grad():
        params = list(model.parameters())
        if init is not None:
            for param, value in zip(params, keras_to_torch_weights(layers, init)):
                param.copy_(torch.from_numpy(value))
        else:   # Keras's defaults instead of torch's (kaiming_uniform / fan-in bias)
            for param in params:
                nn.init.xavier_uniform_(param) if param.dim() > 1 else nn.init.zeros_(param)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    x_train, y_train, x_valid, y_valid = _load(job)
    to_nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
    x_train, y_train = to_nchw(x_train), torch.from_numpy(y_train)
    build_s = time.perf_counter() - start

    def evaluate(x, y, batch_size):
        model.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                logits = model(x[s:s + batch_size])
                loss_sum += F.cross_entropy(logits, y[s:s + batch_size], reduction="sum").item()
                correct += (logits.argmax(1) == y[s:s + batch_size]).sum().item()
        model.train()
        return loss_sum / len(x), correct / len(x)

    bs = job["batch_size"]
    images = len(x_train)
    steps = -(-images // bs)                 # ceil, as fit: a short last batch when bs does not divide the images
    epochs = job.get("epochs", 1)
    step_times, epoch_walls = [], []
    model.train()
    fit_start = time.perf_counter()
    for epoch in range(epochs):             # the same data in the same order every epoch (no shuffle)
        epoch_start = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for step in range(steps):
            t0 = time.perf_counter()
            xb, yb = x_train[step * bs:(step + 1) * bs], y_train[step * bs:(step + 1) * bs]
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(yb)                       # as Keras/minicnn keep running
            correct += (logits.argmax(1) == yb).sum().item()        # loss and accuracy
            step_times.append(time.perf_counter() - t0)
        train_end = time.perf_counter()
        extra = {"train_loss": loss_sum / images, "train_accuracy": correct / images,
                 "train_s": train_end - (fit_start if epochs == 1 else epoch_start)}
        if x_valid is not None:
            t0 = time.perf_counter()
            val_loss, val_acc = evaluate(to_nchw(x_valid), torch.from_numpy(y_valid), job["eval_batch_size"])
            extra.update(val_loss=val_loss, val_accuracy=val_acc, val_s=time.perf_counter() - t0)
        epoch_walls.append(time.perf_counter() - epoch_start)
    fit_wall = time.perf_counter() - fit_start
    config = torch.__config__.parallel_info().splitlines()
    return _common_result(job, step_times, {
        **extra, "framework": "torch", "version": torch.__version__, "import_s": import_s,
        "build_s": build_s, "fit_wall_s": fit_wall, "epochs": epochs, "epoch_walls_s": epoch_walls,
        "threads": {"num_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()},
        "backend_info": {"mkldnn": torch.backends.mkldnn.is_available(),
                         "parallel_info": [line.strip() for line in config if line.strip()][:8]},
        "peak_rss_mb": lab.peak_rss_mb()})


# --- Keras (TensorFlow backend) -----------------------------------------------------------
def build_keras(layers, keras):
    from keras import layers as kl
    model = keras.Sequential([keras.Input(lab.INPUT_SHAPE)])
    for kind, arg in layers:
        if kind == "conv":
            model.add(kl.Conv2D(arg, kernel_size=(3, 3), activation="linear", padding="same"))
        elif kind == "leaky":
            model.add(kl.LeakyReLU(negative_slope=arg))
        elif kind == "pool":
            model.add(kl.MaxPooling2D((arg, arg), padding="same"))
        elif kind == "dropout":
            model.add(kl.Dropout(arg))
        elif kind == "flatten":
            model.add(kl.Flatten())
        elif kind == "dense":
            model.add(kl.Dense(arg, activation="linear"))
        elif kind == "softmax_dense":
            model.add(kl.Dense(arg, activation="softmax"))
    model.compile(loss=keras.losses.categorical_crossentropy, optimizer=keras.optimizers.Adam(),
                  metrics=["accuracy"])
    return model


def run_keras(job):
    threads = job["threads"]
    os.environ["KERAS_BACKEND"] = "tensorflow"
    start = time.perf_counter()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import_s = time.perf_counter() - start

    start = time.perf_counter()
    keras.utils.set_random_seed(job["seed"])
    layers = lab.spec(job["model"])
    model = build_keras(layers, keras)
    init = _init_weights(job)
    if init is not None:
        model.set_weights(init)
    x_train, y_train, x_valid, y_valid = _load(job)
    y_train = lab.one_hot(y_train)
    build_s = time.perf_counter() - start

    y_valid = lab.one_hot(y_valid) if x_valid is not None else None
    step_times, extra = lab.fit_one_epoch_timed(model, keras.callbacks.Callback, x_train, y_train,
                                                x_valid, y_valid, job)
    return _common_result(job, step_times, {
        **extra, "framework": "keras", "version": keras.__version__, "tensorflow_version": tf.__version__,
        "import_s": import_s, "build_s": build_s,
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "backend_info": {"jit_compile": bool(getattr(model, "jit_compile", False)),
                         "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")},
        "peak_rss_mb": lab.peak_rss_mb()})

"""Callbacks: hooks the training loop calls (History, progress bar, checkpoints, early stop).

The loop in models.py calls, in this order:
    on_train_begin, (on_epoch_begin, (on_train_batch_begin, on_train_batch_end)*, on_epoch_end)*, on_train_end
A callback stops training by setting `self.model.stop_training = True`. Stopped before its
last batch, the epoch still ends with on_epoch_end (as in Keras), but it is not complete:
`epoch_completed(model, epoch)` says so, and the model's `partial_epoch_batches` says how
far it got. on_train_begin comes before the first batch: the place to check arguments
against `self.params` ('epochs', 'steps', 'verbose', and 'metrics', the names the logs will have).
"""
import math
import numbers
import os
import sys
import time

from minicnn.utils.checks import check_bool, check_int, check_number


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass


def epoch_completed(model, epoch):
    """True when every batch of `epoch` was applied (fit sets model.completed_epochs to epoch + 1)."""
    return model is None or model.completed_epochs > epoch


def _check_verbose(verbose, who):
    """0 (quiet) or 1 (a line for what the callback does); True and False too."""
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1):
        raise ValueError(f"{who}: verbose must be 0 or 1, got {verbose!r}")
    return int(verbose)


# Old Keras names for the same values: the lab reads history['acc'].
KEY_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy"}


class HistoryDict(dict):
    """A dict of metric lists that also answers the Keras 2 keys 'acc' and 'val_acc'."""

    def _key(self, key):
        return KEY_ALIASES.get(key, key) if key not in self.keys() else key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __contains__(self, key):
        return super().__contains__(self._key(key))

    def get(self, key, default=None):
        return super().get(self._key(key), default)


class History(Callback):
    """Records each epoch's logs: history['loss'], ['accuracy'], ['val_loss'], ['val_accuracy'].

    When training stopped during an epoch, the last row (as in Keras) holds the means over the
    batches that ran, and `partial_epoch` is that epoch's number (None when every row is whole).
    """

    def __init__(self):
        super().__init__()
        self.history = HistoryDict()
        self.epoch = []
        self.partial_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        if not epoch_completed(self.model, epoch):
            self.partial_epoch = epoch
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def format_logs(logs):
    return " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())


def format_duration(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s"
    return f"{seconds * 1000:.0f}ms"


class ProgressBar:
    """A Keras-style bar: `750/750 [=====>....] - 12s 16ms/step - loss: 0.4521`.

    On a terminal it redraws one line in place; when output goes to a file or a pipe
    it prints only the finished line, so logs stay clean.
    """
    WIDTH = 30
    REDRAW_SECONDS = 0.1

    def __init__(self, total, stream=None):
        self.total = total
        self.stream = stream or sys.stdout
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def line(self, done, logs):
        filled = int(self.WIDTH * done / self.total) if self.total else self.WIDTH
        arrow = ">" if done < self.total else ""
        bar = ("=" * filled + arrow)[:self.WIDTH].ljust(self.WIDTH, ".")
        elapsed = time.perf_counter() - self.start
        per_step = format_duration(elapsed / max(done, 1))
        text = f"{done}/{self.total} [{bar}] - {format_duration(elapsed)} {per_step}/step"
        return text + (" - " + format_logs(logs) if logs else "")

    def update(self, done, logs=None):
        now = time.perf_counter()
        if self.interactive and (now - self.last_draw >= self.REDRAW_SECONDS or done == self.total):
            self.stream.write("\r" + self.line(done, logs))
            self.stream.flush()
            self.last_draw = now

    def finish(self, logs=None, done=None):
        """Print the final line: `done` steps (all of them by default) and the logs."""
        text = self.line(self.total if done is None else done, logs)
        self.stream.write(("\r" + text if self.interactive else text) + "\n")
        self.stream.flush()


class ProgbarLogger(Callback):
    """Prints training progress: verbose=1 a bar per epoch, verbose=2 one line per epoch."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose == 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']}\n")
        self.bar = ProgressBar(self.params["steps"], self.stream)

    def on_train_batch_end(self, batch, logs=None):
        self.done = batch + 1
        if self.verbose == 1:
            self.bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose == 1:   # a stopped epoch ends the bar where it stopped, e.g. 300/750
            self.bar.finish(logs, done=None if epoch_completed(self.model, epoch) else getattr(self, "done", 0))
        elif self.verbose == 2:
            elapsed = time.perf_counter() - self.bar.start
            self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']} - {format_duration(elapsed)} - "
                              f"{format_logs(logs)}\n")
            self.stream.flush()


def _improvement_test(monitor, mode, min_delta, who):
    """A function (current, best) -> True when current is an improvement on best.

    'auto' maximises accuracies and minimises the rest; the first finite value
    (best is None) always improves, and NaN or inf never does.
    """
    if not isinstance(monitor, str):
        raise ValueError(f"{who}: monitor must be a name from the logs such as 'val_loss', got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    maximise = mode == "max" or (mode == "auto" and "acc" in monitor)

    def improves(current, best):
        if not math.isfinite(current):
            return False
        if best is None:
            return True
        return current > best + min_delta if maximise else current < best - min_delta
    return improves


def _with_old_names(logs):
    """The logs, answering the Keras 2 names 'acc' and 'val_acc' too."""
    return {**{old: logs[new] for old, new in KEY_ALIASES.items() if new in logs}, **logs}


def _monitored(logs, monitor, who):
    value = _with_old_names(logs or {}).get(monitor)
    if value is None:
        _missing_monitor(monitor, logs or {}, who)
    return value


def _missing_monitor(monitor, names, who):
    raise ValueError(
        f"{who}: monitor {monitor!r} is not in the logs {sorted(names)}; "
        "did you pass validation_data or validation_split?"
    )


def _check_monitor_in_params(callback, monitor, who):
    """Before the first batch: the monitored value must be among the logs fit will write."""
    names = callback.params.get("metrics")
    if names is not None and monitor not in _with_old_names(dict.fromkeys(names)):
        _missing_monitor(monitor, names, who)


class TerminateOnNaN(Callback):
    """Stop training quietly as soon as a batch loss is NaN or infinite.

    Such a batch changes no weight; without this callback fit raises a RuntimeError there.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved (by more than min_delta) for `patience` epochs.

    restore_best_weights=True: when training ends, early or not, put back the weights
    of the best epoch (as Keras 3 does). NaN or inf never counts as an improvement.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False, verbose=0):
        super().__init__()
        self.monitor = monitor
        self.patience = check_int(patience, "patience", "EarlyStopping", minimum=0)
        min_delta = abs(check_number(min_delta, "min_delta", "EarlyStopping"))
        self.better = _improvement_test(monitor, mode, min_delta, "EarlyStopping")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights", "EarlyStopping")
        self.verbose = _check_verbose(verbose, "EarlyStopping")

    def on_train_begin(self, logs=None):
        _check_monitor_in_params(self, self.monitor, "EarlyStopping")
        self.wait = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if self.better(current, self.best):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= max(self.patience, 1):  # as Keras: patience 0 and 1 both stop at the first miss
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            best = f"best epoch {self.best_epoch + 1}" if self.best_epoch is not None else "no finite value"
            print(f"Epoch {self.stopped_epoch + 1}: early stopping ({best})")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when `monitor` improves (save_best_only=True).

    Each save is atomic: a run killed while saving leaves the previous file whole. The
    file holds what resuming needs: weights, optimizer state, the number of completed
    epochs and the random generator state (save_weights_only=True leaves out the optimizer
    state, so a run resumed from it is not exact). Resume with
        model = load_model(path); model.fit(..., initial_epoch=model.completed_epochs)
    `filepath` may hold format fields: 'model-{epoch:02d}-{val_loss:.3f}.h5'.
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 save_weights_only=False, verbose=0):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a path, got {filepath!r}")
        self.filepath = os.fspath(filepath)
        if not isinstance(self.filepath, str):
            raise TypeError(f"ModelCheckpoint: filepath must be a text path, got {filepath!r}")
        self.monitor = monitor
        self.save_best_only = check_bool(save_best_only, "save_best_only", "ModelCheckpoint")
        self.better = _improvement_test(monitor, mode, 0.0, "ModelCheckpoint")
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only", "ModelCheckpoint")
        self.verbose = _check_verbose(verbose, "ModelCheckpoint")
        self.best = None

    def on_train_begin(self, logs=None):
        """Check the filepath template and the monitor before the first batch, not after an epoch."""
        names = self.params.get("metrics")
        if names is None:
            return
        if self.save_best_only:
            _check_monitor_in_params(self, self.monitor, "ModelCheckpoint")
        self._path(1, {name: 0.0 for name in names})

    def _path(self, epoch, logs):
        try:
            return self.filepath.format(epoch=epoch, **_with_old_names(logs))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as error:
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} ({error!r}); "
                             f"it may use {{epoch}} and the logs {sorted(logs)}") from None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not epoch_completed(self.model, epoch):   # weights from part of an epoch: not a checkpoint
            if self.verbose:
                print(f"Epoch {epoch + 1}: training stopped during the epoch; no checkpoint saved")
            return
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self.better(current, self.best):
                return
            self.best = current
        path = self._path(epoch + 1, logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


"""Callbacks: hooks the training loop calls (History, progress bar, checkpoints, early stop,
learning-rate schedules, CSV logs).

fit calls every hook with a logs dict, as Keras does, in this order:
    on_train_begin(logs)
      on_epoch_begin(epoch, logs)
        on_train_batch_begin(batch, logs), on_train_batch_end(batch, logs)   for every batch
      on_epoch_end(epoch, logs)                                              logs: loss, accuracy, val_...
    on_train_end(logs)
on_batch_begin / on_batch_end are the Keras 2 names of the batch hooks: Callback's
on_train_batch_begin / on_train_batch_end call them, so a callback may override either name.
The user's callbacks run first, then History, then the progress bar: a key a callback adds to
`logs` in on_epoch_end (ReduceLROnPlateau's 'learning_rate') reaches History and the progress line.

A callback stops training by setting `self.model.stop_training = True`. Stopped before its
last batch, the epoch still ends with on_epoch_end (as in Keras), but it is not complete:
`epoch_completed(model, epoch)` says so, and the model's `partial_epoch_batches` says how
far it got. on_train_begin comes before the first batch: the place to check arguments
against `self.params` ('epochs', 'steps', 'verbose', and 'metrics', the names the logs will have).
"""
import csv
import inspect
import io
import math
import numbers
import os
import sys
import time
import warnings

import numpy as np

from minicnn.utils.checks import check_bool, check_int, check_number
from minicnn.utils.files import atomic_write


class Callback:
    """The base class of callbacks: override the hooks you need. Here they do nothing, except that
    on_train_batch_begin / on_train_batch_end pass the call on to on_batch_begin / on_batch_end.

    `self.model` is the model being trained and `self.params` the training parameters
    ('epochs', 'steps', 'verbose', 'metrics'); fit sets both before on_train_begin.
    """

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

    def on_train_batch_begin(self, batch, logs=None):
        """Before each training batch. Calls on_batch_begin, its Keras 2 name."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """After each training batch (logs: the epoch's running loss and accuracy). Calls on_batch_end."""
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass


def epoch_completed(model, epoch):
    """True when every batch of `epoch` was applied (fit sets model.completed_epochs to epoch + 1)."""
    return model is None or model.completed_epochs > epoch


def _check_verbose(verbose, who):
    """0 (quiet) or 1 (a line for what the callback does); True and False too."""
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1):
        raise ValueError(f"{who}: verbose must be 0 or 1, got {verbose!r}")
    return int(verbose)


def _check_path(path, argument, who):
    """A str or os.PathLike path, as a str."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{who}: {argument} must be a path, got {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{who}: {argument} must be a text path, got {path!r}")
    return text


def _say(callback, text):
    """Print a callback's message on a line of its own. Under fit(verbose=1) on a terminal the
    progress bar's line is still open (it is redrawn in place): start a new line first, as Keras does."""
    params = callback.params or {}
    bar_line_open = params.get("verbose") == 1 and hasattr(sys.stdout, "isatty") and sys.stdout.isatty()
    print(("\n" if bar_line_open else "") + text)


# Old Keras names for the same values: the lab reads history['acc'], Keras 2 scripts history['lr']
# (Keras 3's ReduceLROnPlateau and LearningRateScheduler log 'learning_rate').
KEY_ALIASES = {"acc": "accuracy", "val_acc": "val_accuracy", "lr": "learning_rate"}


class HistoryDict(dict):
    """A dict of metric lists that also answers the Keras 2 keys 'acc', 'val_acc' and 'lr'."""

    def _key(self, key):
        return KEY_ALIASES.get(key, key) if key not in self.keys() else key

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __contains__(self, key):
        return super().__contains__(self._key(key))

    def get(self, key, default=None):
        return super().get(self._key(key), default)


class History(Callback):
    """Records each epoch's logs: history['loss'], ['accuracy'], ['val_loss'], ['val_accuracy'],
    and whatever the callbacks before it added to the logs (['learning_rate']...).

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


def format_value(value):
    """A logged value as Keras's progress bar shows it: 0.4521, or 1.0000e-04 when |value| <= 1e-3."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"
    return str(value)


def format_logs(logs):
    return " - ".join(f"{key}: {format_value(value)}" for key, value in logs.items())


def format_duration(seconds):
    """A time per step as Keras prints it: 2s, 16ms, 850us."""
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s"
    if seconds >= 1e-3:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds * 1e6:.0f}us"


def format_elapsed(seconds):
    """A whole run's time as Keras prints it: whole seconds (0.83 s is 1s)."""
    return f"{seconds:.0f}s"


class ProgressBar:
    """A Keras-style bar: `750/750 [=====>....] - 12s 16ms/step - loss: 0.4521`.

    On a terminal it redraws one line in place; when output goes to a file or a pipe
    it prints only the finished line, so logs stay clean.
    """
    WIDTH = 30
    REDRAW_SECONDS = 0.1

    def __init__(self, total, stream=None, one_line=False):
        self.total = total
        self.one_line = one_line     # verbose=2: only `313/313 - 1s - 3ms/step - loss: ...` at the end
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
        if self.one_line:
            text = f"{done}/{self.total} - {format_elapsed(elapsed)} - {per_step}/step"
        else:
            text = f"{done}/{self.total} [{bar}] - {format_elapsed(elapsed)} {per_step}/step"
        return text + (" - " + format_logs(logs) if logs else "")

    def update(self, done, logs=None):
        now = time.perf_counter()
        if self.interactive and not self.one_line and (now - self.last_draw >= self.REDRAW_SECONDS or done == self.total):
            self.stream.write("\r" + self.line(done, logs))
            self.stream.flush()
            self.last_draw = now

    def finish(self, logs=None, done=None):
        """Print the final line: `done` steps (all of them by default) and the logs."""
        text = self.line(self.total if done is None else done, logs)
        self.stream.write(("\r" + text if self.interactive and not self.one_line else text) + "\n")
        self.stream.flush()


class ProgbarLogger(Callback):
    """Prints training progress: verbose=1 a bar per epoch, verbose=2 one line per epoch.

    fit puts it last, so the epoch's line shows what the other callbacks added to the logs."""

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
            self.stream.write(f"Epoch {epoch + 1}/{self.params['epochs']} - {format_elapsed(elapsed)} - "
                              f"{format_logs(logs)}\n")
            self.stream.flush()


# --- watching a logged value: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau -----------------
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
    """The logs, answering the Keras 2 names 'acc', 'val_acc' and 'lr' too."""
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
    names = callback.params.get("metrics") if callback.params else None
    if names is not None and monitor not in _with_old_names(dict.fromkeys(names)):
        _missing_monitor(monitor, names, who)


class TerminateOnNaN(Callback):
    """Stop training quietly as soon as a batch loss is NaN or infinite.

    Such a batch changes no weight; without this callback fit raises a RuntimeError there.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            _say(self, f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved (by more than min_delta) for `patience` epochs.

    restore_best_weights=True: when training ends, early or not, put back the weights
    of the best epoch (as Keras 3 does). NaN or inf never counts as an improvement.
    start_from_epoch: epochs 0 .. start_from_epoch - 1 are a warm-up, neither watched nor counted.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", *,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.patience = check_int(patience, "patience", "EarlyStopping", minimum=0)
        min_delta = abs(check_number(min_delta, "min_delta", "EarlyStopping"))
        self.better = _improvement_test(monitor, mode, min_delta, "EarlyStopping")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights", "EarlyStopping")
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", "EarlyStopping", minimum=0)
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
        if epoch < self.start_from_epoch:
            return
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

    save_freq='epoch' saves at the end of every complete epoch; an int N saves after every N
    training batches, counted across epochs, with the batch logs ('loss', 'accuracy': a
    val_ monitor exists only at the end of an epoch), and `filepath` may use {batch} too.
    A file saved during an epoch records how far into it the model was (partial_epoch_batches):
    resuming from it works but is not exact. initial_value_threshold: with save_best_only,
    the value the monitor must beat before the first save.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        self.filepath = _check_path(filepath, "filepath", "ModelCheckpoint")
        self.monitor = monitor
        self.verbose = _check_verbose(verbose, "ModelCheckpoint")
        self.save_best_only = check_bool(save_best_only, "save_best_only", "ModelCheckpoint")
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only", "ModelCheckpoint")
        self.better = _improvement_test(monitor, mode, 0.0, "ModelCheckpoint")
        if isinstance(save_freq, bool) or not (save_freq == "epoch" or (
                isinstance(save_freq, numbers.Integral) and save_freq >= 1)):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a number of batches (an int >= 1), "
                             f"got {save_freq!r}")
        self.save_freq = save_freq if save_freq == "epoch" else int(save_freq)
        if self.save_freq != "epoch" and self.save_best_only and monitor.startswith("val_"):
            raise ValueError(f"ModelCheckpoint: with save_freq={self.save_freq} (batches) the monitor must be a "
                             f"training value such as 'loss': {monitor!r} is computed only at the end of an epoch")
        if initial_value_threshold is not None:
            initial_value_threshold = check_number(initial_value_threshold, "initial_value_threshold",
                                                   "ModelCheckpoint")
        self.best = initial_value_threshold
        self._batches_seen = 0
        self._epoch = 0

    def on_train_begin(self, logs=None):
        """Check the filepath template and the monitor before the first batch, not after an epoch."""
        self._batches_seen = 0
        names = self.params.get("metrics") if self.params else None
        if names is None:
            return
        if self.save_best_only:
            _check_monitor_in_params(self, self.monitor, "ModelCheckpoint")
        self._path(1, {name: 0.0 for name in names}, batch=None if self.save_freq == "epoch" else 1)

    def _path(self, epoch, logs, batch=None):
        fields = {**_with_old_names(logs), "epoch": epoch}
        if batch is not None:
            fields["batch"] = batch
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as error:
            allowed = "{epoch}" + (" and {batch}" if batch is not None else "")
            raise ValueError(f"ModelCheckpoint: cannot fill in filepath {self.filepath!r} ({error!r}); "
                             f"it may use {allowed} and the logs {sorted(logs)}") from None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen >= self.save_freq:
            self._batches_seen = 0
            self._save(self._epoch, logs or {}, batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq != "epoch":
            return
        if not epoch_completed(self.model, epoch):   # weights from part of an epoch: not a checkpoint
            if self.verbose:
                _say(self, f"Epoch {epoch + 1}: training stopped during the epoch; no checkpoint saved")
            return
        self._save(epoch, logs or {})

    def _save(self, epoch, logs, batch=None):
        """Save to the filled-in filepath, if save_best_only allows; `best` changes only once saved."""
        path = self._path(epoch + 1, logs, None if batch is None else batch + 1)
        current = None
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            best = "None" if self.best is None else f"{self.best:.5f}"
            if not self.better(current, self.best):
                if self.verbose:
                    _say(self, f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
                return
            if self.verbose:
                _say(self, f"Epoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                           f"saving model to {path}")
        elif self.verbose:
            _say(self, f"Epoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.save_best_only:
            self.best = current


# --- the learning rate ------------------------------------------------------------------------
# Both read the rate with float(optimizer.learning_rate) and set it with
# optimizer.learning_rate = value; the optimizer uses the new value from its next step on.
class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` has not improved for `patience` epochs:

        new_lr = max(lr * factor, min_lr)

    An improvement is a value below best - min_delta (above best + min_delta for accuracies,
    or mode='max'); NaN or inf never is one. After a reduction, `cooldown` epochs pass before
    epochs without improvement count again. Every epoch it writes logs['learning_rate'], the
    rate that epoch trained with: history.history['learning_rate'] (Keras 3's name), which
    answers to history.history['lr'] (Keras 2's) too.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        who = "ReduceLROnPlateau"
        self.monitor = monitor
        self.factor = check_number(factor, "factor", who, low=0, high=1, include_low=False, include_high=False)
        self.patience = check_int(patience, "patience", who, minimum=0)
        self.verbose = _check_verbose(verbose, who)
        self.mode = mode
        self.min_delta = abs(check_number(min_delta, "min_delta", who))
        self.better = _improvement_test(monitor, mode, self.min_delta, who)
        self.cooldown = check_int(cooldown, "cooldown", who, minimum=0)
        self.min_lr = check_number(min_lr, "min_lr", who, low=0)
        self._reset()

    def _reset(self):
        self.best = None            # the best value seen (None: none yet)
        self.wait = 0               # epochs since the last improvement
        self.cooldown_counter = 0   # epochs of cooldown left

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        _check_monitor_in_params(self, self.monitor, "ReduceLROnPlateau")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        learning_rate = float(optimizer.learning_rate)
        if logs is not None:
            logs["learning_rate"] = learning_rate
        current = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.better(current, self.best):
            self.best, self.wait = current, 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        # The optimizer may hold the rate in float32: compare in float32, as Keras does, so that
        # a rate already at min_lr is not "reduced" to min_lr again and again.
        if self.wait >= self.patience and learning_rate > np.float32(self.min_lr):
            new_learning_rate = max(learning_rate * self.factor, self.min_lr)
            optimizer.learning_rate = new_learning_rate
            self.cooldown_counter, self.wait = self.cooldown, 0
            if self.verbose:
                _say(self, f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_learning_rate}.")


def _schedule_takes_learning_rate(schedule):
    """True for schedule(epoch, lr), False for schedule(epoch); a TypeError for anything else."""
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):   # Python cannot tell (some built-ins): Keras 3's form
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    more = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    required = [p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(required) > 2 or (not positional and not more) or any(p.kind == p.KEYWORD_ONLY for p in required):
        raise TypeError(f"LearningRateScheduler: schedule must be a function schedule(epoch) or "
                        f"schedule(epoch, lr), got {schedule!r} taking ({', '.join(map(str, parameters))})")
    return len(positional) >= 2 or more


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch to schedule(epoch, lr) or schedule(epoch).

        def schedule(epoch, lr):          # epoch counts from 0; lr is the current rate
            return lr if epoch < 10 else lr * math.exp(-0.1)

    The schedule must return a positive finite number. Every epoch it also writes
    logs['learning_rate'] (history.history['learning_rate'], or ['lr']).
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function schedule(epoch) or "
                            f"schedule(epoch, lr), got {schedule!r}")
        self.schedule = schedule
        self.takes_learning_rate = _schedule_takes_learning_rate(schedule)
        self.verbose = _check_verbose(verbose, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if self.takes_learning_rate:
            learning_rate = float(optimizer.learning_rate)
            new_learning_rate, call = self.schedule(epoch, learning_rate), f"schedule({epoch}, {learning_rate!r})"
        else:
            new_learning_rate, call = self.schedule(epoch), f"schedule({epoch})"
        if (isinstance(new_learning_rate, bool) or not isinstance(new_learning_rate, numbers.Real)
                or not math.isfinite(new_learning_rate) or new_learning_rate <= 0):
            raise ValueError(f"LearningRateScheduler: the schedule must return the new learning rate, a positive "
                             f"finite number; {call} returned {new_learning_rate!r}")
        optimizer.learning_rate = float(new_learning_rate)
        if self.verbose:
            _say(self, f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(new_learning_rate)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


# --- logs to a file ---------------------------------------------------------------------------------
class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file:

        epoch,accuracy,loss,val_accuracy,val_loss
        0,0.71,0.82,0.75,0.69

    The columns are 'epoch' (counted from 0, as Keras) and the first epoch's log names, sorted.
    append=True continues an existing file under its own header (a resumed run), leaving out,
    with a warning, names its header lacks; a name missing from an epoch's logs is written NA.

    The file is never left with half a row: every epoch rewrites it whole through
    minicnn.utils.files.atomic_write (a temporary file renamed over it), so a crash leaves the
    rows of the epochs before. A log of a few hundred rows is a few kB: this costs nothing.
    Nothing is written before the end of the first epoch.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = _check_path(filename, "filename", "CSVLogger")
        if not isinstance(separator, str) or len(separator) != 1 or separator in "\r\n\"":
            raise ValueError(f"CSVLogger: separator must be one character such as ',' or ';', got {separator!r}")
        self.sep = separator
        self.append = check_bool(append, "append", "CSVLogger")
        self.text = ""      # the whole file as it will be written
        self.keys = None    # the columns after 'epoch'

    def _row(self, values):
        line = io.StringIO()
        csv.writer(line, delimiter=self.sep, lineterminator="\n").writerow(values)
        return line.getvalue()

    def on_train_begin(self, logs=None):
        """Read the file to continue (append=True); write nothing yet."""
        if os.path.isdir(self.filename):
            raise ValueError(f"CSVLogger: filename {self.filename!r} is a folder; give a file such as 'log.csv'")
        self.text, self.keys, self.left_out = "", None, set()
        if not (self.append and os.path.exists(self.filename)):
            return
        with open(self.filename, encoding="utf-8", newline="") as stream:
            text = stream.read()
        if text and not text.endswith("\n"):   # a row cut short by a crash of another writer
            warnings.warn(f"CSVLogger: the last line of {self.filename} is incomplete; the new rows start on "
                          "a line of their own", stacklevel=2)
            text += "\n"
        if text:
            header = next(csv.reader([text.splitlines()[0]], delimiter=self.sep))
            if header[:1] != ["epoch"]:
                raise ValueError(f"CSVLogger: cannot append to {self.filename}: its first line {header!r} is not "
                                 f"a header 'epoch{self.sep}...' with separator {self.sep!r}")
            self.keys = header[1:]
        self.text = text

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self.text += self._row(["epoch"] + self.keys)
        left_out = set(logs) - set(self.keys) - self.left_out
        if left_out:
            warnings.warn(f"CSVLogger: {sorted(left_out)} are not columns of {self.filename} ({self.keys}); "
                          "they are left out", stacklevel=2)
            self.left_out |= left_out
        self.text += self._row([epoch] + [logs.get(key, "NA") for key in self.keys])
        with atomic_write(self.filename, "w", encoding="utf-8") as stream:
            stream.write(self.text)


# --- callbacks made of functions ------------------------------------------------------------------
class LambdaCallback(Callback):
    """A callback made of functions, for small jobs that need no class:

        LambdaCallback(on_epoch_end=lambda epoch, logs: print(epoch, logs["loss"]))

    Each function given replaces that hook and takes what the hook takes: on_epoch_begin and
    on_epoch_end (epoch, logs), on_batch_begin and on_batch_end (batch, logs; Keras 3 calls them
    on_train_batch_begin and on_train_batch_end: either name works), on_train_begin and
    on_train_end (logs). All but the first two are keyword-only: Keras 2 and Keras 3 list them
    in different orders.
    """

    OLD_NAMES = {"on_batch_begin": "on_train_batch_begin", "on_batch_end": "on_train_batch_end"}

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, *, on_batch_begin=None, on_batch_end=None,
                 on_train_begin=None, on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **others):
        super().__init__()
        if others:
            name = next(iter(others))
            raise TypeError(f"LambdaCallback: minicnn does not support {name!r}; fit calls on_train_begin, "
                            "on_epoch_begin, on_batch_begin (on_train_batch_begin), on_batch_end "
                            "(on_train_batch_end), on_epoch_end and on_train_end, and evaluate and predict call "
                            "no callbacks")
        functions = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                     "on_batch_begin": on_batch_begin, "on_batch_end": on_batch_end,
                     "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                     "on_train_batch_begin": on_train_batch_begin, "on_train_batch_end": on_train_batch_end}
        for old, new in self.OLD_NAMES.items():
            if functions[old] is not None and functions[new] is not None:
                raise ValueError(f"LambdaCallback: give {old} or {new}, not both: they are two names of one hook")
        for name, function in functions.items():
            if function is None:
                continue
            if not callable(function):
                raise TypeError(f"LambdaCallback: {name} must be a function, got {function!r}")
            setattr(self, name, function)


# Keras names minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = ("TensorBoard", "BackupAndRestore", "RemoteMonitor", "SwapEMAWeights", "CallbackList")


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("callbacks", name, NOT_IN_MINICNN)

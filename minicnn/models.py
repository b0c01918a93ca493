"""Sequential and Model: a chain of layers, and the one training loop of minicnn.

One training step (Model.train_step: train_on_batch, and fit for every batch):
    y_pred = plan.forward(x, training=True)     step by step (minicnn/plan.py)
    loss   = plan.loss(y)
    plan.backward(y)                            the same steps in reverse; fills layer.grads
    optimizer.apply_gradients(grads, params)    updates the weights in place
The plan is made from the layers once (model.plan): a step is a layer, or a
Conv2D -> LeakyReLU -> MaxPooling2D run fused into one (same numbers, fewer passes over
memory). With model.fusion = False, or inside `with model.layer_by_layer():`, every step
is one layer. When the last layer ends in softmax and the loss is a cross-entropy, the
loss is computed from the logits z and the gradient enters that layer as (p - y) / N.

Inputs are checked at the boundary (fit, evaluate, predict, train_on_batch) before
anything changes, and a step whose loss, gradients or update is NaN or infinite changes
nothing and is reported.
"""
import collections.abc
import contextlib
import math
import numbers
import types
import warnings
import weakref

import numpy as np

from minicnn import backend, losses, optimizers, saving
from minicnn import callbacks as callbacks_module
from minicnn import metrics as metrics_module
from minicnn.layers.base import Layer, SymbolicTensor, assign_weights, check_shape, unique_name
from minicnn.layers.functional import Input, InputLayer
from minicnn.plan import INPUT, make_plan, replaced
from minicnn.utils import checks
from minicnn.utils.checks import check_bool, check_int, check_number

DEFAULT_BATCH_SIZE = 32  # Keras's default for fit, evaluate and predict
# minicnn checks losses and outputs for NaN and inf itself and says what went wrong, so
# NumPy's overflow warnings from inside a diverging step are only noise: they are silenced there.
QUIET_FLOATS = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


__all__ = ["Model", "Sequential", "Input", "InputLayer", "load_model", "INPUT"]


class Model:
    """Layers wired into one network: Model(inputs=Input(...), outputs=...) (the functional
    API, skip connections included) or, more often, Sequential(), a chain of layers.

    model.layers holds the layers in the order they run; model.connections says where each
    one's input comes from (see connections)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "call" in vars(cls):
            raise TypeError(
                f"minicnn does not support subclassed models with call() (in {cls.__name__}): minicnn needs "
                "each layer's backward pass, which a free-form call() does not give; build the network with "
                "Sequential or Model(inputs, outputs), or write a Layer with forward and backward (see README)")

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or unique_name("model")
        self.layers = []
        self.input_shape = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self.device = "cpu"
        self.history = None
        self.completed_epochs = 0  # epochs fit has finished; saved with the model, for resuming
        # optimizer steps taken since the end of epoch `completed_epochs` (a fit stopped mid-epoch,
        # train_on_batch); 0 at the end of every epoch. Saved with the model too.
        self.partial_epoch_batches = 0
        self.rng_state = None      # the random generator state a loaded checkpoint brings (see fit)
        self.fusion = True         # run Conv2D -> LeakyReLU -> MaxPooling2D as one step (plan.py)
        self._plans = {}           # fusion on / off -> (what the plan was made from, the plan)
        self._graph = None         # a functional model's connections, when they are not a chain
        self.input_name = None     # the name of a functional model's Input (its summary row)
        if inputs is not None or outputs is not None:
            inputs, outputs = _one_tensor(inputs, "inputs"), _one_tensor(outputs, "outputs")
            layers, connections = _read_graph(inputs, outputs)
            self.layers = layers
            self._graph = None if connections == _chain(len(layers)) else connections
            self.input_name = inputs.name
            self.build(inputs.shape)

    @property
    def connections(self):
        """Where each layer's input comes from: connections[i] is a tuple of indices into
        model.layers (INPUT, -1, for the model's input), one per input of layers[i]. A chain
        (every Sequential) is [(INPUT,), (0,), (1,), ...]; a skip connection shows as a layer
        with two inputs, e.g. Add at (3, 1)."""
        if self._graph is None:
            return _chain(len(self.layers))
        if len(self._graph) != len(self.layers):
            raise ValueError(f"model {self.name!r}: model.layers was changed by hand, and no longer matches the "
                             "graph of the functional model; build a new Model(inputs, outputs) instead")
        return self._graph

    @connections.setter
    def connections(self, connections):
        """Rewire the layers (load_model does); None or a chain means a chain."""
        connections = None if connections is None else [tuple(inputs) for inputs in connections]
        self._graph = None if connections is None or connections == _chain(len(self.layers)) else connections
        self._plans = {}

    @property
    def trainable(self):
        """False when no layer of the model trains (Keras's switch for freezing a model)."""
        return any(layer.trainable for layer in self.layers) or not self.layers

    @trainable.setter
    def trainable(self, value):
        """model.trainable = False freezes every layer (e.g. a model used inside another, before
        compiling that one); True unfreezes them all."""
        value = check_bool(value, "trainable", f"model {self.name!r}")
        for layer in self.layers:
            layer.trainable = value

    def get_layer(self, name=None, index=None):
        """A layer by its name, or by its position in model.layers."""
        if (name is None) == (index is None):
            raise ValueError("get_layer: give either name=... or index=...")
        if index is not None:
            if not isinstance(index, numbers.Integral) or not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"get_layer: index {index!r} is out of range; the model has {len(self.layers)} "
                                 "layers")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the model has {[l.name for l in self.layers]}")

    # --- building ------------------------------------------------------------------
    @property
    def built(self):
        return self.input_shape is not None

    def build(self, input_shape):
        """Build every layer for `input_shape` (batch axis first, None or a number).

        If a layer does not fit, the error propagates and the model stays as it was (and so
        does the random generator that drew the initial weights of the layers built so far).
        """
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2:
            raise ValueError(f"build: input_shape must start with the batch axis, e.g. (None, 28, 28, 1), "
                             f"got {input_shape!r}")
        sample_shape = check_shape(input_shape[1:], "input_shape", "build")
        shapes = {INPUT: (None,) + sample_shape}    # the output shape of each layer (by index)
        shape = shapes[INPUT]
        newly_built = []
        rng_state = backend.get_rng_state()
        try:
            for index, (layer, inputs) in enumerate(zip(self.layers, self.connections)):
                arriving = [shapes[source] for source in inputs]
                shape = arriving if layer.takes_list else arriving[0]
                if layer.built:
                    layer.check_input_shape(shape)
                else:
                    newly_built.append(layer)
                    layer.build(shape)
                    layer.to(self.device)
                shape = shapes[index] = layer.compute_output_shape(shape)
                layer.output_shape = shape
        except BaseException:
            for layer in newly_built:  # no half-built layer is left behind
                layer.unbuild()
            backend.set_rng_state(rng_state)
            raise
        self.input_shape = (None,) + sample_shape
        self.output_shape = shape

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    @contextlib.contextmanager
    def _unbuilt_if_failing(self):
        """Around a call that may build the model for its data (fit, predict...): if the call
        then fails, the model is unbuilt again, and the random generator that drew its initial
        weights is put back, so that the failed call changed nothing."""
        if self.built:
            yield
            return
        unbuilt = [layer for layer in self.layers if not layer.built]
        rng_state = backend.get_rng_state()
        try:
            yield
        except BaseException:
            if self.built:
                for layer in unbuilt:
                    layer.unbuild()
                self.input_shape = self.output_shape = None
                backend.set_rng_state(rng_state)
            raise

    # --- compile ---------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Choose the optimizer, the loss and the metrics, by name or object (see minicnn.metrics).
        Keras's other arguments (run_eagerly, jit_compile...) are accepted at their defaults."""
        checks.refuse_arguments("compile", kwargs, COMPILE_ARGUMENTS)
        # Everything is checked and made first, and only then put in place: a compile that
        # raises leaves the optimizer (and its state), the loss and the metrics as they were.
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='categorical_crossentropy'")
        new_optimizer = optimizers.get(optimizer)
        new_loss = losses.get(loss)
        if isinstance(metrics, str):
            metrics = [metrics]
        if metrics is not None and not isinstance(metrics, (list, tuple)):
            raise TypeError(f"compile: metrics must be a list such as ['accuracy'], got {metrics!r}")
        try:
            new_metrics = [metrics_module.get(metric, new_loss) for metric in metrics or []]
        except ValueError as error:
            raise ValueError(f"compile: {error}") from None
        names = [metric.name for metric in new_metrics]
        if len(set(names)) < len(names) or "loss" in names:
            raise ValueError(f"compile: metrics {names} would log two values under one name")
        self._check_optimizer_is_free(new_optimizer)
        self.optimizer, self.loss = new_optimizer, new_loss
        self.metrics = new_metrics
        new_optimizer.owner = weakref.ref(self)

    @property
    def metrics_names(self):
        """['loss'] and the name of every metric: the order evaluate returns them in."""
        return ["loss"] + [metric.name for metric in self.metrics]

    def _check_optimizer_is_free(self, optimizer):
        """An optimizer keeps state (Adam's m and v) for one model's weights: refuse one that
        another model uses, or that holds state from training another model."""
        owner = optimizer.owner() if optimizer.owner is not None else None
        if owner is self:
            return
        name = type(optimizer).__name__
        advice = f"give each model its own optimizer, e.g. optimizer={name}(learning_rate={optimizer.learning_rate:g})"
        if owner is not None and owner.optimizer is optimizer:
            raise ValueError(f"compile: this {name} object is already the optimizer of model {owner.name!r}, "
                             f"and its state would mix the two models' weights; {advice}")
        if optimizer.iterations or optimizer.slots:
            raise ValueError(f"compile: this {name} object has taken {optimizer.iterations} steps for another "
                             f"model and holds their state; {advice}")

    def _check_optimizer_state(self, what):
        """The optimizer's state (if any yet) must be for the weights the model trains now."""
        optimizer = self.optimizer
        if not optimizer.slots:
            return
        trained = self.trainable_params()
        keys = tuple((id(layer), key) for layer, key in trained)
        if optimizer.fits([layer.params[key] for layer, key in trained]) and optimizer.slots_for in (None, keys):
            return
        name = type(optimizer).__name__
        raise ValueError(
            f"{what}: the optimizer's state ({', '.join(optimizer.slots)}) is for the weights the model trained "
            f"before, but since then a layer was added or removed, or a layer's `trainable` changed. Compile again "
            f"with a new optimizer to start its state afresh: model.compile(optimizer={name}(...), loss=...)")

    def _check_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: compile the model first, e.g. model.compile(loss=..., optimizer='adam')")

    # --- the step plan ---------------------------------------------------------------------
    @property
    def plan(self):
        """The steps forward and backward run (minicnn/plan.py), made again only when the
        layers, the loss or `fusion` have changed since the last one."""
        fusion = bool(self.fusion)
        connections = tuple(self.connections)
        key = (tuple(map(id, self.layers)), tuple(map(replaced, self.layers)), id(self.loss), connections)
        made_from, plan = self._plans.get(fusion, (None, None))
        if key != made_from:        # one plan kept per fusion setting: switching back and forth remakes none
            _check_each_layer_once(self.layers)   # model.layers may have been changed by hand
            plan = make_plan(self.layers, self.loss, fusion, None if self._graph is None else connections)
            self._plans[fusion] = (key, plan)
        return plan

    @contextlib.contextmanager
    def layer_by_layer(self):
        """Within the block, run every layer on its own (no fusion), e.g. to watch each one."""
        saved, self.fusion = self.fusion, False
        try:
            yield self
        finally:
            self.fusion = saved

    # --- forward, loss, backward -------------------------------------------------------
    def forward(self, x, training=False, observers=()):
        """Run x through every step: x (N, ...) -> y_pred (N, classes), on the model's device."""
        backend.check_same_device(x, self.device, "forward")
        return self.plan.forward(x, training=training, observers=observers)

    def compute_loss(self, x, y, training=False, sample_weight=None):
        """The mean loss on one batch (x, y already on the model's device), without backward;
        weight penalties (kernel_regularizer...) included."""
        backend.check_same_device(x, self.device, "compute_loss")
        plan = self.plan
        plan.forward(x, training=training)
        return plan.loss(y, sample_weight)

    def compute_gradients(self, x, y, training=True, input_gradient=True, observers=(), sample_weight=None):
        """Forward, loss and backward for one batch, without updating the weights.

        Fills every layer's `grads` and returns (loss, y_pred, dx), dx = d loss / d x.
        Training passes input_gradient=False: then the first layer may skip dx (None).
        `observers` (plan.Observer) are told about every step on the way. `sample_weight`
        (N,) weighs each sample's loss (see losses.py).
        """
        backend.check_same_device(x, self.device, "compute_gradients")
        for layer, inputs in zip(self.layers, self.connections):
            # only a layer the model's input goes into may skip dx; every other layer must compute it
            # (it may have been a first layer before: of a model now used inside this one)
            layer.input_gradient = input_gradient if INPUT in inputs else True
        plan = self.plan
        y_pred = plan.forward(x, training=training, observers=observers)
        loss = plan.loss(y, sample_weight)
        dx = plan.backward(y, observers=observers, sample_weight=sample_weight)
        return loss, y_pred, dx

    def trainable_params(self):
        """[(layer, name)] of every trainable parameter, in layer order."""
        return [(layer, key) for layer in self.layers if layer.trainable for key in layer.params]

    def train_step(self, x, y, observers=(), sample_weight=None):
        """One optimizer step on a batch already on the model's device (as fit runs it).

        Returns (loss as a float, y_pred, problem): problem is None, or says what went wrong.
        A NaN or infinite loss or gradient leaves the model as it was: no update (it would
        turn the weights into NaN), and BatchNormalization's moving statistics are put back.
        An update that overflows (NaN or inf in the new weights or optimizer state) is undone:
        the weights, the optimizer state and its step count are put back from copies taken
        just before it. An exception, Ctrl-C included, puts everything back the same way.
        Observers hear about every step, and about the update (before_update / after_update,
        if they have them).
        """
        self._check_compiled("train_step")
        self._check_optimizer_state("train_step")
        layer_state = _Copies(array for layer in self.layers for array in layer.state.values())
        before_update = None
        try:
            with np.errstate(**QUIET_FLOATS):
                loss, y_pred, _ = self.compute_gradients(x, y, training=True, input_gradient=False,
                                                         observers=observers, sample_weight=sample_weight)
            loss = float(loss)
            trained = self.trainable_params()
            pairs = [(layer.grads[key], layer.params[key]) for layer, key in trained]
            problem = None
            if not math.isfinite(loss):
                problem = f"the loss became {loss}"
            elif not _all_finite(grad for grad, _ in pairs):
                problem = "the gradients overflowed"
            if problem:
                layer_state.restore()
                return loss, y_pred, problem + "; this batch changed no weight"
            before_update = _OptimizerCopies(self.optimizer, [param for _, param in pairs])
            for observer in observers:
                getattr(observer, "before_update", _ignore)(self.optimizer)
            with np.errstate(**QUIET_FLOATS):
                self.optimizer.apply_gradients(pairs)
            for observer in observers:
                getattr(observer, "after_update", _ignore)(self.optimizer)
            slots = [array for arrays in self.optimizer.slots.values() for array in arrays]
            if not _all_finite([param for _, param in pairs] + slots):
                before_update.restore()
                layer_state.restore()
                return loss, y_pred, ("the update overflowed: the weights or the optimizer state would have held "
                                      "NaN or inf; this batch changed no weight")
        except BaseException:
            if before_update is not None:
                before_update.restore()
            layer_state.restore()
            raise
        self.optimizer.slots_for = tuple((id(layer), key) for layer, key in trained)
        return loss, y_pred, None

    # --- data in --------------------------------------------------------------------------
    def _prepare(self, x, y=None, what="fit"):
        """Check x (and y) at the API boundary and return them as NumPy arrays."""
        if not self.layers:
            raise ValueError(f"{what}: the model has no layers; add some with model.add(...)")
        _check_each_layer_once(self.layers)   # model.layers may have been changed by hand
        x = _as_array(x, "x", what)
        if x.ndim < 2:
            raise ValueError(f"{what}: x must have a batch axis and a sample shape, (N, ...), got shape {x.shape}")
        self._ensure_built(x)
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != g for e, g in zip(expected[1:], x.shape[1:])):
            raise ValueError(f"{what}: the model expects x of shape {expected}, got {x.shape}"
                             f"{_shape_hint(x.shape, expected)}")
        if y is None:
            return x, None
        y = _as_array(y, "y", what)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{what}: x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
        return x, self._check_targets(y, what)

    def _prepare_targets(self, x, y, what):
        """For fit, evaluate and train_on_batch: the model is compiled, and x and y are given and checked."""
        self._check_compiled(what)
        _refuse_containers(x, "x", what)
        if y is None:
            raise ValueError(f"{what}: y (the targets) is required")
        return self._prepare(x, y, what)

    def _check_targets(self, y, what):
        """y must fit the loss (losses.py: each loss checks its targets); returns y as it takes them."""
        return self.loss.check_targets(y, self.output_shape, what)

    def prepare_batch(self, x, y=None, what="prepare_batch"):
        """x (and y) checked as fit checks them, cast to floatx and moved to the model's device:
        what compute_gradients and train_step take."""
        if y is not None:
            self._check_compiled(what)
        with self._unbuilt_if_failing():
            x, y = self._prepare(x, y, what)
            return self._to_batch(x), (self._target_batch(y) if y is not None else None)

    def _to_batch(self, array, index=None, float_data=True):
        """Select rows, cast to floatx and move to the model's device."""
        if index is not None and backend.is_gpu_array(array):
            index = backend.cupy.asarray(index)        # rows of data that lives on the GPU
        batch = array if index is None else array[index]
        if float_data:
            batch = batch.astype(backend.floatx(), copy=False)
        return backend.to_device(batch, self.device)

    def _resident(self, x, y):
        """x and y for a whole fit: on the GPU, copied there once (x as floatx) when they fit
        (backend.fits_on_device), so that every batch is a slice on the device."""
        nbytes = x.size * np.dtype(backend.floatx()).itemsize + y.size * max(y.itemsize, 4)
        if not backend.fits_on_device(nbytes, self.device):
            return x, y
        return self._to_batch(x), self._target_batch(y)

    def _target_batch(self, y, index=None):
        return self._to_batch(y, index, float_data=not self.loss.integer_targets)

    def _metric_sums(self, y, y_pred):
        """{metric name: the sum of its per-sample values over the batch}, as Python floats."""
        return {metric.name: float(metric.per_sample(y, y_pred).sum()) for metric in self.metrics}

    # --- training ---------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, **kwargs):
        """Train epochs initial_epoch, ..., epochs - 1 over (x, y); return a History.

        history.history holds 'loss' and each metric ('accuracy'...) per epoch, and 'val_loss',
        'val_accuracy'... when there is validation data ('acc' and 'val_acc' answer too).

        sample_weight (N,) weighs each sample's loss; class_weight {class: weight} gives every
        sample of a class that weight (both: multiplied). Metrics stay unweighted, as in Keras.

        Every argument is checked, and every callback's on_train_begin has run, before the
        first batch: a fit that fails there changes nothing (an unbuilt model stays unbuilt).

        Resuming: `model = load_model(checkpoint)`, then `model.fit(..., initial_epoch=model.completed_epochs)`
        continues the saved run, random generator state included: on the CPU it ends with
        exactly the weights of a run that was never interrupted.

        A NaN or infinite batch loss (or gradient, or update) ends training, and that batch
        changes no weight: with TerminateOnNaN among the callbacks fit returns quietly after a
        NaN loss, otherwise it raises a RuntimeError that names the epoch and the batch.

        Stopped during an epoch (by a callback, TerminateOnNaN, an error or Ctrl-C), the model
        says what it holds: `completed_epochs` counts the whole epochs, `partial_epoch_batches`
        the batches of the next one that were applied. As in Keras, callbacks still hear
        on_epoch_end for a stopped epoch (not after an error or Ctrl-C): its logs cover the
        batches that ran, History marks that row (history.partial_epoch), and ModelCheckpoint
        saves nothing for it.
        """
        checks.refuse_arguments("fit", kwargs, FIT_ARGUMENTS)
        with self._unbuilt_if_failing():
            x, y = self._prepare_targets(x, y, "fit")
            weights = self._sample_weights(y, sample_weight, class_weight, "fit")
            batch_size = _check_batch_size(batch_size, "fit")
            epochs = check_int(epochs, "epochs", "fit", minimum=0)
            initial_epoch = check_int(initial_epoch, "initial_epoch", "fit", minimum=0)
            if initial_epoch > epochs:
                raise ValueError(
                    f"fit: initial_epoch={initial_epoch} is past epochs={epochs}; epochs is where training ends, "
                    f"not how many epochs to add: for 3 more use initial_epoch={initial_epoch}, "
                    f"epochs={initial_epoch + 3}"
                )
            verbose = _check_verbose(verbose, "fit")
            callbacks = _check_callbacks(callbacks)
            shuffle = check_bool(shuffle, "shuffle", "fit")
            x, y, validation_data = self._split_validation(x, y, validation_split, validation_data)
            if weights is not None:
                weights, validation_weights = weights[:len(x)], weights[len(x):]
                if validation_data is not None and len(validation_weights):
                    validation_data = validation_data + (validation_weights,)  # validation_split's part
            self._check_optimizer_state("fit")
            x, y = self._resident(x, y)
            if validation_data is not None:
                validation_data = self._resident(*validation_data[:2]) + tuple(validation_data[2:])

            # Keras's order: the user's callbacks first, so that what they add to the logs
            # (ReduceLROnPlateau's learning rate...) reaches History and the progress bar.
            history = callbacks_module.History()
            callback_list = callbacks + [history]
            if verbose:
                callback_list.append(callbacks_module.ProgbarLogger(verbose))
            steps = math.ceil(len(x) / batch_size)
            log_names = list(self.metrics_names)
            if validation_data is not None:
                log_names += ["val_" + name for name in log_names]
            for callback in callback_list:
                callback.set_model(self)
                callback.set_params({"epochs": epochs, "steps": steps, "verbose": verbose, "metrics": log_names})
            stop_training, self.stop_training = self.stop_training, False
            try:  # callbacks check what they can here (ModelCheckpoint's filepath, monitors...)
                for callback in callback_list:
                    callback.on_train_begin({})
            except BaseException:
                self.stop_training = stop_training
                raise

        self.history = history
        if self.partial_epoch_batches and initial_epoch == self.completed_epochs:
            warnings.warn(
                f"fit: resuming at epoch {initial_epoch + 1}, but the model has already taken "
                f"{self.partial_epoch_batches} optimizer steps into it (a fit stopped mid-epoch, or "
                "train_on_batch); the epoch runs again in full from these weights, so this run will not "
                "be exactly an uninterrupted one. Resume from a checkpoint saved at the end of an epoch.",
                stacklevel=2)
        if self.rng_state is not None and initial_epoch == self.completed_epochs:
            backend.set_rng_state(self.rng_state)  # resuming a checkpoint: replay its random draws
        self.rng_state = None

        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.completed_epochs, self.partial_epoch_batches = epoch, 0
            for callback in callback_list:
                callback.on_epoch_begin(epoch, {})
            order = backend.rng().permutation(len(x)) if shuffle else np.arange(len(x))
            logs = self._run_epoch(x, y, weights, order, batch_size, callback_list, epoch)
            if self.partial_epoch_batches == steps:  # every batch was applied
                self.completed_epochs, self.partial_epoch_batches = epoch + 1, 0
            if validation_data is not None:
                val, _ = self._evaluate_arrays(*validation_data[:2], batch_size, *validation_data[2:])
                logs.update({"val_" + key: value for key, value in val.items()})
            for callback in callback_list:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callback_list:
            callback.on_train_end(dict(logs))
        return history

    def _sample_weights(self, y, sample_weight, class_weight, what):
        """One weight per sample (NumPy float64), or None: sample_weight times class_weight[class]."""
        if sample_weight is None and class_weight is None:
            return None
        weights = np.ones(len(y))
        if sample_weight is not None:
            sample_weight = _as_array(sample_weight, "sample_weight", what)
            if sample_weight.shape not in ((len(y),), (len(y), 1)):
                raise ValueError(f"{what}: sample_weight must have one weight per sample, shape ({len(y)},), "
                                 f"got shape {sample_weight.shape}")
            if sample_weight.min() < 0:
                raise ValueError(f"{what}: sample_weight must be >= 0, got {sample_weight.min()}")
            weights *= sample_weight.reshape(-1)
        if class_weight is not None:
            weights *= self._class_weights(y, class_weight, what)
        return weights

    def _class_weights(self, y, class_weight, what):
        """class_weight {class number: weight} -> the weight of each sample's class (1 if not listed)."""
        if not isinstance(class_weight, dict):
            raise TypeError(f"{what}: class_weight must be a dict {{class number: weight}}, got "
                            f"{type(class_weight).__name__}")
        classes = self.output_shape[-1]
        table = np.ones(max(classes, 2))
        for label, weight in class_weight.items():
            if not isinstance(label, numbers.Integral) or not 0 <= label < len(table):
                raise ValueError(f"{what}: class_weight keys must be class numbers 0..{len(table) - 1}, "
                                 f"got {label!r}")
            table[int(label)] = check_number(weight, f"class_weight[{label}]", what, low=0)
        if self.loss.integer_targets:
            labels = y.reshape(-1).astype(np.int64)
        elif y.ndim == 2 and y.shape[1] > 1:
            labels = y.argmax(axis=1)                       # one-hot rows
        elif np.isin(y, (0, 1)).all():
            labels = y.reshape(-1).astype(np.int64)         # 0/1 targets of a one-output model
        else:
            raise ValueError(f"{what}: class_weight needs class labels, but {self.loss.name}'s targets are not "
                             "classes; give sample_weight instead")
        return table[labels]

    def _split_validation(self, x, y, validation_split, validation_data):
        """(x, y, (x_val, y_val) or None): validation_data checked, or the last part of x split off."""
        validation_split = check_number(validation_split, "validation_split", "fit", low=0, high=1,
                                        include_high=False)
        if validation_data is None and validation_split:
            split_at = int(len(x) * (1 - validation_split))  # Keras keeps the last part for validation
            if not 0 < split_at < len(x):
                raise ValueError(f"fit: validation_split={validation_split} of {len(x)} samples leaves {split_at} "
                                 f"for training and {len(x) - split_at} for validation; each needs at least one")
            x, y, validation_data = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            validation_data = self._prepare(*validation_data, what="fit (validation_data)")
        return x, y, validation_data

    def _run_epoch(self, x, y, weights, order, batch_size, callback_list, epoch):
        """One pass over the data; returns the running means of the loss and the metrics."""
        seen, loss_sum, metric_sums = 0, 0.0, dict.fromkeys(self.metrics_names[1:], 0.0)
        logs = {}
        for step, start in enumerate(range(0, len(order), batch_size)):
            index = order[start:start + batch_size]
            for callback in callback_list:
                callback.on_train_batch_begin(step, {})
            xb, yb = self._to_batch(x, index), self._target_batch(y, index)
            wb = self._to_batch(weights, index) if weights is not None else None
            loss, y_pred, problem = self.train_step(xb, yb, sample_weight=wb)
            if not problem:
                self.partial_epoch_batches += 1
            seen += len(index)
            loss_sum += loss * len(index)
            logs = {"loss": loss_sum / seen}
            for name, value in self._metric_sums(yb, y_pred).items():
                metric_sums[name] += value
                logs[name] = metric_sums[name] / seen
            for callback in callback_list:
                callback.on_train_batch_end(step, logs)
            if problem and not self.stop_training:  # no TerminateOnNaN stopped it
                raise RuntimeError(_diverged(problem, f"fit, epoch {epoch + 1}, batch {step + 1}") +
                                   " model.history holds the epochs before; callbacks=[TerminateOnNaN()] "
                                   "(minicnn.callbacks) stops fit quietly on a NaN loss instead.")
            if self.stop_training:
                break
        return dict(logs)

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns [loss, metrics...] (the loss alone without
        metrics), or {name: value} with return_dict=True.

        A NaN or infinite loss, gradient or update raises a RuntimeError and changes no weight.
        The step counts in partial_epoch_batches (the model is that far past its last epoch).
        """
        with self._unbuilt_if_failing():
            x, y = self._prepare_targets(x, y, "train_on_batch")
            weights = self._sample_weights(y, sample_weight, class_weight, "train_on_batch")
            yb = self._target_batch(y)
            wb = self._to_batch(weights) if weights is not None else None
            loss, y_pred, problem = self.train_step(self._to_batch(x), yb, sample_weight=wb)
            if problem:
                raise RuntimeError(_diverged(problem, "train_on_batch"))
        self.partial_epoch_batches += 1
        values = {"loss": loss}
        values.update({name: total / len(x) for name, total in self._metric_sums(yb, y_pred).items()})
        return self._result(values, return_dict)

    def _result(self, values, return_dict=False):
        """{name: value} as Keras returns it: the dict, or [loss, metrics...], or the loss alone."""
        if return_dict:
            return dict(values)
        return [values[name] for name in self.metrics_names] if self.metrics else values["loss"]

    # --- inference -------------------------------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, weights=None):
        """({'loss': ..., 'accuracy': ...}, whether every output was finite)."""
        loss_sum, metric_sums, outputs_finite = 0.0, dict.fromkeys(self.metrics_names[1:], 0.0), True
        for start in range(0, len(x), batch_size):
            xb = self._to_batch(x[start:start + batch_size])
            yb = self._target_batch(y[start:start + batch_size])
            wb = self._to_batch(weights[start:start + batch_size]) if weights is not None else None
            with np.errstate(**QUIET_FLOATS):
                y_pred = self.forward(xb, training=False)
                loss_sum += float(self.plan.loss(yb, wb)) * len(xb)
            outputs_finite = outputs_finite and _all_finite([y_pred])
            for name, value in self._metric_sums(yb, y_pred).items():
                metric_sums[name] += value
        result = {"loss": loss_sum / len(x)}
        result.update({name: total / len(x) for name, total in metric_sums.items()})
        return result, outputs_finite

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1, sample_weight=None, return_dict=False, **kwargs):
        """Loss and metrics on (x, y) in inference mode: [loss, metrics...], the loss alone
        without metrics, or {name: value} with return_dict=True (names: model.metrics_names).

        A NaN or infinite result raises a RuntimeError instead of being returned.
        """
        checks.refuse_arguments("evaluate", kwargs, INFERENCE_ARGUMENTS)
        with self._unbuilt_if_failing():
            x, y = self._prepare_targets(x, y, "evaluate")
            weights = self._sample_weights(y, sample_weight, None, "evaluate")
            batch_size = _check_batch_size(batch_size, "evaluate")
            verbose = _check_verbose(verbose, "evaluate")
            return_dict = check_bool(return_dict, "return_dict", "evaluate")
            steps = math.ceil(len(x) / batch_size)
            bar = callbacks_module.ProgressBar(steps, one_line=verbose == 2) if verbose else None
            result, outputs_finite = self._evaluate_arrays(*self._resident(x, y), batch_size, weights)
            if not outputs_finite:
                raise RuntimeError(_not_finite_outputs("evaluate"))
            if not math.isfinite(result["loss"]):
                raise RuntimeError(
                    f"evaluate: the loss is {result['loss']} although the model's outputs are finite: they are "
                    f"too large for the loss to be computed in {backend.floatx()} (logits thousands of orders of "
                    "magnitude apart?); check the inputs' scale, or the weights")
        if bar:
            bar.finish(result)
        return self._result(result, return_dict)

    def predict(self, x, batch_size=None, verbose=0, **kwargs):
        """Outputs of the last layer (class probabilities), batch by batch, as a NumPy array.

        NaN or infinite outputs raise a RuntimeError instead of being returned.
        """
        checks.refuse_arguments("predict", kwargs, INFERENCE_ARGUMENTS)
        with self._unbuilt_if_failing():
            x, _ = self._prepare(x, None, "predict")
            batch_size = _check_batch_size(batch_size, "predict")
            verbose = _check_verbose(verbose, "predict")
            with np.errstate(**QUIET_FLOATS):
                outputs = [backend.to_numpy(self.forward(self._to_batch(x[start:start + batch_size])))
                           for start in range(0, len(x), batch_size)]
            outputs = np.concatenate(outputs)
            if not np.isfinite(outputs).all():
                raise RuntimeError(_not_finite_outputs("predict"))
        if verbose:
            callbacks_module.ProgressBar(math.ceil(len(x) / batch_size)).finish()
        return outputs

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """evaluate on one batch, quietly: [loss, metrics...] (or the loss, or a dict)."""
        return self.evaluate(x, y, batch_size=max(len(x), 1), verbose=0, sample_weight=sample_weight,
                             return_dict=return_dict)

    def predict_on_batch(self, x):
        """predict on one batch."""
        return self.predict(x, batch_size=max(len(x), 1))

    def __call__(self, x, training=False):
        """model(x): the outputs for a batch x; on a SymbolicTensor, the model's layers are
        called on it in turn (a model used as a layer inside another, sharing its layers)."""
        if isinstance(x, SymbolicTensor):
            outputs = {INPUT: x}
            for index, (layer, inputs) in enumerate(zip(self.layers, self.connections)):
                arriving = [outputs[source] for source in inputs]
                outputs[index] = layer(arriving if layer.takes_list else arriving[0])
            return outputs[len(self.layers) - 1]
        return self.forward(x, training=training)

    # --- looking inside (minicnn.inspection) --------------------------------------------------
    def trace(self, x, y=None, training=True):
        """Each layer's input, output and (with y) gradients for one batch: see minicnn.inspection.trace."""
        from minicnn import inspection
        return inspection.trace(self, x, y, training=training)

    def profile(self, x, y, steps=5, warmup=1, layer_by_layer=False):
        """Forward/backward milliseconds of each step of a training step: see minicnn.inspection.profile."""
        from minicnn import inspection
        return inspection.profile(self, x, y, steps=steps, warmup=warmup, layer_by_layer=layer_by_layer)

    # --- weights, devices, files ------------------------------------------------------------
    def get_weights(self):
        """Every layer's weights, in Keras's order, as NumPy arrays."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set every layer's weights from a list in get_weights() order (arrays or nested lists).

        Every array is checked first (count, shapes, numbers that fit the model's float type):
        a call that raises changes no weight."""
        if isinstance(weights, (str, bytes)) or not hasattr(weights, "__iter__"):
            raise TypeError(f"set_weights expects a list of arrays (as get_weights returns), "
                            f"got {type(weights).__name__}")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        pairs, start = [], 0
        for layer in self.layers:
            count = len(layer.weights)
            pairs += layer.check_weights(weights[start:start + count])
            start += count
        assign_weights(pairs)

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def to(self, device):
        """Move weights and optimizer state to 'cpu' or 'gpu'; returns the model."""
        device = backend.check_device(device)
        stores = [store for layer in self.layers for store in (layer.params, layer.grads, layer.state)]
        before = [dict(store) for store in stores]
        try:   # all of it moves, or (out of GPU memory...) none of it
            for layer in self.layers:
                layer.to(device)
            if self.optimizer is not None:
                self.optimizer.slots = {name: [backend.to_device(a, device) for a in arrays]
                                        for name, arrays in self.optimizer.slots.items()}
        except BaseException:
            for store, arrays in zip(stores, before):
                store.update(arrays)
            raise
        self.device = device
        return self

    def save(self, filepath):
        """Save architecture, weights and optimizer state to one file (see saving.py)."""
        saving.save_model(self, filepath)

    def save_weights(self, filepath):
        saving.save_model(self, filepath, include_optimizer=False)

    def load_weights(self, filepath):
        self.set_weights(load_model(filepath).get_weights())

    # --- summary ----------------------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print a Keras-style table: layer (type), output shape, parameter count."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give the first layer input_shape=..., "
                "or call model.build((None, 28, 28, 1)), or fit it first"
            )
        rows = [(f"{layer.name} ({type(layer).__name__})", layer.output_shape, layer.count_params())
                for layer in self.layers]
        if self.input_name is not None:          # a functional model shows its Input, as Keras does
            rows.insert(0, (f"{self.input_name} (InputLayer)", self.input_shape, 0))
        headers = ("Layer (type)", "Output Shape", "Param #")
        if self._graph is not None:              # skip connections: say what feeds each layer
            names = {INPUT: self.input_name or "input"}
            names.update({index: layer.name for index, layer in enumerate(self.layers)})
            connected = [", ".join(names[source] for source in inputs) for inputs in self.connections]
            rows = [row + (text,) for row, text in zip(rows, ([""] if self.input_name else []) + connected)]
            headers += ("Connected to",)
        # Keras's widths, widened where a name is longer, so that the columns never shift
        widths = [max([minimum] + [len(str(row[column])) + 2 for row in rows])
                  for column, minimum in enumerate((33, 26, 10, 20)[:len(headers)])]
        rule = "_" * sum(widths)

        def row(*cells):
            return "".join(f" {str(c):<{w - 1}}" for c, w in zip(cells, widths)).rstrip()

        total = self.count_params()
        trainable = sum(int(p.size) for layer in self.layers if layer.trainable for p in layer.params.values())
        lines = [f'Model: "{self.name}"', rule, row(*headers), "=" * len(rule)]
        for i, cells in enumerate(rows):
            lines.append(row(*cells))
            lines.append("" if i < len(rows) - 1 else "=" * len(rule))
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", rule]
        print_fn("\n".join(lines))


class Sequential(Model):
    """A stack of layers, each feeding the next: Sequential([Conv2D(...), ...]) or .add(layer)."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or unique_name("sequential"))
        if layers is not None and not isinstance(layers, (list, tuple)):
            raise TypeError(f"Sequential expects a list of layers, got {type(layers).__name__}")
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer; the first one may carry input_shape=... (or be an Input(...) or an
        InputLayer(...)). A model added as a layer adds its layers (the same objects: their
        weights are shared with that model), which must form a chain."""
        if isinstance(layer, (SymbolicTensor, InputLayer)):
            if self.layers:
                raise ValueError(f"Sequential: an {type(layer).__name__ if isinstance(layer, InputLayer) else 'Input'}"
                                 "(...) can only come first")
            shape = layer.shape if isinstance(layer, SymbolicTensor) else layer.declared_input_shape
            self.input_shape = (None,) + tuple(shape[1:])
            return
        if isinstance(layer, Model):
            self._add_model(layer)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a minicnn layer, got {type(layer).__name__}")
        _check_each_layer_once(self.layers + [layer])
        input_shape = self.input_shape
        if input_shape is None and not self.layers:
            input_shape = layer.declared_input_shape
        self.layers.append(layer)
        if input_shape is not None:
            try:
                self.build(input_shape)
            except BaseException:
                self.layers.pop()  # a layer that does not fit is not added
                raise

    def _add_model(self, model):
        """Add every layer of `model` (a chain) in turn; all of them, or none if one does not fit."""
        if model._graph is not None:
            raise ValueError(f"Sequential.add: model {model.name!r} has skip connections and cannot be added to a "
                             "Sequential; call it on a tensor in a functional model instead: y = model(x)")
        if model is self or not model.layers:
            raise ValueError(f"Sequential.add: cannot add model {model.name!r} to {self.name!r}")
        _check_each_layer_once(self.layers + model.layers)
        input_shape = self.input_shape
        if input_shape is None and not self.layers:
            input_shape = model.input_shape if model.built else model.layers[0].declared_input_shape
        count = len(self.layers)
        self.layers.extend(model.layers)
        if input_shape is not None:
            try:     # one build: if a layer does not fit, build unbuilds what it built and puts the
                self.build(input_shape)          # random generator back, and no layer is added
            except BaseException:
                del self.layers[count:]
                raise


def load_model(filepath):
    """Rebuild a model saved with model.save(filepath): layers, weights, compile settings."""
    return saving.load_model(filepath, {"Sequential": Sequential, "Model": Model})


# --- checks at the API boundary ---------------------------------------------------------------
def _as_array(value, argument, what):
    """`value` as a non-empty NumPy array of finite real numbers with a batch axis, or a clear error."""
    if value is None:
        raise ValueError(f"{what}: {argument} is required")
    _refuse_containers(value, argument, what)
    if backend.is_gpu_array(value):
        value = backend.to_numpy(value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # e.g. nested lists of different lengths
        raise ValueError(f"{what}: {argument} cannot be read as an array ({error}); "
                         "give a NumPy array whose samples all have the same shape") from None
    if array.dtype.kind not in "iuf":   # not bool, complex, timedelta64, datetime64, str, object
        raise TypeError(f"{what}: {argument} must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{what}: {argument} must be an array with a batch axis, got a scalar")
    if array.size == 0:
        raise ValueError(f"{what}: {argument} is empty (shape {array.shape})")
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise ValueError(f"{what}: {argument} contains {int((~finite).sum())} NaN or infinite values "
                             f"(the first at index {first})")
        limit = np.finfo(backend.floatx()).max
        if array.dtype.itemsize > np.dtype(backend.floatx()).itemsize and np.abs(array).max() > limit:
            raise ValueError(f"{what}: {argument} holds values beyond {backend.floatx()}'s range "
                             f"(|value| up to {np.abs(array).max():g}); scale it down")
    return array


def _refuse_containers(value, argument, what):
    """Keras also takes generators, tf.data datasets, dicts and (x, y) tuples as x; minicnn says it does not."""
    if isinstance(value, (dict, types.GeneratorType, collections.abc.Iterator)) or (
            isinstance(value, tuple) and len(value) in (2, 3) and all(hasattr(v, "shape") for v in value)):
        raise TypeError(f"minicnn does not support generators, datasets, dicts or (x, y) tuples as {argument} "
                        f"(in {what}); pass NumPy arrays: {what}(x, y, ...); see the Keras compatibility table "
                        "in README.md")


def _shape_hint(shape, expected):
    """A hint for the usual shape mistakes: no channel axis, or one sample without a batch axis."""
    sample = tuple(expected[1:])
    if len(shape) == len(expected) - 1 and tuple(shape[1:]) == sample[:-1] and sample[-1] == 1:
        return f"; add the channel axis with x.reshape(-1, {', '.join(map(str, sample))})"
    if tuple(shape) == sample:
        return "; for a single sample add the batch axis with x[np.newaxis]"
    return ""


def _check_batch_size(batch_size, what):
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    return check_int(batch_size, "batch_size", what)


def _check_verbose(verbose, what):
    """0 (silent), 1 (progress bar) or 2 (a line per epoch); 'auto' means 1, as in Keras."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1, 2):
        raise ValueError(f"{what}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _check_callbacks(callbacks):
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, callbacks_module.Callback) for c in callbacks):
        raise TypeError(f"fit: callbacks must be a list of minicnn.callbacks.Callback objects, got {callbacks!r}")
    return list(callbacks)


# Keras's arguments that minicnn takes only at their default values (README's compatibility table)
COMPILE_ARGUMENTS = {"loss_weights": (None,), "weighted_metrics": (None,), "run_eagerly": (False, None),
                     "steps_per_execution": (1,), "jit_compile": ("auto", False, None), "auto_scale_loss": (True,)}
INFERENCE_ARGUMENTS = {"steps": (None,), "callbacks": (None,), "max_queue_size": (10,), "workers": (1,),
                       "use_multiprocessing": (False,)}
FIT_ARGUMENTS = {"steps_per_epoch": (None,), "validation_steps": (None,), "validation_batch_size": (None,),
                 "validation_freq": (1,), "max_queue_size": (10,), "workers": (1,), "use_multiprocessing": (False,)}


def _ignore(*args):
    """What an observer without before_update / after_update hears."""


# --- messages for a run that went wrong -------------------------------------------------------
def _all_finite(arrays):
    return all(bool(backend.get_array_module(a).isfinite(a).all()) for a in arrays)


class _Copies:
    """Copies of arrays, put back in place by restore(): undoing a step that went wrong."""

    def __init__(self, arrays):
        self.saved = [(array, array.copy()) for array in arrays]

    def restore(self):
        for array, copy in self.saved:
            array[...] = copy


class _OptimizerCopies(_Copies):
    """The parameters, the optimizer's slots and its step count, as they were before an update.
    Copying every parameter and slot is cheap next to the step (the lab's model with Adam holds
    4.3 MB of them); what the guards cost a step is measured in benchmarks/RESULTS.md (issue #16)."""

    def __init__(self, optimizer, params):
        self.optimizer, self.iterations = optimizer, optimizer.iterations
        self.slots = {name: list(arrays) for name, arrays in optimizer.slots.items()}  # {} before the first step
        super().__init__(list(params) + [array for arrays in self.slots.values() for array in arrays])

    def restore(self):
        super().restore()
        self.optimizer.iterations = self.iterations
        self.optimizer.slots = self.slots


def _chain(count):
    """The connections of a chain of `count` layers: each takes the output of the one before."""
    return [(index - 1,) if index else (INPUT,) for index in range(count)]


def _one_tensor(tensors, argument):
    """inputs= and outputs= of Model: one SymbolicTensor (a list of one is taken too)."""
    if isinstance(tensors, (list, tuple)) and len(tensors) == 1:
        tensors = tensors[0]
    if isinstance(tensors, (list, tuple, dict)):
        raise ValueError(f"minicnn does not support models with several {argument} (in Model); "
                         "see the Keras compatibility table in README.md")
    if not isinstance(tensors, SymbolicTensor):
        raise TypeError(f"Model(inputs, outputs) expects the results of Input(...) and of layers called on it; "
                        f"{argument} is a {type(tensors).__name__}")
    return tensors


def _read_graph(inputs, outputs):
    """(layers, connections) of the network that computes `outputs` from `inputs`: the layers in
    an order where each comes after the layers it takes input from (depth first from the output),
    and connections[i] the indices of the layers (or INPUT) that layers[i] was called on."""
    layers, connections, index_of, tensor_of = [], [], {}, {}

    def visit(tensor):
        if tensor is inputs:
            return INPUT
        layer = tensor.layer
        if layer is None:
            raise ValueError(f"Model: outputs are computed from another Input ({tensor.name!r}) than the model's "
                             "inputs; minicnn models have one input")
        if id(layer) in tensor_of:
            if tensor_of[id(layer)] is not tensor:
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) is used twice in one model; "
                                 "a layer object can run at one place only (shared layers are not supported): "
                                 f"create another {type(layer).__name__} for the second place")
            return index_of[id(layer)]
        tensor_of[id(layer)] = tensor
        sources = tuple(visit(source) for source in tensor.inputs)
        index_of[id(layer)] = len(layers)
        layers.append(layer)
        connections.append(sources)
        return index_of[id(layer)]

    if visit(outputs) == INPUT:
        raise ValueError("Model: outputs is the input itself; add at least one layer")
    return layers, connections


def _check_each_layer_once(layers):
    """A layer object holds one set of weights and keeps one forward pass for its backward:
    it cannot run at two places of one model (its gradients would be wrong)."""
    seen = {}
    for position, layer in enumerate(layers):
        if id(layer) in seen:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) is used twice in one model, at positions "
                f"{seen[id(layer)]} and {position}; a layer object can run at one place only: create another "
                f"{type(layer).__name__} with the same arguments for the second place")
        seen[id(layer)] = position


def _diverged(problem, where):
    return (f"{where}: {problem}. Usual causes: a learning rate too high, inputs not scaled "
            "(e.g. x / 255.), or weights that are already NaN.")


def _not_finite_outputs(what):
    return (f"{what}: the model's outputs contain NaN or infinite values; its weights may be NaN "
            "(a diverged run) or the inputs far too large (scale them, e.g. x / 255.)")

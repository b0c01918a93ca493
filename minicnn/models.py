"""Sequential and Model: a chain of layers, and the one training loop of minicnn.

One training step (train_on_batch, and fit for every batch):
    y_pred = forward(x, training=True)          layer by layer
    loss, d = loss(y, y_pred), d loss / d y_pred
    backward(d)                                 layer by layer, in reverse; fills layer.grads
    optimizer.apply_gradients(grads, params)    updates the weights in place
When the last layer ends in softmax and the loss is a cross-entropy, the loss is
computed from the logits z and the gradient enters that layer as (p - y) / N.
"""
import math

import numpy as np

from minicnn import activations, backend, losses, optimizers
from minicnn import callbacks as callbacks_module
from minicnn.layers.base import Layer, SymbolicTensor, unique_name

METRIC_NAMES = ("accuracy", "acc")
DEFAULT_BATCH_SIZE = 32  # Keras's default for fit, evaluate and predict


def Input(shape, batch_size=None, name=None):
    """The start of a functional model: Input(shape=(28, 28, 1)). Returns a SymbolicTensor."""
    return SymbolicTensor((batch_size,) + tuple(shape))


class Model:
    """A chain of layers. Model(inputs=Input(...), outputs=...) or, more often, Sequential()."""

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
        if inputs is not None or outputs is not None:
            if not isinstance(inputs, SymbolicTensor) or not isinstance(outputs, SymbolicTensor):
                raise TypeError("Model(inputs, outputs) expects the results of Input(...) and of layers called on it")
            if outputs.layers[:len(inputs.layers)] != inputs.layers:
                raise ValueError("Model: outputs must be computed from inputs by a chain of layers")
            self.layers = outputs.layers[len(inputs.layers):]
            self.build(inputs.shape)

    # --- building ------------------------------------------------------------------
    @property
    def built(self):
        return self.input_shape is not None

    def build(self, input_shape):
        """Build every layer for `input_shape` (batch axis first, None or a number)."""
        shape = (None,) + tuple(input_shape[1:])
        self.input_shape = shape
        for layer in self.layers:
            if layer.built:
                layer.check_input_shape(shape)
            else:
                layer.build(shape)
                layer.to(self.device)
            shape = layer.compute_output_shape(shape)
            layer.output_shape = shape
        self.output_shape = shape

    def _ensure_built(self, x):
        if not self.built:
            self.build((None,) + tuple(x.shape[1:]))

    # --- compile ---------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Choose the optimizer, the loss and the metrics (only 'accuracy'), by name or object."""
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        metrics = list(metrics or [])
        for metric in metrics:
            if metric not in METRIC_NAMES:
                raise ValueError(f"compile: unknown metric {metric!r}; minicnn supports {list(METRIC_NAMES)}")
        self.metrics = ["accuracy"] if metrics else []

    def _check_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"{what}: compile the model first, e.g. model.compile(loss=..., optimizer='adam')")

    def _fused_softmax(self):
        """True when the last layer's softmax and a cross-entropy loss fuse into (p - y) / N."""
        last = self.layers[-1]
        return (not self.loss.from_logits
                and isinstance(getattr(last, "activation", None), activations.Softmax))

    # --- forward, loss, backward -------------------------------------------------------
    def forward(self, x, training=False):
        """Run x through every layer: x (N, ...) -> y_pred (N, classes)."""
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _loss_value(self, y, y_pred):
        if self._fused_softmax():
            return self.loss.forward_from_logits(y, self.layers[-1]._z)
        return self.loss.forward(y, y_pred)

    def compute_gradients(self, x, y, training=True, input_gradient=True):
        """Forward, loss and backward for one batch, without updating the weights.

        Fills every layer's `grads` and returns (loss, y_pred, dx), dx = d loss / d x.
        Training passes input_gradient=False: then the first layer may skip dx (None).
        """
        self.layers[0].input_gradient = input_gradient
        y_pred = self.forward(x, training=training)
        loss = self._loss_value(y, y_pred)
        if self._fused_softmax():
            d = self.layers[-1].backward_preactivation(self.loss.gradient_from_logits(y, y_pred))
            earlier = self.layers[-2::-1]
        else:
            d = self.loss.gradient(y, y_pred)
            earlier = self.layers[::-1]
        for layer in earlier:
            d = layer.backward(d)
        return loss, y_pred, d

    def trainable_params(self):
        """[(layer, name)] of every trainable parameter, in layer order."""
        return [(layer, key) for layer in self.layers if layer.trainable for key in layer.params]

    def _train_step(self, x, y):
        loss, y_pred, _ = self.compute_gradients(x, y, training=True, input_gradient=False)
        pairs = self.trainable_params()
        self.optimizer.apply_gradients((layer.grads[key], layer.params[key]) for layer, key in pairs)
        return loss, y_pred

    # --- data in --------------------------------------------------------------------------
    def _prepare(self, x, y=None, what="fit"):
        """Check x (and y) at the API boundary and return them as NumPy arrays."""
        x = _as_array(x, "x", what)
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"{what}: x must hold real numbers, got dtype {x.dtype}")
        if x.shape[0] == 0:
            raise ValueError(f"{what}: x is empty (shape {x.shape})")
        self._ensure_built(x)
        expected = self.input_shape
        if x.ndim != len(expected) or any(e is not None and e != g for e, g in zip(expected[1:], x.shape[1:])):
            hint = ""
            if x.ndim == len(expected) - 1 and tuple(x.shape[1:]) == tuple(expected[1:-1]) and expected[-1] == 1:
                hint = f"; add the channel axis with x.reshape(-1, {', '.join(map(str, expected[1:]))})"
            raise ValueError(f"{what}: the model expects x of shape {expected}, got {x.shape}{hint}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise ValueError(f"{what}: x contains NaN or infinite values")
        if y is None:
            return x, None
        y = _as_array(y, "y", what)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"{what}: x and y must have the same length, got {x.shape[0]} and {y.shape[0]}")
        self._check_targets(y, what)
        return x, y

    def _check_targets(self, y, what):
        classes = self.output_shape[-1]
        if isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or not np.issubdtype(y.dtype, np.integer):
                raise ValueError(
                    f"{what}: sparse_categorical_crossentropy expects integer labels of shape (N,), got "
                    f"{y.dtype} of shape {y.shape}; for one-hot labels use categorical_crossentropy"
                )
            if y.size and (y.min() < 0 or y.max() >= classes):
                raise ValueError(f"{what}: labels must be in [0, {classes - 1}], got {y.min()}..{y.max()}")
        elif y.ndim != 2 or y.shape[1] != classes:
            hint = ""
            if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
                hint = (" (these look like integer labels: convert them with minicnn.utils.to_categorical(y) "
                        "or use loss='sparse_categorical_crossentropy')")
            raise ValueError(
                f"{what}: categorical_crossentropy expects one-hot targets of shape (N, {classes}), "
                f"got shape {y.shape}{hint}"
            )

    def _to_batch(self, array, index=None, float_data=True):
        """Select rows, cast to floatx and move to the model's device."""
        batch = array if index is None else array[index]
        if float_data:
            batch = batch.astype(backend.floatx(), copy=False)
        return backend.to_device(batch, self.device)

    def _target_batch(self, y, index=None):
        sparse = isinstance(self.loss, losses.SparseCategoricalCrossentropy)
        return self._to_batch(y, index, float_data=not sparse)

    def _correct(self, y, y_pred):
        """How many rows the model classified right (argmax of y_pred vs the target)."""
        xp = backend.get_array_module(y_pred)
        predicted = y_pred.argmax(axis=-1)
        if isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            truth = y.reshape(-1)
        else:
            truth = y.argmax(axis=-1)
        return int(xp.count_nonzero(predicted == truth))

    # --- training ---------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train for `epochs` passes over (x, y); return a History.

        history.history holds 'loss' and 'accuracy' per epoch, and 'val_loss',
        'val_accuracy' when there is validation data ('acc' and 'val_acc' answer too).
        """
        self._check_compiled("fit")
        x, y = self._prepare(x, y, "fit")
        batch_size = _check_batch_size(batch_size, "fit")
        _check_int(epochs, "epochs", "fit", minimum=0)
        if not 0 <= validation_split < 1:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split!r}")
        if validation_data is None and validation_split:
            split_at = int(len(x) * (1 - validation_split))  # Keras keeps the last part for validation
            x, y, validation_data = x[:split_at], y[:split_at], (x[split_at:], y[split_at:])
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
            validation_data = self._prepare(*validation_data, what="fit (validation_data)")

        history = callbacks_module.History()
        callback_list = [history] + list(callbacks or [])
        if verbose:
            callback_list.append(callbacks_module.ProgbarLogger(verbose))
        steps = math.ceil(len(x) / batch_size)
        for callback in callback_list:
            callback.set_model(self)
            callback.set_params({"epochs": epochs, "steps": steps, "verbose": verbose})
        self.history = history
        self.stop_training = False

        for callback in callback_list:
            callback.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            for callback in callback_list:
                callback.on_epoch_begin(epoch)
            order = backend.rng().permutation(len(x)) if shuffle else np.arange(len(x))
            logs = self._run_epoch(x, y, order, batch_size, callback_list)
            if validation_data is not None:
                val = self._evaluate_arrays(*validation_data, batch_size)
                logs.update({"val_" + key: value for key, value in val.items()})
            for callback in callback_list:
                callback.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for callback in callback_list:
            callback.on_train_end()
        return history

    def _run_epoch(self, x, y, order, batch_size, callback_list):
        """One pass over the data; returns the running means of loss (and accuracy)."""
        seen, loss_sum, correct = 0, 0.0, 0
        logs = {}
        for step, start in enumerate(range(0, len(order), batch_size)):
            index = order[start:start + batch_size]
            for callback in callback_list:
                callback.on_train_batch_begin(step)
            xb, yb = self._to_batch(x, index), self._target_batch(y, index)
            loss, y_pred = self._train_step(xb, yb)
            seen += len(index)
            loss_sum += float(loss) * len(index)
            logs = {"loss": loss_sum / seen}
            if self.metrics:
                correct += self._correct(yb, y_pred)
                logs["accuracy"] = correct / seen
            for callback in callback_list:
                callback.on_train_batch_end(step, logs)
            if self.stop_training:
                break
        return dict(logs)

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns [loss, accuracy] (or loss without metrics)."""
        self._check_compiled("train_on_batch")
        x, y = self._prepare(x, y, "train_on_batch")
        yb = self._target_batch(y)
        loss, y_pred = self._train_step(self._to_batch(x), yb)
        return self._result(float(loss), self._correct(yb, y_pred) / len(x))

    def _result(self, loss, accuracy):
        return [loss, accuracy] if self.metrics else loss

    # --- inference -------------------------------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size):
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), batch_size):
            xb = self._to_batch(x[start:start + batch_size])
            yb = self._target_batch(y[start:start + batch_size])
            y_pred = self.forward(xb, training=False)
            loss_sum += float(self._loss_value(yb, y_pred)) * len(xb)
            correct += self._correct(yb, y_pred)
        result = {"loss": loss_sum / len(x)}
        if self.metrics:
            result["accuracy"] = correct / len(x)
        return result

    def evaluate(self, x=None, y=None, batch_size=None, verbose=1):
        """Loss (and accuracy) on (x, y) in inference mode: [loss, accuracy], or loss alone."""
        self._check_compiled("evaluate")
        x, y = self._prepare(x, y, "evaluate")
        batch_size = _check_batch_size(batch_size, "evaluate")
        bar = callbacks_module.ProgressBar(math.ceil(len(x) / batch_size)) if verbose else None
        result = self._evaluate_arrays(x, y, batch_size)
        if bar:
            bar.finish(result)
        return self._result(result["loss"], result.get("accuracy"))

    def predict(self, x, batch_size=None, verbose=0):
        """Outputs of the last layer (class probabilities), batch by batch, as a NumPy array."""
        x, _ = self._prepare(x, None, "predict")
        batch_size = _check_batch_size(batch_size, "predict")
        outputs = [backend.to_numpy(self.forward(self._to_batch(x[start:start + batch_size])))
                   for start in range(0, len(x), batch_size)]
        if verbose:
            callbacks_module.ProgressBar(len(outputs)).finish()
        return np.concatenate(outputs)

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    # --- weights, devices, files ------------------------------------------------------------
    def get_weights(self):
        """Every layer's weights, in Keras's order, as NumPy arrays."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"set_weights: the model has {expected} weight arrays, got {len(weights)}")
        start = 0
        for layer in self.layers:
            count = len(layer.weights)
            layer.set_weights(weights[start:start + count])
            start += count

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def to(self, device):
        """Move weights and optimizer state to 'cpu' or 'gpu'; returns the model."""
        device = backend.check_device(device)
        for layer in self.layers:
            layer.to(device)
        if self.optimizer is not None:
            self.optimizer.slots = {name: [backend.to_device(a, device) for a in arrays]
                                    for name, arrays in self.optimizer.slots.items()}
        self.device = device
        return self

    def save(self, filepath):
        """Save architecture, weights and optimizer state to one file (see saving.py)."""
        from minicnn import saving
        saving.save_model(self, filepath)

    def save_weights(self, filepath):
        from minicnn import saving
        saving.save_model(self, filepath, include_optimizer=False)

    def load_weights(self, filepath):
        from minicnn import saving
        self.set_weights(saving.load_model(filepath).get_weights())

    # --- summary ----------------------------------------------------------------------------
    def summary(self, print_fn=print):
        """Print a Keras-style table: layer (type), output shape, parameter count."""
        if not self.built:
            raise ValueError(
                "summary: the model is not built yet; give the first layer input_shape=..., "
                "or call model.build((None, 28, 28, 1)), or fit it first"
            )
        widths = (33, 26, 10)
        rule = "_" * sum(widths)

        def row(*cells):
            return "".join(f" {str(c):<{w - 1}}" for c, w in zip(cells, widths)).rstrip()

        total = self.count_params()
        trainable = sum(int(p.size) for layer in self.layers if layer.trainable for p in layer.params.values())
        lines = [f'Model: "{self.name}"', rule, row("Layer (type)", "Output Shape", "Param #"), "=" * len(rule)]
        for i, layer in enumerate(self.layers):
            lines.append(row(f"{layer.name} ({type(layer).__name__})", layer.output_shape, layer.count_params()))
            lines.append("" if i < len(self.layers) - 1 else "=" * len(rule))
        lines += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                  f"Non-trainable params: {total - trainable:,}", rule]
        print_fn("\n".join(lines))


class Sequential(Model):
    """A stack of layers, each feeding the next: Sequential([Conv2D(...), ...]) or .add(layer)."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or unique_name("sequential"))
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer; the first one may carry input_shape=... (or be an Input(...))."""
        if isinstance(layer, SymbolicTensor):
            if self.layers:
                raise ValueError("Sequential: an Input(...) can only come first")
            self.input_shape = (None,) + tuple(layer.shape[1:])
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a minicnn layer, got {type(layer).__name__}")
        self.layers.append(layer)
        if not self.built and len(self.layers) == 1 and layer.declared_input_shape is not None:
            self.input_shape = layer.declared_input_shape
        if self.built:
            self.build(self.input_shape)


def load_model(filepath):
    """Rebuild a model saved with model.save(filepath): layers, weights, compile settings."""
    from minicnn import saving
    return saving.load_model(filepath)


def _as_array(value, argument, what):
    if value is None:
        raise ValueError(f"{what}: {argument} is required")
    if backend.is_gpu_array(value):
        value = backend.to_numpy(value)
    array = np.asarray(value)
    if array.ndim == 0:
        raise ValueError(f"{what}: {argument} must be an array with a batch axis, got a scalar")
    return array


def _check_int(value, argument, what, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what}: {argument} must be an int >= {minimum}, got {value!r}")


def _check_batch_size(batch_size, what):
    if batch_size is None:
        return DEFAULT_BATCH_SIZE
    _check_int(batch_size, "batch_size", what, minimum=1)
    return int(batch_size)

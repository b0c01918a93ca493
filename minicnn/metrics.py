"""Metrics: what fit and evaluate report beside the loss, by Keras's names.

A metric scores each sample, and the model reports the mean over the samples seen (not
weighted by sample_weight: as in Keras, only the loss is):

    per_sample(y_true, y_pred) -> (N,)      1.0 / 0.0 for a right / wrong class, or an error

compile(metrics=[...]) takes names ('accuracy', 'sparse_categorical_accuracy', 'mae', ...)
or objects (metrics.SparseCategoricalAccuracy()). 'accuracy' (and 'acc') picks the accuracy
that fits the loss, as Keras does: class numbers for sparse_categorical_crossentropy,
one-hot rows for categorical_crossentropy, and y_pred > 0.5 against 0/1 targets for a
model with one output (mean squared error on labels 0 and 1, for instance).
"""
from minicnn.backend import get_array_module


class Metric:
    """Base class: `name` is the key in fit's logs and in History."""
    default_name = None

    def __init__(self, name=None):
        self.name = name or self.default_name

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred):
        """The mean over the batch, as a float."""
        return float(self.per_sample(y_true, y_pred).mean())

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class SparseCategoricalAccuracy(Metric):
    """1 where argmax(y_pred) equals the class number y_true (N,) or (N, 1)."""
    default_name = "sparse_categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        return (y_pred.argmax(axis=-1) == y_true.reshape(-1)).astype(xp.float32)


class CategoricalAccuracy(Metric):
    """1 where argmax(y_pred) equals argmax(y_true), y_true one-hot rows (N, K)."""
    default_name = "categorical_accuracy"

    def per_sample(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).astype(xp.float32)


class BinaryAccuracy(Metric):
    """1 where (y_pred > threshold) equals y_true (0 or 1), averaged over the outputs of a sample."""
    default_name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        super().__init__(name)
        self.threshold = float(threshold)

    def per_sample(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        right = (y_pred > self.threshold) == (y_true.reshape(y_pred.shape) > 0.5)
        return right.reshape(len(y_pred), -1).astype(xp.float32).mean(axis=-1)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def _error(y_true, y_pred):
    """y_pred - y_true as rows (N, K); targets with one value per sample (N,) or (N, 1) are
    compared with every output, as Keras's broadcasting does."""
    rows = y_pred.reshape(len(y_pred), -1)
    return rows - y_true.reshape(len(y_true), -1).astype(rows.dtype, copy=False)


class MeanSquaredError(Metric):
    """mean_k (y_pred - y_true)^2 per sample."""
    default_name = "mean_squared_error"

    def per_sample(self, y_true, y_pred):
        error = _error(y_true, y_pred)
        return (error * error).mean(axis=-1)


class MeanAbsoluteError(Metric):
    """mean_k |y_pred - y_true| per sample."""
    default_name = "mean_absolute_error"

    def per_sample(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        return xp.abs(_error(y_true, y_pred)).mean(axis=-1)


class Accuracy(Metric):
    """'accuracy' as compile(metrics=['accuracy']) means it: the accuracy that fits the loss.
    Class numbers (sparse=True, for sparse_categorical_crossentropy), else one-hot rows,
    else, for a model with one output, y_pred > 0.5 against 0/1 targets."""
    default_name = "accuracy"

    def __init__(self, name=None, sparse=False):
        super().__init__(name)
        self.sparse = bool(sparse)

    def per_sample(self, y_true, y_pred):
        if self.sparse:
            return SparseCategoricalAccuracy().per_sample(y_true, y_pred)
        if y_pred.shape[-1] == 1:
            return BinaryAccuracy().per_sample(y_true, y_pred)
        return CategoricalAccuracy().per_sample(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "sparse": self.sparse}


ACCURACY_NAMES = ("accuracy", "acc")
_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}


def get(identifier, loss=None):
    """A Metric from a name or an object. 'accuracy' and 'acc' are logged as 'accuracy'
    (History answers 'acc' too), with the accuracy that fits `loss`; any other name is
    logged under the name given ('mae' as 'mae'), as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    name = getattr(identifier, "__name__", identifier)
    if isinstance(name, str) and name.lower() in ACCURACY_NAMES:
        return Accuracy(sparse=getattr(loss, "integer_targets", False))
    if isinstance(name, str) and name.lower() in _BY_NAME:
        return _BY_NAME[name.lower()](name=name)
    known = sorted(set(ACCURACY_NAMES) | set(_BY_NAME))
    raise ValueError(f"unknown metric {identifier!r}; minicnn supports {known} or a minicnn.metrics.Metric object")


def serialize(metric):
    """What a model file stores for a metric: the name fit logs it under and its class."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(entry, loss=None):
    """A Metric from serialize's output (or from a plain name, as older files hold)."""
    if isinstance(entry, str):
        return get(entry, loss)
    classes = {cls.__name__: cls for cls in (Accuracy, SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
                                            MeanSquaredError, MeanAbsoluteError)}
    if not isinstance(entry, dict) or entry.get("class_name") not in classes:
        raise ValueError(f"unknown metric entry {entry!r}")
    return classes[entry["class_name"]](**entry.get("config", {}))


# Keras's function names: metrics.sparse_categorical_accuracy(y_true, y_pred) -> (N,)
def sparse_categorical_accuracy(y_true, y_pred):
    return SparseCategoricalAccuracy().per_sample(y_true, y_pred)


def categorical_accuracy(y_true, y_pred):
    return CategoricalAccuracy().per_sample(y_true, y_pred)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return BinaryAccuracy(threshold=threshold).per_sample(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    return MeanSquaredError().per_sample(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    return MeanAbsoluteError().per_sample(y_true, y_pred)


# Keras names minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = (
    "AUC", "Precision", "Recall", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "BinaryCrossentropy",
    "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "F1Score", "FBetaScore", "MeanIoU", "IoU",
    "Mean", "Sum", "MeanMetricWrapper", "RootMeanSquaredError", "TruePositives", "FalsePositives",
    "TrueNegatives", "FalseNegatives", "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
    "SpecificityAtSensitivity", "Hinge", "KLDivergence", "LogCoshError", "Poisson", "R2Score",
    "CosineSimilarity",
)


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("metrics", name, NOT_IN_MINICNN)

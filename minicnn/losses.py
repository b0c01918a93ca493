"""Losses, averaged over the batch (as Keras): cross-entropy, mean squared and absolute error.

For probabilities p (N, K) and one-hot targets y (N, K):
    loss = -1/N * sum_n sum_k y_nk * log(p_nk)
    d loss / d p = -y / (N * p)
When p = softmax(z), the two steps fuse into the exact and stable
    loss = -1/N * sum y * log_softmax(z),   d loss / d z = (p - y) / N,
which the model uses when its last layer ends in softmax. Why (p - y): d log p_k / d z_m
= [k == m] - p_m, and each target row sums to 1. Why / N: the loss is the batch mean, so each
sample enters with weight 1/N, applied once here at the start of the backward pass; every
later sum over the batch (x^T @ dz) is then a mean. Derivation: docs/derivations/softmax_cross_entropy.md.

Sample weights w (N,) (fit's sample_weight and class_weight) scale each sample's loss, and
the batch mean stays a division by N, as Keras's default reduction does:
    loss = 1/N * sum_n w_n * loss_n,     d loss / d y_pred_n = w_n * d loss_n / d y_pred_n / N.
"""
import numpy as np

from minicnn.backend import get_array_module
from minicnn.utils import checks
from minicnn.utils.checks import check_bool

# Keras's loss arguments that minicnn takes only at their defaults: the batch mean ('auto' in
# Keras 2), no label smoothing, classes on the last axis.
KERAS_ARGUMENTS = {"reduction": ("sum_over_batch_size", "auto", None), "label_smoothing": (0, 0.0),
                   "axis": (-1,), "dtype": (None,)}
# Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log, as Keras does.
EPSILON = 1e-7
# One-hot or probability targets sum to 1 per row; the fused softmax gradient (p - y) / N
# relies on it. The tolerance allows for float32 rounding in soft labels.
ROW_SUM_TOLERANCE = 1e-3


def weighted_mean(per_sample, sample_weight=None):
    """1/N * sum_n w_n * loss_n (the plain mean without weights)."""
    if sample_weight is None:
        return per_sample.mean()
    return (per_sample * sample_weight.astype(per_sample.dtype, copy=False)).sum() / per_sample.shape[0]


def weighted_rows(gradient, sample_weight=None):
    """Each sample's row of d loss / d y_pred scaled by its weight w_n."""
    if sample_weight is None:
        return gradient
    w = sample_weight.astype(gradient.dtype, copy=False)
    return gradient * w.reshape((-1,) + (1,) * (gradient.ndim - 1))


def log_softmax(z):
    """log(softmax(z)) over the last axis, without overflow: z - max - log(sum(exp(z - max)))."""
    xp = get_array_module(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    """A loss object: `loss(y_true, y_pred)` is the batch mean.

    per_sample(y_true, y_pred)           -> loss of each sample (N,)
    forward(y_true, y_pred)              -> mean loss
    gradient(y_true, y_pred)             -> d mean loss / d y_pred
    check_targets(y, output_shape, what) -> y as the loss takes it, or a clear ValueError
    forward and gradient take an optional sample_weight (N,).
    """
    name = None
    aliases = ()               # other names compile accepts ('mse' for mean_squared_error)
    integer_targets = False    # True: the targets are class numbers, kept as integers on the way in
    softmax_cross_entropy = False   # True: with a softmax output, the model uses (p - y) / N (plan.py)
    from_logits = False

    def __init__(self, name=None, **kwargs):
        """Keras's `name` is accepted; its other arguments only at their defaults (KERAS_ARGUMENTS)."""
        checks.refuse_arguments(type(self).__name__, kwargs, KERAS_ARGUMENTS)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.forward(y_true, y_pred, sample_weight)

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def forward(self, y_true, y_pred, sample_weight=None):
        return weighted_mean(self.per_sample(y_true, y_pred), sample_weight)

    def gradient(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def check_targets(self, y, output_shape, what):
        return y

    def get_config(self):
        return {}


class CrossEntropy(Loss):
    """Cross-entropy, -sum_k y_k log p_k per sample. Besides Loss's methods:

    forward_from_logits(y_true, z)       -> mean loss of softmax(z)
    gradient_from_logits(y_true, p)      -> d mean loss / d z = (p - y) / N
    targets(y_true, K)                   -> the targets as one-hot (or soft) rows (N, K)
    """
    softmax_cross_entropy = True

    def __init__(self, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = check_bool(from_logits, "from_logits", type(self).__name__)

    def targets(self, y_true, num_classes):
        """The targets as a one-hot (or soft) float array (N, K)."""
        raise NotImplementedError

    def per_sample(self, y_true, y_pred, from_logits=None):
        """The loss of each sample, shape (N,). y_pred holds logits if from_logits."""
        xp = get_array_module(y_pred)
        y = self.targets(y_true, y_pred.shape[-1]).astype(y_pred.dtype, copy=False)
        use_logits = self.from_logits if from_logits is None else from_logits
        if use_logits:
            return -(y * log_softmax(y_pred)).sum(axis=-1)
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y * xp.log(p)).sum(axis=-1)

    def gradient(self, y_true, y_pred, sample_weight=None):
        xp = get_array_module(y_pred)
        if self.from_logits:
            return self.gradient_from_logits(y_true, xp.exp(log_softmax(y_pred)), sample_weight)
        y = self.targets(y_true, y_pred.shape[-1]).astype(y_pred.dtype, copy=False)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # the clip has zero slope outside
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        return weighted_rows(xp.where(inside, -y / (y_pred.shape[0] * p), 0), sample_weight)

    def forward_from_logits(self, y_true, z, sample_weight=None):
        return weighted_mean(self.per_sample(y_true, z, from_logits=True), sample_weight)

    def gradient_from_logits(self, y_true, p, sample_weight=None):
        y = self.targets(y_true, p.shape[-1]).astype(p.dtype, copy=False)
        return weighted_rows((p - y) / p.shape[0], sample_weight)

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(CrossEntropy):
    """Cross-entropy with one-hot (or probability) targets of shape (N, K)."""
    name = "categorical_crossentropy"

    def targets(self, y_true, num_classes):
        return y_true

    def check_targets(self, y, output_shape, what):
        """One-hot (or probability) rows of shape (N, K): values in [0, 1] summing to 1."""
        classes = output_shape[-1]
        if y.ndim != 2 or y.shape[1] != classes:
            hint = ""
            if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
                hint = (" (these look like integer labels: convert them with minicnn.utils.to_categorical(y) "
                        "or use loss='sparse_categorical_crossentropy')")
            raise ValueError(f"{what}: {self.name} expects one-hot targets of shape (N, {classes}), "
                             f"got shape {y.shape}{hint}")
        row_sums = y.sum(axis=1, dtype=np.float64)
        if y.min() < 0 or y.max() > 1 or np.abs(row_sums - 1).max() > ROW_SUM_TOLERANCE:
            raise ValueError(
                f"{what}: {self.name} expects one-hot (or probability) rows: values in [0, 1] "
                f"summing to 1; got values {y.min()}..{y.max()} and row sums {row_sums.min():g}..{row_sums.max():g}")
        return y


class SparseCategoricalCrossentropy(CrossEntropy):
    """Cross-entropy with integer class targets of shape (N,) (or (N, 1))."""
    name = "sparse_categorical_crossentropy"
    integer_targets = True

    def check_targets(self, y, output_shape, what):
        """Class numbers 0..K-1 of shape (N,) or (N, 1). Whole numbers stored as floats are
        cast to int, as Keras does; 2.5 is refused (Keras would silently truncate it)."""
        classes = output_shape[-1]
        if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
            raise ValueError(f"{what}: {self.name} expects integer labels of shape (N,), got {y.dtype} of shape "
                             f"{y.shape}; for one-hot rows use loss='categorical_crossentropy'")
        if not np.issubdtype(y.dtype, np.integer):
            if (y != np.round(y)).any():
                raise ValueError(f"{what}: {self.name} expects class numbers, got fractional values such as "
                                 f"{y[y != np.round(y)].flat[0]}; for probability rows use "
                                 "loss='categorical_crossentropy'")
            y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= classes:
            raise ValueError(f"{what}: labels must be in [0, {classes - 1}], got {y.min()}..{y.max()}")
        return y

    def targets(self, y_true, num_classes):
        xp = get_array_module(y_true)
        labels = y_true.reshape(-1).astype(xp.int64)
        one_hot = xp.zeros((labels.shape[0], num_classes), dtype=np.float32)
        one_hot[xp.arange(labels.shape[0]), labels] = 1
        return one_hot


class MeanSquaredError(Loss):
    """loss_n = 1/K * sum_k (p_nk - y_nk)^2;   d loss / d p = 2 (p - y) / (N K).

    For regression: any output layer (no softmax), targets of the output's shape."""
    name = "mean_squared_error"
    aliases = ("mse",)

    def per_sample(self, y_true, y_pred):
        error = y_pred - y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        return (error * error).reshape(error.shape[0], -1).mean(axis=-1)

    def gradient(self, y_true, y_pred, sample_weight=None):
        error = y_pred - y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        return weighted_rows(2 * error / error.size, sample_weight)     # error.size = N * K

    def check_targets(self, y, output_shape, what):
        return check_regression_targets(self, y, output_shape, what)


class MeanAbsoluteError(Loss):
    """loss_n = 1/K * sum_k |p_nk - y_nk|;   d loss / d p = sign(p - y) / (N K) (0 where p = y)."""
    name = "mean_absolute_error"
    aliases = ("mae",)

    def per_sample(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        error = y_pred - y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        return xp.abs(error).reshape(error.shape[0], -1).mean(axis=-1)

    def gradient(self, y_true, y_pred, sample_weight=None):
        xp = get_array_module(y_pred)
        error = y_pred - y_true.reshape(y_pred.shape).astype(y_pred.dtype, copy=False)
        return weighted_rows(xp.sign(error) / error.size, sample_weight)

    def check_targets(self, y, output_shape, what):
        return check_regression_targets(self, y, output_shape, what)


def check_regression_targets(loss, y, output_shape, what):
    """Targets with the output's shape per sample; (N,) is taken for (N, 1)."""
    sample = tuple(output_shape[1:])
    if tuple(y.shape[1:]) != sample and not (y.ndim == 1 and sample == (1,)):
        raise ValueError(f"{what}: {loss.name} expects targets of shape (N, {', '.join(map(str, sample))}) like "
                         f"the model's output, got shape {y.shape}")
    return y


_BY_NAME = {cls.name: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                      MeanSquaredError, MeanAbsoluteError)}
_BY_NAME.update({alias: cls for cls in list(_BY_NAME.values()) for alias in cls.aliases})


def categorical_crossentropy(y_true, y_pred):
    """Per-sample categorical cross-entropy, shape (N,), as keras.losses.categorical_crossentropy."""
    return CategoricalCrossentropy().per_sample(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred):
    """Per-sample sparse categorical cross-entropy, shape (N,)."""
    return SparseCategoricalCrossentropy().per_sample(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error, shape (N,)."""
    return MeanSquaredError().per_sample(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error, shape (N,)."""
    return MeanAbsoluteError().per_sample(y_true, y_pred)


mse, mae = mean_squared_error, mean_absolute_error


def get(identifier):
    """A Loss object from a name, a loss function of this module, or a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    name = getattr(identifier, "__name__", identifier)
    if isinstance(name, str) and name.lower() in _BY_NAME:
        return _BY_NAME[name.lower()]()
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss object")


# Keras names minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = (
    "BinaryCrossentropy", "binary_crossentropy", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
    "Huber", "huber", "KLDivergence", "kl_divergence", "KLD", "kld", "Hinge", "hinge", "SquaredHinge",
    "CategoricalHinge", "LogCosh", "log_cosh", "Poisson", "poisson", "CosineSimilarity", "cosine_similarity",
    "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "CTC", "Dice", "Tversky",
)


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("losses", name, NOT_IN_MINICNN)

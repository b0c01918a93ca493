"""Cross-entropy losses, numerically stable, averaged over the batch (as Keras).

For probabilities p (N, K) and one-hot targets y (N, K):
    loss = -1/N * sum_n sum_k y_nk * log(p_nk)
    d loss / d p = -y / (N * p)
When p = softmax(z), the two steps fuse into the exact and stable
    loss = -1/N * sum y * log_softmax(z),   d loss / d z = (p - y) / N,
which the model uses when its last layer ends in softmax. Why (p - y): d log p_k / d z_m
= [k == m] - p_m, and each target row sums to 1. Why / N: the loss is the batch mean, so each
sample enters with weight 1/N, applied once here at the start of the backward pass; every
later sum over the batch (x^T @ dz) is then a mean. Derivation: docs/derivations/softmax_cross_entropy.md.
"""
import numpy as np

from minicnn.backend import get_array_module
from minicnn.utils.checks import check_bool

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before the log, as Keras does.
EPSILON = 1e-7


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
    forward_from_logits(y_true, z)       -> mean loss of softmax(z)
    gradient_from_logits(y_true, p)      -> d mean loss / d z = (p - y) / N
    """
    name = None

    def __init__(self, from_logits=False):
        self.from_logits = check_bool(from_logits, "from_logits", type(self).__name__)

    def targets(self, y_true, num_classes):
        """The targets as a one-hot (or soft) float array (N, K)."""
        raise NotImplementedError

    def __call__(self, y_true, y_pred):
        return self.forward(y_true, y_pred)

    def per_sample(self, y_true, y_pred, from_logits=None):
        """The loss of each sample, shape (N,). y_pred holds logits if from_logits."""
        xp = get_array_module(y_pred)
        y = self.targets(y_true, y_pred.shape[-1]).astype(y_pred.dtype, copy=False)
        use_logits = self.from_logits if from_logits is None else from_logits
        if use_logits:
            return -(y * log_softmax(y_pred)).sum(axis=-1)
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        return -(y * xp.log(p)).sum(axis=-1)

    def forward(self, y_true, y_pred):
        return self.per_sample(y_true, y_pred).mean()

    def gradient(self, y_true, y_pred):
        xp = get_array_module(y_pred)
        if self.from_logits:
            return self.gradient_from_logits(y_true, xp.exp(log_softmax(y_pred)))
        y = self.targets(y_true, y_pred.shape[-1]).astype(y_pred.dtype, copy=False)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # the clip has zero slope outside
        p = xp.clip(y_pred, EPSILON, 1 - EPSILON)
        return xp.where(inside, -y / (y_pred.shape[0] * p), 0)

    def forward_from_logits(self, y_true, z):
        return self.per_sample(y_true, z, from_logits=True).mean()

    def gradient_from_logits(self, y_true, p):
        y = self.targets(y_true, p.shape[-1]).astype(p.dtype, copy=False)
        return (p - y) / p.shape[0]

    def get_config(self):
        return {"from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or probability) targets of shape (N, K)."""
    name = "categorical_crossentropy"

    def targets(self, y_true, num_classes):
        return y_true


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class targets of shape (N,) (or (N, 1))."""
    name = "sparse_categorical_crossentropy"

    def targets(self, y_true, num_classes):
        xp = get_array_module(y_true)
        labels = y_true.reshape(-1).astype(xp.int64)
        one_hot = xp.zeros((labels.shape[0], num_classes), dtype=np.float32)
        one_hot[xp.arange(labels.shape[0]), labels] = 1
        return one_hot


_BY_NAME = {cls.name: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy)}


def categorical_crossentropy(y_true, y_pred):
    """Per-sample categorical cross-entropy, shape (N,), as keras.losses.categorical_crossentropy."""
    return CategoricalCrossentropy().per_sample(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred):
    """Per-sample sparse categorical cross-entropy, shape (N,)."""
    return SparseCategoricalCrossentropy().per_sample(y_true, y_pred)


def get(identifier):
    """A Loss object from a name, a loss function of this module, or a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    name = getattr(identifier, "__name__", identifier)
    if isinstance(name, str) and name in _BY_NAME:
        return _BY_NAME[name]()
    raise ValueError(f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss object")

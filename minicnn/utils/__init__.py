"""Small helpers from keras.utils: to_categorical, set_random_seed."""
import numpy as np

from minicnn.backend import set_random_seed


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer class labels (N,) -> one-hot rows (N, num_classes).

    to_categorical([9, 0]) -> [[0,0,0,0,0,0,0,0,0,1], [1,0,0,0,0,0,0,0,0,0]]
    """
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(labels == np.round(labels)):
            raise ValueError(f"to_categorical expects integer class labels, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical expects labels >= 0, got {labels.min()}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and labels.max() >= num_classes:
        raise ValueError(f"to_categorical: label {labels.max()} does not fit num_classes={num_classes}")
    one_hot = np.zeros(labels.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(one_hot, labels[..., None].astype(np.intp), 1, axis=-1)
    return one_hot


__all__ = ["to_categorical", "set_random_seed"]

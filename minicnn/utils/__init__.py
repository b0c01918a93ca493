"""Small helpers from keras.utils: to_categorical, set_random_seed, plot_model."""
import numpy as np

from minicnn.backend import set_random_seed
from minicnn.utils.checks import allocate, check_int


def to_categorical(y, num_classes=None, dtype="float32"):
    """Integer class labels (N,) -> one-hot rows (N, num_classes).

    to_categorical([9, 0]) -> [[0,0,0,0,0,0,0,0,0,1], [1,0,0,0,0,0,0,0,0,0]]
    """
    labels = np.asarray(y)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if labels.size and labels.dtype.kind not in "iu":   # timedelta64 and bool are no labels
        whole = labels.dtype.kind == "f" and np.isfinite(labels).all() and np.all(labels == np.round(labels))
        if not whole:
            raise ValueError(f"to_categorical expects integer class labels, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"to_categorical expects labels >= 0, got {labels.min()}")
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    else:
        num_classes = check_int(num_classes, "num_classes", "to_categorical", minimum=0)
        if labels.size and labels.max() >= num_classes:
            raise ValueError(f"to_categorical: label {labels.max()} does not fit num_classes={num_classes}")
    shape = labels.shape + (num_classes,)
    largest = f" (the largest label is {labels.max()})" if labels.size else ""
    one_hot = allocate(lambda: np.zeros(shape, dtype=dtype), shape, dtype, f"to_categorical{largest}")
    np.put_along_axis(one_hot, labels[..., None].astype(np.intp), 1, axis=-1)
    return one_hot


def plot_model(model, to_file="model.png", **options):
    """The model's layer graph as a PNG (keras.utils.plot_model, drawn with matplotlib; no graphviz):
    see minicnn.plotting.plot_model. Returns the matplotlib figure."""
    from minicnn import plotting          # matplotlib loads only when a plot is asked for
    return plotting.plot_model(model, to_file, **options)


from minicnn.utils import np_utils  # noqa: E402  (Keras 2's home of to_categorical; it imports this module)

__all__ = ["to_categorical", "set_random_seed", "plot_model", "np_utils"]

"""keras.utils.np_utils, the Keras 2 home of to_categorical, for scripts that import it from there."""
from minicnn.utils import to_categorical

__all__ = ["to_categorical"]

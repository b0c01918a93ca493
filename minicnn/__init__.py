"""minicnn: a small convolutional-network library, written to be read.

Keras-compatible API on NumPy (CPU) or CuPy (GPU). Start with
``minicnn.models.Sequential`` and ``minicnn.layers``.
"""
__version__ = "0.1.0"

from minicnn import backend, activations, initializers, losses, optimizers, kernels  # noqa: E402
from minicnn import layers, callbacks, models, utils, datasets, gradcheck  # noqa: E402
from minicnn.models import Sequential, Model, Input, load_model  # noqa: E402

__all__ = [
    "backend", "activations", "initializers", "losses", "optimizers", "kernels", "layers",
    "callbacks", "models", "utils", "datasets", "gradcheck",
    "Sequential", "Model", "Input", "load_model", "__version__",
]

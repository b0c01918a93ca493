"""minicnn: a small convolutional-network library, written to be read.

Keras-compatible API on NumPy (CPU) or CuPy (GPU). Start with
``minicnn.models.Sequential`` and ``minicnn.layers``.
"""
__version__ = "0.1.0"

from minicnn import backend, activations, initializers, losses, optimizers, kernels  # noqa: E402
from minicnn import layers, callbacks, models, utils, datasets  # noqa: E402
from minicnn.models import Sequential, Model, Input, load_model  # noqa: E402


def __getattr__(name):
    """minicnn.gradcheck, .inspect and .plotting load on first use: plotting pulls in matplotlib,
    and `python -m minicnn.gradcheck` warns if the package has imported it already."""
    if name in ("gradcheck", "inspect", "plotting"):
        import importlib
        return importlib.import_module(f"minicnn.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


__all__ = [
    "backend", "activations", "initializers", "losses", "optimizers", "kernels", "layers",
    "callbacks", "models", "utils", "datasets", "gradcheck", "inspect", "plotting",
    "Sequential", "Model", "Input", "load_model", "__version__",
]

"""minicnn: a small convolutional-network library, written to be read.

Keras-compatible API on NumPy (CPU) or CuPy (GPU). Start with
``minicnn.models.Sequential`` and ``minicnn.layers``.
"""
__version__ = "0.1.0"

from minicnn import backend, activations, initializers, losses, optimizers, kernels  # noqa: E402
from minicnn import layers, callbacks, plan, models, utils, datasets  # noqa: E402
from minicnn.models import Sequential, Model, Input, load_model  # noqa: E402
from minicnn import lab  # noqa: E402


def __getattr__(name):
    """minicnn.gradcheck, .inspection and .plotting load on first use: plotting pulls in matplotlib,
    and `python -m minicnn.gradcheck` warns if the package has imported it already."""
    if name in ("gradcheck", "inspection", "plotting"):
        import importlib
        return importlib.import_module(f"minicnn.{name}")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


# Only what `import minicnn` has loaded already: `from minicnn import *` pulls in no
# matplotlib (plotting) and shadows no standard module.
__all__ = [
    "backend", "activations", "initializers", "losses", "optimizers", "kernels", "layers",
    "callbacks", "plan", "models", "lab", "utils", "datasets",
    "Sequential", "Model", "Input", "load_model", "__version__",
]

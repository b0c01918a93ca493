"""minicnn: a small convolutional-network library, written to be read.

Keras-compatible API on NumPy (CPU) or CuPy (GPU). Start with
``minicnn.models.Sequential`` and ``minicnn.layers``.
"""
__version__ = "0.1.0"

from minicnn import backend, activations, initializers, losses, optimizers, kernels  # noqa: E402
from minicnn import layers, callbacks, plan, models, utils, datasets, metrics, regularizers  # noqa: E402
from minicnn.models import Sequential, Model, Input, load_model  # noqa: E402
from minicnn import lab  # noqa: E402


def __getattr__(name):
    """minicnn.gradcheck, .inspection and .plotting load on first use: plotting pulls in matplotlib,
    and `python -m minicnn.gradcheck` warns if the package has imported it already."""
    if name in ("gradcheck", "inspection", "plotting"):
        import importlib
        return importlib.import_module(f"minicnn.{name}")
    if name in KERAS_MODULES_NOT_IN_MINICNN:
        raise AttributeError(f"minicnn does not support keras.{name} (minicnn.{name}); see the Keras "
                             "compatibility table in README.md")
    raise AttributeError(f"module 'minicnn' has no attribute {name!r}")


# Parts of Keras that minicnn leaves out: asking for one says so (see README's compatibility table).
KERAS_MODULES_NOT_IN_MINICNN = (
    "applications", "preprocessing", "mixed_precision", "ops", "random", "constraints", "quantizers",
    "distribution", "export", "tree", "wrappers", "visualization", "legacy", "dtype_policies", "saving",
    "config", "Function", "KerasTensor", "Variable", "StatelessScope", "RematScope",
)


# Only what `import minicnn` has loaded already: `from minicnn import *` pulls in no
# matplotlib (plotting) and shadows no standard module.
__all__ = [
    "backend", "activations", "initializers", "losses", "optimizers", "kernels", "layers",
    "callbacks", "plan", "models", "lab", "utils", "datasets", "metrics", "regularizers",
    "Sequential", "Model", "Input", "load_model", "__version__",
]

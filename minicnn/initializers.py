"""Weight initializers, by Keras's names. Each returns a NumPy array in floatx.

fan_in / fan_out follow Keras: for a Dense kernel (in, out) they are in and out;
for a Conv2D kernel (kh, kw, in, out) both are multiplied by the receptive field kh*kw.
"""
import math

import numpy as np

from minicnn import backend

# Keras's he_normal draws from a normal truncated at two standard deviations; this
# constant (the std of a unit normal truncated to [-2, 2]) rescales it back to the target std.
TRUNCATED_NORMAL_STD = 0.87962566103423978


def compute_fans(shape):
    """Return (fan_in, fan_out) of a weight shape, as Keras computes them."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def zeros(shape, dtype=None):
    return np.zeros(shape, dtype=dtype or backend.floatx())


def ones(shape, dtype=None):
    return np.ones(shape, dtype=dtype or backend.floatx())


def glorot_uniform(shape, dtype=None):
    """Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)) (Keras's default)."""
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return backend.rng().uniform(-limit, limit, size=shape).astype(dtype or backend.floatx())


def glorot_normal(shape, dtype=None):
    """Truncated normal with std sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)), dtype)


def he_normal(shape, dtype=None):
    """Truncated normal with std sqrt(2 / fan_in): suited to ReLU-like activations."""
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in), dtype)


def he_uniform(shape, dtype=None):
    """Uniform in [-limit, limit], limit = sqrt(6 / fan_in): the variance of he_normal."""
    fan_in, _ = compute_fans(shape)
    limit = np.sqrt(6.0 / fan_in)
    return backend.rng().uniform(-limit, limit, size=shape).astype(dtype or backend.floatx())


def lecun_normal(shape, dtype=None):
    """Truncated normal with std sqrt(1 / fan_in): what 'selu' needs to keep its activations
    at mean 0 and variance 1 from layer to layer (self-normalizing networks)."""
    fan_in, _ = compute_fans(shape)
    return _truncated_normal(shape, np.sqrt(1.0 / fan_in), dtype)


def lecun_uniform(shape, dtype=None):
    """Uniform in [-limit, limit], limit = sqrt(3 / fan_in): the variance of lecun_normal."""
    fan_in, _ = compute_fans(shape)
    limit = np.sqrt(3.0 / fan_in)
    return backend.rng().uniform(-limit, limit, size=shape).astype(dtype or backend.floatx())


def _truncated_normal(shape, std, dtype):
    """Normal(0, std) values redrawn until they fall within two (pre-scaling) std; divided by
    TRUNCATED_NORMAL_STD so that the truncated values have the std asked for (as Keras)."""
    values = backend.rng().standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = backend.rng().standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return (values * std / TRUNCATED_NORMAL_STD).astype(dtype or backend.floatx())


_BY_NAME = {f.__name__: f for f in (zeros, ones, glorot_uniform, glorot_normal, he_normal, he_uniform,
                                    lecun_normal, lecun_uniform)}


def get(identifier):
    """Look an initializer up by name (or return a callable unchanged)."""
    if callable(identifier):
        return identifier
    if identifier in _BY_NAME:
        return _BY_NAME[identifier]
    raise ValueError(
        f"unknown initializer {identifier!r}; expected one of {sorted(_BY_NAME)} or a callable"
    )


def serialize(initializer):
    name = getattr(initializer, "__name__", None)
    if name not in _BY_NAME:
        raise ValueError(f"only the built-in initializers {sorted(_BY_NAME)} can be saved, got {initializer!r}")
    return name


class Initializer:
    """Keras's class spelling of an initializer: HeNormal() draws as he_normal does.

    Keras's `seed` argument is refused: minicnn.utils.set_random_seed seeds every draw, which
    keeps checkpoints resumable exactly."""
    function = None     # the initializer function above, as a staticmethod

    def __init__(self, seed=None):
        if seed is not None:
            raise ValueError(f"{type(self).__name__}: a per-initializer seed is not supported (got seed={seed!r}); "
                             "minicnn.utils.set_random_seed(seed) seeds every initial weight")

    def __call__(self, shape, dtype=None):
        return self.function(shape, dtype)

    @property
    def __name__(self):                  # what serialize() saves: the function's name
        return self.function.__name__

    def __repr__(self):
        return f"{type(self).__name__}()"


class GlorotUniform(Initializer):
    function = staticmethod(glorot_uniform)


class GlorotNormal(Initializer):
    function = staticmethod(glorot_normal)


class HeNormal(Initializer):
    function = staticmethod(he_normal)


class HeUniform(Initializer):
    function = staticmethod(he_uniform)


class LecunNormal(Initializer):
    function = staticmethod(lecun_normal)


class LecunUniform(Initializer):
    function = staticmethod(lecun_uniform)


class Zeros(Initializer):
    function = staticmethod(zeros)


class Ones(Initializer):
    function = staticmethod(ones)


# Keras initializers minicnn leaves out: asking for one says so (README's compatibility table).
NOT_IN_MINICNN = ("Constant", "RandomNormal", "RandomUniform", "TruncatedNormal", "Orthogonal", "Identity",
                  "VarianceScaling", "constant", "random_normal", "random_uniform", "truncated_normal",
                  "orthogonal", "identity", "variance_scaling")


def __getattr__(name):
    from minicnn.utils.checks import missing_keras_name
    raise missing_keras_name("initializers", name, NOT_IN_MINICNN)

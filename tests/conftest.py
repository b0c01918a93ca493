"""Shared fixtures and helpers: float64 for gradient checks, a fresh seed for every test, the
Fashion-MNIST marker, and the scripts of examples/ and benchmarks/ (imported or run as a learner runs them).

The lab's model comes from minicnn.lab (lab_model), like everywhere else.
"""
import os


def _cuda_gpu_present():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


# Where no CUDA GPU is found, the GPU kernels (minicnn/kernels/gpu.py) run in Numba's CUDA
# simulator, on NumPy arrays. Numba reads the variable when it is first imported: set it first.
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _cuda_gpu_present():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

import functools  # noqa: E402
import importlib.util  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from minicnn import backend  # noqa: E402

# The float64 fixture only flips a global setting, so sharing it across hypothesis
# examples is safe; JIT compilation makes first examples slow, hence no deadline.
settings.register_profile("minicnn", suppress_health_check=[HealthCheck.function_scoped_fixture],
                          deadline=None)
settings.load_profile("minicnn")


@pytest.fixture
def float64():
    """Build layers and models in float64 for the duration of a test."""
    previous = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(previous)


@pytest.fixture(autouse=True)
def _seeded():
    backend.set_random_seed(1234)
    yield


def distinct_values(rng, shape):
    """Random values that are pairwise at least 0.01 apart: no ties, no kinks nearby."""
    size = int(np.prod(shape))
    values = (rng.permutation(size) - size / 2) * 0.01 + 0.003
    return values.reshape(shape)


def away_from_zero(rng, shape, gap=0.01):
    """Normal values pushed at least `gap` away from 0 (LeakyReLU's kink)."""
    values = rng.standard_normal(shape)
    return np.where(values >= 0, values + gap, values - gap)


def toy_images(n=256, size=8, classes=3, seed=0):
    """A learnable toy problem: the class is where a bright square sits in the image."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.uniform(0, 0.3, (n, size, size, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        column = label * (size // classes)
        x[i, 2:5, column:column + 2, 0] += 0.7
    return x, labels


def _fashion_mnist_found():
    from minicnn.datasets import fashion_mnist
    return fashion_mnist.find_data_dir() is not None


# Tests on the real data skip where it is not installed, except in CI (.ci/run sets
# MINICNN_REQUIRE_DATA=1 after installing it), where a missing dataset must fail loudly.
needs_fashion_mnist = pytest.mark.skipif(
    not os.environ.get("MINICNN_REQUIRE_DATA") and not _fashion_mnist_found(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist, or set MINICNN_DATA)")


# --- the scripts of examples/ and benchmarks/ ----------------------------------------------------
REPO = Path(__file__).resolve().parent.parent
SCRIPT_TIMEOUT_S = 300


@functools.cache
def load_script(path):
    """Import a script of examples/ or benchmarks/ (folders that are not packages) as a module, once.

    Tests use what the scripts define, e.g. the naive convolution of examples/conv_from_maths_to_code.py:
    the loops a learner reads are the loops the tests trust.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example(name):
    """examples/<name>.py as a module."""
    return load_script(REPO / "examples" / f"{name}.py")


def run_script(path, *args, timeout=SCRIPT_TIMEOUT_S):
    """Run a script from the repository root as a learner does (no display); return its stdout."""
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run([sys.executable, str(path), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{Path(path).name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@st.composite
def window_cases(draw, max_side=8, max_batch=3, max_channels=4, max_window=4, special_values=False):
    """(x, window): a float64 NHWC batch and a kernels.Window that fits it, with drawn sizes,
    strides 1-3 and 'valid' / 'same' padding. Half the time x holds small integers (many ties).

    special_values: also put a few inf, -inf or NaN into x (for the pooling kernels).
    """
    from minicnn.kernels import Window
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    kh, kw = draw(st.integers(1, max_window)), draw(st.integers(1, max_window))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(st.sampled_from(["valid", "same"]))
    if padding == "valid":   # the window must fit in the image
        kh, kw = min(kh, h), min(kw, w)
    window = Window.over((h, w), (kh, kw), (sh, sw), padding)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        x = rng.integers(-3, 4, size=(n, h, w, c)).astype(np.float64)   # small integers: many ties
    else:
        x = rng.standard_normal((n, h, w, c))
    if special_values and draw(st.booleans()):
        x.flat[rng.integers(0, x.size, 3)] = rng.choice([np.inf, -np.inf, np.nan], 3)
    return x, window

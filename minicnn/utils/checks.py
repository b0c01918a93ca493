"""Argument checks shared by layers, optimizers, callbacks and the model.

Each returns the value in a plain Python type or raises a ValueError that names
who complained, the argument, what was expected and what came:

    check_int(0, "units", "Dense")  ->  ValueError: Dense: units must be an int >= 1, got 0

allocate() makes an array, or a MemoryError that says who asked for how many bytes.
"""
import math
import numbers
import os

import numpy as np


def check_int(value, argument, who, minimum=1):
    """`value` as an int >= minimum (bools are refused: True is not a batch size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{who}: {argument} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_number(value, argument, who, low=-math.inf, high=math.inf, include_low=True, include_high=True):
    """`value` as a finite float in the interval from low to high (ends included or not)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if ok:
        ok = (value >= low if include_low else value > low) and (value <= high if include_high else value < high)
    if not ok:
        raise ValueError(f"{who}: {argument} must be {_interval(low, high, include_low, include_high)}, "
                         f"got {value!r}")
    return float(value)


def check_bool(value, argument, who):
    """`value` as True or False (NumPy's bool too); 'yes' or 1 are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{who}: {argument} must be True or False, got {value!r}")
    return bool(value)


def _interval(low, high, include_low, include_high):
    """'a number in [0, 1)', 'a number > 0', 'a finite number' ..."""
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a number {'>=' if include_low else '>'} {low:g}"
    if math.isinf(low):
        return f"a number {'<=' if include_high else '<'} {high:g}"
    return f"a number in {'[' if include_low else '('}{low:g}, {high:g}{']' if include_high else ')'}"


# --- sizes ------------------------------------------------------------------------------------
def physical_memory():
    """The machine's memory in bytes, or None where the operating system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count):
    """1536 -> '1.5 kB', 4e10 -> '40.0 GB'."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000


def allocate(make, shape, dtype, who):
    """make(), which creates an array of `shape` and `dtype`; a MemoryError that says who asked
    for how much when that cannot fit in this machine's memory (checked first) or fails."""
    nbytes = math.prod(int(size) for size in shape) * np.dtype(dtype).itemsize
    asked = f"{who}: an array of shape {tuple(shape)} ({np.dtype(dtype).name}) needs {format_bytes(nbytes)}"
    memory = physical_memory()
    if memory is not None and nbytes > memory:
        raise MemoryError(f"{asked}, more than this machine's {format_bytes(memory)} of memory")
    try:
        return make()
    except MemoryError:
        raise MemoryError(f"{asked}, more than is free now") from None


def missing_keras_name(module, name, keras_names):
    """The AttributeError for `minicnn.<module>.<name>`: one that says minicnn leaves out a part of
    Keras (see README's compatibility table) when Keras has that name, Python's usual one otherwise."""
    if name in keras_names:
        return AttributeError(f"minicnn does not support keras.{module}.{name} (minicnn.{module}.{name}); see "
                              "the Keras compatibility table in README.md")
    return AttributeError(f"module 'minicnn.{module}' has no attribute {name!r}")


COMPATIBILITY = "see the Keras compatibility table in README.md"


def refuse_arguments(who, kwargs, known, hints=None):
    """Check the keyword arguments that none of a function's own parameters took (its **kwargs).

    `known` maps each Keras argument that minicnn leaves out to the values that change nothing
    (Keras's defaults): those are accepted; another value raises a TypeError that names the
    argument and `who`, plus hints[name](value) if given. A name not in `known` is a typo,
    refused as Python refuses it."""
    for name, value in kwargs.items():
        if name not in known:
            raise TypeError(f"{who} got an unexpected keyword argument {name!r}")
        defaults = known[name]
        # bools count only as bools: True is not groups=1
        if any(value is d or (type(value) is type(d) and value == d) for d in defaults):
            continue
        only = "" if defaults == (None,) else f" other than {name}={defaults[0]!r} (got {value!r})"
        hint = hints[name](value) if hints and name in hints else ""
        raise TypeError(f"minicnn does not support the argument {name!r} (in {who}){only}{hint}; {COMPATIBILITY}")

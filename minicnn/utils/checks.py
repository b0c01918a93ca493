"""Argument checks shared by layers, optimizers, callbacks and the model.

Each returns the value in a plain Python type or raises a ValueError that names
who complained, the argument, what was expected and what came:

    check_int(0, "units", "Dense")  ->  ValueError: Dense: units must be an int >= 1, got 0
"""
import math
import numbers

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

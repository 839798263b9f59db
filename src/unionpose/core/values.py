"""Type checks for values read from JSON (annotation files, results, model metadata)."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """An integer, not a bool (JSON's true/false arrive as Python bools, which are ints); numpy integers count."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool; numpy scalars count. Finite or not (see `is_finite_number`)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def are_plain_numbers(values: Iterable[Any]) -> bool:
    """Every value a Python int or float, bools excluded: the quick check of a long JSON list (NaN passes)."""
    return set(map(type, values)) <= {int, float}

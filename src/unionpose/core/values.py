"""Type checks for values read from JSON (annotation files, results, model metadata)."""
from __future__ import annotations

from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """An integer, not a bool (JSON's true/false arrive as Python bools, which are ints); numpy integers count."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool; numpy scalars count. Finite or not: callers that need finite check it."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

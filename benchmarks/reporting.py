"""What every benchmark does with its result: print the JSON and, with --out, write it; mean and spread over seeds.

Benchmarks run as scripts (`python benchmarks/NAME.py`), so this sits beside them and is imported as `reporting`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print `result` as JSON and write the same text to `out` (its folder made) when given."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def summarise(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for a single value) and the values themselves."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "values": [float(v) for v in array]}

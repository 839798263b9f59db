"""The `keypoints_3d` field of a COCO-style annotation: root-relative 3D per keypoint, with its own labelled mask.

`keypoints_3d` is a flat list [x0, y0, z0, x1, ...] of 3 x K numbers in the skeleton's order: camera-space x (right),
y (down), z (away from the camera) minus the root's (the pelvis), in the dataset's unit (docs/3d.md). A point whose
three values are all null is not labelled in 3D (`annotated_z` False); a point with some values null, or any value
not finite, is an error: a depth of NaN would silently poison the depth loss.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError
from unionpose.skeletons import Skeleton

FIELD = "keypoints_3d"


def parse_keypoints_3d(file: Path, where: str, value: Any, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(K, 3) float32 points (0 where not labelled) and (K,) bool `annotated_z`, or a DataError naming the point."""
    count = skeleton.num_keypoints
    if not isinstance(value, list) or len(value) != 3 * count:
        got = f"{len(value)} values" if isinstance(value, list) else repr(value)[:40]
        raise DataError(file, where, FIELD, f"expected a list of {3 * count} numbers or nulls ({count} keypoints x "
                                            f"x, y, z), got {got}")
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value):
        raise DataError(file, where, FIELD, "values must be numbers or null")
    given = np.array([v is not None for v in value]).reshape(count, 3)
    points = np.array([np.nan if v is None else float(v) for v in value], dtype=np.float64).reshape(count, 3)
    partial = given.any(axis=1) & ~given.all(axis=1)
    bad = partial | (given.all(axis=1) & ~np.isfinite(points).all(axis=1))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        what = "has some of x, y, z null (all three or none)" if partial[k] else "is not finite"
        raise DataError(file, where, FIELD, f"keypoint {k} ({skeleton.names[k]}) {what}: "
                                            f"{[value[3 * k + i] for i in range(3)]}")
    annotated_z = given.all(axis=1)
    return np.where(annotated_z[:, None], points, 0.0).astype(np.float32), annotated_z


"""A person box made from labelled or predicted points, for the sources to see or to write."""
from __future__ import annotations

import numpy as np

BOX_MARGIN = 0.1              # a box made from points grows by this share of their extent on each side


def points_box(points: np.ndarray, image_size: tuple[int, int] | None = None,
               margin: float = BOX_MARGIN) -> np.ndarray:
    """The extent (x, y, w, h) of points (N, 2), N >= 1, grown by `margin` of its size per side (at least one
    pixel of size), and clipped to an image of `image_size` (height, width) when given."""
    low, high = points.min(axis=0), points.max(axis=0)
    grow = margin * np.maximum(high - low, 1.0)
    low, high = low - grow, high + grow
    if image_size is not None:
        height, width = image_size
        low, high = np.maximum(low, 0.0), np.minimum(high, (width, height))
    return np.concatenate([low, high - low]).astype(np.float64)

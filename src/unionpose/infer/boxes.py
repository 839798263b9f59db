"""Person boxes without a detector or a file: the full frame, and boxes around tracked keypoints."""
from __future__ import annotations

import numpy as np


def full_frame_box(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One box covering the image, score 1: for single-person footage, or when no detector is available."""
    height, width = image.shape[:2]
    return np.array([[0.0, 0.0, width, height]]), np.ones(1)


def boxes_from_keypoints(keypoints: np.ndarray, keypoint_scores: np.ndarray, threshold: float = 0.3,
                         min_points: int = 3, padding: float = 1.15) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) around each person's confident keypoints, grown by `padding`, and which people had enough.

    Between detector runs the next frame's crop follows last frame's pose; keypoints hug the body, so the box is
    grown a little (the runner's own 1.25 padding then adds context as for a detector box).
    Returns the boxes of the usable people and a boolean mask (N,) of which people those are.
    """
    boxes, usable = [], np.zeros(len(keypoints), dtype=bool)
    for n, (points, scores) in enumerate(zip(keypoints, keypoint_scores)):
        confident = points[scores > threshold]
        if len(confident) < min_points:
            continue
        low, high = confident.min(axis=0), confident.max(axis=0)
        center, size = (low + high) / 2, np.maximum(high - low, 1.0) * padding
        boxes.append(np.concatenate([center - size / 2, size]))
        usable[n] = True
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), usable

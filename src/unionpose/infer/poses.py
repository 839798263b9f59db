"""The people found in one image: keypoints, scores, boxes and track ids as parallel arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Poses:
    """N people in one image, in a skeleton's keypoint order (image pixels); `depth` only from a 3D model."""

    keypoints: np.ndarray          # (N, K, 2) float32
    keypoint_scores: np.ndarray    # (N, K) float32
    boxes: np.ndarray              # (N, 4) x, y, w, h: the boxes the crops were taken from
    box_scores: np.ndarray         # (N,) detector confidence (1 for full-frame or ground-truth boxes)
    scores: np.ndarray             # (N,) person score: box score x mean of the keypoint scores above 0.2
    track_ids: np.ndarray          # (N,) int64, -1 when not tracked
    depth: np.ndarray | None = None    # (N, K) float32 root-relative depth in the model's unit (a depth head's)

    def __len__(self) -> int:
        return len(self.keypoints)

    def select(self, indices: np.ndarray) -> "Poses":
        """The people at `indices` (integer indices or a boolean mask), in that order."""
        return Poses(self.keypoints[indices], self.keypoint_scores[indices], self.boxes[indices],
                     self.box_scores[indices], self.scores[indices], self.track_ids[indices],
                     None if self.depth is None else self.depth[indices])

    @classmethod
    def empty(cls, num_keypoints: int) -> "Poses":
        return cls(np.zeros((0, num_keypoints, 2), np.float32), np.zeros((0, num_keypoints), np.float32),
                   np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))

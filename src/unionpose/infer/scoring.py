"""Person scores as RTMPose rescores a top-down prediction, and the thresholds its inference uses."""
from __future__ import annotations

import numpy as np

KEYPOINT_SCORE_THRESHOLD = 0.2   # keypoints scoring above this count towards the person's score (and OKS-NMS)
OKS_NMS_THRESHOLD = 0.9          # a person whose OKS with a better-scored one exceeds this is a duplicate


def instance_score(box_scores: np.ndarray, keypoint_scores: np.ndarray,
                   threshold: float = KEYPOINT_SCORE_THRESHOLD) -> np.ndarray:
    """Person score = box score x mean of the keypoint scores above `threshold` (0 when none is), as RTMPose rescores.

    Shapes: box_scores (N,), keypoint_scores (N, K) -> (N,).
    """
    box_scores = np.asarray(box_scores, dtype=np.float64)
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    if keypoint_scores.ndim != 2 or box_scores.shape != keypoint_scores.shape[:1]:
        raise ValueError(f"instance_score: box scores {box_scores.shape} and keypoint scores {keypoint_scores.shape} "
                         f"should be (N,) and (N, K)")
    confident = keypoint_scores > threshold
    count = confident.sum(axis=1)
    total = np.where(confident, keypoint_scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return box_scores * mean

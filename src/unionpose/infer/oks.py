"""Pose similarity (OKS) between predicted people, and OKS-NMS to drop duplicate people from overlapping boxes."""
from __future__ import annotations

import numpy as np

from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD, OKS_NMS_THRESHOLD


def oks_matrix(keypoints_a: np.ndarray, keypoints_b: np.ndarray, areas_a: np.ndarray, areas_b: np.ndarray,
               sigmas: np.ndarray, scores_a: np.ndarray | None = None, scores_b: np.ndarray | None = None,
               score_threshold: float = 0.0) -> np.ndarray:
    """OKS of every pose in A (Na, K, 2) against every pose in B (Nb, K, 2) -> (Na, Nb).

    The scale is the mean of the two people's areas (box w * h); with scores, only keypoints confident in both
    count (no such keypoint: OKS 0), as the pose toolboxes compare predictions with each other.
    """
    keypoints_a = np.asarray(keypoints_a, dtype=np.float64)
    keypoints_b = np.asarray(keypoints_b, dtype=np.float64)
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2                             # (K,)
    squared = ((keypoints_a[:, None] - keypoints_b[None]) ** 2).sum(axis=-1)                   # (Na, Nb, K)
    scale = (np.asarray(areas_a, np.float64)[:, None] + np.asarray(areas_b, np.float64)[None]) / 2 + np.spacing(1)
    similarity = np.exp(-squared / variances / scale[..., None] / 2.0)
    counted = np.ones(squared.shape, dtype=bool)
    if scores_a is not None and scores_b is not None:
        counted = (np.asarray(scores_a)[:, None] > score_threshold) & (np.asarray(scores_b)[None] > score_threshold)
    total = np.where(counted, similarity, 0.0).sum(axis=-1)
    count = counted.sum(axis=-1)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def oks_nms(keypoints: np.ndarray, keypoint_scores: np.ndarray, scores: np.ndarray, areas: np.ndarray,
            sigmas: np.ndarray, threshold: float = OKS_NMS_THRESHOLD,
            score_threshold: float = KEYPOINT_SCORE_THRESHOLD) -> np.ndarray:
    """Indices of the people to keep, best first: a person is dropped when its OKS with a better one exceeds
    `threshold` (0.9 for detected boxes, where one person often gets two boxes, as RTMPose evaluates)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    similarity = oks_matrix(keypoints, keypoints, areas, areas, sigmas, keypoint_scores, keypoint_scores,
                            score_threshold)
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=bool)
    for index in order:
        if suppressed[index]:
            continue
        keep.append(int(index))
        suppressed |= similarity[index] > threshold
    return np.asarray(keep, dtype=np.int64)


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every box (x, y, w, h) in A (Na, 4) against every box in B (Nb, 4) -> (Na, Nb)."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    intersection = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)

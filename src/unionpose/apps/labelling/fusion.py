"""Several sources for one point: a confidence-weighted fusion that records which sources it used.

Per person and point, the most confident source is the anchor; the sources that agree with it (per-point OKS
similarity to the anchor of at least `agreement`, with the point's sigma and the person's area, as COCO scores a
keypoint) are averaged, each weighted by its confidence, and the fused confidence is their confidence-weighted mean
(sum c^2 / sum c: one confident source is not diluted by a doubtful one). A source that disagrees is left out rather
than averaged in: the mean of two different places is neither. One source gives its own point and confidence.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_AGREEMENT = 0.5       # per-point OKS similarity for two sources to count as the same point
MIN_WEIGHT = 1e-6             # a given point of confidence 0 still has a place (its confidence is recorded as 0)


@dataclass(frozen=True)
class Fused:
    """The fused points of N people in one skeleton."""

    keypoints: np.ndarray             # (N, K, 2) float32 image pixels, NaN where no source gives the point
    confidence: np.ndarray            # (N, K) float32 in [0, 1], 0 where no source gives the point
    sources: list[list[str | None]]   # per person and point: the sources used, most confident first, joined by '+'


def point_similarity(a: np.ndarray, b: np.ndarray, sigmas: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """COCO's per-keypoint OKS term exp(-d^2 / (2 s^2 k^2)), k = 2 sigma, s^2 = the person's area.

    a, b (..., N, K, 2); sigmas (K,); areas (N,) -> (..., N, K); NaN where either point is missing."""
    squared = ((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum(axis=-1)
    scale = 2.0 * np.maximum(np.asarray(areas, np.float64), 1.0)[:, None] * (2.0 * np.asarray(sigmas)) ** 2
    return np.exp(-squared / scale)


def fuse(keypoints: np.ndarray, confidence: np.ndarray, names: Sequence[str], sigmas: np.ndarray,
         areas: np.ndarray, agreement: float = DEFAULT_AGREEMENT) -> Fused:
    """Sources' keypoints (S, N, K, 2) (NaN: not given) and confidences (S, N, K) -> one `Fused` set."""
    keypoints = np.asarray(keypoints, np.float64)
    given = np.isfinite(keypoints).all(axis=-1)
    confidence = np.where(given, np.clip(np.asarray(confidence, np.float64), 0.0, 1.0), 0.0)
    anchor_index = np.where(given, confidence, -1.0).argmax(axis=0)                      # (N, K)
    anchor = np.take_along_axis(keypoints, anchor_index[None, ..., None], axis=0)[0]     # (N, K, 2)
    with np.errstate(invalid="ignore"):
        member = given & (point_similarity(keypoints, anchor[None], sigmas, areas) >= agreement)
    weight = np.where(member, np.maximum(confidence, MIN_WEIGHT), 0.0)
    total = weight.sum(axis=0)
    any_given = total > 0
    safe = np.where(any_given, total, 1.0)
    points = (np.nan_to_num(keypoints) * weight[..., None]).sum(axis=0) / safe[..., None]
    fused_confidence = (weight * confidence).sum(axis=0) / safe
    points[~any_given] = np.nan
    order = np.argsort(-np.where(member, confidence, -1.0), axis=0, kind="stable")     # (S, N, K)
    used: list[list[str | None]] = []
    for n in range(keypoints.shape[1]):
        row = []
        for k in range(keypoints.shape[2]):
            chosen = [names[s] for s in order[:, n, k] if member[s, n, k]]
            row.append("+".join(chosen) if chosen else None)
        used.append(row)
    return Fused(points.astype(np.float32), np.where(any_given, fused_confidence, 0.0).astype(np.float32), used)

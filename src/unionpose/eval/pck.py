"""PCK: a keypoint is correct within a fraction of a per-person length of the truth; here normalised by the box."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def correct_keypoints(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, scale: np.ndarray,
                      threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(hits, annotated), both (N, K) bool: hit = annotated and ||pred - gt|| <= threshold * scale[n].

    `visible` > 0 marks the annotated joints (occluded but labelled joints count); the others are skipped, and so
    are their (meaningless) coordinates.
    """
    annotated = np.asarray(visible) > 0
    distance = np.linalg.norm(np.where(annotated[..., None], pred - gt, 0.0), axis=-1)
    hits = annotated & (distance <= threshold * scale[:, None])
    return hits, annotated


def checked_arrays(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, scale: np.ndarray, caller: str,
                   num_keypoints: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shapes (N, K, 2), (N, K, 2), (N, K), (N,); finite points where annotated; a positive scale for every person
    with an annotated joint. Errors name the person (row) and the joint."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    visible = np.asarray(visible)
    scale = np.asarray(scale, dtype=np.float64)
    n = pred.shape[0] if pred.ndim else 0
    k = num_keypoints if num_keypoints is not None else (pred.shape[1] if pred.ndim == 3 else -1)
    if pred.shape != (n, k, 2) or gt.shape != (n, k, 2) or visible.shape != (n, k) or scale.shape != (n,):
        raise ValueError(f"{caller}: pred {pred.shape}, gt {gt.shape}, visible {visible.shape}, scale {scale.shape}; "
                         f"expected (N, {k if k > 0 else 'K'}, 2), (N, K, 2), (N, K), (N,)")
    annotated = visible > 0
    for name, points in (("pred", pred), ("gt", gt)):
        bad = annotated & ~np.isfinite(points).all(axis=-1)
        if bad.any():
            person, joint = np.argwhere(bad)[0]
            raise ValueError(f"{caller}: {name}[{person}, {joint}] is not finite ({points[person, joint].tolist()})")
    bad_scale = annotated.any(axis=1) & ~(np.isfinite(scale) & (scale > 0))
    if bad_scale.any():
        person = int(np.flatnonzero(bad_scale)[0])
        raise ValueError(f"{caller}: person {person} has annotated joints but a normalising length of {scale[person]}")
    return pred, gt, visible, scale


def rate(hits: np.ndarray, annotated: np.ndarray) -> float | None:
    """Hits over annotated joints, pooled (so joints weigh by how often they are annotated); None if none are."""
    count = int(annotated.sum())
    return float(hits.sum() / count) if count else None


def pck_bbox(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, boxes: np.ndarray, threshold: float = 0.2, *,
             names: Sequence[str] | None = None) -> dict:
    """PCK normalised by each person's box *longer side* (boxes (N, 4) xywh), for datasets without head boxes.

    The longer side keeps the scale of a crouching or lying person (whose box height collapses) comparable with a
    standing one's; note the OpenMMLab toolbox's 'PCK' normalises x and y by box width and height separately, so its
    numbers differ. Returns fractions: the pooled mean over every annotated joint and each keypoint's own rate.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"pck_bbox: boxes {boxes.shape} should be (N, 4) x, y, w, h")
    pred, gt, visible, scale = checked_arrays(pred, gt, visible, boxes[:, 2:].max(axis=1), "pck_bbox")
    k = pred.shape[1]
    names = list(names) if names is not None else [f"keypoint_{j}" for j in range(k)]
    if len(names) != k:
        raise ValueError(f"pck_bbox: {len(names)} names for {k} keypoints")
    hits, annotated = correct_keypoints(pred, gt, visible, scale, threshold)
    label = f"PCK@{threshold:g}"
    return {
        "metric": "pck",
        "normaliser": "box longer side",
        "threshold": threshold,
        label: rate(hits, annotated),
        "num_people": int(pred.shape[0]),
        "per_keypoint": {"name": names, "annotated": annotated.sum(axis=0).tolist(),
                         label: [rate(hits[:, j], annotated[:, j]) for j in range(k)]},
    }

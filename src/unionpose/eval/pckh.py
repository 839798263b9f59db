"""MPII PCKh: a joint is correct within a fraction of 0.6 x the head-box diagonal; the standard mean and columns.

Coordinates: MPII's original ground truth (the .mat files) counts pixels from 1; the JSON conversions the pose
toolboxes use, and this project's readers, count from 0. PCKh only looks at differences, so it is unchanged when
prediction and truth use the same origin; it matters only when scoring 0-based predictions against the original
1-based .mat truth, where 1 must be added to the predictions first (as the toolboxes do).
"""
from __future__ import annotations

import numpy as np

from unionpose.eval.pck import checked_arrays, correct_keypoints, rate
from unionpose.skeletons import get_skeleton

HEAD_SIZE_FACTOR = 0.6  # MPII's head size: 0.6 x the diagonal of the annotated head box
EXCLUDED_FROM_MEAN = ("pelvis", "thorax")  # the headline mean leaves these out (they are nearly always right)

# The published MPII table: each column is the mean of its joints' PCKh. 'Head' pools head top and upper neck as
# the official MPII evaluation does (the OpenMMLab and HRNet ports report head top alone, so their Head differs).
COLUMNS = (
    ("Head", ("head_top", "upper_neck")),
    ("Shoulder", ("left_shoulder", "right_shoulder")),
    ("Elbow", ("left_elbow", "right_elbow")),
    ("Wrist", ("left_wrist", "right_wrist")),
    ("Hip", ("left_hip", "right_hip")),
    ("Knee", ("left_knee", "right_knee")),
    ("Ankle", ("left_ankle", "right_ankle")),
)


def head_size_from_boxes(head_boxes: np.ndarray) -> np.ndarray:
    """Head sizes (N,) from head boxes (N, 4) given as x1, y1, x2, y2 (MPII's two corners): 0.6 x the diagonal."""
    head_boxes = np.asarray(head_boxes, dtype=np.float64)
    if head_boxes.ndim != 2 or head_boxes.shape[1] != 4:
        raise ValueError(f"head_size_from_boxes: head boxes {head_boxes.shape} should be (N, 4) x1, y1, x2, y2")
    return HEAD_SIZE_FACTOR * np.linalg.norm(head_boxes[:, 2:] - head_boxes[:, :2], axis=1)


def pckh(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, head_size: np.ndarray,
         thresholds: tuple[float, ...] = (0.5, 0.1)) -> dict:
    """MPII PCKh of predictions (N, 16, 2) against truth (N, 16, 2), both in mpii16 order and the same pixel origin.

    `visible` (N, 16) > 0 marks the annotated joints (MPII labels occluded joints too: pass 1 for them); the others
    are skipped. `head_size` (N,) is the normaliser itself (see `head_size_from_boxes`). For each threshold the
    headline `PCKh@t` pools hits over annotated joints except pelvis and thorax, so joints weigh by how often they
    are annotated. `columns` holds the published table (Head ... Ankle and Mean at the first threshold, then
    Mean@t for the others). All values are fractions; None where no joint of that kind is annotated.
    """
    skeleton = get_skeleton("mpii16")
    pred, gt, visible, head_size = checked_arrays(pred, gt, visible, head_size, "pckh", skeleton.num_keypoints)
    names = list(skeleton.names)
    in_mean = np.array([name not in EXCLUDED_FROM_MEAN for name in names])
    result: dict = {"metric": "pckh", "thresholds": list(thresholds), "num_people": int(pred.shape[0])}
    per_keypoint: dict = {"name": names}
    columns: dict = {}
    for i, threshold in enumerate(thresholds):
        hits, annotated = correct_keypoints(pred, gt, visible, head_size, threshold)
        label = f"PCKh@{threshold:g}"
        per_joint = [rate(hits[:, j], annotated[:, j]) for j in range(len(names))]
        result[label] = rate(hits[:, in_mean], annotated[:, in_mean])
        per_keypoint.setdefault("annotated", annotated.sum(axis=0).tolist())
        per_keypoint[label] = per_joint
        if i == 0:
            for column, joints in COLUMNS:
                values = [per_joint[names.index(joint)] for joint in joints]
                values = [v for v in values if v is not None]
                columns[column] = float(np.mean(values)) if values else None
            columns["Mean"] = result[label]
        else:
            columns[f"Mean@{threshold:g}"] = result[label]
    result["columns"] = columns
    result["per_keypoint"] = per_keypoint
    return result

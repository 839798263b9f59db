"""3D errors of a model with a depth head: MPJPE (root-aligned) and PA-MPJPE (Procrustes-aligned) per part.

The model gives x, y in image pixels and a root-relative depth z in the data's unit; the ground truth gives
`keypoints_3d` (camera-space, root-relative, same unit). To compare them, the predicted pixels are lifted to the
data's unit with the ground truth's own pixels-to-unit scale (fitted by least squares between the person's labelled
2D and 3D points: exact for an orthographic camera, as in the synthetic people), then both poses are moved so that
their roots coincide (MPJPE). PA-MPJPE first aligns the prediction to the truth by the similarity transform (scale,
rotation, translation) that fits best, so it measures the pose's shape alone. The depth error is the root-aligned
|z| difference alone: what the depth head adds, apart from the 2D error. Points are those labelled in 3D
(`annotated_z`) and in 2D (visible > 0, so the lifting scale has pixels to use). Errors are in the data's unit.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unionpose.data.instance import Instance
from unionpose.skeletons import Skeleton

ROOT = "pelvis"                      # the root of root-relative depth; a skeleton without it uses the mid-hip
HIPS = ("left_hip", "right_hip")


def root_of(points: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(..., K, 3) -> (..., 3): the pelvis, or the middle of the hips in a skeleton without one."""
    if skeleton.has(ROOT):
        return points[..., skeleton.index(ROOT), :]
    if all(skeleton.has(h) for h in HIPS):
        return points[..., [skeleton.index(h) for h in HIPS], :].mean(axis=-2)
    raise ValueError(f"skeleton {skeleton.name!r} has neither a pelvis nor two hips to be the 3D root")


def lift(keypoints_px: np.ndarray, truth_px: np.ndarray, truth_3d: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """Predicted (K, 2) pixels -> the data's unit, with the scale that best maps the truth's pixels onto its 3D x, y
    (centred on the mean of the masked points); None when fewer than two points are usable."""
    if mask.sum() < 2:
        return None
    pixels = truth_px[mask] - truth_px[mask].mean(axis=0)
    units = truth_3d[mask, :2] - truth_3d[mask, :2].mean(axis=0)
    denominator = float((pixels * pixels).sum())
    if denominator <= 0:
        return None
    return keypoints_px * (float((pixels * units).sum()) / denominator)


def procrustes(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """`prediction` (M, 3) moved by the similarity transform that best fits it onto `truth` (Umeyama 1991)."""
    mu_p, mu_t = prediction.mean(axis=0), truth.mean(axis=0)
    p, t = prediction - mu_p, truth - mu_t
    u, s, vt = np.linalg.svd(p.T @ t)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0            # no reflection
    d = np.array([1.0, 1.0, sign])
    rotation = (u * d) @ vt
    variance = float((p * p).sum())
    scale = float((s * d).sum()) / variance if variance > 0 else 1.0
    return scale * p @ rotation + mu_t


def person_3d(instance: Instance, keypoints: np.ndarray, depth: np.ndarray, skeleton: Skeleton
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """One person's predicted 3D pose in the data's unit (K, 3), the same moved onto the truth's root, the truth
    (K, 3) and the points to score (K,); None without 3D labels or with fewer than three usable points."""
    if instance.keypoints_3d is None or instance.annotated_z is None:
        return None
    truth = instance.keypoints_3d.astype(np.float64)
    mask = instance.annotated_z & (instance.visible > 0)
    lifted = lift(keypoints.astype(np.float64), instance.keypoints.astype(np.float64), truth, mask)
    if lifted is None or mask.sum() < 3:
        return None
    prediction = np.concatenate([lifted, depth[:, None].astype(np.float64)], axis=1)
    return prediction, prediction - root_of(prediction, skeleton) + root_of(truth, skeleton), truth, mask


def part_names(skeleton: Skeleton) -> list[str]:
    """The part of each keypoint, with both hands as one `hands` part (body, feet, face, hands)."""
    return ["hands" if skeleton.part_of(k).endswith("hand") else skeleton.part_of(k)
            for k in range(skeleton.num_keypoints)]


def errors_3d(instances: Sequence[Instance], keypoints: np.ndarray, depth: np.ndarray, skeleton: Skeleton,
              unit: str) -> dict | None:
    """MPJPE, PA-MPJPE and the depth error over all points and per part, in the data's unit, or None without 3D
    labels.

    `keypoints` (N, K, 2) image pixels and `depth` (N, K) are the model's predictions in `skeleton`, row n for
    instance n (ground-truth boxes).
    """
    mpjpe: list[np.ndarray] = []
    pa_mpjpe: list[np.ndarray] = []
    depth_errors: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for n, instance in enumerate(instances):
        pose = person_3d(instance, keypoints[n], depth[n], skeleton)
        if pose is None:
            continue
        prediction, aligned, truth, mask = pose
        per_point = np.zeros(len(truth))
        per_point[mask] = np.linalg.norm(aligned[mask] - truth[mask], axis=1)
        pa = np.zeros(len(truth))
        pa[mask] = np.linalg.norm(procrustes(prediction[mask], truth[mask]) - truth[mask], axis=1)
        mpjpe.append(per_point)
        pa_mpjpe.append(pa)
        depth_errors.append(np.where(mask, np.abs(aligned[:, 2] - truth[:, 2]), 0.0))
        masks.append(mask)
    if not masks:
        return None
    mask = np.stack(masks)
    errors, aligned_errors, z_errors = np.stack(mpjpe), np.stack(pa_mpjpe), np.stack(depth_errors)
    parts = np.array(part_names(skeleton))

    def means(selected: np.ndarray) -> dict[str, float]:
        chosen = mask & selected[None]
        return {"mpjpe": float(errors[chosen].mean()), "pa_mpjpe": float(aligned_errors[chosen].mean()),
                "depth": float(z_errors[chosen].mean()), "points": int(chosen.sum())}

    by_part = {part: means(parts == part) for part in dict.fromkeys(parts) if (mask & (parts == part)[None]).any()}
    return {"people": len(masks), "unit": unit, **means(np.ones(len(parts), bool)),
            "parts": by_part}

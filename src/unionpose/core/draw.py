"""Drawing skeletons on images: links and points coloured by side and part, optional labels."""
from __future__ import annotations

import cv2
import numpy as np

from unionpose.skeletons import Skeleton
from unionpose.skeletons.template import template_positions


def draw_pose(image: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton, scores: np.ndarray | None = None,
              threshold: float = 0.3, radius: int | None = None, thickness: int | None = None,
              labels: str = "none", font_scale: float = 0.4, label_color: tuple[int, int, int] = (20, 20, 20)
              ) -> np.ndarray:
    """Draw one person in place (BGR image) and return the image.

    `scores` below `threshold` hide a point and its links. `labels` is 'none', 'index' or 'name'.
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape != (skeleton.num_keypoints, 2):
        raise ValueError(f"draw_pose: keypoints shaped {keypoints.shape}, skeleton {skeleton.name!r} has "
                         f"{skeleton.num_keypoints} points")
    shown = np.isfinite(keypoints).all(axis=1)
    if scores is not None:
        shown &= np.asarray(scores) >= threshold
    size = max(image.shape[:2])
    radius = radius or max(2, size // 250)
    thickness = thickness or max(1, size // 400)
    for (a, b), color in zip(skeleton.links, skeleton.link_colors()):
        if shown[a] and shown[b]:
            pa = tuple(int(round(v)) for v in keypoints[a])
            pb = tuple(int(round(v)) for v in keypoints[b])
            cv2.line(image, pa, pb, color, thickness, cv2.LINE_AA)
    for k, color in enumerate(skeleton.point_colors()):
        if not shown[k]:
            continue
        p = tuple(int(round(v)) for v in keypoints[k])
        cv2.circle(image, p, radius, color, -1, cv2.LINE_AA)
        if labels != "none":
            text = str(k) if labels == "index" else f"{k} {skeleton.names[k]}"
            cv2.putText(image, text, (p[0] + radius + 1, p[1] - radius), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                        label_color, 1, cv2.LINE_AA)
    return image


def draw_skeleton_template(skeleton: Skeleton, labels: str | None = None) -> np.ndarray:
    """A dark canvas with the template person in `skeleton`'s points, each labelled, for `skeleton show --draw`."""
    positions = template_positions(skeleton)
    canvas = np.full((1400, 1000, 3), 40, dtype=np.uint8)  # dark, so white face points show
    if labels is None:  # names where they fit, indices for dense skeletons (whole-body faces and hands)
        labels = "name" if skeleton.num_keypoints <= 40 else "index"
    draw_pose(canvas, positions, skeleton, radius=5, thickness=2, labels=labels,
              font_scale=0.45 if labels == "name" else 0.33, label_color=(230, 230, 230))
    title = f"{skeleton.name}: {skeleton.num_keypoints} keypoints (person's left on the image right)"
    cv2.putText(canvas, title, (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    if labels == "index":
        y = 1330
        for part, members in skeleton.part_groups:
            cv2.putText(canvas, f"{part}: {members[0]}-{members[-1]}", (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                        (255, 255, 255), 1, cv2.LINE_AA)
            y -= 28
    return canvas

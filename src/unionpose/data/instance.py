"""One annotated person: the record every reader produces and every pipeline stage consumes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Instance:
    """One person in one image, with keypoints in a given skeleton's order.

    `visible` follows COCO (0 unlabelled or not visible, 1 labelled but occluded, 2 visible); `annotated` says whether
    the source dataset labels that keypoint *at all*. The conditional loss uses `annotated`, the target uses `visible`.
    """

    image: str                      # path of the image file
    box: np.ndarray                 # (4,) float32, x, y, w, h in image pixels
    keypoints: np.ndarray           # (K, 2) float32, image pixels
    visible: np.ndarray             # (K,) int8 in {0, 1, 2}
    annotated: np.ndarray           # (K,) bool
    dataset: str = ""               # name of the source dataset (as in the config)
    image_id: int = -1
    ann_id: int = -1
    image_size: tuple[int, int] | None = None   # (height, width) as declared by the annotation file
    head_box: np.ndarray | None = None           # (4,) x1, y1, x2, y2, for PCKh (MPII)
    confidence: np.ndarray | None = None         # (K,) float32 in [0, 1]: per-point label confidence (pseudo-labels)
    track_id: int = -1
    extra: dict = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])

"""One annotated person: the record every reader produces and every pipeline stage consumes."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from unionpose.skeletons import KeypointMapping


@dataclass
class Instance:
    """One person in one image, with keypoints in a given skeleton's order.

    `visible` follows COCO (0 unlabelled or not visible, 1 labelled but occluded, 2 visible); `annotated` says whether
    the source dataset labels that keypoint *at all*. The conditional loss uses `annotated`, the target uses `visible`.

    3D sources also give `keypoints_3d`: camera-space x (right), y (down), z (away from the camera) minus the root's
    (the pelvis), in the data's unit (the synthetic people: body heights), with their own mask `annotated_z`; a 2D
    source leaves both None. The depth loss uses `annotated_z` alone (docs/3d.md).
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
    head_size: float | None = None               # PCKh's normaliser itself (0.6 x the head box diagonal), when a
                                                 # file gives that instead of a box
    confidence: np.ndarray | None = None         # (K,) float32 in [0, 1]: per-point label confidence (pseudo-labels)
    track_id: int = -1
    extra: dict = field(default_factory=dict)
    keypoints_3d: np.ndarray | None = None      # (K, 3) float32 root-relative camera-space x, y, z; 3D sources only
    annotated_z: np.ndarray | None = None       # (K,) bool: the points `keypoints_3d` labels

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])


def remap_instances(instances: Sequence[Instance], mapping: KeypointMapping) -> list[Instance]:
    """Re-express instances of `mapping.source` in `mapping.target`, matching points by canonical name.

    A target point the source lacks gets keypoint (0, 0), visible 0 and annotated False; a point the source has
    keeps its own `annotated` (False e.g. for a WholeBody hand marked not valid for that person). Used to map a
    dataset into a union skeleton, and ground truth into the skeleton a dataset is scored in.
    """
    if not instances:
        return []
    keypoints = mapping.apply(np.stack([i.keypoints for i in instances]), axis=1, fill=0.0).astype(np.float32)
    visible = mapping.apply(np.stack([i.visible for i in instances]), axis=1, fill=0, reduce="min").astype(np.int8)
    annotated = mapping.apply(np.stack([i.annotated for i in instances]), axis=1, fill=False, reduce="min")
    mapped = []
    for n, instance in enumerate(instances):
        confidence = instance.confidence
        if confidence is not None:
            confidence = mapping.apply(confidence, fill=0.0, reduce="min").astype(np.float32)
        points_3d, annotated_z = instance.keypoints_3d, instance.annotated_z
        if points_3d is not None and annotated_z is not None:
            points_3d = mapping.apply(points_3d, fill=0.0).astype(np.float32)
            annotated_z = mapping.apply(annotated_z, fill=False, reduce="min").astype(bool)
        mapped.append(replace(instance, keypoints=keypoints[n], visible=visible[n], annotated=annotated[n].astype(bool),
                              confidence=confidence, keypoints_3d=points_3d, annotated_z=annotated_z))
    return mapped

"""Synthetic people written *as if* they were two datasets: COCO-format files (any skeleton) and MPII's JSON."""
from __future__ import annotations

import numpy as np

from unionpose.skeletons import get_skeleton, keypoint_mapping
from unionpose.synthetic.scene import GENERATOR_VERSION, UNION_SKELETON, SynthParams, SynthPerson


def _rounded(value: float) -> float:
    """Two decimals: small, stable JSON."""
    return round(float(value), 2)


def _coco_annotation(person: SynthPerson, indices: np.ndarray, ann_id: int, image_id: int, with_3d: bool) -> dict:
    keypoints = []
    for k in indices:
        keypoints += [_rounded(person.keypoints[k, 0]), _rounded(person.keypoints[k, 1]), int(person.visible[k])]
    annotation = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                  "bbox": [_rounded(v) for v in person.box], "area": _rounded(person.area),
                  "num_keypoints": int(np.count_nonzero(person.visible[indices])), "keypoints": keypoints}
    if with_3d:     # the reader's `keypoints_3d` (data/readers/keypoints_3d.py): 4 decimals of a body height
        annotation["keypoints_3d"] = [round(float(v), 4) + 0.0 for v in person.keypoints_3d[indices].reshape(-1)]
    return annotation


def coco_file(skeleton_name: str, images: list[tuple[str, list[SynthPerson]]], params: SynthParams,
              description: str, with_3d: bool = False) -> dict:
    """A COCO-format file of `images` in `skeleton_name`; `with_3d` adds each person's 3D truth (`keypoints_3d`,
    pelvis-relative camera space in body heights: info.keypoints_3d_unit)."""
    skeleton = get_skeleton(skeleton_name)
    indices = keypoint_mapping(get_skeleton(UNION_SKELETON), skeleton).src_index
    records, annotations = [], []
    for image_id, (file_name, persons) in enumerate(images, start=1):
        records.append({"id": image_id, "file_name": file_name, "width": params.width, "height": params.height})
        for person in persons:
            annotations.append(_coco_annotation(person, indices, len(annotations) + 1, image_id, with_3d))
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(skeleton.names),
                "skeleton": [[a + 1, b + 1] for a, b in skeleton.links]}
    info = {"description": description, "version": str(GENERATOR_VERSION)}
    if with_3d:
        info["keypoints_3d_unit"] = "body_height"
    return {"info": info, "licenses": [],
            "images": records, "annotations": annotations, "categories": [category]}


def _mpii_record(person: SynthPerson, indices: np.ndarray, file_name: str) -> dict:
    """MPII's JSON: 0-based joints, joints_vis 1 for labelled points (occluded ones too, as MPII), missing joints
    (outside the image) at (-1, -1) with joints_vis 0. The centre and scale invert what readers do with them:
    box side = 200 * scale, centre y += 15 * scale, centre -= 1 (MPII's centre is 1-based)."""
    x1, y1, x2, y2 = (float(v) for v in person.extent)
    scale = max(x2 - x1, y2 - y1) / 200.0
    centre = [(x1 + x2) / 2 + 1.0, (y1 + y2) / 2 - 15.0 * scale + 1.0]
    joints, joints_vis = [], []
    for k in indices:
        labelled = person.visible[k] > 0
        x, y = person.keypoints[k]
        joints.append([_rounded(x), _rounded(y)] if labelled else [-1.0, -1.0])
        joints_vis.append(int(labelled))
    return {"image": file_name, "center": [_rounded(c) for c in centre], "scale": round(scale, 4), "joints": joints,
            "joints_vis": joints_vis, "head_box": [_rounded(v) for v in person.head_box]}


def mpii_file(images: list[tuple[str, list[SynthPerson]]]) -> list[dict]:
    indices = keypoint_mapping(get_skeleton(UNION_SKELETON), get_skeleton("mpii16")).src_index
    return [_mpii_record(person, indices, file_name) for file_name, persons in images for person in persons]

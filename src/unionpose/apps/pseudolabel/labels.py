"""The labels file: one expert-labelled person as a COCO-WholeBody annotation, the whole file, and reading it back."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unionpose.apps.labelling import LABELLED, NO_BOXES, NOBODY, UNREADABLE
from unionpose.apps.labelling.boxes import points_box
from unionpose.apps.pseudolabel.config import PseudoLabelConfig
from unionpose.core.errors import DataError
from unionpose.data.instance import Instance
from unionpose.data.readers import read_coco
from unionpose.data.readers.coco import WHOLEBODY_PARTS
from unionpose.skeletons import get_skeleton
from unionpose.teachers.mediapipe_experts import EXPERT_NAME, MEDIAPIPE_VERSION


def _tight_box(points: np.ndarray) -> list[float]:
    if not len(points):
        return [0.0, 0.0, 0.0, 0.0]
    low, high = points.min(axis=0), points.max(axis=0)
    return [round(float(v), 2) for v in (low[0], low[1], high[0] - low[0], high[1] - low[1])]


def wholebody_annotation(keypoints: np.ndarray, confidence: np.ndarray, box: np.ndarray | None,
                         image_size: tuple[int, int], min_confidence: float) -> dict | None:
    """One person's expert points (133, 2) in image pixels (NaN: not given) -> a COCO-WholeBody annotation without
    ids; None when no point reaches `min_confidence`. Without a `box` the person box is the visible points' extent,
    grown by `labelling.boxes.BOX_MARGIN` per side and clipped to the image."""
    given = np.isfinite(keypoints).all(axis=1)
    visible = given & (confidence >= min_confidence)
    if not visible.any():
        return None
    if box is None:
        box = points_box(keypoints[visible], image_size)
    box = [round(float(v), 2) for v in np.asarray(box, dtype=np.float64).reshape(4)]
    values = np.zeros((len(keypoints), 3))
    values[given, :2] = np.round(keypoints[given].astype(np.float64), 2)
    values[visible, 2] = 2
    annotation: dict = {"category_id": 1, "iscrowd": 0, "bbox": box, "area": round(box[2] * box[3], 2),
                        "num_keypoints": int(visible[:17].sum())}
    start = 0
    for field, flag, count in WHOLEBODY_PARTS:
        part = slice(start, start + count)
        annotation[field] = values[part].reshape(-1).tolist()
        if flag is not None:
            annotation[flag] = bool(given[part].any())
            if field != "foot_kpts":
                shown = visible[part] if visible[part].any() else given[part]
                annotation[field.replace("_kpts", "_box")] = _tight_box(keypoints[part][shown])
        start += count
    annotation["keypoint_confidence"] = [round(float(c), 4) if g else None for c, g in zip(confidence, given)]
    annotation["expert"] = f"{EXPERT_NAME} {MEDIAPIPE_VERSION}"
    return annotation


def assemble_labels(records: list[dict], config: PseudoLabelConfig, root: Path,
                    skipped_frames: list[dict] | None = None) -> dict:
    """The COCO-WholeBody file from finished records in file-name order: only labelled images are listed."""
    images, annotations = [], []
    for record in records:
        if record["status"] != LABELLED:
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": record["file_name"], "height": record["height"],
                       "width": record["width"]})
        for annotation in record["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
    statuses = [record["status"] for record in records]
    body_names = list(get_skeleton("coco17").names)
    return {
        "info": {
            "description": "UnionPose pseudo-labels (COCO-WholeBody format)",
            "expert": EXPERT_NAME,
            "mediapipe_version": MEDIAPIPE_VERSION,
            "images_root": str(root),
            "settings": config.settings(),
            "keypoint_confidence": "per annotation, 133 values in COCO-WholeBody order (body 17, feet 6, face 68, "
                                   "left hand 21, right hand 21): body and feet = pose visibility, a hand = the "
                                   "pose visibility of its wrist, the face = that of the nose; null = not given",
            "approximations": "big toe = MediaPipe foot_index (the front of the foot); small toes not given",
            "counts": {"images": len(records) + len(skipped_frames or []), "labelled": len(images),
                       "people": len(annotations), "nobody": statuses.count(NOBODY),
                       "no_boxes": statuses.count(NO_BOXES),
                       "unreadable": statuses.count(UNREADABLE) + len(skipped_frames or [])},
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": body_names}],
    }


def load_pseudolabels(path: str | Path, images: str | Path | None = None, dataset: str = "pseudolabels"
                      ) -> list[Instance]:
    """Pseudo-labels as instances in coco_wholebody133, read by the COCO-WholeBody reader: with the expert's
    `confidence`, and `annotated` False where the expert gives no such point. `images` defaults to the file's
    recorded images root."""
    instances, _ = read_coco(path, images, format="coco_wholebody", dataset=dataset)
    for instance in instances:
        if instance.confidence is None:
            raise DataError(path, f"annotation id {instance.ann_id}", "keypoint_confidence",
                            f"expected {instance.num_keypoints} values (number or null)")
    return instances

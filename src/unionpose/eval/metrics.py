"""A dataset's metric on an evaluation's predictions: COCO AP (with the file's regions and images), PCKh, box PCK."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unionpose.core.errors import DataError
from unionpose.data.instance import Instance
from unionpose.data.readers import ReadReport
from unionpose.data.sources import DatasetSource
from unionpose.eval.coco_ap import build_ground_truth, coco_keypoint_ap
from unionpose.eval.evaluation import Predictions
from unionpose.eval.pck import pck_bbox
from unionpose.eval.pckh import head_size_from_boxes, pckh
from unionpose.skeletons import Skeleton

PCK_THRESHOLD = 0.2        # box PCK: within 0.2 x the box's longer side


def score(metric: str, source: DatasetSource, instances: list[Instance], visible: np.ndarray, skeleton: Skeleton,
          predictions: Predictions, report: ReadReport) -> dict:
    """The dataset's metric over the points `visible` marks (all labelled points, or only the shared ones)."""
    truth = np.stack([instance.keypoints for instance in instances])
    if metric == "coco_ap":
        gt = coco_ground_truth(instances, visible, skeleton, report)
        return coco_keypoint_ap(gt, predictions.results(), skeleton.sigmas, names=skeleton.names,
                                gt_name=str(source.annotations), results_name=f"predictions on {source.name}")
    if metric == "pckh":
        return pckh(predictions.keypoints, truth, visible, head_sizes(source, instances))
    return pck_bbox(predictions.keypoints, truth, visible, np.stack([i.box for i in instances]), PCK_THRESHOLD,
                    names=skeleton.names)


def head_sizes(source: DatasetSource, instances: list[Instance]) -> np.ndarray:
    """Every person's PCKh normaliser (N,): from the head box (x1, y1, x2, y2) when there is one, else the head size
    a file states; an error names the first person with neither."""
    for instance in instances:
        if instance.head_box is None and instance.head_size is None:
            record = "record" if source.format == "mpii" else "annotation id"
            raise DataError(source.annotations, f"{record} {instance.ann_id} (image {Path(instance.image).name})",
                            "head_box", f"dataset {source.name!r} is scored with pckh, which needs every person's "
                                        "head box or head_size (MPII's head rectangle: head_boxes: mpii_gt_val.mat "
                                        "in the dataset entry); add it, or use metric: pck")
    sizes = [head_size_from_boxes(instance.head_box[None])[0] if instance.head_box is not None
             else instance.head_size for instance in instances]
    return np.asarray(sizes, dtype=np.float64)


def coco_ground_truth(instances: list[Instance], visible: np.ndarray, skeleton: Skeleton,
                      report: ReadReport) -> dict:
    """COCO ground truth of the kept people, as the official evaluation sees the annotation file.

    OKS scale: each person's `area` from the file (the segment area), else its box area. People the reader left out
    (crowds, people without labelled points, boxes outside the image) stay as regions pycocotools ignores, and every
    image of the file is listed: detections there are neither rewarded nor wrongly counted as false positives. All of
    it comes from what the reader parsed and checked (`report.people`, `report.image_ids`); records it skipped as
    invalid are left out.
    """
    records = {person.ann_id: person for person in report.people}
    kept = {instance.ann_id for instance in instances}
    boxes = np.stack([instance.box for instance in instances]).astype(np.float64)
    areas = [records[i.ann_id].area if i.ann_id in records and records[i.ann_id].area else float(box[2] * box[3])
             for i, box in zip(instances, boxes)]
    gt = build_ground_truth([instance.image_id for instance in instances], boxes,
                            np.stack([instance.keypoints for instance in instances]), visible, np.asarray(areas),
                            skeleton, ann_ids=[instance.ann_id for instance in instances])
    empty = [0.0] * (3 * skeleton.num_keypoints)
    gt["annotations"] += [
        {"id": person.ann_id, "image_id": person.image_id, "category_id": 1, "iscrowd": int(person.crowd),
         "bbox": list(person.box), "area": person.area or person.box[2] * person.box[3], "num_keypoints": 0,
         "keypoints": empty}
        for person in report.people if person.ann_id not in kept]
    listed = {image["id"] for image in gt["images"]}
    gt["images"] += [{"id": image_id} for image_id in report.image_ids if image_id not in listed]
    return gt

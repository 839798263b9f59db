"""Evaluation in detected person boxes (COCO AP only): which datasets get which detection file, and their poses."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from unionpose.data.readers import read_detections, read_image_table
from unionpose.data.sources import DatasetSource
from unionpose.eval.evaluation import Predictions
from unionpose.eval.results import slice_to_skeleton
from unionpose.eval.runner import PoseRunner, predict_people, rows_by_image
from unionpose.infer.oks import oks_nms
from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD, OKS_NMS_THRESHOLD, instance_score
from unionpose.skeletons import Skeleton


def detection_files(boxes: str | Mapping[str, str | Path], names: list[str]) -> dict[str, Path]:
    """`boxes` of `evaluate_model` checked: "gt" (no detection file) or {dataset name: file} for evaluated datasets."""
    if isinstance(boxes, str):
        if boxes != "gt":
            raise ValueError(f"boxes must be 'gt' or a mapping {{dataset name: detection file}}, got {boxes!r}")
        return {}
    unknown = sorted(set(boxes) - set(names))
    if unknown:
        raise ValueError(f"detection files given for datasets that are not evaluated: {', '.join(unknown)} "
                         f"(datasets: {', '.join(names)})")
    return {dataset: Path(path) for dataset, path in boxes.items()}


def check_detections(source: DatasetSource, metric: str) -> None:
    """Detections can be scored on this dataset (COCO AP, a COCO-style image table), or an error before inference."""
    if metric != "coco_ap":
        raise ValueError(f"dataset {source.name!r}: detected boxes can only be scored with coco_ap (PCKh and PCK "
                         f"compare each labelled person with its own prediction), not {metric}")
    if source.format == "mpii" or not Path(source.annotations).is_file():
        raise ValueError(f"dataset {source.name!r}: detections are paired with images through a COCO-style "
                         f"annotation file's image table; {source.annotations} is not one")


def predict_detections(runner: PoseRunner, source: DatasetSource, path: Path, skeleton: Skeleton,
                       progress: bool) -> Predictions:
    """Poses in detected boxes; person scores rescored, then OKS-NMS per image (duplicates of one person go)."""
    table = read_image_table(source.annotations, source.images, confine=not source.allow_outside_images)
    found, _ = read_detections(path, table, on_error=source.on_error)
    boxes = np.array([d.box for d in found], dtype=np.float64).reshape(-1, 4)
    images = [d.image for d in found]
    keypoints, scores = predict_people(runner, images, [d.image_size for d in found], boxes,
                                       f"{source.name} (detections)", progress, source.max_image_pixels)
    keypoints, scores = slice_to_skeleton(keypoints[..., :2], scores, runner.skeleton, skeleton)   # 3D: GT boxes
    person_scores = instance_score(np.array([d.score for d in found]), scores, KEYPOINT_SCORE_THRESHOLD)
    kept = []
    sigmas = np.asarray(skeleton.sigmas)
    for rows in rows_by_image(images).values():
        rows = np.asarray(rows)
        keep = oks_nms(keypoints[rows], scores[rows], person_scores[rows], boxes[rows, 2] * boxes[rows, 3], sigmas,
                       OKS_NMS_THRESHOLD, KEYPOINT_SCORE_THRESHOLD)
        kept += rows[keep].tolist()
    kept = np.sort(np.asarray(kept, dtype=np.int64))
    return Predictions(images=[images[i] for i in kept], image_ids=np.array([found[i].image_id for i in kept]),
                       boxes=boxes[kept], keypoints=keypoints[kept], keypoint_scores=scores[kept],
                       scores=person_scores[kept])

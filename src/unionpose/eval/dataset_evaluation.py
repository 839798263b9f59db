"""One dataset of an evaluation: read it, choose its metric and skeleton, predict its people, score them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unionpose.core.errors import DataError
from unionpose.data.instance import Instance, remap_instances
from unionpose.data.sources import DatasetSource, read_source
from unionpose.eval.detections import check_detections, predict_detections
from unionpose.eval.errors_3d import errors_3d
from unionpose.eval.evaluation import DatasetEvaluation, Predictions
from unionpose.eval.metrics import head_sizes, score
from unionpose.eval.pckh import EXCLUDED_FROM_MEAN
from unionpose.eval.results import slice_to_skeleton
from unionpose.eval.runner import PoseRunner, predict_people
from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD, OKS_NMS_THRESHOLD, instance_score
from unionpose.skeletons import Skeleton, get_skeleton, keypoint_mapping

# Points a dataset may lack but can give as the mean of others, for scoring on the model's points (paper's Halpe check).
DERIVED_POINTS = {"thorax": ("left_shoulder", "right_shoulder")}


def evaluate_dataset(runner: PoseRunner, source: DatasetSource, *, detections: str | Path | None = None,
                     on_model_points: bool = False, progress: bool = True) -> DatasetEvaluation:
    """Read one dataset, predict its people (ground-truth boxes, or `detections`) and score them (the protocol is
    in `unionpose.eval.evaluate`)."""
    instances, report = read_source(source)
    if not instances:
        raise DataError(source.annotations, None, None, f"dataset {source.name!r} has no person to evaluate "
                                                        f"({report.summary()})")
    native = source.native_skeleton()
    metric = source.metric or _default_metric(source, instances)
    notes = [f"{source.annotations}: {report.summary()}"]
    if source.metric is None:
        why = " (not every person has a head box or head size)" if metric == "pck" and source.format == "mpii" else ""
        notes.append(f"metric: {metric}, the default for format {source.format}{why}")
    skeleton = native
    if on_model_points:
        if metric != "coco_ap":
            raise ValueError(f"dataset {source.name!r}: scoring on the model's points needs metric coco_ap, "
                             f"not {metric}")
        skeleton = runner.skeleton
    elif metric == "pckh":
        head_sizes(source, instances)         # fail before inference, not after
        skeleton = get_skeleton("mpii16")      # PCKh is defined on MPII's 16 joints, in MPII's order
    if skeleton != native:
        derived = {point: parts for point, parts in DERIVED_POINTS.items()
                   if skeleton.has(point) and not native.has(point) and all(native.has(p) for p in parts)}
        instances = remap_instances(instances, keypoint_mapping(native, skeleton, derived=derived))
        notes.append(f"ground truth mapped {native.name} -> {skeleton.name} by keypoint name"
                     + "".join(f"; {p} = mean of {' and '.join(parts)}" for p, parts in derived.items()))
    if detections is not None:
        check_detections(source, metric)
        predictions = predict_detections(runner, source, Path(detections), skeleton, progress)
        notes.append(f"boxes: detections from {detections} ({len(predictions.scores)} people after OKS-NMS "
                     f"{OKS_NMS_THRESHOLD})")
    else:
        predictions = predict_ground_truth_boxes(runner, source, instances, skeleton, progress)
        notes.append("boxes: ground truth")

    predicted = keypoint_mapping(runner.skeleton, skeleton).mask
    visible = np.stack([instance.visible for instance in instances])
    labelled = (visible > 0).any(axis=0)
    missing = [skeleton.names[k] for k in np.flatnonzero(labelled & ~predicted)]
    result = score(metric, source, instances, visible, skeleton, predictions, report)
    if missing:
        result["shared"] = score(metric, source, instances, visible * predicted, skeleton, predictions, report)
    result.update({
        "dataset": source.name,
        "skeleton": skeleton.name,
        "model_skeleton": runner.skeleton.name,
        "boxes": "detections" if detections is not None else "ground truth",
        "num_instances": len(instances),
        "missing_points": missing,
        "points": _points_note(metric, skeleton, labelled, predicted, missing),
        "notes": notes,
    })
    depth_unit = getattr(getattr(runner, "info", None), "depth", None)
    if predictions.depth is not None and depth_unit is not None:
        found = errors_3d(instances, predictions.keypoints, predictions.depth, skeleton, depth_unit.unit)
        if found is not None:
            result["3d"] = found
    return DatasetEvaluation(source, skeleton, instances, predictions, predicted, result)


def _default_metric(source: DatasetSource, instances: list[Instance]) -> str:
    if source.format != "mpii":
        return "coco_ap"
    return "pckh" if all(i.head_box is not None or i.head_size is not None for i in instances) else "pck"


def _points_note(metric: str, skeleton: Skeleton, labelled: np.ndarray, predicted: np.ndarray,
                 missing: list[str]) -> str:
    """Which points the numbers cover, in words (the paper's 'shared 12 points')."""
    counted = labelled.copy()
    if metric == "pckh":
        counted &= np.array([name not in EXCLUDED_FROM_MEAN for name in skeleton.names])
    total, shared = int(counted.sum()), int((counted & predicted).sum())
    if not missing:
        return f"scored on all {total} labelled points of {skeleton.name}"
    listed = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    return (f"the model lacks {len(missing)} labelled point(s) ({listed}): the headline numbers count "
            f"them as misses over all {total} points; 'shared' is scored on the {shared} shared points")


def predict_ground_truth_boxes(runner: PoseRunner, source: DatasetSource, instances: list[Instance],
                               skeleton: Skeleton, progress: bool) -> Predictions:
    """Poses in the labelled people's own boxes, row n for person n, person score 1 x the keypoint mean."""
    boxes = np.stack([instance.box for instance in instances]).astype(np.float64)
    keypoints, scores = predict_people(runner, [i.image for i in instances], [i.image_size for i in instances],
                                       boxes, f"{source.name} (GT boxes)", progress, source.max_image_pixels)
    depth = None
    if keypoints.shape[-1] == 3:                 # a depth head's column, in the scored skeleton's order too
        depth = keypoint_mapping(runner.skeleton, skeleton).apply(keypoints[..., 2], axis=1)
    keypoints, scores = slice_to_skeleton(keypoints[..., :2], scores, runner.skeleton, skeleton)
    return Predictions(images=[i.image for i in instances], image_ids=np.array([i.image_id for i in instances]),
                       boxes=boxes, keypoints=keypoints, keypoint_scores=scores,
                       scores=instance_score(np.ones(len(instances)), scores, KEYPOINT_SCORE_THRESHOLD), depth=depth)

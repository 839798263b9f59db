"""Model-driven evaluation: run a pose model on each validation dataset and score it on that dataset's own points.

How a dataset is scored (docs/conventions.md): the model's predictions are sliced, by keypoint name, into the dataset's
skeleton (its order, its sigmas). Dataset points the model does not predict come out at (0, 0) with score 0, so the
headline numbers count them as *misses* -- the paper's convention for an MPII-only model on COCO ("evaluated on all
COCO points"). Whenever the model lacks labelled points, the result also holds `shared`: the same metric over only
the points the model has (the paper's "COCO only (shared 12 points)" on MPII). `EvaluationResult.table_row` picks
between them: 'paper' takes `shared` for PCKh / PCK and all points for COCO AP, as the paper's Table 1 does.

Metrics per dataset (`DatasetSource.metric`; default: COCO AP for COCO-family files, PCKh for MPII when every person
has a head box, else box PCK): COCO keypoint AP/AR with the skeleton's sigmas; MPII PCKh@0.5 and @0.1 from head
boxes; PCK@0.2 of the box's longer side. With `on_model_points` a dataset is scored in the *model's* skeleton on the
points its ground truth has (matched by name; thorax derived from the shoulders when the dataset lacks it), as the
paper's all-21-points check on Halpe.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from unionpose.core.errors import DataError
from unionpose.core.images import load_image
from unionpose.data.instance import Instance, remap_instances
from unionpose.data.readers import ReadReport, read_detections, read_image_table
from unionpose.data.sources import DatasetSource, read_source
from unionpose.eval.coco_ap import build_ground_truth, coco_keypoint_ap
from unionpose.eval.pck import correct_keypoints, pck_bbox
from unionpose.eval.pckh import EXCLUDED_FROM_MEAN, head_size_from_boxes, pckh
from unionpose.eval.results import results_from_arrays, slice_to_skeleton, write_results
from unionpose.eval.tables import format_keypoint_table, format_paper_table, format_result
from unionpose.eval.worst import WorstCase, draw_worst_grid
from unionpose.infer.backends import load_pose_model
from unionpose.infer.oks import oks_nms
from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD, OKS_NMS_THRESHOLD, instance_score
from unionpose.infer.topdown import TopDownRunner
from unionpose.skeletons import Skeleton, get_skeleton, keypoint_mapping

PCK_THRESHOLD = 0.2        # box PCK: within 0.2 x the box's longer side
WORST_COUNT = 12           # people drawn per dataset in the report
# Points a dataset may lack but can give as the mean of others, for scoring on the model's points (paper's Halpe check).
DERIVED_POINTS = {"thorax": ("left_shoulder", "right_shoulder")}


class PoseRunner(Protocol):
    """What evaluation needs of a model (a `TopDownRunner` is one): its skeleton, and poses for (image, boxes) pairs.

    `predict_many` yields, per (BGR image, boxes (N, 4) x, y, w, h) pair, keypoints (N, K, 2) in image pixels and
    scores (N, K), in the model's skeleton.
    """

    skeleton: Skeleton

    def predict_many(self, items: Iterable[tuple[np.ndarray, np.ndarray]]
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


@dataclass
class Predictions:
    """One dataset's predicted people in the scored skeleton, one row each (in ground-truth mode row n = person n)."""

    images: list[str]
    image_ids: np.ndarray        # (N,)
    boxes: np.ndarray            # (N, 4) x, y, w, h the crops were cut from
    keypoints: np.ndarray        # (N, K, 2) image pixels
    keypoint_scores: np.ndarray  # (N, K)
    scores: np.ndarray           # (N,) person score

    def results(self) -> list[dict]:
        """As COCO keypoint results (the `predictions_<dataset>.json` records)."""
        return results_from_arrays(self.image_ids, self.keypoints, self.keypoint_scores, self.scores)


@dataclass
class DatasetEvaluation:
    """One dataset's numbers and what they were computed from."""

    source: DatasetSource
    skeleton: Skeleton            # the skeleton the dataset was scored in
    instances: list[Instance]     # ground truth, in `skeleton`
    predictions: Predictions
    predicted: np.ndarray         # (K,) bool: the points of `skeleton` the model predicts
    result: dict                  # metric dict (see module docstring), with `shared` when the model lacks points


@dataclass
class EvaluationResult:
    """One model on several datasets."""

    model: str
    skeleton: Skeleton            # the model's
    flip_test: bool | None        # None: unknown (a caller's runner that does not say)
    datasets: dict[str, DatasetEvaluation] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def results(self) -> dict[str, dict]:
        return {name: evaluation.result for name, evaluation in self.datasets.items()}

    def table_row(self, points: str = "paper") -> dict[str, dict]:
        """Dataset -> the result shown in a table: 'all' points, 'shared' points, or the 'paper' convention
        (shared for PCKh / PCK, all points for COCO AP)."""
        if points not in ("paper", "all", "shared"):
            raise ValueError(f"points must be 'paper', 'all' or 'shared', got {points!r}")
        row = {}
        for name, result in self.results.items():
            shared = result.get("shared")
            use_shared = shared is not None and (points == "shared" or
                                                 (points == "paper" and result["metric"] != "coco_ap"))
            row[name] = shared if use_shared else result
        return row


def evaluate_model(model: str | Path | PoseRunner, datasets: Sequence[DatasetSource], *, flip_test: bool = True,
                   boxes: str | Mapping[str, str | Path] = "gt", batch_size: int = 32,
                   out_dir: str | Path | None = None, progress: bool = True, on_model_points: Collection[str] = (),
                   skeleton: str | Skeleton | None = None, device: str = "cpu", name: str | None = None,
                   worst: int = WORST_COUNT) -> EvaluationResult:
    """Top-down inference of `model` on every dataset, scored with that dataset's metric on its own points.

    `model`: a UnionPose model file (.safetensors), an ONNX model (`skeleton` names the skeleton of one without
    UnionPose metadata), or a `PoseRunner` such as a `TopDownRunner` around an in-memory model (then `flip_test`,
    `batch_size` and `device` are the runner's own). `boxes`: "gt" crops every labelled person at its ground-truth
    box; a mapping {dataset name: COCO detection results file} uses detected boxes for those datasets (COCO AP only),
    with person score = box score x mean keypoint score above 0.2 and OKS-NMS at 0.9. `on_model_points`: names of
    datasets to score in the model's skeleton (see the module docstring). With `out_dir`, writes metrics.json,
    predictions_<dataset>.json, tables.txt, report.md with per-keypoint charts, and worst_<dataset>.png (the
    `worst` lowest-scored people).
    """
    names = [source.name for source in datasets]
    if not names:
        raise ValueError("evaluate_model: no datasets to evaluate")
    if len(set(names)) != len(names):
        raise ValueError(f"evaluate_model: dataset names must be unique, got {names}")
    detections = _detection_files(boxes, names)
    unknown = sorted(set(on_model_points) - set(names))
    if unknown:
        raise ValueError(f"on_model_points names datasets that are not evaluated: {', '.join(unknown)} "
                         f"(datasets: {', '.join(names)})")
    for source in datasets:   # before any inference: an error found after an hour of COCO is an hour lost
        if source.name in detections:
            _check_detections(source, source.metric or ("coco_ap" if source.format != "mpii" else "pckh"))
    runner, model_name = _runner(model, flip_test=flip_test, batch_size=batch_size, skeleton=skeleton, device=device)
    evaluation = EvaluationResult(model=name or model_name, skeleton=runner.skeleton,
                                  flip_test=getattr(runner, "flip_test", None))
    for source in datasets:
        item = evaluate_dataset(runner, source, detections=detections.get(source.name),
                                on_model_points=source.name in on_model_points, progress=progress)
        item.result["flip_test"] = evaluation.flip_test
        evaluation.datasets[source.name] = item
    if out_dir is not None:
        write_evaluation(evaluation, out_dir, worst=worst)
    return evaluation


def _detection_files(boxes: str | Mapping[str, str | Path], names: list[str]) -> dict[str, Path]:
    if isinstance(boxes, str):
        if boxes != "gt":
            raise ValueError(f"boxes must be 'gt' or a mapping {{dataset name: detection file}}, got {boxes!r}")
        return {}
    unknown = sorted(set(boxes) - set(names))
    if unknown:
        raise ValueError(f"detection files given for datasets that are not evaluated: {', '.join(unknown)} "
                         f"(datasets: {', '.join(names)})")
    return {dataset: Path(path) for dataset, path in boxes.items()}


def _runner(model: str | Path | PoseRunner, *, flip_test: bool, batch_size: int, skeleton: str | Skeleton | None,
            device: str) -> tuple[PoseRunner, str]:
    if isinstance(model, (str, Path)):
        backend, info = load_pose_model(model, skeleton, device=device)
        return TopDownRunner(backend, info, flip_test=flip_test, batch_size=batch_size), Path(model).stem
    if not hasattr(model, "predict_many") or not isinstance(getattr(model, "skeleton", None), Skeleton):
        raise TypeError(f"evaluate_model: model must be a model file path or a runner with `skeleton` and "
                        f"`predict_many` (e.g. a TopDownRunner), got {type(model).__name__}")
    return model, type(model).__name__


# --- one dataset -----------------------------------------------------------------------------------------------------
def evaluate_dataset(runner: PoseRunner, source: DatasetSource, *, detections: str | Path | None = None,
                     on_model_points: bool = False, progress: bool = True) -> DatasetEvaluation:
    """Read one dataset, predict its people (ground-truth boxes, or `detections`) and score them (see module doc)."""
    instances, report = read_source(source)
    if not instances:
        raise DataError(source.annotations, None, None, f"dataset {source.name!r} has no person to evaluate "
                                                        f"({report.summary()})")
    native = source.native_skeleton()
    metric = source.metric or _default_metric(source, instances)
    notes = [f"{source.annotations}: {report.summary()}"]
    if source.metric is None:
        why = " (not every person has a head box)" if metric == "pck" and source.format == "mpii" else ""
        notes.append(f"metric: {metric}, the default for format {source.format}{why}")
    skeleton = native
    if on_model_points:
        if metric != "coco_ap":
            raise ValueError(f"dataset {source.name!r}: scoring on the model's points needs metric coco_ap, "
                             f"not {metric}")
        skeleton = runner.skeleton
    elif metric == "pckh":
        _head_boxes(source, instances)         # fail before inference, not after
        skeleton = get_skeleton("mpii16")      # PCKh is defined on MPII's 16 joints, in MPII's order
    if skeleton != native:
        derived = {point: parts for point, parts in DERIVED_POINTS.items()
                   if skeleton.has(point) and not native.has(point) and all(native.has(p) for p in parts)}
        instances = remap_instances(instances, keypoint_mapping(native, skeleton, derived=derived))
        notes.append(f"ground truth mapped {native.name} -> {skeleton.name} by keypoint name"
                     + "".join(f"; {p} = mean of {' and '.join(parts)}" for p, parts in derived.items()))
    if detections is not None:
        _check_detections(source, metric)
        predictions = _predict_detections(runner, source, Path(detections), skeleton, progress)
        notes.append(f"boxes: detections from {detections} ({len(predictions.scores)} people after OKS-NMS "
                     f"{OKS_NMS_THRESHOLD})")
    else:
        predictions = _predict_ground_truth_boxes(runner, source, instances, skeleton, progress)
        notes.append("boxes: ground truth")

    predicted = keypoint_mapping(runner.skeleton, skeleton).mask
    visible = np.stack([instance.visible for instance in instances])
    labelled = (visible > 0).any(axis=0)
    missing = [skeleton.names[k] for k in np.flatnonzero(labelled & ~predicted)]
    result = _score(metric, source, instances, visible, skeleton, predictions, report)
    if missing:
        result["shared"] = _score(metric, source, instances, visible * predicted, skeleton, predictions, report)
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
    return DatasetEvaluation(source, skeleton, instances, predictions, predicted, result)


def _default_metric(source: DatasetSource, instances: list[Instance]) -> str:
    if source.format != "mpii":
        return "coco_ap"
    return "pckh" if all(instance.head_box is not None for instance in instances) else "pck"


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


def _check_detections(source: DatasetSource, metric: str) -> None:
    if metric != "coco_ap":
        raise ValueError(f"dataset {source.name!r}: detected boxes can only be scored with coco_ap (PCKh and PCK "
                         f"compare each labelled person with its own prediction), not {metric}")
    if source.format == "mpii" or not Path(source.annotations).is_file():
        raise ValueError(f"dataset {source.name!r}: detections are paired with images through a COCO-style "
                         f"annotation file's image table; {source.annotations} is not one")


def _predict_ground_truth_boxes(runner: PoseRunner, source: DatasetSource, instances: list[Instance],
                                skeleton: Skeleton, progress: bool) -> Predictions:
    boxes = np.stack([instance.box for instance in instances]).astype(np.float64)
    keypoints, scores = _run(runner, [i.image for i in instances], [i.image_size for i in instances], boxes,
                             f"{source.name} (GT boxes)", progress)
    keypoints, scores = slice_to_skeleton(keypoints, scores, runner.skeleton, skeleton)
    return Predictions(images=[i.image for i in instances], image_ids=np.array([i.image_id for i in instances]),
                       boxes=boxes, keypoints=keypoints, keypoint_scores=scores,
                       scores=instance_score(np.ones(len(instances)), scores, KEYPOINT_SCORE_THRESHOLD))


def _predict_detections(runner: PoseRunner, source: DatasetSource, path: Path, skeleton: Skeleton,
                        progress: bool) -> Predictions:
    """Poses in detected boxes; person scores rescored, then OKS-NMS per image (duplicates of one person go)."""
    table = read_image_table(source.annotations, source.images)
    found, _ = read_detections(path, table, on_error=source.on_error)
    boxes = np.array([d.box for d in found], dtype=np.float64).reshape(-1, 4)
    images = [d.image for d in found]
    keypoints, scores = _run(runner, images, [d.image_size for d in found], boxes, f"{source.name} (detections)",
                             progress)
    keypoints, scores = slice_to_skeleton(keypoints, scores, runner.skeleton, skeleton)
    person_scores = instance_score(np.array([d.score for d in found]), scores, KEYPOINT_SCORE_THRESHOLD)
    kept = []
    sigmas = np.asarray(skeleton.sigmas)
    for rows in _rows_by_image(images).values():
        rows = np.asarray(rows)
        keep = oks_nms(keypoints[rows], scores[rows], person_scores[rows], boxes[rows, 2] * boxes[rows, 3], sigmas,
                       OKS_NMS_THRESHOLD, KEYPOINT_SCORE_THRESHOLD)
        kept += rows[keep].tolist()
    kept = np.sort(np.asarray(kept, dtype=np.int64))
    return Predictions(images=[images[i] for i in kept], image_ids=np.array([found[i].image_id for i in kept]),
                       boxes=boxes[kept], keypoints=keypoints[kept], keypoint_scores=scores[kept],
                       scores=person_scores[kept])


def _rows_by_image(images: Sequence[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for row, image in enumerate(images):
        groups.setdefault(image, []).append(row)
    return groups


def _run(runner: PoseRunner, images: Sequence[str], sizes: Sequence[tuple[int, int] | None], boxes: np.ndarray,
         description: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """The model on every box, each image decoded once; keypoints (N, K, 2) and scores (N, K) in row order."""
    groups = _rows_by_image(images)

    def items() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for image, rows in tqdm(groups.items(), desc=description, unit="img", disable=not progress):
            yield load_image(image, sizes[rows[0]], record=description), boxes[rows]

    k = runner.skeleton.num_keypoints
    keypoints = np.zeros((len(images), k, 2), dtype=np.float32)
    scores = np.zeros((len(images), k), dtype=np.float32)
    for rows, (points, confidences) in zip(groups.values(), runner.predict_many(items())):
        keypoints[rows], scores[rows] = points, confidences
    return keypoints, scores


# --- metrics -----------------------------------------------------------------------------------------------------
def _score(metric: str, source: DatasetSource, instances: list[Instance], visible: np.ndarray, skeleton: Skeleton,
           predictions: Predictions, report: ReadReport) -> dict:
    """The dataset's metric over the points `visible` marks (all labelled points, or only the shared ones)."""
    truth = np.stack([instance.keypoints for instance in instances])
    if metric == "coco_ap":
        gt = _coco_ground_truth(instances, visible, skeleton, report)
        return coco_keypoint_ap(gt, predictions.results(), skeleton.sigmas, names=skeleton.names,
                                gt_name=str(source.annotations), results_name=f"predictions on {source.name}")
    if metric == "pckh":
        return pckh(predictions.keypoints, truth, visible, head_size_from_boxes(_head_boxes(source, instances)))
    return pck_bbox(predictions.keypoints, truth, visible, np.stack([i.box for i in instances]), PCK_THRESHOLD,
                    names=skeleton.names)


def _head_boxes(source: DatasetSource, instances: list[Instance]) -> np.ndarray:
    for instance in instances:
        if instance.head_box is None:
            record = "record" if source.format == "mpii" else "annotation id"
            raise DataError(source.annotations, f"{record} {instance.ann_id} (image {Path(instance.image).name})",
                            "head_box", f"dataset {source.name!r} is scored with pckh, which needs every person's "
                                        "head box (MPII's head rectangle); add it, or use metric: pck")
    return np.stack([instance.head_box for instance in instances])


def _coco_ground_truth(instances: list[Instance], visible: np.ndarray, skeleton: Skeleton,
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


# --- the worst people ---------------------------------------------------------------------------------------------
def worst_cases(evaluation: DatasetEvaluation, count: int = WORST_COUNT) -> list[WorstCase]:
    """The `count` labelled people scored lowest, worst first, judged on the points the model predicts.

    COCO AP: each person's OKS against its best-matching prediction; PCKh / PCK: the share of its points within the
    threshold (ground-truth boxes, so prediction n is person n's).
    """
    result = evaluation.result.get("shared") or evaluation.result
    instances, predictions = evaluation.instances, evaluation.predictions
    visible = np.stack([instance.visible for instance in instances])
    chosen: list[tuple[int, int | None, str]] = []    # (person, prediction row, label)
    if result["metric"] == "coco_ap":
        person_of = {instance.ann_id: n for n, instance in enumerate(instances)}
        records = sorted((r for r in result["per_instance"] if r["oks"] is not None and r["ann_id"] in person_of),
                         key=lambda r: r["oks"])
        chosen = [(person_of[r["ann_id"]], r["result_index"], f"OKS {r['oks']:.2f}") for r in records[:count]]
    else:
        truth = np.stack([instance.keypoints for instance in instances])
        shared = visible * evaluation.predicted
        if result["metric"] == "pckh":
            scale = head_size_from_boxes(np.stack([instance.head_box for instance in instances]))
            threshold, name = result["thresholds"][0], "PCKh"
        else:
            scale = np.stack([instance.box for instance in instances])[:, 2:].max(axis=1)
            threshold, name = result["threshold"], "PCK"
        hits, annotated = correct_keypoints(predictions.keypoints, truth, shared, scale, threshold)
        hit_count, point_count = hits.sum(axis=1), annotated.sum(axis=1)
        rate = np.divide(hit_count, point_count, out=np.ones(len(instances)), where=point_count > 0)
        order = [n for n in np.argsort(rate, kind="stable") if point_count[n] > 0][:count]
        chosen = [(n, n, f"{name}@{threshold:g} {hit_count[n]}/{point_count[n]}") for n in order]
    cases = []
    for person, row, label in chosen:
        instance = instances[person]
        cases.append(WorstCase(
            image=instance.image, box=instance.box, gt_keypoints=instance.keypoints, gt_visible=instance.visible,
            predicted=None if row is None else predictions.keypoints[row],
            predicted_shown=None if row is None else evaluation.predicted,
            label=f"{Path(instance.image).name} #{instance.ann_id}: {label}"))
    return cases


# --- tables and files -------------------------------------------------------------------------------------------
def format_summary(evaluations: Sequence[EvaluationResult], points: str = "paper") -> str:
    """The paper's Table 1 layout (a row per model, a column per dataset, the average), and which points it used."""
    rows = {evaluation.model: evaluation.table_row(points) for evaluation in evaluations}
    lines = [format_paper_table(rows), ""]
    for evaluation in evaluations:
        for dataset, result in evaluation.results.items():
            if result["missing_points"]:
                shown = "shared points" if rows[evaluation.model][dataset] is result.get("shared") else "all points"
                lines.append(f"{evaluation.model} on {dataset}: {shown} in the table; {result['points']}")
    for evaluation in evaluations:
        boxes = ", ".join(f"{dataset} {result['boxes']}" for dataset, result in evaluation.results.items())
        lines.append(f"{evaluation.model}: flip test {_flip_words(evaluation.flip_test)}; boxes: {boxes}")
    return "\n".join(lines)


def _flip_words(flip_test: bool | None) -> str:
    return "unknown (the given runner does not say)" if flip_test is None else ("on" if flip_test else "off")


def format_details(evaluation: EvaluationResult) -> str:
    """Per dataset: what was scored, the metric's summary table and the per-keypoint table."""
    blocks = []
    for dataset, result in evaluation.results.items():
        header = f"== {evaluation.model} on {dataset} ({result['skeleton']}, {result['metric']}) =="
        parts = [header, *result["notes"], result["points"], format_result(result), "",
                 format_keypoint_table(result)]
        if "shared" in result:
            parts += ["", "shared points only:", format_result(result["shared"])]
        blocks.append("\n".join(parts))
    return "\n\n".join(blocks)


def write_evaluation(evaluation: EvaluationResult, out_dir: str | Path, worst: int = WORST_COUNT) -> Path:
    """Write predictions, metrics.json, tables.txt, the Markdown report and the worst-people drawings; returns the
    report's path (also in `evaluation.files`)."""
    from unionpose.eval.report import write_report   # matplotlib: imported only when a report is written

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[str | Path] = []
    if any(result["missing_points"] for result in evaluation.results.values()):
        sections.append("## Summary in the paper's convention\n\nThe summary above counts the points the model lacks "
                        "as misses; the paper's Table 1 scores PCKh / PCK on the shared points only:\n\n```text\n"
                        f"{format_summary([evaluation])}\n```")
    for dataset, item in evaluation.datasets.items():
        slug = _slug(dataset)
        evaluation.files[f"predictions_{dataset}"] = write_results(out_dir / f"predictions_{slug}.json",
                                                                   item.predictions.results())
        cases = worst_cases(item, worst) if worst > 0 else []
        if cases:
            png = draw_worst_grid(cases, item.skeleton, out_dir / f"worst_{slug}.png")
            evaluation.files[f"worst_{dataset}"] = png
            sections += [f"## Worst-scored people on {dataset}\n\nGreen: ground truth; red: prediction (every point "
                         f"the model predicts, whatever its score). Worst first.", png]
    notes = [f"model skeleton: {evaluation.skeleton.name} ({evaluation.skeleton.num_keypoints} points); flip test "
             f"{_flip_words(evaluation.flip_test)}"]
    notes += [f"{dataset}: {result['boxes']} boxes; {result['points']}" for dataset, result in
              evaluation.results.items()]
    report = write_report(out_dir, evaluation.results, model=evaluation.model, title=f"{evaluation.model}: evaluation",
                          notes=notes, extra_sections=sections)
    tables = out_dir / "tables.txt"
    tables.write_text(format_summary([evaluation]) + "\n\n" + format_details(evaluation) + "\n")
    evaluation.files.update({"report": report, "metrics": out_dir / "metrics.json", "tables": tables})
    return report


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"

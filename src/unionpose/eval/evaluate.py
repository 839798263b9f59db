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

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from unionpose.data.sources import DatasetSource
from unionpose.eval.dataset_evaluation import evaluate_dataset
from unionpose.eval.detections import check_detections, detection_files
from unionpose.eval.evaluation import EvaluationResult
from unionpose.eval.runner import PoseRunner, as_runner
from unionpose.eval.summary import write_evaluation
from unionpose.eval.worst import WORST_COUNT
from unionpose.skeletons import Skeleton


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
    detections = detection_files(boxes, names)
    unknown = sorted(set(on_model_points) - set(names))
    if unknown:
        raise ValueError(f"on_model_points names datasets that are not evaluated: {', '.join(unknown)} "
                         f"(datasets: {', '.join(names)})")
    for source in datasets:   # before any inference: an error found after an hour of COCO is an hour lost
        if source.name in detections:
            check_detections(source, source.metric or ("coco_ap" if source.format != "mpii" else "pckh"))
    runner, model_name = as_runner(model, flip_test=flip_test, batch_size=batch_size, skeleton=skeleton, device=device)
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

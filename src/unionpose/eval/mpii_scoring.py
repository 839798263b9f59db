"""MPII PCKh of a results file, as `unionpose score` computes it: the official evaluation's files or ours.

Ground truth: the official `mpii_gt_val.mat` (joints, labels and head boxes of every person; `data.readers.mpii_mat`),
or an MPII JSON list as the pose toolboxes ship it, whose head sizes come from each record's `head_box` /
`head_size` or from the official file (`head_boxes`). Results: the official `pred.mat` (`preds`, N x 16 x 2, 1-based),
or a results list in our JSON (what `unionpose val --out` writes as `predictions_<dataset>.json`: one COCO-style record
per person, in the ground truth's person order, 0-based pixels; 16 MPII points, or another skeleton's mapped onto
them by name). MPII pairs prediction and truth by position, not by image, so the counts must agree.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unionpose.core.errors import DataError
from unionpose.data.readers.mpii import read_mpii
from unionpose.data.readers.mpii_mat import read_ground_truth_mat, read_predictions_mat
from unionpose.eval.pckh import head_size_from_boxes, pckh
from unionpose.eval.results import ResultsError, map_results, read_results, skeleton_for_count
from unionpose.skeletons import get_skeleton


def is_mpii_ground_truth(path: str | Path) -> bool:
    """An MPII ground truth (a .mat, or a JSON list of people) rather than a COCO file (a JSON object)."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return True
    try:
        with path.open("rb") as file:
            head = file.read(4096).lstrip()
    except OSError:
        return False
    return head.startswith(b"[")


def score_mpii_results(gt_path: str | Path, results_path: str | Path, head_boxes: str | Path | None = None,
                       results_skeleton: str | None = None) -> dict:
    """MPII PCKh@0.5 and @0.1 (the published table) of `results_path` against `gt_path` (see the module doc)."""
    gt_path, results_path = Path(gt_path), Path(results_path)
    if gt_path.suffix.lower() == ".mat":
        if head_boxes is not None:
            raise ValueError(f"--head-boxes: {gt_path} is the official file and holds the head boxes itself")
        official = read_ground_truth_mat(gt_path)
        truth, labelled, head_size = official.joints, official.labelled, head_size_from_boxes(official.head_boxes)
    else:
        instances, report = read_mpii(gt_path, gt_path.parent, head_boxes=head_boxes, confine=False)
        if not instances:
            raise DataError(gt_path, None, None, f"no person to score ({report.summary()})")
        without = next((i for i in instances if i.head_box is None and i.head_size is None), None)
        if without is not None:
            raise DataError(gt_path, f"record {without.ann_id}", "head_box", "PCKh needs every person's head box "
                                                                             "or head_size (or --head-boxes "
                                                                             "mpii_gt_val.mat)")
        truth = np.stack([i.keypoints for i in instances]).astype(np.float64)
        labelled = np.stack([i.visible for i in instances]) > 0
        head_size = np.array([head_size_from_boxes(i.head_box[None])[0] if i.head_box is not None else i.head_size
                              for i in instances])
    predicted = _predictions(results_path, results_skeleton)
    if len(predicted) != len(truth):
        raise ResultsError(f"{results_path}: {len(predicted)} predicted people, but {gt_path} has {len(truth)}; MPII "
                           "pairs them by position, one prediction per ground-truth person in its order")
    result = pckh(predicted, truth, labelled.astype(np.int8), head_size)
    return {**result, "skeleton": "mpii16", "ground_truth": str(gt_path), "results_file": str(results_path)}


def _predictions(path: Path, results_skeleton: str | None) -> np.ndarray:
    """(N, 16, 2) 0-based predictions in mpii16 order from a pred.mat or a results list."""
    if path.suffix.lower() == ".mat":
        return read_predictions_mat(path)
    results = read_results(path)
    mpii = get_skeleton("mpii16")
    if results and len(results[0]["keypoints"]) // 3 != mpii.num_keypoints:
        count = len(results[0]["keypoints"]) // 3
        source = get_skeleton(results_skeleton) if results_skeleton else skeleton_for_count(count, str(path))
        results = map_results(results, source, mpii, where=str(path))
    if not results:
        return np.zeros((0, mpii.num_keypoints, 2))
    return np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), -1, 3)[..., :2]

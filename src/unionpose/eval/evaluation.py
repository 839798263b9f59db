"""What an evaluation returns: a model's predictions and numbers on each dataset, and what they came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unionpose.data.instance import Instance
from unionpose.data.sources import DatasetSource
from unionpose.eval.results import results_from_arrays
from unionpose.skeletons import Skeleton


@dataclass
class Predictions:
    """One dataset's predicted people in the scored skeleton, one row each (in ground-truth mode row n = person n)."""

    images: list[str]
    image_ids: np.ndarray        # (N,)
    boxes: np.ndarray            # (N, 4) x, y, w, h the crops were cut from
    keypoints: np.ndarray        # (N, K, 2) image pixels
    keypoint_scores: np.ndarray  # (N, K)
    scores: np.ndarray           # (N,) person score
    depth: np.ndarray | None = None  # (N, K) root-relative depth, from a model with a depth head

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

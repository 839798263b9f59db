"""Drawings of the worst-scored people of an evaluation: crops with ground truth and prediction, tiled in one PNG."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from unionpose.core.atomic import write_image_atomic
from unionpose.core.draw import draw_pose
from unionpose.core.images import MAX_PIXELS, load_image
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.eval.evaluation import DatasetEvaluation
from unionpose.eval.pck import correct_keypoints
from unionpose.eval.metrics import head_sizes
from unionpose.skeletons import Skeleton

GT_COLOR = (60, 200, 60)        # BGR green
PREDICTION_COLOR = (40, 40, 230)  # BGR red
TILE_SIZE = (192, 256)          # w, h of one crop
CROP_PADDING = 1.4              # a little more context than the model's 1.25, so wild predictions stay in view
LABEL_HEIGHT = 18
WORST_COUNT = 12                # people drawn per dataset in the report


@dataclass
class WorstCase:
    """One person to draw: where it is, its labelled points, the model's points, and why it is in the list."""

    image: str
    box: np.ndarray                       # (4,) x, y, w, h in image pixels
    gt_keypoints: np.ndarray              # (K, 2)
    gt_visible: np.ndarray                # (K,) > 0 where labelled
    predicted: np.ndarray | None          # (K, 2), None when no prediction matched this person
    predicted_shown: np.ndarray | None    # (K,) bool: the points the model predicts at all
    label: str
    max_pixels: int = MAX_PIXELS          # the dataset's image limit, for reading the image again


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
            scale = head_sizes(evaluation.source, instances)
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
            label=f"{Path(instance.image).name} #{instance.ann_id}: {label}",
            max_pixels=evaluation.source.max_image_pixels))
    return cases


def draw_case(case: WorstCase, skeleton: Skeleton, tile_size: tuple[int, int] = TILE_SIZE) -> np.ndarray:
    """A crop around the person (BGR), ground truth in green and the prediction in red, the label at the bottom."""
    image = load_image(case.image, max_pixels=case.max_pixels)
    width, height = tile_size
    crop_height = height - LABEL_HEIGHT
    center, scale = box_to_center_scale(np.asarray(case.box, dtype=np.float64), width / crop_height, CROP_PADDING)
    to_crop = get_warp_matrix(center, scale, 0.0, (width, crop_height))
    crop = warp_image(image, to_crop, (width, crop_height))
    _draw_in_color(crop, transform_points(case.gt_keypoints, to_crop), skeleton, np.asarray(case.gt_visible) > 0,
                   GT_COLOR)
    if case.predicted is not None:
        _draw_in_color(crop, transform_points(case.predicted, to_crop), skeleton, case.predicted_shown,
                       PREDICTION_COLOR)
    strip = np.full((LABEL_HEIGHT, width, 3), 32, dtype=np.uint8)
    cv2.putText(strip, case.label[:40], (3, LABEL_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (235, 235, 235), 1,
                cv2.LINE_AA)
    return np.concatenate([crop, strip])


def _draw_in_color(canvas: np.ndarray, keypoints: np.ndarray, skeleton: Skeleton, shown: np.ndarray,
                   color: tuple[int, int, int]) -> None:
    """`draw_pose` in one colour: draw on a black layer, then paint its strokes onto the canvas."""
    layer = np.zeros_like(canvas)
    draw_pose(layer, keypoints, skeleton, scores=np.asarray(shown, dtype=np.float32), threshold=0.5, radius=3,
              thickness=2)
    canvas[layer.any(axis=2)] = color


def draw_worst_grid(cases: Sequence[WorstCase], skeleton: Skeleton, path: str | Path, columns: int = 4,
                    tile_size: tuple[int, int] = TILE_SIZE) -> Path:
    """Tile the drawn cases, worst first, row by row, into one PNG at `path`."""
    if not cases:
        raise ValueError("draw_worst_grid: no cases to draw")
    tiles = [draw_case(case, skeleton, tile_size) for case in cases]
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    tile_height, tile_width = tiles[0].shape[:2]
    grid = np.full((rows * tile_height, columns * tile_width, 3), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        row, column = divmod(i, columns)
        grid[row * tile_height:(row + 1) * tile_height, column * tile_width:(column + 1) * tile_width] = tile
    path = write_image_atomic(path, grid)
    return path

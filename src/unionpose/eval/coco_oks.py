"""pycocotools' OKS of each image's results against its ground-truth people, for all images at once, bit for bit.

`COCOeval.computeOks` works one image at a time with a Python loop over people (faster-coco-eval keeps that loop);
on large sets it is most of the evaluation's time. Here the same arithmetic runs on the arrays of every (result,
person) pair of every image together, with the same operations in the same order, so each value is exactly
pycocotools': the elementwise steps are the same IEEE operations; the exponential runs on contiguous arrays as
pycocotools' does; and a pair's mean is the sum of one row of a contiguous array divided by the row's length, which
numpy sums exactly as it sums that row alone (checked on numpy 1.26 and 2.x for rows up to 139 values; the tests
compare the values with pycocotools' exactly).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import chain
from typing import Any, Mapping, Sequence

import numpy as np

GroupKey = tuple[int, int]      # (image id, category id)


@dataclass(frozen=True)
class OksGroup:
    """The people and results of one image and category, and their OKS in pycocotools' layout."""

    truth_rows: list[int]       # indices into the ground-truth annotations, in their order
    result_rows: list[int]      # indices into the results: by score, highest first (stable), at most maxDets
    oks: np.ndarray             # (len(result_rows), len(truth_rows)) float64; no rows without results


def group_rows(records: Sequence[Mapping[str, Any]]) -> dict[GroupKey, list[int]]:
    """Record indices per (image id, category id), in record order."""
    groups: dict[GroupKey, list[int]] = defaultdict(list)
    for row, record in enumerate(records):
        groups[record["image_id"], record["category_id"]].append(row)
    return groups


def keypoint_oks_groups(truth: Sequence[Mapping[str, Any]], truth_points: np.ndarray,
                        results: Sequence[Mapping[str, Any]], result_points: np.ndarray, sigmas: np.ndarray,
                        max_dets: int) -> dict[GroupKey, OksGroup]:
    """For every image and category holding people: their OKS matrix as `COCOeval.computeOks` gives it, (0, people)
    where the group has no results.

    `truth` are COCO annotations (image_id, category_id, bbox, area) with their keypoints as `truth_points` (G, K, 3);
    `results` are results (image_id, category_id, score) with theirs as `result_points` (D, K, 3). Rows of a matrix
    are the group's results in order of score (a stable sort, so ties keep the results' order), cut at `max_dets`;
    columns are all the people of the group, crowds and people without labelled points included (for those, the
    distance to their box, doubled around it, counts on every point). The scale is each person's `area`.
    """
    result_groups = group_rows(results)
    scores = [record["score"] for record in results]
    layout: list[tuple[GroupKey, list[int], list[int]]] = []
    for key, truth_rows in group_rows(truth).items():
        result_rows = sorted(result_groups.get(key, ()), key=lambda row: -scores[row])[:max_dets]
        layout.append((key, truth_rows, result_rows))
    pair_truth, pair_result = _pairs([(t, r) for _, t, r in layout if r])
    oks = _pair_oks(truth, truth_points, result_points, pair_truth, pair_result, np.asarray(sigmas, np.float64))
    groups, start = {}, 0
    for key, truth_rows, result_rows in layout:
        end = start + len(truth_rows) * len(result_rows)
        groups[key] = OksGroup(truth_rows, result_rows, oks[start:end].reshape(len(result_rows), len(truth_rows)))
        start = end
    return groups


def _pairs(groups: list[tuple[list[int], list[int]]]) -> tuple[np.ndarray, np.ndarray]:
    """Every (truth row, result row) pair of every group, group after group, result-major within a group: the
    flattened layout of the groups' (results x people) matrices."""
    truth_sizes = np.array([len(t) for t, _ in groups], dtype=np.int64)
    result_sizes = np.array([len(r) for _, r in groups], dtype=np.int64)
    truth_rows = np.fromiter(chain.from_iterable(t for t, _ in groups), dtype=np.int64, count=int(truth_sizes.sum()))
    result_rows = np.fromiter(chain.from_iterable(r for _, r in groups), dtype=np.int64, count=int(result_sizes.sum()))
    counts = truth_sizes * result_sizes
    group = np.repeat(np.arange(len(groups)), counts)
    local = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    width = truth_sizes[group]
    pair_truth = truth_rows[(np.cumsum(truth_sizes) - truth_sizes)[group] + local % width]
    pair_result = result_rows[(np.cumsum(result_sizes) - result_sizes)[group] + local // width]
    return pair_truth, pair_result


def _pair_oks(truth: Sequence[Mapping[str, Any]], truth_points: np.ndarray, result_points: np.ndarray,
              pair_truth: np.ndarray, pair_result: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """OKS of each (truth row, result row) pair, step by step as `COCOeval.computeOks`."""
    k = len(sigmas)
    boxes = np.asarray([record["bbox"] for record in truth], dtype=np.float64).reshape(-1, 4)
    scales = np.asarray([record["area"] for record in truth], dtype=np.float64) + np.spacing(1)
    labelled = truth_points[..., 2] > 0
    counts = labelled.sum(axis=1)                                       # pycocotools' k1, per person

    xd, yd = result_points[pair_result, :, 0], result_points[pair_result, :, 1]     # (P, K)
    dx = xd - truth_points[pair_truth, :, 0]
    dy = yd - truth_points[pair_truth, :, 1]
    without = np.flatnonzero(counts[pair_truth] == 0)   # no labelled point: distance outside the doubled box
    if without.size:
        box = boxes[pair_truth[without]]
        x0, x1 = box[:, 0] - box[:, 2], box[:, 0] + box[:, 2] * 2
        y0, y1 = box[:, 1] - box[:, 3], box[:, 1] + box[:, 3] * 2
        x, y = xd[without], yd[without]
        dx[without] = np.maximum(0.0, x0[:, None] - x) + np.maximum(0.0, x - x1[:, None])
        dy[without] = np.maximum(0.0, y0[:, None] - y) + np.maximum(0.0, y - y1[:, None])
    variances = (sigmas * 2) ** 2
    similarity = np.exp(-((dx ** 2 + dy ** 2) / variances / scales[pair_truth, None] / 2))

    # A person with labelled points averages over those points only, one without over all K.
    lengths = np.where(counts > 0, counts, k)[pair_truth]
    oks = np.empty(len(pair_truth))
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        values = similarity[rows]
        if length < k:
            values = values[labelled[pair_truth[rows]]].reshape(len(rows), length)   # each row's points, contiguous
        oks[rows] = values.sum(axis=1) / length
    return oks

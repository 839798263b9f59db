"""Console tables of evaluation results (laid out like the paper's Table 1, per dataset, per keypoint) and JSON dumps.

Result dicts hold fractions; tables print percentages with two decimals, and '-' where a number is undefined
(None, or pycocotools' -1 for an area range without people).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from unionpose.core.atomic import write_text_atomic
from unionpose.eval.coco_ap import STAT_NAMES


def headline(result: Mapping[str, Any]) -> tuple[str, float | None]:
    """The one number a dataset is known by: COCO AP, MPII PCKh@0.5 (first threshold), PCK@t."""
    metric = result.get("metric")
    if metric == "coco_ap":
        return "AP", result["AP"]
    if metric == "pckh":
        label = f"PCKh@{result['thresholds'][0]:g}"
        return label, result[label]
    if metric == "pck":
        label = f"PCK@{result['threshold']:g}"
        return label, result[label]
    raise ValueError(f"not an evaluation result (its 'metric' is {metric!r}; expected coco_ap, pckh or pck)")


def percent(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value < 0:
        return "-"
    return f"{100.0 * value:.2f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def format_paper_table(rows: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One row per model, one column per dataset's headline metric, then their average (the paper's Table 1).

    `rows` maps model -> dataset -> result dict, e.g. {"unified-s": {"MPII": pckh(...), "COCO": coco_keypoint_ap(...)}}.
    A dataset a model was not scored on shows '-' and is left out of that model's average.
    """
    columns: dict[str, str] = {}  # dataset -> column title, in order of first appearance
    for results in rows.values():
        for dataset, result in results.items():
            columns.setdefault(dataset, f"{dataset} {headline(result)[0]}")
    body = []
    for model, results in rows.items():
        values = [headline(results[d])[1] if d in results else None for d in columns]
        defined = [v for v in values if v is not None and v >= 0]
        average = sum(defined) / len(defined) if defined else None
        body.append([model] + [percent(v) for v in values] + [percent(average)])
    return format_table(["model", *columns.values(), "average"], body)


def format_coco_table(result: Mapping[str, Any]) -> str:
    """The ten COCO keypoint numbers in one row, with a note when there were no predictions."""
    table = format_table(STAT_NAMES, [[percent(result[name]) for name in STAT_NAMES]])
    notes = [f"{result['num_people']} people in {result['num_images']} images, {result['num_results']} results; "
             f"OKS scale = {result['object_scale']}"]
    if result.get("empty"):
        notes.append("NO PREDICTIONS: every number is 0 by definition")
    return table + "\n" + "\n".join(notes)


def format_pckh_table(result: Mapping[str, Any]) -> str:
    """The published MPII columns: Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean, Mean@0.1."""
    columns = result["columns"]
    return format_table(list(columns), [[percent(v) for v in columns.values()]]) + \
        f"\n{result['num_people']} people; Mean leaves out pelvis and thorax"


def format_pck_table(result: Mapping[str, Any]) -> str:
    label, value = headline(result)
    return format_table([label, "people"], [[percent(value), result["num_people"]]]) + \
        f"\nnormalised by the {result['normaliser']}"


def format_result(result: Mapping[str, Any]) -> str:
    """The summary table that fits the result's metric."""
    metric = result.get("metric")
    if metric == "coco_ap":
        return format_coco_table(result)
    if metric == "pckh":
        return format_pckh_table(result)
    if metric == "pck":
        return format_pck_table(result)
    raise ValueError(f"not an evaluation result (its 'metric' is {metric!r})")


def format_3d_table(errors: Mapping[str, Any]) -> str:
    """MPJPE, PA-MPJPE and the depth error, all points and per part (`eval.errors_3d`), in the data's unit."""
    rows = [[part, f"{e['mpjpe']:.4f}", f"{e['pa_mpjpe']:.4f}", f"{e['depth']:.4f}", e["points"]]
            for part, e in [("all", errors), *errors["parts"].items()]]
    return (format_table(["part", "MPJPE", "PA-MPJPE", "depth", "points"], rows)
            + f"\n3D errors of {errors['people']} people in {errors['unit']} (root-aligned; Procrustes-aligned)")


def format_keypoint_table(result: Mapping[str, Any]) -> str:
    """One row per keypoint: its name, how many people label it, and the metric's per-keypoint numbers.

    PCKh / PCK: the keypoint's own rate. COCO AP has no per-keypoint AP, so its table shows the mean keypoint
    similarity ('mean KS', the OKS term of that point against each person's best prediction, 1 = exact).
    """
    columns = result["per_keypoint"]
    names = list(columns)
    count_column = names[1]
    body = []
    for k, name in enumerate(columns["name"]):
        body.append([name, columns[count_column][k]] + [percent(columns[c][k]) for c in names[2:]])
    return format_table(["keypoint", count_column, *names[2:]], body)


def slug(name: str) -> str:
    """A dataset name as part of a file name: each run of characters other than letters, digits, _ . - becomes _."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "dataset"


def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy numbers and arrays to Python, NaN and infinities to None, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(results: Any) -> str:
    """Every number of a result (or of a dict of results) as strict JSON."""
    return json.dumps(plain(results), indent=1, allow_nan=False)


def write_json(path: str | Path, results: Any) -> Path:
    return write_text_atomic(path, to_json(results) + "\n")

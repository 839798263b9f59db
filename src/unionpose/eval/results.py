"""COCO keypoint results: records built from prediction arrays, results files read and written, and their validation."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from unionpose.core.atomic import write_text_atomic
from unionpose.core.values import are_plain_numbers, is_int, is_number
from unionpose.skeletons import Skeleton, get_skeleton, keypoint_mapping

# The fields of one COCO keypoint result. Anything else in a record (a 'bbox', WholeBody part arrays) is dropped:
# pycocotools' loadRes treats records carrying a 'bbox' as *box* results and then filters unmatched detections by the
# box's area instead of the keypoints' extent, which is not how keypoint results are scored.
RESULT_FIELDS = ("image_id", "category_id", "keypoints", "score")

# The built-in skeleton assumed for a file when only its keypoint count is known. 14 is left out on purpose:
# CrowdPose and AI Challenger both have 14 points in different orders, so the user must say which.
SKELETON_BY_COUNT = {
    16: "mpii16",
    17: "coco17",
    21: "coco_mpii21",
    26: "halpe26",
    33: "mediapipe_pose33",
    68: "face68",
    133: "coco_wholebody133",
}


class ResultsError(ValueError):
    """A results list or file is malformed; the message names the file, the result index and the field."""


def skeleton_for_count(num_keypoints: int, source: str) -> Skeleton:
    """The built-in skeleton for a file whose people have `num_keypoints` points (17 -> coco17, 133 -> whole-body)."""
    if num_keypoints not in SKELETON_BY_COUNT:
        known = ", ".join(f"{k} -> {n}" for k, n in sorted(SKELETON_BY_COUNT.items()))
        raise ResultsError(f"{source}: {num_keypoints} keypoints per person does not identify a skeleton "
                           f"(known counts: {known}); name it with --skeleton")
    return get_skeleton(SKELETON_BY_COUNT[num_keypoints])


def slice_to_skeleton(keypoints: np.ndarray, scores: np.ndarray, union: Skeleton, target: Skeleton,
                      derived: Mapping[str, Sequence[str]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Take a dataset's points, in its order, out of a union model's predictions (matched by canonical name).

    keypoints (N, Ku, 2), scores (N, Ku) -> (N, Kt, 2), (N, Kt). Target points the union lacks (a COCO-only model on
    MPII) come out at (0, 0) with score 0; to score only the shared points, zero those joints' `visible` with
    `keypoint_mapping(union, target).mask`.
    """
    keypoints = np.asarray(keypoints)
    scores = np.asarray(scores)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2 or scores.shape != keypoints.shape[:2]:
        raise ValueError(f"slice_to_skeleton: keypoints {keypoints.shape} and scores {scores.shape} should be "
                         f"(N, K, 2) and (N, K)")
    mapping = keypoint_mapping(union, target, derived=dict(derived) if derived else None)
    return mapping.apply(keypoints, axis=1), mapping.apply(scores, axis=1, reduce="min")


def results_from_arrays(image_ids: Sequence[int], keypoints: np.ndarray, keypoint_scores: np.ndarray,
                        scores: np.ndarray, category_id: int = 1) -> list[dict]:
    """COCO result records: keypoints (N, K, 2), keypoint_scores (N, K) and person scores (N,) for N people."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(image_ids)
    if keypoints.shape[:1] != (n,) or keypoints.ndim != 3 or keypoints.shape[-1] != 2 \
            or keypoint_scores.shape != keypoints.shape[:2] or scores.shape != (n,):
        raise ValueError(f"results_from_arrays: {n} image ids, keypoints {keypoints.shape}, keypoint scores "
                         f"{keypoint_scores.shape}, scores {scores.shape}; expected (N,), (N, K, 2), (N, K), (N,)")
    flat = np.concatenate([keypoints, keypoint_scores[..., None]], axis=-1).reshape(n, -1)
    return [{"image_id": int(image_id), "category_id": int(category_id), "keypoints": row.tolist(), "score": float(s)}
            for image_id, row, s in zip(image_ids, flat, scores)]


def ground_truth_as_results(gt: Mapping[str, Any]) -> list[dict]:
    """The labelled people of a COCO ground truth written as results (score 1): a perfect prediction, AP 1.0."""
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "keypoints": list(a["keypoints"]),
             "score": 1.0}
            for a in gt["annotations"] if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]


def write_results(path: str | Path, results: Iterable[Mapping[str, Any]]) -> Path:
    """Write a COCO results file (only the four result fields, compact JSON)."""
    records = [{key: r[key] for key in RESULT_FIELDS} for r in results]
    return write_text_atomic(path, json.dumps(records, separators=(",", ":")))


def read_results(path: str | Path) -> list[dict]:
    """Read a COCO results file and check its structure (fields, types, finite numbers, one keypoint count).

    An empty list is valid; scoring it gives a labelled zero result. The skeleton and image ids are checked later
    by `validate_results`, once the ground truth is known.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, list):
        raise ResultsError(f"{path}: a COCO results file is a list of records, got a {type(data).__name__}")
    return check_records(data, source=str(path))


def check_records(results: Sequence[Any], source: str = "<results>") -> list[dict]:
    """Structural check of result records; returns clean copies holding only the four result fields."""
    rows = []
    for i, record in enumerate(results):
        where = f"{source}: result {i}"
        if not isinstance(record, Mapping):
            raise ResultsError(f"{where}: a result must be an object, got {type(record).__name__}")
        for key in RESULT_FIELDS:
            if key not in record:
                raise ResultsError(f"{where}: missing field '{key}'")
        for key in ("image_id", "category_id"):
            if not is_int(record[key]):
                raise ResultsError(f"{where}: field '{key}' must be an integer, got {record[key]!r}")
        score = record["score"]
        if not is_number(score) or not math.isfinite(score):
            raise ResultsError(f"{where}: field 'score' must be a finite number, got {score!r}")
        values = record["keypoints"]
        if not isinstance(values, list) or len(values) == 0 or len(values) % 3:
            size = len(values) if isinstance(values, list) else type(values).__name__
            raise ResultsError(f"{where}: field 'keypoints' must be a flat list [x, y, score] * K, got {size} values")
        if rows and len(values) != len(rows[0]):
            raise ResultsError(f"{where}: field 'keypoints' has {len(values) // 3} keypoints, earlier results "
                               f"have {len(rows[0]) // 3}")
        if not are_plain_numbers(values):  # fast path for what JSON gives; else look closer
            for j, value in enumerate(values):
                if not is_number(value):
                    raise ResultsError(f"{where}: {_describe_value(j)} must be a number, got {value!r}")
        rows.append(values)
    if not rows:
        return []
    table = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(table)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ResultsError(f"{source}: result {i}: {_describe_value(j)} must be a finite number, got {table[i, j]}")
    return [{"image_id": int(record["image_id"]), "category_id": int(record["category_id"]), "keypoints": row,
             "score": float(record["score"])}
            for record, row in zip(results, table.tolist())]


def _describe_value(j: int) -> str:
    return f"field 'keypoints' value {j} (keypoint {j // 3}, {('x', 'y', 'score')[j % 3]})"


def results_keypoint_count(results: Sequence[Mapping[str, Any]]) -> int | None:
    """Keypoints per result (None for an empty list); records must already have passed `check_records`."""
    return len(results[0]["keypoints"]) // 3 if results else None


def validate_results(results: Sequence[Any], num_keypoints: int, image_ids: Iterable[int],
                     category_ids: Iterable[int] | None = None, source: str = "<results>") -> list[dict]:
    """Check results against the ground truth: keypoint count of the skeleton, known image and category ids."""
    clean = check_records(results, source)
    known_images = set(image_ids)
    known_categories = set(category_ids) if category_ids is not None else None
    for i, record in enumerate(clean):
        where = f"{source}: result {i}"
        k = len(record["keypoints"]) // 3
        if k != num_keypoints:
            raise ResultsError(f"{where}: field 'keypoints' has {k} keypoints ({3 * k} values); the skeleton has "
                               f"{num_keypoints} ({3 * num_keypoints} values)")
        if record["image_id"] not in known_images:
            raise ResultsError(f"{where}: field 'image_id' = {record['image_id']} is not an image of the ground truth")
        if known_categories is not None and record["category_id"] not in known_categories:
            raise ResultsError(f"{where}: field 'category_id' = {record['category_id']} is not a category of the "
                               f"ground truth ({sorted(known_categories)})")
    return clean


def map_results(results: Sequence[Mapping[str, Any]], source: Skeleton, target: Skeleton,
                where: str = "<results>") -> list[dict]:
    """Reorder each result's keypoints from `source` to `target` by name (e.g. whole-body 133 -> body coco17)."""
    mapping = keypoint_mapping(source, target)
    if not mapping.mask.all():
        raise ResultsError(f"{where}: results in skeleton {source.name!r} lack points of {target.name!r}: "
                           f"{', '.join(mapping.missing)}")
    mapped = []
    for i, record in enumerate(results):
        values = np.asarray(record["keypoints"], dtype=np.float64)
        if values.size != 3 * source.num_keypoints:
            raise ResultsError(f"{where}: result {i}: field 'keypoints' has {values.size // 3} keypoints; skeleton "
                               f"{source.name!r} has {source.num_keypoints}")
        moved = mapping.apply(values.reshape(-1, 3), axis=0)
        mapped.append({**record, "keypoints": moved.reshape(-1).tolist()})
    return mapped


"""Person boxes from a COCO detection-results file: a list of {image_id, bbox, score, category_id}."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError
from unionpose.core.values import is_finite_number, is_int
from unionpose.data.readers.coco import ImageRecord, usable_box
from unionpose.data.readers.jsonfile import load_json
from unionpose.data.readers.report import (
    INVALID, LOW_SCORE, OTHER_CATEGORY, ReadReport,
)

PERSON = 1


@dataclass
class Detection:
    """One detected box; `image` and `image_size` are known when an image table was given."""

    image_id: int
    box: np.ndarray               # (4,) float32, x, y, w, h
    score: float
    category_id: int
    image: str = ""
    image_size: tuple[int, int] | None = None   # (height, width)


def read_detections(path: str | Path, images: dict[int, ImageRecord] | None = None, score_threshold: float = 0.0,
                    category_ids: tuple[int, ...] = (PERSON,), on_error: str = "raise"
                    ) -> tuple[list[Detection], ReadReport]:
    """Read detections, keeping those of `category_ids` scoring at least `score_threshold`.

    With `images` (from `read_image_table` of the matching ground-truth file) each box gets its image path and is
    clipped to the image; an image id missing from the table is an error. Records are named by list index.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, list):
        raise DataError(path, None, None, "expected a COCO results list of {image_id, bbox, score, category_id}, "
                                          f"got a JSON {type(data).__name__}")
    report = ReadReport(str(path), read=len(data))
    detections = []
    for i, entry in enumerate(data):
        try:
            detection = _parse(path, i, entry, images)
        except DataError as error:
            if on_error == "raise":
                raise
            report.skip(INVALID, str(error))
            continue
        if detection.category_id not in category_ids:
            report.skip(OTHER_CATEGORY)
            continue
        if detection.score < score_threshold:
            report.skip(LOW_SCORE)
            continue
        if detection.image_size is not None:
            box, reason = usable_box(detection.box, *detection.image_size)
            if reason:
                report.skip(reason)
                continue
            detection.box = box
        detections.append(detection)
    return detections, report


def _parse(path: Path, i: int, entry: Any, images: dict[int, ImageRecord] | None) -> Detection:
    record = f"detections[{i}]"
    if not isinstance(entry, dict):
        raise DataError(path, record, None, f"expected an object, got {type(entry).__name__}")
    image_id, category_id, score = entry.get("image_id"), entry.get("category_id"), entry.get("score")
    record = f"detections[{i}] (image id {image_id})"
    for key, value in (("image_id", image_id), ("category_id", category_id)):
        if not is_int(value):
            raise DataError(path, record, key, f"expected an integer, got {value!r}")
    if not is_finite_number(score):
        raise DataError(path, record, "score", f"expected a finite number, got {score!r}")
    bbox = entry.get("bbox")
    try:
        box = np.asarray(bbox, dtype=np.float64)
    except (TypeError, ValueError):
        box = np.zeros(0)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise DataError(path, record, "bbox", f"expected [x, y, w, h], finite with w, h > 0, got {bbox!r}")
    detection = Detection(image_id=image_id, box=box.astype(np.float32), score=float(score), category_id=category_id)
    if images is not None:
        image = images.get(image_id)
        if image is None:
            raise DataError(path, record, "image_id", f"no image with id {image_id} in the ground-truth image table")
        detection.image, detection.image_size = str(image.path), (image.height, image.width)
    return detection

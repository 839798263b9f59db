"""What a predict request brings, checked before it reaches a model: the image and the optional person boxes.

The image is decoded by the core's checked decoder (JPEG or PNG; complete; its pixel count read from the header
before decoding), so a bad upload is a clear 4xx for its sender and never an error inside the model's worker.
Boxes are checked the way the top-down runner checks them, before they join a batch with other requests.
"""
from __future__ import annotations

import json

import numpy as np
from fastapi import HTTPException

from unionpose.core.errors import DataError, ImageTooLargeError
from unionpose.core.images import decode_image_bytes
from unionpose.core.values import is_finite_number
from unionpose.infer.topdown import check_boxes


def decode_upload(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """BGR image, upright as a browser shows it (EXIF orientation applied); 413 over the pixel cap, else 422."""
    try:
        return decode_image_bytes(data, name, apply_exif=True, max_pixels=max_pixels)
    except ImageTooLargeError as error:
        raise HTTPException(413, str(error)) from None
    except DataError as error:
        raise HTTPException(422, str(error)) from None


def parse_boxes(text: str | None, max_boxes: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """JSON `[[x, y, w, h], ...]` (a fifth value is the box's score) -> boxes (N, 4), scores (N,); none -> None.

    No boxes means the server's detector, or one box over the whole image.
    """
    if text is None or not text.strip():
        return None, None
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise HTTPException(422, f"boxes: not valid JSON ({error})") from None
    if not isinstance(rows, list) or not all(
            isinstance(row, list) and len(row) in (4, 5) and all(is_finite_number(v) for v in row) for row in rows):
        raise HTTPException(422, "boxes: expected a JSON list of [x, y, w, h] or [x, y, w, h, score] in pixels")
    if len(rows) > max_boxes:
        raise HTTPException(422, f"boxes: {len(rows)} boxes, over the limit of {max_boxes} per image")
    boxes = np.array([row[:4] for row in rows], dtype=np.float64).reshape(-1, 4)
    try:
        check_boxes(boxes)
    except ValueError as error:
        raise HTTPException(422, f"boxes: {error}") from None
    return boxes, np.array([row[4] if len(row) == 5 else 1.0 for row in rows], dtype=np.float64)

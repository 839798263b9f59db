"""Person boxes per image from a file: COCO detection results, or the people of a COCO ground-truth file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unionpose.core.errors import DataError
from unionpose.data.readers.coco import read_image_table, usable_box
from unionpose.data.readers.detections import PERSON, read_detections
from unionpose.data.readers.jsonfile import load_json


class BoxFile:
    """Person boxes per image file name, read from a COCO detection-results list or a COCO ground-truth file.

    A results list names images by `image_id`: they are paired with files through `image_table` (a ground-truth file
    listing the images) when given, else through the COCO naming convention (000000000785.jpg is image 785).
    A ground-truth file gives the boxes of its non-crowd people, score 1.
    """

    def __init__(self, path: str | Path, image_table: str | Path | None = None, score_threshold: float = 0.3) -> None:
        self.path = Path(path)
        data = load_json(self.path)
        self.boxes: dict[str, list[tuple[np.ndarray, float]]] = {}
        self.by_id: dict[int, list[tuple[np.ndarray, float]]] = {}
        if isinstance(data, dict):
            self._read_ground_truth(data)
        else:
            images = read_image_table(image_table, ".", confine=False) if image_table else None
            detections, _ = read_detections(self.path, images, score_threshold)
            for detection in detections:
                entry = (detection.box.astype(np.float64), detection.score)
                self.by_id.setdefault(detection.image_id, []).append(entry)
                if detection.image:
                    self.boxes.setdefault(Path(detection.image).name, []).append(entry)

    def _read_ground_truth(self, data: dict) -> None:
        if not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
            raise DataError(self.path, None, "images/annotations", "a ground-truth box file needs both lists")
        sizes = {record.id: record for record in read_image_table(self.path, ".", confine=False).values()}
        for i, annotation in enumerate(data["annotations"]):
            record = f"annotations[{i}]"
            if not isinstance(annotation, dict) or annotation.get("category_id", PERSON) != PERSON \
                    or annotation.get("iscrowd", 0):
                continue
            image = sizes.get(annotation.get("image_id"))
            if image is None:
                raise DataError(self.path, record, "image_id", f"no image with id {annotation.get('image_id')!r}")
            try:
                box = np.asarray(annotation.get("bbox"), dtype=np.float64).reshape(4)
            except (TypeError, ValueError):
                raise DataError(self.path, record, "bbox", f"expected [x, y, w, h], got {annotation.get('bbox')!r}")
            box = usable_box(box, image.height, image.width)[0] if np.isfinite(box).all() else None
            if box is not None:
                self.boxes.setdefault(image.path.name, []).append((box.astype(np.float64), 1.0))

    def lookup(self, file_name: str) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) and scores (N,) for an image file name; none when the file lists none for it."""
        entries = self.boxes.get(Path(file_name).name)
        if entries is None and not self.boxes:
            stem = Path(file_name).stem
            entries = self.by_id.get(int(stem)) if stem.isdigit() else None
        entries = entries or []
        return (np.array([box for box, _ in entries], dtype=np.float64).reshape(-1, 4),
                np.array([score for _, score in entries], dtype=np.float64))

"""Labelling one image of a labelled dataset: every source on its annotated people's boxes, each source's points
kept (in the union skeleton) so that fusion, thresholds and the audit are decided when the files are written."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from unionpose.apps.annotate.config import SourceSpec
from unionpose.apps.labelling import LABELLED, UNREADABLE, PointSource, predict_in_skeleton
from unionpose.apps.labelling.boxes import points_box
from unionpose.core.errors import DataError
from unionpose.core.images import load_image
from unionpose.data.instance import Instance
from unionpose.skeletons import Skeleton


@dataclass(frozen=True)
class Task:
    """One image: its key in the progress file, its file, and its people (boxes, instance rows, annotation ids)."""

    key: str
    path: str
    image_size: tuple[int, int] | None
    boxes: tuple[tuple[float, float, float, float], ...]
    rows: tuple[int, ...]
    ann_ids: tuple[int, ...]


class AnnotateLabeller:
    """Opens the sources once (per process) and labels one image at a time, in `skeleton` (which a run may set
    once the sources are open: the default union skeleton includes theirs)."""

    def __init__(self, specs: Sequence[SourceSpec], flip_test: bool, skeleton: Skeleton | None = None) -> None:
        self.skeleton = skeleton
        self.sources: list[PointSource] = []
        try:
            for spec in specs:
                self.sources.append(spec.open(flip_test))
        except BaseException:
            self.close()
            raise

    def __call__(self, task: Task) -> dict:
        record: dict = {"file_name": task.key}
        try:
            image = load_image(task.path, task.image_size)      # stored pixels, as the annotations refer to them
        except DataError as error:
            return {**record, "status": UNREADABLE, "reason": str(error)}
        keypoints, confidence = predict_in_skeleton(self.sources, self.skeleton, image,
                                                    np.asarray(task.boxes, dtype=np.float64).reshape(-1, 4),
                                                    rows=task.rows)
        people = []
        for n, ann_id in enumerate(task.ann_ids):
            people.append({
                "ann_id": ann_id,
                "keypoints": {source.name: _rounded(keypoints[s, n].reshape(-1), 2)
                              for s, source in enumerate(self.sources)},
                "confidence": {source.name: _rounded(confidence[s, n], 4) for s, source in enumerate(self.sources)},
            })
        return {**record, "status": LABELLED, "people": people}

    def close(self) -> None:
        """Release the sources; a second call does nothing."""
        while self.sources:
            self.sources.pop().close()


def source_box(dataset_format: str, instance: Instance) -> np.ndarray:
    """The box the sources see: the person's box, except for MPII, whose box is the toolbox's square of 200 x scale
    pixels, far larger than the person, where sources are trained on people's own boxes: there it is the extent of
    the labelled points grown by BOX_MARGIN per side (on the synthetic demo data this halves the error of filled
    face points)."""
    shown = instance.annotated & (instance.visible > 0)
    if dataset_format != "mpii" or shown.sum() < 2:
        return instance.box
    return points_box(instance.keypoints[shown])


def _rounded(values: np.ndarray, digits: int) -> list[float | None]:
    """JSON numbers, null for NaN (a point the source does not give)."""
    return [round(float(v), digits) if np.isfinite(v) else None for v in values]


def people_predictions(record: dict, names: Sequence[str], num_keypoints: int
                       ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A finished record -> per annotation id the sources' keypoints (S, K, 2), NaN where not given, and
    confidences (S, K), sources in the order of `names`."""
    found = {}
    for person in record.get("people", []):
        keypoints = np.array([[np.nan if v is None else v for v in person["keypoints"][name]] for name in names],
                             dtype=np.float64).reshape(len(names), num_keypoints, 2)
        confidence = np.array([[0.0 if v is None else v for v in person["confidence"][name]] for name in names],
                              dtype=np.float64).reshape(len(names), num_keypoints)
        found[person["ann_id"]] = (keypoints, confidence)
    return found

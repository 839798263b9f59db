"""Labelling one image: decode it, find its people, run the experts, write their annotations (one per process)."""
from __future__ import annotations

import numpy as np

from unionpose.apps.labelling import LABELLED, NO_BOXES, NOBODY, UNREADABLE, fuse, predict_in_skeleton
from unionpose.apps.labelling.sources import ExpertSource
from unionpose.apps.pseudolabel.config import PseudoLabelConfig
from unionpose.apps.pseudolabel.labels import wholebody_annotation
from unionpose.apps.pseudolabel.tasks import Task
from unionpose.core.constants import BOX_PADDING
from unionpose.core.errors import DataError
from unionpose.core.images import read_image
from unionpose.infer.boxes import full_frame_box
from unionpose.infer.detector import OnnxPersonDetector

FULL_FRAME_PADDING = 1.0      # a whole frame is the crop as it is


class Labeller:
    """Labels one image at a time: decode, find the people, run the expert, write annotations (one per process)."""

    def __init__(self, config: PseudoLabelConfig) -> None:
        self.sources = [ExpertSource()]
        self.skeleton = self.sources[0].skeleton
        self.detector = (OnnxPersonDetector(config.detector, config.detector_layout, config.box_threshold)
                         if config.detector else None)
        self.min_confidence = config.min_confidence

    def __call__(self, task: Task) -> dict:
        record: dict = {"file_name": task.file_name}
        try:
            image = read_image(task.path, apply_exif=False)      # stored pixels, as annotation readers decode
        except DataError as error:
            return {**record, "status": UNREADABLE, "reason": str(error)}
        height, width = image.shape[:2]
        record.update(height=height, width=width)
        padding = BOX_PADDING
        if task.boxes is not None:
            boxes = np.asarray(task.boxes, dtype=np.float64).reshape(-1, 4)
        elif self.detector is not None:
            boxes = self.detector(image)[0]
        else:
            boxes, padding = full_frame_box(image)[0], FULL_FRAME_PADDING
        if not len(boxes):
            return {**record, "status": NO_BOXES, "annotations": []}
        keypoints, confidence = predict_in_skeleton(self.sources, self.skeleton, image, boxes, padding)
        fused = fuse(keypoints, confidence, [s.name for s in self.sources], self.skeleton.sigmas,
                     boxes[:, 2] * boxes[:, 3])
        given_box = task.boxes is not None or self.detector is not None
        annotations = [wholebody_annotation(points, scores, box if given_box else None, (height, width),
                                            self.min_confidence)
                       for points, scores, box in zip(fused.keypoints, fused.confidence, boxes)]
        annotations = [a for a in annotations if a is not None]
        return {**record, "status": LABELLED if annotations else NOBODY, "annotations": annotations}

    def close(self) -> None:
        for source in self.sources:
            source.close()

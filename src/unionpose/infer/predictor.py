"""The Predictor: person boxes (detector, file or full frame) -> batched top-down poses -> person scores and OKS-NMS."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from unionpose.infer.backends import load_pose_model
from unionpose.infer.boxes import full_frame_box
from unionpose.infer.oks import oks_nms
from unionpose.infer.poses import Poses
from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD, OKS_NMS_THRESHOLD, instance_score
from unionpose.infer.topdown import TopDownRunner
from unionpose.skeletons import Skeleton

PersonDetector = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]   # BGR image -> boxes (N, 4) xywh, scores (N,)


class Predictor:
    """Poses of the people in a BGR image.

    Boxes come from the call, else from `detector`, else one full-frame box. People are scored as box score x mean
    of their keypoint scores above `keypoint_threshold`, and near-duplicates (OKS above `nms_threshold` with a
    better-scored person, as two boxes on one person give) are dropped, as RTMPose
    evaluates detected boxes (docs/conventions.md).
    """

    def __init__(self, runner: TopDownRunner, detector: PersonDetector | None = None,
                 nms_threshold: float = OKS_NMS_THRESHOLD,
                 keypoint_threshold: float = KEYPOINT_SCORE_THRESHOLD) -> None:
        self.runner = runner
        self.detector = detector
        self.nms_threshold = nms_threshold
        self.keypoint_threshold = keypoint_threshold

    @classmethod
    def from_file(cls, model: str | Path, *, flip_test: bool = False, batch_size: int = 32,
                  detector: PersonDetector | None = None, skeleton: str | Skeleton | None = None,
                  input_size: tuple[int, int] | None = None, device: str = "cpu",
                  nms_threshold: float = OKS_NMS_THRESHOLD, keypoint_threshold: float = KEYPOINT_SCORE_THRESHOLD
                  ) -> "Predictor":
        """From a UnionPose model file (.safetensors) or an ONNX model (see `load_pose_model`)."""
        backend, info = load_pose_model(model, skeleton, input_size, device)
        runner = TopDownRunner(backend, info, flip_test=flip_test, batch_size=batch_size)
        return cls(runner, detector, nms_threshold, keypoint_threshold)

    @property
    def skeleton(self) -> Skeleton:
        return self.runner.skeleton

    def __call__(self, image: np.ndarray, boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None) -> Poses:
        """Poses for `image` (H, W, 3) BGR uint8; `boxes` (N, 4) x, y, w, h in pixels, `box_scores` (N,)."""
        return self.predict_many([(image, boxes, box_scores)])[0]

    def predict_many(self, requests: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]
                     ) -> list[Poses]:
        """Poses for several (image, boxes, box_scores) at once, as `__call__` gives them one by one.

        The crops of all the images share the model calls (`batch_size` crops each), which is how a server answers
        requests that arrive together with one model call.
        """
        boxed = [self._boxes(image, boxes, box_scores) for image, boxes, box_scores in requests]
        predicted = self.runner.predict_many((image, boxes) for (image, _, _), (boxes, _) in zip(requests, boxed))
        return [self._poses(keypoints, keypoint_scores, boxes, box_scores)
                for (keypoints, keypoint_scores), (boxes, box_scores) in zip(predicted, boxed)]

    def _boxes(self, image: np.ndarray, boxes: np.ndarray | None, box_scores: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The given boxes, else the detector's, else the full frame; scores default to 1."""
        if boxes is None:
            boxes, box_scores = self.detector(image) if self.detector is not None else full_frame_box(image)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        box_scores = np.ones(len(boxes)) if box_scores is None else np.asarray(box_scores, dtype=np.float64)
        return boxes, box_scores

    def _poses(self, keypoints: np.ndarray, keypoint_scores: np.ndarray, boxes: np.ndarray,
               box_scores: np.ndarray) -> Poses:
        """Person scores, then OKS-NMS over near-duplicates; a depth column (3D model) becomes `Poses.depth`."""
        depth = keypoints[..., 2] if keypoints.shape[-1] == 3 else None
        keypoints = keypoints[..., :2]
        scores = instance_score(box_scores, keypoint_scores, self.keypoint_threshold)
        poses = Poses(keypoints, keypoint_scores, boxes, box_scores, scores, np.full(len(boxes), -1, np.int64), depth)
        if len(poses) < 2 or self.nms_threshold >= 1:
            return poses
        keep = oks_nms(keypoints, keypoint_scores, scores, boxes[:, 2] * boxes[:, 3],
                       np.asarray(self.skeleton.sigmas), self.nms_threshold, self.keypoint_threshold)
        return poses.select(keep)

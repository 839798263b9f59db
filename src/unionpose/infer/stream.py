"""Prediction over a stream of frames: detector every N frames, boxes following the poses between, tracking."""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from unionpose.infer.boxes import boxes_from_keypoints
from unionpose.infer.poses import Poses
from unionpose.infer.predictor import Predictor
from unionpose.infer.smoothing import TrackSmoother
from unionpose.infer.sources import Frame
from unionpose.infer.tracking import PoseTracker

BoxLookup = Callable[[str], tuple[np.ndarray, np.ndarray]]   # frame name -> boxes (N, 4), scores (N,)


def predict_stream(predictor: Predictor, frames: Iterable[Frame], boxes_for: BoxLookup | None = None,
                   detect_every: int = 1, tracker: PoseTracker | None = None,
                   smoother: TrackSmoother | None = None) -> Iterator[tuple[Frame, Poses]]:
    """Yield (frame, poses) one frame at a time; only the current frame is held, so memory stays constant.

    Boxes: `boxes_for(frame.name)` when given (e.g. a detection file); else the predictor's detector, run on every
    `detect_every`-th frame, with each person's box between runs taken around their previous keypoints (the
    detector also runs when nobody is left to follow); else the full frame.
    """
    if detect_every < 1:
        raise ValueError(f"detect_every must be at least 1, got {detect_every}")
    if smoother is not None and tracker is None:
        raise ValueError("smoothing follows people by track id: it needs a tracker")
    previous: Poses | None = None
    since_detection = detect_every
    for frame in frames:
        boxes = box_scores = None
        if boxes_for is not None:
            boxes, box_scores = boxes_for(frame.name)
        elif predictor.detector is not None and since_detection < detect_every and previous is not None:
            boxes, usable = boxes_from_keypoints(previous.keypoints, previous.keypoint_scores)
            box_scores = previous.box_scores[usable]
            if not usable.any():
                boxes = box_scores = None
        if boxes is None and predictor.detector is not None:
            since_detection = 0
        since_detection += 1
        poses = predictor(frame.image, boxes, box_scores)
        if tracker is not None:
            poses.track_ids = tracker.update(poses.boxes, poses.keypoints, poses.keypoint_scores)
        if smoother is not None:
            poses.keypoints = smoother(poses.track_ids, poses.keypoints, frame.time).astype(np.float32)
        previous = poses
        yield frame, poses

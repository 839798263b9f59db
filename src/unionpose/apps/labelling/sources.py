"""Sources of labels: anything that gives people's keypoints with a confidence, in its own skeleton, mapped onto the
skeleton being written by keypoint name.

A pose model (a UnionPose model file or an ONNX graph, as a distillation teacher), a MediaPipe expert, or a teacher's
prediction cache (coordinates made earlier for the same instance list, looked up by row) all answer one call:
people's boxes in a BGR image -> keypoints (N, K, 2) in image pixels, NaN where the source gives nothing, and
confidences (N, K) in [0, 1].
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from unionpose.core.constants import BOX_PADDING
from unionpose.infer.backends import load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.skeletons import Skeleton, keypoint_mapping
from unionpose.teachers.base import file_identity
from unionpose.teachers.cache import TeacherCache
from unionpose.teachers.mediapipe_experts import HolisticExpert


class PointSource(Protocol):
    """One source of points. `identity` changes whenever its predictions could (it keys progress files)."""

    name: str
    skeleton: Skeleton
    identity: str

    def predict(self, image_bgr: np.ndarray, boxes: np.ndarray, padding: float = BOX_PADDING,
                rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) x, y, w, h (grown by `padding` into the crop) -> keypoints (N, K, 2), confidences (N, K);
        `rows` are the people's rows in the instance list, for sources that look predictions up."""

    def close(self) -> None: ...


class ModelSource:
    """A pose model run top-down on each box; its SimCC score clipped to [0, 1] is the confidence, and a point
    scored 0 or less is not given."""

    def __init__(self, path: str | Path, name: str | None = None, skeleton: str | Skeleton | None = None,
                 input_size: tuple[int, int] | None = None, flip_test: bool = False) -> None:
        path = Path(path)
        backend, info = load_pose_model(path, skeleton, input_size)
        self.name = name or path.stem
        self.skeleton = info.skeleton
        self.runner = TopDownRunner(backend, info, flip_test=flip_test)
        self.identity = f"{file_identity(path)} flip_test={flip_test}"

    def predict(self, image_bgr: np.ndarray, boxes: np.ndarray, padding: float = BOX_PADDING,
                rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        self.runner.padding = padding
        keypoints, scores = self.runner.predict(image_bgr, boxes)
        keypoints = keypoints[..., :2]          # a 3D model's depth column: labels are 2D
        given = scores > 0
        return np.where(given[..., None], keypoints, np.nan).astype(np.float32), \
            np.where(given, np.clip(scores, 0.0, 1.0), 0.0).astype(np.float32)

    def close(self) -> None:
        """Nothing to release: the model goes with the object."""


class ExpertSource:
    """MediaPipe Holistic on each box (COCO-WholeBody-133 points; see `teachers.mediapipe_experts`)."""

    def __init__(self, expert: HolisticExpert | None = None, name: str = "mediapipe") -> None:
        self.expert = expert or HolisticExpert()
        self.name = name
        self.skeleton = self.expert.skeleton
        self.identity = self.expert.identity

    def predict(self, image_bgr: np.ndarray, boxes: np.ndarray, padding: float = BOX_PADDING,
                rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.expert.predict_people(image_bgr, boxes, padding)

    def close(self) -> None:
        self.expert.close()


class CacheSource:
    """A teacher's prediction cache (`kind: coordinates`), one row per instance of the list it was made for; the
    caller checks that list's identity (`teachers.check_teacher_cache`) before asking for rows."""

    def __init__(self, cache: TeacherCache, name: str) -> None:
        self.cache = cache
        self.name = name
        self.skeleton = cache.skeleton
        self.identity = cache.teacher

    def predict(self, image_bgr: np.ndarray, boxes: np.ndarray, padding: float = BOX_PADDING,
                rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        if rows is None:
            raise ValueError(f"source {self.name!r} is a prediction cache: it labels only the instances it was made for")
        rows = np.asarray(rows, dtype=np.int64)
        return self.cache.keypoints[rows], self.cache.confidence[rows]

    def close(self) -> None:
        """Nothing to release."""


def predict_in_skeleton(sources: Sequence[PointSource], skeleton: Skeleton, image_bgr: np.ndarray,
                        boxes: np.ndarray, padding: float = BOX_PADDING, rows: Sequence[int] | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Every source on the same people, mapped onto `skeleton` by keypoint name -> keypoints (S, N, K, 2), NaN
    where a source gives nothing (its skeleton lacks the point, or it found none), and confidences (S, N, K)."""
    count, points = len(boxes), skeleton.num_keypoints
    keypoints = np.full((len(sources), count, points, 2), np.nan, dtype=np.float32)
    confidence = np.zeros((len(sources), count, points), dtype=np.float32)
    if not count:
        return keypoints, confidence
    for s, source in enumerate(sources):
        mapping = keypoint_mapping(source.skeleton, skeleton)
        found, scores = source.predict(image_bgr, boxes, padding, rows)
        expected = (count, source.skeleton.num_keypoints)
        if found.shape != expected + (2,) or scores.shape != expected:
            raise ValueError(f"source {source.name!r} answered keypoints {found.shape} and confidences "
                             f"{scores.shape}; expected {expected + (2,)} and {expected}")
        keypoints[s] = mapping.apply(found, axis=1, fill=np.nan)
        confidence[s] = mapping.apply(scores, axis=1, fill=0.0)
    confidence[~np.isfinite(keypoints).all(axis=-1)] = 0.0
    return keypoints, confidence

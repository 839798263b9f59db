"""Cached teacher predictions: computed once per instance in image coordinates, warped into each augmented crop.

A cache file is a `.safetensors` with `keypoints` (M, K, 2) float32 image pixels (NaN where the teacher gives
nothing) and `confidence` (M, K) float32, in the teacher's skeleton, one row per instance of the training list (the
list `TopDownDataset` indexes with `instance_index`). Its JSON header records the teacher's identity (its file hash),
the data's identity (a hash of the instance list: datasets, image paths, boxes, in order) and the skeleton, so that a
cache made for other data or by another teacher is refused instead of silently mis-teaching.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from unionpose.core.atomic import atomic_path
from unionpose.core.constants import BOX_PADDING
from unionpose.core.images import load_image
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.data.instance import Instance
from unionpose.skeletons import Skeleton
from unionpose.teachers.base import StudentSpace, Teacher, TeacherOutput
from unionpose.teachers.coordinates import CoordinateTeacher, coordinates_to_output
from unionpose.teachers.logit_teacher import LogitTeacher

FORMAT = "unionpose-teacher-cache"
FORMAT_VERSION = "1"


@dataclass(frozen=True)
class TeacherCache:
    """One teacher's predictions for every training instance, in image pixels and the teacher's skeleton."""

    keypoints: np.ndarray        # (M, K, 2) float32
    confidence: np.ndarray       # (M, K) float32
    skeleton: Skeleton
    teacher: str                 # the teacher's identity
    data: str                    # the instance list's identity (`data_identity`)
    teacher_name: str = ""


def data_identity(instances: Sequence[Instance]) -> str:
    """'sha256:<hex>' over every instance's dataset name, image path and box, in order: what cache rows are keyed by."""
    digest = hashlib.sha256(f"{len(instances)} instances\n".encode())
    for instance in instances:
        digest.update(f"{instance.dataset}\t{instance.image}\n".encode())
        digest.update(np.asarray(instance.box, dtype=np.float32).reshape(4).tobytes())
    return f"sha256:{digest.hexdigest()}"


def build_teacher_cache(teacher: LogitTeacher | CoordinateTeacher, instances: Sequence[Instance],
                        batch_size: int = 32) -> TeacherCache:
    """Run `teacher` once on every instance: a plain crop around its box (padding 1.25, the teacher's own input size
    and aspect ratio, no augmentation), decoded and mapped back to image pixels."""
    height, width = teacher.input_size
    keypoints: list[np.ndarray] = []
    confidence: list[np.ndarray] = []
    pending_crops: list[np.ndarray] = []
    pending_inverse: list[np.ndarray] = []
    loaded: tuple[str, np.ndarray] | None = None

    def flush() -> None:
        crop_points, scores = teacher.predict_crops(np.stack(pending_crops))
        for points, score, inverse in zip(crop_points, scores, pending_inverse):
            image_points = transform_points(points, inverse).astype(np.float32)
            image_points[~(score > 0)] = np.nan
            keypoints.append(image_points)
            confidence.append(np.where(score > 0, score, 0.0).astype(np.float32))
        pending_crops.clear()
        pending_inverse.clear()

    for index, instance in enumerate(instances):
        if loaded is None or loaded[0] != instance.image:
            record = f"instance {index} (dataset {instance.dataset!r}, annotation id {instance.ann_id})"
            loaded = (instance.image, cv2.cvtColor(load_image(instance.image, instance.image_size, record),
                                                   cv2.COLOR_BGR2RGB))
        center, scale = box_to_center_scale(instance.box, width / height, BOX_PADDING)
        matrix = get_warp_matrix(center, scale, 0.0, (width, height))
        pending_crops.append(warp_image(loaded[1], matrix, (width, height)))
        pending_inverse.append(get_warp_matrix(center, scale, 0.0, (width, height), inverse=True))
        if len(pending_crops) == batch_size:
            flush()
    if pending_crops:
        flush()
    count = teacher.skeleton.num_keypoints
    return TeacherCache(
        keypoints=np.stack(keypoints) if keypoints else np.zeros((0, count, 2), np.float32),
        confidence=np.stack(confidence) if confidence else np.zeros((0, count), np.float32),
        skeleton=teacher.skeleton, teacher=teacher.identity, data=data_identity(instances), teacher_name=teacher.name,
    )


def save_teacher_cache(path: str | Path, cache: TeacherCache) -> Path:
    """Write atomically: a reader never sees half a cache."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "teacher": cache.teacher,
        "teacher_name": cache.teacher_name,
        "data": cache.data,
        "skeleton": cache.skeleton.to_json(),
    }
    tensors = {"keypoints": np.ascontiguousarray(cache.keypoints, np.float32),
               "confidence": np.ascontiguousarray(cache.confidence, np.float32)}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)
    return path


def load_teacher_cache(path: str | Path) -> TeacherCache:
    """Read a cache file; errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"teacher cache not found: {path}")
    try:
        with safe_open(path, framework="numpy") as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {error}") from error
    if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a UnionPose teacher cache version {FORMAT_VERSION} (format "
                         f"{metadata.get('format')!r}, version {metadata.get('format_version')!r})")
    for field in ("teacher", "data", "skeleton"):
        if field not in metadata:
            raise ValueError(f"{path}: header field {field!r} is missing")
    try:
        skeleton_fields = json.loads(metadata["skeleton"])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: header field 'skeleton' is not valid JSON ({error})") from error
    skeleton = Skeleton.from_dict(skeleton_fields, source=f"{path} header 'skeleton'")
    keypoints, confidence = tensors.get("keypoints"), tensors.get("confidence")
    count = skeleton.num_keypoints
    if keypoints is None or confidence is None or keypoints.ndim != 3 or keypoints.shape[1:] != (count, 2) \
            or confidence.shape != keypoints.shape[:2]:
        raise ValueError(f"{path}: expected tensors 'keypoints' (M, {count}, 2) and 'confidence' (M, {count}) for "
                         f"skeleton {skeleton.name!r}; found {({k: v.shape for k, v in tensors.items()})}")
    return TeacherCache(keypoints, confidence, skeleton, metadata["teacher"], metadata["data"],
                        metadata.get("teacher_name", ""))


def check_teacher_cache(cache: TeacherCache, path: str | Path, data: str, teacher: str | None = None,
                        skeleton: Skeleton | None = None) -> None:
    """Refuse a cache made for other data, by another teacher, or in another skeleton, saying what to do."""
    remedy = "delete the file to recompute it, or point the teacher's `cache` elsewhere"
    if cache.data != data:
        raise ValueError(f"{path}: these cached teacher predictions were made for different data (instance list "
                         f"{cache.data}, the training data is {data}: datasets, their order, images or boxes "
                         f"changed); {remedy}")
    if teacher is not None and cache.teacher != teacher:
        raise ValueError(f"{path}: these cached predictions come from a different teacher ({cache.teacher}, "
                         f"{cache.teacher_name!r}), not from {teacher}; {remedy}")
    if skeleton is not None and cache.skeleton != skeleton:
        raise ValueError(f"{path}: the cached predictions are in skeleton {cache.skeleton.name!r}, the teacher's is "
                         f"{skeleton.name!r}; {remedy}")


class CachedTeacher(Teacher):
    """A teacher replayed from a cache: each instance's image-space points warped by the crop's affine.

    The batch's `matrix` maps image pixels to crop pixels and already contains the mirror of a flipped crop; a
    flipped crop's channels are then swapped left/right with the student's flip indices, as its targets are.
    """

    def __init__(self, name: str, cache: TeacherCache, student: StudentSpace, source: str = "<cache>") -> None:
        super().__init__(name, cache.skeleton, student)
        self.cache = cache
        self.source = source
        self.keypoints = torch.from_numpy(cache.keypoints)
        self.confidence = torch.from_numpy(cache.confidence)
        self.flip_indices = torch.from_numpy(student.skeleton.flip_indices)

    @property
    def identity(self) -> str:
        return self.cache.teacher

    def _rows(self, instance_index: torch.Tensor) -> torch.Tensor:
        rows = instance_index.long().cpu()
        outside = (rows < 0) | (rows >= len(self.keypoints))
        if outside.any():
            raise ValueError(f"{self.source}: the batch asks for instance {int(rows[outside][0])}, but the cache of "
                             f"teacher {self.name!r} holds {len(self.keypoints)} instances")
        return rows

    def __call__(self, batch: dict[str, torch.Tensor], with_feature: bool = False) -> TeacherOutput:
        if with_feature:
            raise ValueError(f"teacher {self.name!r} is replayed from cached coordinates and has no feature for "
                             "feature distillation")
        matrix = batch["matrix"]
        device = matrix.device
        rows = self._rows(batch["instance_index"])
        points = self.to_student_channels(self.keypoints[rows].double()).to(device)
        confidence = self.to_student_channels(self.confidence[rows]).to(device)
        matrix = matrix.double()
        crop_points = torch.einsum("nij,nkj->nki", matrix[:, :, :2], points) + matrix[:, None, :, 2]
        flipped = batch["flipped"].to(device).bool()
        flip = self.flip_indices.to(device)
        crop_points = torch.where(flipped[:, None, None], crop_points[:, flip], crop_points)
        confidence = torch.where(flipped[:, None], confidence[:, flip], confidence)
        return coordinates_to_output(self, crop_points.float(), confidence)


def open_cached_teacher(path: str | Path, student: StudentSpace, instances: Sequence[Instance], name: str,
                        source: LogitTeacher | CoordinateTeacher | None = None,
                        skeleton: Skeleton | None = None) -> CachedTeacher:
    """The cached teacher for this training instance list: read `path` and check it against the data (and against
    `source`'s identity and skeleton), or, when `path` does not exist yet and `source` is given, compute and write it.
    A stale cache is an error, never overwritten."""
    path = Path(path)
    data = data_identity(instances)
    if path.exists():
        cache = load_teacher_cache(path)
        check_teacher_cache(cache, path, data, source.identity if source else None,
                            source.skeleton if source else skeleton)
    elif source is None:
        raise FileNotFoundError(f"teacher cache not found: {path} (and teacher {name!r} has no model to compute it)")
    else:
        cache = build_teacher_cache(source, instances)
        save_teacher_cache(path, cache)
    return CachedTeacher(name, cache, student, source=str(path))

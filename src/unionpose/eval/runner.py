"""What evaluation needs of a model (`PoseRunner`), how a model file becomes one, and running it over many people."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from unionpose.core.images import MAX_PIXELS, load_image
from unionpose.infer.backends import load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.skeletons import Skeleton


class PoseRunner(Protocol):
    """What evaluation needs of a model (a `TopDownRunner` is one): its skeleton, and poses for (image, boxes) pairs.

    `predict_many` yields, per (BGR image, boxes (N, 4) x, y, w, h) pair, keypoints (N, K, 2) in image pixels and
    scores (N, K), in the model's skeleton; a model with a depth head gives (N, K, 3), the third column its depth.
    """

    skeleton: Skeleton

    def predict_many(self, items: Iterable[tuple[np.ndarray, np.ndarray]]
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


def as_runner(model: str | Path | PoseRunner, *, flip_test: bool, batch_size: int, skeleton: str | Skeleton | None,
              device: str) -> tuple[PoseRunner, str]:
    """A runner and its name: a top-down runner around a model file (.safetensors or ONNX), or the caller's runner."""
    if isinstance(model, (str, Path)):
        backend, info = load_pose_model(model, skeleton, device=device)
        return TopDownRunner(backend, info, flip_test=flip_test, batch_size=batch_size), Path(model).stem
    if not hasattr(model, "predict_many") or not isinstance(getattr(model, "skeleton", None), Skeleton):
        raise TypeError(f"evaluate_model: model must be a model file path or a runner with `skeleton` and "
                        f"`predict_many` (e.g. a TopDownRunner), got {type(model).__name__}")
    return model, type(model).__name__


def rows_by_image(images: Sequence[str]) -> dict[str, list[int]]:
    """Image -> the rows of its people, so that each image is decoded once."""
    groups: dict[str, list[int]] = {}
    for row, image in enumerate(images):
        groups.setdefault(image, []).append(row)
    return groups


def predict_people(runner: PoseRunner, images: Sequence[str], sizes: Sequence[tuple[int, int] | None],
                   boxes: np.ndarray, description: str, progress: bool, max_pixels: int = MAX_PIXELS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The model on every box, each image decoded once (through the image gate, at `max_pixels`); keypoints
    (N, K, 2), or (N, K, 3) with a depth column, and scores (N, K) in row order."""
    groups = rows_by_image(images)

    def items() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for image, rows in tqdm(groups.items(), desc=description, unit="img", disable=not progress):
            yield load_image(image, sizes[rows[0]], description, max_pixels), boxes[rows]

    k = runner.skeleton.num_keypoints
    keypoints = np.zeros((len(images), k, 2), dtype=np.float32)
    scores = np.zeros((len(images), k), dtype=np.float32)
    for rows, (points, confidences) in zip(groups.values(), runner.predict_many(items())):
        if points.shape[-1] != keypoints.shape[-1]:      # a depth column: the first batch says
            keypoints = np.zeros((len(images), k, points.shape[-1]), dtype=np.float32)
        keypoints[rows], scores[rows] = points, confidences
    return keypoints, scores

"""Coordinate-only teachers (keypoints + confidence, e.g. part experts): their points become soft SimCC targets."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from unionpose.skeletons import Skeleton
from unionpose.teachers.base import StudentSpace, Teacher, TeacherOutput

# crops: RGB uint8 (N, H, W, 3) -> keypoints (N, K, 2) in crop pixels and confidences (N, K) in [0, 1]
CoordinatePredictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def soft_simcc_targets(keypoints: torch.Tensor, confidence: torch.Tensor, student: StudentSpace
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (N, K, 2) in the student's crop pixels and confidences (N, K) -> soft targets (N, K, bins) per axis.

    The same maths as `SimCCCodec.soft_targets_from_coordinates`, on tensors so that it runs on the training device
    every step: a Gaussian with the student codec's sigma, peak = confidence, centre not rounded to a bin; unusable
    points (confidence <= 0, non-finite) give all-zero rows.
    """
    usable = torch.isfinite(keypoints).all(dim=-1) & torch.isfinite(confidence) & (confidence > 0)
    peak = torch.where(usable, confidence, torch.zeros_like(confidence)).unsqueeze(-1)
    centres = torch.where(usable.unsqueeze(-1), keypoints, torch.zeros_like(keypoints)) * student.split_ratio
    targets = []
    for axis, (bins, sigma) in enumerate(zip(student.num_bins, student.codec_sigma)):
        grid = torch.arange(bins, dtype=keypoints.dtype, device=keypoints.device)
        offsets = grid - centres[..., axis:axis + 1]
        targets.append(torch.exp(offsets * offsets * (-0.5 / sigma**2)) * peak)
    return targets[0], targets[1]


def coordinates_to_output(teacher: Teacher, keypoints: torch.Tensor, confidence: torch.Tensor) -> TeacherOutput:
    """Student-channel keypoints (N, K, 2) in student crop pixels and confidences (N, K) -> a `TeacherOutput`.

    Confidences are clipped to [0, 1]: a teacher's point is never a sharper target than a ground-truth one (peak 1).
    A channel is supervised where the teacher's skeleton has the point and its confidence is positive.
    """
    confidence = confidence.float().clamp(0.0, 1.0)
    keypoints = keypoints.float()
    simcc_x, simcc_y = soft_simcc_targets(keypoints, confidence, teacher.student)
    mask = (confidence > 0) & torch.isfinite(keypoints).all(dim=-1)
    return TeacherOutput(simcc_x, simcc_y, mask)


def denormalise_to_uint8(images: torch.Tensor, student: StudentSpace) -> np.ndarray:
    """The batch's normalised crops (N, 3, H, W) back to RGB uint8 (N, H, W, 3), as an image-based expert takes them."""
    mean = torch.tensor(student.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(student.std, device=images.device).view(1, 3, 1, 1)
    pixels = (images.float() * std + mean).round().clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().cpu().numpy()


class CoordinateTeacher(Teacher):
    """An online expert that gives coordinates, not logits: it sees the student's (augmented) crop as RGB uint8."""

    def __init__(self, name: str, skeleton: Skeleton, student: StudentSpace, predict: CoordinatePredictor,
                 identity: str, input_size: tuple[int, int] | None = None) -> None:
        """`identity` names the expert and its settings (it keys prediction caches). Online the expert sees the
        student's crop; `input_size` (h, w) is only the crop it is given when building a cache (default: the
        student's)."""
        super().__init__(name, skeleton, student)
        self.predict = predict
        self._identity = identity
        self.input_size = tuple(input_size or student.input_size)

    @property
    def identity(self) -> str:
        return self._identity

    def predict_crops(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, K_teacher, 2) in crop pixels and confidences (N, K_teacher), checked for shape."""
        keypoints, confidence = self.predict(crops_rgb)
        keypoints, confidence = np.asarray(keypoints, np.float32), np.asarray(confidence, np.float32)
        expected = (len(crops_rgb), self.skeleton.num_keypoints)
        if keypoints.shape != expected + (2,) or confidence.shape != expected:
            raise ValueError(f"teacher {self.name!r}: its predictor returned keypoints {keypoints.shape} and "
                             f"confidences {confidence.shape}; expected {expected + (2,)} and {expected}")
        return keypoints, confidence

    def __call__(self, batch: dict[str, torch.Tensor], with_feature: bool = False) -> TeacherOutput:
        if with_feature:
            raise ValueError(f"teacher {self.name!r} gives coordinates only, no feature for feature distillation")
        images = batch["image"]
        keypoints, confidence = self.predict_crops(denormalise_to_uint8(images, self.student))
        keypoints = torch.from_numpy(keypoints).to(images.device)
        confidence = torch.from_numpy(confidence).to(images.device)
        return coordinates_to_output(self, self.to_student_channels(keypoints),
                                     self.to_student_channels(confidence))

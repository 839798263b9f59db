"""Student crop -> teacher input (re-normalise, resize) and teacher SimCC bins -> student bins, by crop geometry.

A teacher whose input size differs from the student's sees the student's crop *resized* (as the paper feeds its
256x256 MPII teacher the 256x192 crop): bilinear with half-pixel centres (`align_corners=False`, cv2.resize's
convention), antialiased when shrinking. The resize stretches the crop when the aspect ratios differ; the image
region is the same. Under this resize, teacher pixel x_t and student pixel x_s see the same image point when
    x_t + 0.5 = (x_s + 0.5) * W_teacher / W_student        (and likewise in y),
and a SimCC bin b sits at pixel b / split_ratio on either side. The teacher's logits are read at the teacher bin
that each student bin sees, by linear interpolation along the bin axis (clamped at the ends;
`unionpose.core.simcc.resampled_bin_positions`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unionpose.core.depth import DepthCodec
from unionpose.core.simcc import resampled_bin_positions


def renormalise(images: torch.Tensor, mean_from: tuple[float, ...], std_from: tuple[float, ...],
                mean_to: tuple[float, ...], std_to: tuple[float, ...]) -> torch.Tensor:
    """Images normalised with (mean_from, std_from) -> normalised with (mean_to, std_to); a no-op when equal."""
    if tuple(mean_from) == tuple(mean_to) and tuple(std_from) == tuple(std_to):
        return images
    def column(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    pixels = images * column(std_from) + column(mean_from)
    return (pixels - column(mean_to)) / column(std_to)


def resize_crops(images: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, H, W), bilinear with half-pixel centres (see the module docstring)."""
    if tuple(images.shape[-2:]) == tuple(size_hw):
        return images
    return F.interpolate(images, size=tuple(size_hw), mode="bilinear", align_corners=False, antialias=True)


class BinResampler:
    """Reads a teacher's SimCC logits (..., teacher bins) at the student's bins along one axis."""

    def __init__(self, teacher_length: int, teacher_ratio: float, student_length: int, student_ratio: float) -> None:
        """Lengths are the crop sides in pixels on this axis; ratios are the SimCC bins per pixel."""
        self._tables(int(round(teacher_length * teacher_ratio)),
                     resampled_bin_positions(teacher_length, teacher_ratio, student_length, student_ratio),
                     teacher_length == student_length and teacher_ratio == student_ratio)

    def _tables(self, teacher_bins: int, positions: np.ndarray, identity: bool) -> None:
        """Fractional teacher bin of every student bin -> the interpolation tables."""
        self.teacher_bins = teacher_bins
        self.student_bins = len(positions)
        self.identity = identity
        position = torch.from_numpy(positions)
        self.lower = position.floor().long().clamp(max=self.teacher_bins - 1)
        self.upper = (self.lower + 1).clamp(max=self.teacher_bins - 1)
        self.fraction = (position - self.lower).float()
        self._on: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.shape[-1] != self.teacher_bins:
            raise ValueError(f"expected teacher logits with {self.teacher_bins} bins, got shape {tuple(logits.shape)}")
        if self.identity:
            return logits
        lower_bins, upper_bins, fraction = self._tables_on(logits.device, logits.dtype)
        lower = logits[..., lower_bins]
        upper = logits[..., upper_bins]
        return lower + (upper - lower) * fraction

    def _tables_on(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The bin indices and fractions on `device`, copied there once (a copy from host memory at every step
        would make the host wait for the GPU)."""
        key = (device, dtype)
        if key not in self._on:
            self._on[key] = (self.lower.to(device), self.upper.to(device), self.fraction.to(device=device, dtype=dtype))
        return self._on[key]


class DepthResampler(BinResampler):
    """Reads a 3D teacher's depth logits at the depths of the student's depth bins (both root-relative, one unit)."""

    def __init__(self, teacher: DepthCodec, student: DepthCodec) -> None:
        if teacher.unit != student.unit:
            raise ValueError(f"the teacher's depth is in {teacher.unit!r} but the student's in {student.unit!r}")
        depths = np.arange(student.bins) * student.step - student.range
        self._tables(teacher.bins, np.clip(teacher.bin_of(depths), 0, teacher.bins - 1),
                     (teacher.range, teacher.bins) == (student.range, student.bins))

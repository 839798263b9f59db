"""The `Teacher` interface: predictions for a training batch, in the student's skeleton and SimCC bins."""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB, SIMCC_SPLIT_RATIO
from unionpose.core.depth import DepthCodec
from unionpose.core.simcc import default_sigma
from unionpose.skeletons import Skeleton, keypoint_mapping


@dataclass(frozen=True)
class StudentSpace:
    """What a teacher's output must be expressed in: the student's skeleton, crop, SimCC bins and normalisation."""

    skeleton: Skeleton
    input_size: tuple[int, int]                 # (height, width) of the student's crop
    split_ratio: float = SIMCC_SPLIT_RATIO
    sigma: tuple[float, float] | None = None    # SimCC Gaussian (x, y) in bins; None: the codec's default
    mean: tuple[float, float, float] = IMAGE_MEAN_RGB
    std: tuple[float, float, float] = IMAGE_STD_RGB
    depth: DepthCodec | None = None             # the student's depth head; None: a 2D student

    @property
    def num_bins(self) -> tuple[int, int]:
        """(x bins, y bins)."""
        height, width = self.input_size
        return int(round(width * self.split_ratio)), int(round(height * self.split_ratio))

    @property
    def codec_sigma(self) -> tuple[float, float]:
        return self.sigma if self.sigma is not None else default_sigma(self.input_size, self.split_ratio)


@dataclass
class TeacherOutput:
    """One teacher's view of a batch, already in the student's keypoint order and bins.

    `simcc_x`/`simcc_y` are logits (or soft targets made from coordinates, used the same way: softmax(beta * t));
    rows of student keypoints the teacher does not give are zero and `mask` is False there.
    """

    simcc_x: torch.Tensor               # (N, K_student, x bins)
    simcc_y: torch.Tensor               # (N, K_student, y bins)
    mask: torch.Tensor                  # (N, K_student) bool: which student channels this teacher supervises
    feature: torch.Tensor | None = None  # (N, C, h, w) the teacher's last backbone feature, when asked for
    simcc_z: torch.Tensor | None = None  # (N, K_student, student depth bins): a 3D teacher's depth logits, for a
                                         # student with a depth head (zero rows where `mask` is False)


class Teacher(ABC):
    """A frozen source of per-keypoint distributions for the student, with its own skeleton.

    Teachers are deliberately not `nn.Module`s: an objective holds them without their weights becoming part of its
    parameters or checkpoints. They follow the batch to its device.
    """

    feature_channels: int | None = None    # channels of `TeacherOutput.feature`; None when it has no feature

    def __init__(self, name: str, skeleton: Skeleton, student: StudentSpace) -> None:
        self.name = name
        self.skeleton = skeleton
        self.student = student
        self.mapping = keypoint_mapping(skeleton, student.skeleton)
        if not self.mapping.mask.any():
            raise ValueError(f"teacher {name!r}: its skeleton {skeleton.name!r} shares no keypoint with the student's "
                             f"{student.skeleton.name!r}")
        student_channels = np.flatnonzero(self.mapping.src_index >= 0)
        self.student_channels = torch.from_numpy(student_channels)
        self.teacher_channels = torch.from_numpy(self.mapping.src_index[student_channels])
        self._channels_on: dict[torch.device, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    @abstractmethod
    def identity(self) -> str:
        """A string that changes whenever the teacher's predictions could (e.g. the model file's hash)."""

    @property
    def covered(self) -> torch.Tensor:
        """(K_student,) bool: the student channels this teacher's skeleton provides."""
        return torch.from_numpy(self.mapping.src_index >= 0)

    @abstractmethod
    def __call__(self, batch: dict[str, torch.Tensor], with_feature: bool = False) -> TeacherOutput:
        """Predictions for a training batch (see `unionpose.data.dataset`: 'image', 'matrix', 'flipped', ...)."""

    def channels_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(student channels, teacher channels, `covered`) on `device`, copied there once: copying them from host
        memory at every step would make the host wait for the GPU each time."""
        if device not in self._channels_on:
            self._channels_on[device] = (self.student_channels.to(device), self.teacher_channels.to(device),
                                         self.covered.to(device))
        return self._channels_on[device]

    def to_student_channels(self, values: torch.Tensor) -> torch.Tensor:
        """(N, K_teacher, ...) -> (N, K_student, ...): teacher rows moved to their student channels, zeros elsewhere."""
        shape = (values.shape[0], self.student.skeleton.num_keypoints) + tuple(values.shape[2:])
        placed = values.new_zeros(shape)
        student_channels, teacher_channels, _ = self.channels_on(values.device)
        placed[:, student_channels] = values[:, teacher_channels]
        return placed

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, skeleton={self.skeleton.name!r})"


def file_identity(path: str | Path) -> str:
    """'sha256:<hex>' of a file's bytes: the identity of a teacher loaded from that file."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"

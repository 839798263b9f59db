"""The common part of teachers that are SimCC pose models (a model file or an ONNX graph) run on the student's crop."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from unionpose.core.model_description import ModelInfo
from unionpose.core.simcc import SimCCCodec
from unionpose.teachers.base import StudentSpace, Teacher, TeacherOutput
from unionpose.teachers.resample import BinResampler, DepthResampler, renormalise, resize_crops


# What `LogitTeacher.run` gives: simcc_x, simcc_y, the backbone feature (when asked for), the depth logits (3D models).
TeacherLogits = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]


class LogitTeacher(Teacher):
    """A pose model that gives SimCC logits for a crop, run online on the student's augmented crop.

    The crop is re-normalised to the teacher's mean/std and resized to its input size; its logits are resampled to
    the student's bins (see `teachers.resample` for the geometry) and placed at the student's channels by name.
    A teacher with a depth head gives a student with one its depth logits too, read at the student's depth bins.
    """

    def __init__(self, name: str, info: ModelInfo, student: StudentSpace) -> None:
        super().__init__(name, info.skeleton, student)
        self.info = info
        self.input_size = info.input_size
        (teacher_h, teacher_w), (student_h, student_w) = info.input_size, student.input_size
        self.resample_x = BinResampler(teacher_w, info.split_ratio, student_w, student.split_ratio)
        self.resample_y = BinResampler(teacher_h, info.split_ratio, student_h, student.split_ratio)
        both_3d = info.depth is not None and student.depth is not None
        self.resample_z = DepthResampler(info.depth, student.depth) if both_3d else None

    @abstractmethod
    def run(self, images: torch.Tensor, with_feature: bool) -> TeacherLogits:
        """Crops already normalised and sized for this teacher -> (simcc_x, simcc_y, feature or None, simcc_z or
        None), no autograd."""

    def teacher_input(self, student_images: torch.Tensor) -> torch.Tensor:
        """The student's normalised crops as this teacher takes them."""
        images = renormalise(student_images.float(), self.student.mean, self.student.std, self.info.mean, self.info.std)
        return resize_crops(images, self.input_size)

    def __call__(self, batch: dict[str, torch.Tensor], with_feature: bool = False) -> TeacherOutput:
        images = batch["image"]
        simcc_x, simcc_y, feature, simcc_z = self.run(self.teacher_input(images), with_feature)
        simcc_x = self.to_student_channels(self.resample_x(simcc_x.float()))
        simcc_y = self.to_student_channels(self.resample_y(simcc_y.float()))
        if simcc_z is not None and self.resample_z is not None:
            simcc_z = self.to_student_channels(self.resample_z(simcc_z.float()))
        else:
            simcc_z = None
        mask = self.channels_on(images.device)[2].expand(images.shape[0], -1)
        return TeacherOutput(simcc_x, simcc_y, mask, feature, simcc_z)

    def predict_crops(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 crops (N, H, W, 3) at this teacher's input size -> keypoints (N, K_teacher, 2) in crop pixels
        and scores (N, K_teacher), decoded as RTMPose does (argmax per axis). Used to build prediction caches."""
        mean = np.asarray(self.info.mean, dtype=np.float32)
        std = np.asarray(self.info.std, dtype=np.float32)
        images = torch.from_numpy(((crops_rgb.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2).copy())
        simcc_x, simcc_y, _, _ = self.run(images, with_feature=False)
        codec = SimCCCodec(self.input_size, self.info.sigma, self.info.split_ratio)
        return codec.decode(simcc_x.float().cpu().numpy(), simcc_y.float().cpu().numpy())

"""A teacher from a UnionPose model file: any skeleton, any input size, run in PyTorch (gives its backbone feature)."""
from __future__ import annotations

from pathlib import Path

import torch

from unionpose.core.model_description import ModelInfo
from unionpose.models.model_file import load_model_file
from unionpose.models.rtmpose import RTMPose
from unionpose.teachers.base import StudentSpace, file_identity
from unionpose.teachers.logit_teacher import LogitTeacher, TeacherLogits


class CheckpointTeacher(LogitTeacher):
    """A frozen RTMPose (eval mode, no gradients) that moves itself to the device of the batch it is given."""

    def __init__(self, model: RTMPose, info: ModelInfo, student: StudentSpace, name: str, identity: str) -> None:
        super().__init__(name, info, student)
        if model.num_keypoints != info.skeleton.num_keypoints or tuple(model.input_size) != tuple(info.input_size):
            raise ValueError(f"teacher {name!r}: the model ({model.num_keypoints} keypoints, input "
                             f"{model.input_size}) does not match its description ({info.skeleton.num_keypoints} "
                             f"keypoints, input {info.input_size})")
        self.model = model.eval().requires_grad_(False)
        self.feature_channels = model.backbone.out_channels
        self._identity = identity

    @classmethod
    def from_file(cls, path: str | Path, student: StudentSpace, name: str | None = None) -> CheckpointTeacher:
        """Load a model file; its SHA-256 is the teacher's identity (what a prediction cache is checked against)."""
        path = Path(path)
        model, info = load_model_file(path)
        return cls(model, info, student, name or path.stem, file_identity(path))

    @property
    def identity(self) -> str:
        return self._identity

    def run(self, images: torch.Tensor, with_feature: bool) -> TeacherLogits:
        if next(self.model.parameters()).device != images.device:
            self.model.to(images.device)
        self.model.eval()
        with torch.inference_mode():    # no autograd bookkeeping at all (no_grad still counts tensor versions)
            feature = self.model.forward_features(images)
            simcc_x, simcc_y, *simcc_z = self.model.forward_head(feature)
        return simcc_x, simcc_y, feature if with_feature else None, simcc_z[0] if simcc_z else None

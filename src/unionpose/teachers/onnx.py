"""A teacher from an ONNX pose model in the public RTMPose/DWPose layout (input `input`, outputs simcc_x, simcc_y),
or a UnionPose export (which may add `simcc_z`, the depth logits of a 3D model)."""
from __future__ import annotations

from pathlib import Path

import torch

from unionpose.infer.backends import OnnxBackend, load_pose_model
from unionpose.skeletons import Skeleton, get_skeleton
from unionpose.teachers.base import StudentSpace, file_identity
from unionpose.teachers.logit_teacher import LogitTeacher, TeacherLogits


class OnnxTeacher(LogitTeacher):
    """Runs the graph with ONNXRuntime on the CPU; the logits come back on the batch's device.

    UnionPose exports describe themselves in the graph's metadata. A foreign graph (e.g. a released RTMPose or
    DWPose `.onnx`) needs its `skeleton`, and its `input_size` (h, w) when the graph's input is not fixed-size; it is
    taken to expect RGB crops normalised with ImageNet's mean and std, as RTMPose does. No backbone feature.
    """

    def __init__(self, path: str | Path, student: StudentSpace, name: str | None = None,
                 skeleton: str | Skeleton | None = None, input_size: tuple[int, int] | None = None) -> None:
        path = Path(path)
        backend, info = load_pose_model(path, skeleton, input_size)
        if not isinstance(backend, OnnxBackend):
            raise ValueError(f"{path}: an ONNX teacher needs an .onnx file (a model file is a 'checkpoint' teacher)")
        if backend.decoded:
            raise ValueError(f"{path}: this graph outputs decoded keypoints; distillation needs the SimCC logits "
                             "(export it without decoding)")
        declared = get_skeleton(skeleton) if isinstance(skeleton, str) else skeleton
        if declared is not None and declared != info.skeleton:
            raise ValueError(f"{path}: the graph's metadata says skeleton {info.skeleton.name!r}, "
                             f"not {declared.name!r}")
        if input_size is not None and tuple(input_size) != tuple(info.input_size):
            raise ValueError(f"{path}: the graph takes {info.input_size[0]}x{info.input_size[1]} (h x w) crops, "
                             f"not the declared {input_size[0]}x{input_size[1]}")
        super().__init__(name or path.stem, info, student)
        self.backend = backend
        self._identity = file_identity(path)

    @property
    def identity(self) -> str:
        return self._identity

    def run(self, images: torch.Tensor, with_feature: bool) -> TeacherLogits:
        """x and y logits, and the depth logits of a UnionPose export with a depth head (`simcc_z`). A graph with a
        fixed batch size runs chunk by chunk (`OnnxBackend`)."""
        if with_feature:
            raise ValueError(f"teacher {self.name!r} is an ONNX graph and gives no backbone feature for feature "
                             "distillation; use its model file as a 'checkpoint' teacher or set loss.feature_kd: null")
        outputs = [torch.from_numpy(output).to(images.device)
                   for output in self.backend(images.detach().float().cpu().numpy())]
        simcc_z = outputs[2] if len(outputs) == 3 and self.info.depth is not None else None
        return outputs[0], outputs[1], None, simcc_z

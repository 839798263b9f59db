"""The multi-teacher distillation objective of the unified-skeleton paper and DWPose's stage 1, and its `loss:` spec."""
from __future__ import annotations

from typing import Literal, Sequence

import torch
from pydantic import Field
from torch import nn

from unionpose.core.config_schema import ConfigModel
from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.data.instance import Instance
from unionpose.distill.depth_loss import depth_gt_loss, depth_kd_loss
from unionpose.distill.losses import (
    DecaySchedule,
    conditional_gt_loss,
    distillation_decay,
    feature_kd_loss,
    logit_kd_loss,
)
from unionpose.teachers.base import StudentSpace, Teacher
from unionpose.teachers.spec import TeacherSpec, build_teacher


class LossSpec(ConfigModel):
    """The `loss:` section of a recipe. Defaults are the paper's (Khan et al. 2024), with the decay on every term."""

    alpha: float = Field(0.3, ge=0.0, le=1.0)            # share of the ground-truth loss
    kd_logit_scale: float = Field(KL_LOGIT_SCALE, gt=0.0)  # factor on the logits in the KD softmax (DWPose's 10)
    kd_points: Literal["all", "visible"] = "all"         # distil every teacher point, or only GT-visible ones
    feature_kd: float | None = Field(None, gt=0.0)       # weight of DWPose's feature loss (7e-5), or off
    decay: DecaySchedule = "linear"                      # 1 - epoch / max_epochs on every distillation term
    depth_weight: float = Field(1.0, ge=0.0)             # weight of the depth terms (a model with a depth head)


class DistillationObjective(nn.Module):
    """`objective(model, batch, epoch, max_epochs) -> {"loss", "gt", "kd/<teacher>", "feat/<teacher>", "decay"}`.

    loss = alpha * GT + (1 - alpha) * sum_j beta_j * d * KD_j + sum_j d * FEAT_j, with d = 1 - epoch / max_epochs
    (or 1). GT is the conditional ground-truth loss, KD_j the logit loss against teacher j over the student channels
    that teacher's skeleton provides, FEAT_j DWPose's feature loss (its weight `feature_kd` inside it).

    Choices, stated: the decay multiplies *every* distillation term, logit and feature, of every teacher (the paper's
    released code decayed one teacher only and added some terms twice; that is not reproduced). The feature terms sit
    outside the (1 - alpha) share because they carry their own weight, as in DWPose, whose stage 1 is therefore this
    objective with alpha 0.5, beta 0.1 and feature_kd 3.5e-5 (DWPose's loss, halved). Logged terms are the unweighted
    KD_j and FEAT_j; "decay" is d.

    A student with a depth head adds depth_weight x (alpha * GT_z + (1 - alpha) * sum_j beta_j * d * KD_z_j): the
    conditional depth loss on 3D labels and, for each teacher with a depth head (a 3D model file), the logit KD on
    its depth logits ("depth", "kd_z/<teacher>"); teachers without depth distil x and y only.

    The 1x1 alignment convs of feature KD are this module's parameters (the trainer optimises and checkpoints them).
    The teachers are not: they are held outside the module's parameters and follow the batch's device.
    """

    def __init__(self, spec: LossSpec, teachers: Sequence[tuple[Teacher, float]],
                 student_channels: int | None = None) -> None:
        """`teachers` pairs each teacher with its beta; `student_channels` is the student backbone's output width,
        needed for feature KD (`model.backbone.out_channels`)."""
        super().__init__()
        if not teachers:
            raise ValueError("DistillationObjective needs at least one teacher (without teachers, train on the "
                             "ground truth alone)")
        names = [teacher.name for teacher, _ in teachers]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
        self.spec = spec
        self.teachers = tuple((teacher, float(beta)) for teacher, beta in teachers)
        self.align = nn.ModuleDict()
        if spec.feature_kd is not None:
            if student_channels is None:
                raise ValueError("feature distillation needs the student backbone's channel count")
            for teacher, _ in self.teachers:
                self._check_feature_teacher(teacher)
                self.align[teacher.name] = nn.Conv2d(student_channels, teacher.feature_channels, kernel_size=1)

    @classmethod
    def from_specs(cls, spec: LossSpec, teachers: Sequence[TeacherSpec], student: StudentSpace,
                   student_channels: int, instances: Sequence[Instance] | None = None) -> DistillationObjective:
        """The objective a recipe's `loss:` and `teachers:` sections describe; cached teachers need the training
        `instances` (the list the batch's `instance_index` refers to)."""
        return cls(spec, [(build_teacher(teacher, student, instances), teacher.beta) for teacher in teachers],
                   student_channels)

    @staticmethod
    def _check_feature_teacher(teacher: Teacher) -> None:
        if teacher.feature_channels is None:
            raise ValueError(f"loss.feature_kd is set but teacher {teacher.name!r} ({type(teacher).__name__}) gives no "
                             "backbone feature; use a 'checkpoint' teacher online, or set loss.feature_kd: null")
        teacher_size = tuple(getattr(teacher, "input_size", ()))
        student_size = tuple(teacher.student.input_size)
        if len(teacher_size) != 2 or teacher_size[0] < student_size[0] or teacher_size[1] < student_size[1]:
            raise ValueError(f"loss.feature_kd: teacher {teacher.name!r} takes {teacher_size} crops but the student "
                             f"{student_size}; feature maps can only be compared at the same size or with a teacher "
                             "input at least the student's on both sides (its feature is then area-averaged onto "
                             "the student's grid)")

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor], epoch: int,
                max_epochs: int) -> dict[str, torch.Tensor]:
        student_feature: list[torch.Tensor] = []
        if self.align:   # capture the backbone's output through a hook, so a DDP-wrapped model is called as a whole
            backbone = getattr(model, "module", model).backbone
            hook = backbone.register_forward_hook(lambda module, inputs, output: student_feature.append(output))
            try:
                simcc_x, simcc_y, *simcc_z = model(batch["image"])
            finally:
                hook.remove()
        else:
            simcc_x, simcc_y, *simcc_z = model(batch["image"])

        alpha = self.spec.alpha
        decay = distillation_decay(epoch, max_epochs, self.spec.decay)
        gt = conditional_gt_loss(simcc_x, simcc_y, batch, KL_LOGIT_SCALE)
        terms = {"gt": gt.detach()}
        loss = alpha * gt
        depth_weight = self.spec.depth_weight
        if simcc_z:
            depth = depth_gt_loss(simcc_z[0], batch, KL_LOGIT_SCALE)
            terms["depth"] = depth.detach()
            loss = loss + depth_weight * alpha * depth
        for teacher, beta in self.teachers:
            with_feature = teacher.name in self.align
            output = teacher(batch, with_feature=with_feature)
            weight = output.mask.float()
            if self.spec.kd_points == "visible":
                weight = weight * (batch["visible"] > 0).float()
            kd = logit_kd_loss(simcc_x, simcc_y, output.simcc_x, output.simcc_y, weight,
                               int(teacher.covered.sum()), self.spec.kd_logit_scale)
            terms[f"kd/{teacher.name}"] = kd.detach()
            loss = loss + (1.0 - alpha) * beta * decay * kd
            if simcc_z and output.simcc_z is not None:
                kd_z = depth_kd_loss(simcc_z[0], output.simcc_z, weight, int(teacher.covered.sum()),
                                     self.spec.kd_logit_scale)
                terms[f"kd_z/{teacher.name}"] = kd_z.detach()
                loss = loss + depth_weight * (1.0 - alpha) * beta * decay * kd_z
            if with_feature:
                feature = feature_kd_loss(student_feature[0], output.feature, self.align[teacher.name],
                                          self.spec.feature_kd)
                terms[f"feat/{teacher.name}"] = feature.detach()
                loss = loss + decay * feature
        terms["decay"] = loss.new_full((), decay)   # filled on the device: no copy from host memory to wait for
        terms["loss"] = loss
        return terms

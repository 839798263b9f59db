"""The distillation losses: conditional ground truth, per-teacher logit KD, feature KD, and the decay schedule."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.distill.simcc_loss import kl_discrete_loss

DecaySchedule = Literal["linear", "none"]


def conditional_gt_loss(simcc_x: torch.Tensor, simcc_y: torch.Tensor, batch: dict[str, torch.Tensor],
                        logit_scale: float = KL_LOGIT_SCALE) -> torch.Tensor:
    """The paper's conditional ground-truth loss: RTMPose's KL-discrete loss over the points the instance's dataset
    annotates, and only those.

    The codec's `target_weight` is already 0 where a point is not annotated, not visible or out of range; the weight is
    multiplied by `annotated` as well so that the condition holds by construction, whatever produced the targets: a
    point the dataset does not label never receives a ground-truth gradient.
    """
    weight = batch["target_weight"].float() * batch["annotated"].float()
    return kl_discrete_loss(simcc_x, simcc_y, batch["target_x"], batch["target_y"], weight, logit_scale)


def logit_kd_loss(student_x: torch.Tensor, student_y: torch.Tensor, teacher_x: torch.Tensor, teacher_y: torch.Tensor,
                  weight: torch.Tensor, num_keypoints: int, logit_scale: float = KL_LOGIT_SCALE) -> torch.Tensor:
    """DWPose's logit distillation (Yang et al. 2023), over the points `weight` (N, K) selects.

    Per axis: sum over bins of KL(softmax(s * teacher) || softmax(s * student)) with s = `logit_scale` (a factor on
    the logits: an inverse temperature), times `weight`, summed over
    keypoints, averaged over the batch; x and y added; divided by `num_keypoints` (the number of student channels the
    teacher supervises, as DWPose divides by the channels it compares). This differs from `kl_discrete_loss` in its
    reduction (sum over bins, mean over the batch), hence its own few lines. Computed in float32; the teacher is a
    constant (no gradient flows into it).
    """
    batch_size = student_x.shape[0]
    total = student_x.new_zeros((), dtype=torch.float32)
    for student, teacher in ((student_x, teacher_x), (student_y, teacher_y)):
        if student.shape != teacher.shape:
            raise ValueError(f"logit_kd_loss: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} "
                             "logits must have the same shape")
        log_prediction = F.log_softmax(logit_scale * student.float(), dim=-1)
        soft_target = F.softmax(logit_scale * teacher.detach().float(), dim=-1)
        per_point = F.kl_div(log_prediction, soft_target, reduction="none").sum(dim=-1)    # (N, K)
        total = total + (per_point * weight.float()).sum() / batch_size
    return total / max(int(num_keypoints), 1)


def feature_kd_loss(student_feature: torch.Tensor, teacher_feature: torch.Tensor, align: nn.Module,
                    weight: float = 7e-5) -> torch.Tensor:
    """DWPose's feature distillation (Yang et al. 2023): `weight` * sum((align(student) - teacher)^2) / batch size,
    where `align` is a trainable 1x1 conv (with bias) from the student's channels to the teacher's.

    A teacher with a larger input (the same crop, resized) has a finer feature map over the same image area; it is
    area-averaged onto the student's grid first (each student cell against the teacher cells it covers).
    """
    aligned = align(student_feature)
    teacher = teacher_grid(teacher_feature.detach().float(), tuple(aligned.shape[-2:]))
    if aligned.shape != teacher.shape:
        raise ValueError(f"feature_kd_loss: the aligned student feature {tuple(aligned.shape)} and the teacher's "
                         f"{tuple(teacher_feature.shape)} differ (feature KD needs a teacher input at least the "
                         "student's on both sides)")
    return weight * (aligned.float() - teacher).square().sum() / student_feature.shape[0]


def teacher_grid(teacher_feature: torch.Tensor, student_grid: tuple[int, int]) -> torch.Tensor:
    """The teacher's feature on the student's (h, w) grid: unchanged when the grids match, area-averaged (adaptive
    average pooling) when the teacher's is at least as fine on both sides; otherwise returned as is (the caller
    reports the mismatch)."""
    height, width = teacher_feature.shape[-2:]
    if (height, width) != tuple(student_grid) and height >= student_grid[0] and width >= student_grid[1]:
        return F.adaptive_avg_pool2d(teacher_feature, student_grid)
    return teacher_feature


def distillation_decay(epoch: int, max_epochs: int, schedule: DecaySchedule = "linear") -> float:
    """The weight of every distillation term at `epoch` (0-based): DWPose's 1 - epoch / max_epochs, or 1."""
    if schedule == "none":
        return 1.0
    if schedule != "linear":
        raise ValueError(f"unknown distillation decay {schedule!r}; known: linear, none")
    if max_epochs <= 0:
        raise ValueError(f"max_epochs must be positive, got {max_epochs}")
    return max(0.0, 1.0 - epoch / max_epochs)

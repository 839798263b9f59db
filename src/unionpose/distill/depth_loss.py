"""The depth terms: the conditional depth loss on 3D labels and depth distillation from a 3D teacher (docs/3d.md).

Depth is a third SimCC axis, so both terms are the x/y losses on one more axis: the ground-truth term is RTMPose's
KL-discrete loss weighted by `annotated_z` (a 2D-only source never receives a depth gradient, as the conditional loss
of the unified-skeleton paper never supervises points a dataset does not label), the distillation term DWPose's
logit KD on the teacher's depth logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from unionpose.core.constants import KL_LOGIT_SCALE


def depth_gt_loss(simcc_z: torch.Tensor, batch: dict[str, torch.Tensor],
                  logit_scale: float = KL_LOGIT_SCALE) -> torch.Tensor:
    """KL(softmax(s * target_z) || softmax(s * logits)) averaged over the depth bins, times `target_z_weight` (0
    where a point has no 3D label or lies outside the depth range), summed over batch and keypoints, divided by K:
    `kl_discrete_loss`'s reduction, on the depth axis alone."""
    target, weight = batch["target_z"], batch["target_z_weight"]
    if simcc_z.shape != target.shape:
        raise ValueError(f"depth_gt_loss: logits {tuple(simcc_z.shape)} and target_z {tuple(target.shape)} differ "
                         "(was the data encoded with the model's depth codec?)")
    dtype = torch.promote_types(simcc_z.dtype, torch.float32)
    log_prediction = F.log_softmax(logit_scale * simcc_z.to(dtype), dim=-1)
    soft_target = F.softmax(logit_scale * target.to(dtype), dim=-1)
    per_point = F.kl_div(log_prediction, soft_target, reduction="none").mean(dim=-1)    # (N, K)
    return (per_point * weight.to(dtype)).sum() / simcc_z.shape[1]


def depth_kd_loss(student_z: torch.Tensor, teacher_z: torch.Tensor, weight: torch.Tensor, num_keypoints: int,
                  logit_scale: float = KL_LOGIT_SCALE) -> torch.Tensor:
    """DWPose's logit KD (`logit_kd_loss`) on the depth axis: KL summed over the bins, times `weight` (N, K), summed
    over keypoints, averaged over the batch, divided by the channels the teacher supervises."""
    if student_z.shape != teacher_z.shape:
        raise ValueError(f"depth_kd_loss: student {tuple(student_z.shape)} and teacher {tuple(teacher_z.shape)} "
                         "depth logits must have the same shape")
    log_prediction = F.log_softmax(logit_scale * student_z.float(), dim=-1)
    soft_target = F.softmax(logit_scale * teacher_z.detach().float(), dim=-1)
    per_point = F.kl_div(log_prediction, soft_target, reduction="none").sum(dim=-1)
    return (per_point * weight.float()).sum() / student_z.shape[0] / max(int(num_keypoints), 1)

"""The KL-discrete loss of RTMPose on SimCC logits (Jiang et al. 2023), with a per-keypoint weight."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from unionpose.core.constants import KL_LOGIT_SCALE


def kl_discrete_loss(
    logits_x: torch.Tensor,
    logits_y: torch.Tensor,
    target_x: torch.Tensor,
    target_y: torch.Tensor,
    weight: torch.Tensor,
    logit_scale: float = KL_LOGIT_SCALE,
) -> torch.Tensor:
    """KL(softmax(s * target) || softmax(s * logits)) per axis, averaged over bins, with s = `logit_scale`.

    Each (sample, keypoint) term is multiplied by `weight` (N, K), summed over the batch and keypoints, x and y are
    added, and the total is divided by K, not by the batch size (as the RTMPose recipe does; the update of a larger
    batch is a sum, which AdamW normalises away). A zero weight removes a keypoint entirely, so the GT target's weight
    (0 where the instance's dataset does not annotate the point, or it is not visible) makes this the *conditional*
    loss of the unified-skeleton paper. Soft teacher logits can stand in for `target_*` with the same maths.
    Computed in float32 at least, whatever the autocast precision: the softmax over ~400 bins needs it.
    """
    if logits_x.shape != target_x.shape or logits_y.shape != target_y.shape:
        raise ValueError(
            f"kl_discrete_loss: logits {tuple(logits_x.shape)}, {tuple(logits_y.shape)} and targets "
            f"{tuple(target_x.shape)}, {tuple(target_y.shape)} must have the same shapes"
        )
    if weight.shape != logits_x.shape[:2]:
        raise ValueError(f"kl_discrete_loss: weight must be (N, K) = {tuple(logits_x.shape[:2])}, "
                         f"got {tuple(weight.shape)}")
    num_keypoints = logits_x.shape[1]
    dtype = torch.promote_types(logits_x.dtype, torch.float32)
    total = logits_x.new_zeros((), dtype=dtype)
    for logits, target in ((logits_x, target_x), (logits_y, target_y)):
        log_prediction = F.log_softmax(logit_scale * logits.to(dtype), dim=-1)
        soft_target = F.softmax(logit_scale * target.to(dtype), dim=-1)
        per_point = F.kl_div(log_prediction, soft_target, reduction="none").mean(dim=-1)   # (N, K)
        total = total + (per_point * weight.to(dtype)).sum()
    return total / num_keypoints

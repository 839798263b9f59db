"""The ground-truth training objective: the student's SimCC logits against the codec's targets."""
from __future__ import annotations

import torch
from torch import nn

from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.distill.depth_loss import depth_gt_loss
from unionpose.distill.simcc_loss import kl_discrete_loss


class GroundTruthObjective(nn.Module):
    """`objective(model, batch, epoch, max_epochs) -> {"loss": ...}`: plain supervised training.

    This is the seam the trainer calls every step. An objective is an `nn.Module` so that a distillation objective can
    own trainable parameters (a feature-alignment conv) and frozen teachers: the trainer optimises and checkpoints the
    objective's parameters beside the model's. It returns a dict of scalar tensors: "loss" is minimised, every entry
    is logged. The target weight already excludes the points an instance's dataset does not annotate.

    A model with a depth head adds `depth_weight` x the conditional depth loss (logged as "depth"); a 2D model's loss
    is the KL-discrete loss alone, as before.
    """

    def __init__(self, logit_scale: float = KL_LOGIT_SCALE, depth_weight: float = 1.0) -> None:
        super().__init__()
        self.logit_scale = float(logit_scale)
        self.depth_weight = float(depth_weight)

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor], epoch: int,
                max_epochs: int) -> dict[str, torch.Tensor]:
        simcc_x, simcc_y, *simcc_z = model(batch["image"])
        loss = kl_discrete_loss(simcc_x, simcc_y, batch["target_x"], batch["target_y"], batch["target_weight"],
                                logit_scale=self.logit_scale)
        if not simcc_z:
            return {"loss": loss}
        depth = depth_gt_loss(simcc_z[0], batch, self.logit_scale)
        return {"loss": loss + self.depth_weight * depth, "gt": loss.detach(), "depth": depth.detach()}

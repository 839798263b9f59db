"""The ground-truth training objective: the student's SimCC logits against the codec's targets."""
from __future__ import annotations

import torch
from torch import nn

from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.distill.simcc_loss import kl_discrete_loss


class GroundTruthObjective(nn.Module):
    """`objective(model, batch, epoch, max_epochs) -> {"loss": ...}`: plain supervised training.

    This is the seam the trainer calls every step. An objective is an `nn.Module` so that a distillation objective can
    own trainable parameters (a feature-alignment conv) and frozen teachers: the trainer optimises and checkpoints the
    objective's parameters beside the model's. It returns a dict of scalar tensors: "loss" is minimised, every entry
    is logged. The target weight already excludes the points an instance's dataset does not annotate.
    """

    def __init__(self, logit_scale: float = KL_LOGIT_SCALE) -> None:
        super().__init__()
        self.logit_scale = float(logit_scale)

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor], epoch: int,
                max_epochs: int) -> dict[str, torch.Tensor]:
        simcc_x, simcc_y = model(batch["image"])
        loss = kl_discrete_loss(simcc_x, simcc_y, batch["target_x"], batch["target_y"], batch["target_weight"],
                                logit_scale=self.logit_scale)
        return {"loss": loss}

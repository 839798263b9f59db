"""DWPose stage 2: a fresh head trained on the frozen stage-1 backbone from the stage-1 model's own logits.

The stage-1 model is the teacher; the student shares its backbone (loaded from the stage-1 file, frozen: no
gradients, BatchNorm in eval mode), so both heads read the very same feature and the backbone runs once per step.
The only loss is DWPose's logit KD (Yang et al. 2023), without decay (decaying the only term would just shrink the
learning rate). The final model file is the stage-1 backbone, copied bit for bit, plus the new head.
"""
from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field
from torch import nn

from unionpose.core.config_schema import ConfigModel
from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.distill.losses import logit_kd_loss
from unionpose.models.model_file import load_model_file, save_model_file
from unionpose.models.rtmcc_head import RTMCCHead
from unionpose.models.rtmpose import RTMPose
from unionpose.teachers.base import file_identity


class Stage2Spec(ConfigModel):
    """The `stage2:` section of a DWPose stage-2 recipe: the student is built from `stage1` (its backbone, frozen,
    and a fresh head), trained with `HeadSelfDistillation`, and written out by `finalise_stage2`."""

    stage1: Path                                       # the stage-1 model file: teacher and frozen backbone
    kd_logit_scale: float = Field(KL_LOGIT_SCALE, gt=0.0)   # factor on the logits in the KD softmax


def freeze_backbone(model: RTMPose) -> RTMPose:
    """No gradients and eval-mode BatchNorm for the backbone (call `.eval()` on it again after any `model.train()`)."""
    model.backbone.requires_grad_(False)
    model.backbone.eval()
    return model


def prepare_stage2_student(stage1_path: str | Path) -> RTMPose:
    """The stage-2 student: the stage-1 backbone, frozen, and a freshly initialised head (a new model's)."""
    stage1, info = load_model_file(stage1_path)
    student = RTMPose(info.model_size, info.skeleton.num_keypoints, info.input_size, info.split_ratio)
    student.backbone.load_state_dict(stage1.backbone.state_dict())
    return freeze_backbone(student)


class HeadSelfDistillation(nn.Module):
    """`objective(model, batch, epoch, max_epochs) -> {"loss", "kd/stage1"}` for a student from
    `prepare_stage2_student`: its logits against the stage-1 head's on the shared frozen feature."""

    def __init__(self, stage1_path: str | Path, kd_logit_scale: float = KL_LOGIT_SCALE) -> None:
        super().__init__()
        stage1, _ = load_model_file(stage1_path)
        self.source = str(stage1_path)
        # Plain attributes, not submodules: neither is trained nor saved with the objective.
        self._teacher_head: tuple[RTMCCHead] = (stage1.head.requires_grad_(False).eval(),)
        self._stage1_backbone = {key: value.clone() for key, value in stage1.backbone.state_dict().items()}
        self.kd_logit_scale = float(kd_logit_scale)

    def _check_student(self, backbone: nn.Module) -> None:
        """Once: the student must carry the stage-1 backbone, or the teacher head would read another feature."""
        state = backbone.state_dict()
        differing = [key for key, value in self._stage1_backbone.items()
                     if key not in state or not torch.equal(state[key].cpu(), value)]
        if differing:
            raise ValueError(f"stage 2: the student's backbone is not the stage-1 backbone of {self.source} "
                             f"({len(differing)} tensors differ, e.g. {differing[0]}); build the student with "
                             "prepare_stage2_student")
        if any(parameter.requires_grad for parameter in backbone.parameters()):
            raise ValueError("stage 2: the student's backbone must be frozen (see freeze_backbone)")
        self._stage1_backbone = {}

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor], epoch: int,
                max_epochs: int) -> dict[str, torch.Tensor]:
        backbone = getattr(model, "module", model).backbone
        if self._stage1_backbone:
            self._check_student(backbone)
        backbone.eval()    # the trainer's model.train() must not let the frozen BatchNorm update its statistics
        feature: list[torch.Tensor] = []
        hook = backbone.register_forward_hook(lambda module, inputs, output: feature.append(output))
        try:
            simcc_x, simcc_y = model(batch["image"])[:2]
        finally:
            hook.remove()
        head = self._teacher_head[0]
        if next(head.parameters()).device != feature[0].device:
            head.to(feature[0].device)
        with torch.no_grad():
            teacher_x, teacher_y = head(feature[0])
        weight = torch.ones(simcc_x.shape[:2], device=simcc_x.device)
        kd = logit_kd_loss(simcc_x, simcc_y, teacher_x, teacher_y, weight, simcc_x.shape[1], self.kd_logit_scale)
        return {"loss": kd, "kd/stage1": kd.detach()}


def finalise_stage2(stage1_path: str | Path, stage2: RTMPose | str | Path, output: str | Path) -> Path:
    """Write the final model file: the stage-1 backbone (bit-identical) and the stage-2 head (a model or model file)."""
    stage1, info = load_model_file(stage1_path)
    head_source = load_model_file(stage2)[0] if isinstance(stage2, (str, Path)) else getattr(stage2, "module", stage2)
    final = RTMPose(info.model_size, info.skeleton.num_keypoints, info.input_size, info.split_ratio)
    final.backbone.load_state_dict(stage1.backbone.state_dict())
    try:
        final.head.load_state_dict(head_source.head.state_dict())
    except RuntimeError as error:
        raise ValueError(f"stage 2: the trained head does not fit the stage-1 model of {stage1_path}: "
                         f"{error}") from error
    extra = {**info.extra, "distillation": "dwpose-stage2", "stage1_model": file_identity(stage1_path)}
    return save_model_file(output, final, info.skeleton, codec_sigma=info.sigma, extra=extra)

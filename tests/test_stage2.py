"""DWPose stage 2: a new head trained on the frozen stage-1 backbone; the final file keeps that backbone bit for bit."""
from __future__ import annotations

import pytest
import torch
from distill_support import SIZE, coco_mpii_mixture, make_batch, smooth_teacher
from safetensors.torch import load_file

from unionpose.distill.stage2 import HeadSelfDistillation, finalise_stage2, prepare_stage2_student
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton


@pytest.fixture(scope="module")
def batch():
    return make_batch(coco_mpii_mixture(), [0, 3, 12, 14])


@pytest.fixture(scope="module")
def stage1_file(tmp_path_factory, batch):
    skeleton = get_skeleton("coco_wholebody133")
    path = tmp_path_factory.mktemp("stage1") / "stage1.safetensors"
    return save_model_file(path, smooth_teacher(skeleton, batch["image"]), skeleton, extra={"recipe": "test"})


def backbone_tensors(path) -> dict[str, torch.Tensor]:
    return {key: value for key, value in load_file(path).items() if key.startswith("backbone.")}


def test_stage2_trains_a_new_head_and_keeps_the_stage1_backbone_bit_for_bit(stage1_file, batch, tmp_path):
    stage1 = backbone_tensors(stage1_file)
    student = prepare_stage2_student(stage1_file)
    assert all(torch.equal(student.state_dict()[key], value) for key, value in stage1.items())
    assert not any(p.requires_grad for p in student.backbone.parameters())
    assert all(p.requires_grad for p in student.head.parameters())
    stage1_head = load_model_file(stage1_file)[0].head.state_dict()
    assert not torch.equal(student.head.cls_x.weight, stage1_head["cls_x.weight"])      # a fresh head

    objective = HeadSelfDistillation(stage1_file)
    assert list(objective.parameters()) == []          # the stage-1 head is a fixed teacher, not trained or saved
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    losses = []
    for _ in range(25):
        student.train()                                # as the trainer does before every epoch
        terms = objective(student, batch, epoch=0, max_epochs=60)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["kd/stage1"].item())
    assert losses[-1] < 0.5 * losses[0], losses
    # The frozen backbone, BatchNorm statistics included, has not moved.
    assert all(torch.equal(student.state_dict()[key], value) for key, value in stage1.items())

    stage2_file = save_model_file(tmp_path / "stage2_run.safetensors", student, get_skeleton("coco_wholebody133"))
    for source in (student, stage2_file):
        final_path = finalise_stage2(stage1_file, source, tmp_path / "final.safetensors")
        final, info = load_model_file(final_path)
        assert info.skeleton.name == "coco_wholebody133" and info.input_size == SIZE
        assert info.extra["distillation"] == "dwpose-stage2" and info.extra["recipe"] == "test"
        final_tensors = load_file(final_path)
        assert all(torch.equal(final_tensors[key], value) for key, value in stage1.items())
        assert all(torch.equal(final.head.state_dict()[key], value) for key, value in student.head.state_dict().items())


def test_stage2_objective_refuses_a_student_without_the_frozen_stage1_backbone(stage1_file, batch):
    objective = HeadSelfDistillation(stage1_file)
    with pytest.raises(ValueError, match="not the stage-1 backbone"):
        objective(RTMPose("t", 133, SIZE), batch, 0, 60)
    unfrozen = prepare_stage2_student(stage1_file)
    unfrozen.backbone.requires_grad_(True)
    with pytest.raises(ValueError, match="must be frozen"):
        objective(unfrozen, batch, 0, 60)
    with pytest.raises(ValueError, match="does not fit"):
        finalise_stage2(stage1_file, RTMPose("t", 17, SIZE), stage1_file.parent / "bad.safetensors")

"""Distillation maths: conditional GT, per-teacher logit KD, feature KD, the decay, and their combination."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from conftest import REFERENCE, REPO, require
from distill_support import SIZE, coco_mpii_mixture, make_batch, smooth_teacher
from pydantic import ValidationError
from torch import nn

from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB
from unionpose.core.model_description import ModelInfo
from unionpose.core.simcc import SimCCCodec
from unionpose.distill.losses import conditional_gt_loss, distillation_decay, feature_kd_loss, logit_kd_loss
from unionpose.distill.multi_teacher import DistillationObjective, LossSpec
from unionpose.distill.stage2 import Stage2Spec
from unionpose.engine.config import validate_config
from unionpose.models import RTMPose
from unionpose.models.model_file import save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.teachers import CheckpointTeacher, OnnxTeacher, StudentSpace, TeacherSpec

COCO_INDEX, MPII_INDEX = 0, 12     # a COCO person and an MPII person of the fixture mixture


@pytest.fixture(scope="module")
def mixture():
    return coco_mpii_mixture()


@pytest.fixture(scope="module")
def batch(mixture):
    return make_batch(mixture, [COCO_INDEX, 3, MPII_INDEX, 14])


def tiny_teacher(name: str, skeleton_name: str, images: torch.Tensor, seed: int = 0) -> CheckpointTeacher:
    skeleton = get_skeleton(skeleton_name)
    info = ModelInfo(skeleton, "t", SIZE, 2.0, SimCCCodec(SIZE).sigma, IMAGE_MEAN_RGB, IMAGE_STD_RGB)
    student = StudentSpace(get_skeleton("coco_mpii21"), SIZE)
    return CheckpointTeacher(smooth_teacher(skeleton, images, seed), info, student, name, f"test teacher {seed}")


class FixedLogits(nn.Module):
    """A 'model' whose SimCC logits are parameters, so autograd gives the loss's gradient per channel."""

    def __init__(self, batch_size: int, num_keypoints: int = 21, bins: int = 128) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.x = nn.Parameter(torch.randn(batch_size, num_keypoints, bins, generator=generator) * 0.3)
        self.y = nn.Parameter(torch.randn(batch_size, num_keypoints, bins, generator=generator) * 0.3)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


def test_logit_kd_loss_is_dwpose_formula():
    generator = torch.Generator().manual_seed(1)
    student_x, teacher_x = torch.randn(3, 4, 20, generator=generator), torch.randn(3, 4, 20, generator=generator)
    student_y, teacher_y = torch.randn(3, 4, 30, generator=generator), torch.randn(3, 4, 30, generator=generator)
    weight = torch.tensor([[1.0, 1, 0, 1]] * 3)

    def kl_sum(student: torch.Tensor, teacher: torch.Tensor) -> np.ndarray:   # sum over bins of KL(t || s)
        p = torch.softmax(10 * teacher.double(), -1).numpy()
        log_q = torch.log_softmax(10 * student.double(), -1).numpy()
        return (p * (np.log(p) - log_q)).sum(-1)

    expected = sum((kl_sum(s, t) * weight.numpy()).sum(1).mean() for s, t in
                   ((student_x, teacher_x), (student_y, teacher_y))) / 3
    loss = logit_kd_loss(student_x, student_y, teacher_x, teacher_y, weight, num_keypoints=3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert logit_kd_loss(teacher_x, teacher_y, teacher_x, teacher_y, weight, 3).item() == pytest.approx(0, abs=1e-6)


def test_unannotated_point_gets_distillation_but_no_ground_truth_gradient(batch):
    # MPII does not label the nose (union channel 0); COCO does not label head_top (channel 20).
    assert not batch["annotated"][2, 0] and batch["annotated"][0, 0] and batch["visible"][0, 0] > 0
    assert not batch["annotated"][0, 20] and batch["annotated"][2, 20]
    coco = tiny_teacher("coco", "coco17", batch["image"])
    mpii = tiny_teacher("mpii", "mpii16", batch["image"], seed=1)
    model = FixedLogits(4)

    # Even a target weight that wrongly claims the point is supervised cannot leak through the conditional loss.
    leaky = {**batch, "target_weight": torch.ones_like(batch["target_weight"])}
    gt_gradient, = torch.autograd.grad(conditional_gt_loss(model.x, model.y, leaky), model.x)
    assert not gt_gradient[2, 0].any() and not gt_gradient[0, 20].any()
    assert gt_gradient[0, 0].abs().sum() > 0 and gt_gradient[2, 20].abs().sum() > 0

    objective = DistillationObjective(LossSpec(alpha=0.3), [(coco, 0.45), (mpii, 0.25)])
    objective(model, batch, epoch=0, max_epochs=10)["loss"].backward()
    assert model.x.grad[2, 0].abs().sum() > 0       # the COCO teacher still teaches the MPII person's nose
    assert model.x.grad[0, 20].abs().sum() > 0      # and the MPII teacher the COCO person's head top
    gt_only = DistillationObjective(LossSpec(alpha=1.0), [(coco, 0.45), (mpii, 0.25)])
    model.x.grad = None
    gt_only(model, batch, epoch=0, max_epochs=10)["loss"].backward()
    assert not model.x.grad[2, 0].any() and not model.x.grad[0, 20].any()


def test_total_is_the_weighted_sum_of_logged_terms_with_every_term_decayed(batch):
    coco = tiny_teacher("coco", "coco17", batch["image"])
    mpii = tiny_teacher("mpii", "mpii16", batch["image"], seed=1)
    model = FixedLogits(4)
    objective = DistillationObjective(LossSpec(alpha=0.3), [(coco, 0.45), (mpii, 0.25)])
    terms = objective(model, batch, epoch=15, max_epochs=20)
    assert set(terms) == {"loss", "gt", "kd/coco", "kd/mpii", "decay"}
    assert terms["decay"].item() == pytest.approx(0.25)
    expected = 0.3 * terms["gt"] + 0.7 * 0.25 * (0.45 * terms["kd/coco"] + 0.25 * terms["kd/mpii"])
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert terms["gt"].item() == pytest.approx(conditional_gt_loss(model.x, model.y, batch).item())

    # KD over the teacher's points only, normalised by their count (17 for COCO).
    output = coco(batch)
    manual = logit_kd_loss(model.x, model.y, output.simcc_x, output.simcc_y, output.mask.float(), 17)
    assert terms["kd/coco"].item() == pytest.approx(manual.item(), rel=1e-6)

    visible_only = DistillationObjective(LossSpec(kd_points="visible", decay="none"), [(coco, 1.0)])
    visible_terms = visible_only(model, batch, epoch=15, max_epochs=20)
    weight = output.mask.float() * (batch["visible"] > 0).float()
    manual = logit_kd_loss(model.x, model.y, output.simcc_x, output.simcc_y, weight, 17)
    assert visible_terms["kd/coco"].item() == pytest.approx(manual.item(), rel=1e-6)
    assert visible_terms["kd/coco"] < terms["kd/coco"] and visible_terms["decay"].item() == 1.0


def test_decay_schedule():
    assert [distillation_decay(e, 4) for e in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert distillation_decay(3, 4, "none") == 1.0
    with pytest.raises(ValueError, match="unknown distillation decay"):
        distillation_decay(1, 4, "cosine")


def test_feature_distillation_trains_the_alignment_conv_and_the_student(batch):
    teacher = tiny_teacher("big", "coco17", batch["image"])
    torch.manual_seed(2)
    student = RTMPose("t", 21, SIZE)
    objective = DistillationObjective(LossSpec(feature_kd=7e-5), [(teacher, 1.0)],
                                      student_channels=student.backbone.out_channels)
    assert [name for name, _ in objective.named_parameters()] == ["align.big.weight", "align.big.bias"]
    terms = objective(student.train(), batch, epoch=2, max_epochs=4)
    assert set(terms) == {"loss", "gt", "kd/big", "feat/big", "decay"}
    terms["loss"].backward()
    assert objective.align["big"].weight.grad.abs().sum() > 0
    assert student.backbone.stem[0].conv.weight.grad.abs().sum() > 0

    with torch.no_grad():
        student.eval()
        expected = feature_kd_loss(student.forward_features(batch["image"]), teacher(batch, True).feature,
                                   objective.align["big"], 7e-5)
        assert objective(student, batch, 2, 4)["feat/big"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("factor", [(2, 2), (1.5, 1)])
def test_feature_distillation_from_a_teacher_with_a_larger_input(batch, factor):
    """A teacher seeing the crop at a larger input has a finer feature map over the same area: each student cell is
    compared with the average of the teacher cells it covers (2 x 2 of them at twice the size)."""
    skeleton = get_skeleton("coco_mpii21")
    large = (int(SIZE[0] * factor[0]), int(SIZE[1] * factor[1]))
    torch.manual_seed(3)
    info = ModelInfo(skeleton, "t", large, 2.0, SimCCCodec(large).sigma, IMAGE_MEAN_RGB, IMAGE_STD_RGB)
    teacher = CheckpointTeacher(RTMPose("t", 21, large), info, StudentSpace(skeleton, SIZE), "large", "larger")
    student = RTMPose("t", 21, SIZE)
    objective = DistillationObjective(LossSpec(feature_kd=7e-5), [(teacher, 1.0)],
                                      student_channels=student.backbone.out_channels)
    terms = objective(student.train(), batch, epoch=0, max_epochs=4)
    terms["loss"].backward()
    assert objective.align["large"].weight.grad.abs().sum() > 0

    with torch.no_grad():
        student.eval()
        aligned = objective.align["large"](student.forward_features(batch["image"]))
        teacher_feature = teacher(batch, True).feature
        pooled = torch.nn.functional.adaptive_avg_pool2d(teacher_feature, aligned.shape[-2:])
        if factor == (2, 2):
            assert teacher_feature.shape[-2:] == (aligned.shape[-2] * 2, aligned.shape[-1] * 2)
            assert torch.allclose(pooled[:, :, 0, 0], teacher_feature[:, :, :2, :2].mean(dim=(-2, -1)))
        expected = 7e-5 * (aligned - pooled).square().sum() / batch["image"].shape[0]
        assert objective(student, batch, 0, 4)["feat/large"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_feature_distillation_needs_a_teacher_feature_of_the_same_size(batch):
    student = StudentSpace(get_skeleton("coco_mpii21"), (256, 192))
    onnx = OnnxTeacher(require(REFERENCE / "rtmpose-t_coco-256x192" / "model.onnx"), student, skeleton="coco17")
    with pytest.raises(ValueError, match="gives no backbone feature"):
        DistillationObjective(LossSpec(feature_kd=7e-5), [(onnx, 1.0)], student_channels=384)
    teacher = tiny_teacher("small", "coco17", batch["image"])
    teacher.student = student                      # a 64x64 teacher for a 256x192 student
    with pytest.raises(ValueError, match="same size"):
        DistillationObjective(LossSpec(feature_kd=7e-5), [(teacher, 1.0)], student_channels=384)
    teacher.student = StudentSpace(get_skeleton("coco_mpii21"), (SIZE[0] // 2, SIZE[1] * 2))  # larger on one side only
    with pytest.raises(ValueError, match="at least the student's on both sides"):
        DistillationObjective(LossSpec(feature_kd=7e-5), [(teacher, 1.0)], student_channels=384)


def test_objective_from_recipe_sections(batch, mixture, tmp_path):
    teacher = tiny_teacher("coco", "coco17", batch["image"])
    path = save_model_file(tmp_path / "coco.safetensors", teacher.model, get_skeleton("coco17"))
    specs = [TeacherSpec(name="coco_online", kind="checkpoint", path=path, beta=0.45),
             TeacherSpec(name="coco_cached", kind="checkpoint", path=path, beta=0.25, mode="cached",
                         cache=tmp_path / "coco_cache.safetensors")]
    student = RTMPose("t", 21, SIZE)
    objective = DistillationObjective.from_specs(LossSpec(feature_kd=None), specs, teacher.student,
                                                 student.backbone.out_channels, mixture.instances)
    assert [(type(t).__name__, beta) for t, beta in objective.teachers] == [("CheckpointTeacher", 0.45),
                                                                           ("CachedTeacher", 0.25)]
    assert (tmp_path / "coco_cache.safetensors").is_file()        # computed once, on first use
    terms = objective(student, batch, epoch=0, max_epochs=10)
    assert set(terms) == {"loss", "gt", "kd/coco_online", "kd/coco_cached", "decay"}
    assert terms["kd/coco_online"] > 0 and terms["kd/coco_cached"] > 0


def test_loss_spec_and_objective_reject_bad_settings(batch):
    with pytest.raises(ValidationError):
        LossSpec.model_validate({"alpha": 0.3, "beta": 10})
    with pytest.raises(ValidationError):
        LossSpec(alpha=1.5)
    with pytest.raises(ValueError, match="at least one teacher"):
        DistillationObjective(LossSpec(), [])
    teacher = tiny_teacher("coco", "coco17", batch["image"])
    with pytest.raises(ValueError, match="unique"):
        DistillationObjective(LossSpec(), [(teacher, 0.5), (teacher, 0.5)])


def clear_peaks(logits: torch.Tensor, margin: float = 0.05, window: int = 8) -> torch.Tensor:
    """(N, K) bool: the top bin beats every bin more than `window` away by `margin` (a well-defined argmax)."""
    top = logits.argmax(-1, keepdim=True)
    far = (torch.arange(logits.shape[-1]) - top).abs() > window
    return logits.amax(-1) - logits.masked_fill(~far, float("-inf")).amax(-1) > margin


@pytest.mark.slow
def test_distillation_alone_pulls_the_student_onto_its_teacher(mixture):
    batch = make_batch(mixture, [0, 1, 2, 3])
    teacher = tiny_teacher("coco", "coco17", batch["image"])
    torch.manual_seed(1)
    student = RTMPose("t", 21, SIZE)
    objective = DistillationObjective(LossSpec(alpha=0.0, decay="none"), [(teacher, 1.0)])
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.0)
    codec = SimCCCodec(SIZE)
    target = teacher(batch)
    teacher_points, _ = codec.decode(target.simcc_x[:, :17].numpy(), target.simcc_y[:, :17].numpy())
    # Random teachers have several near-equal modes for some points, where any argmax is a coin toss; judge the
    # student on the points whose teacher argmax is well defined (about 60 % of them).
    judged = (clear_peaks(target.simcc_x[:, :17]) & clear_peaks(target.simcc_y[:, :17])).numpy()
    assert judged.sum() > 20

    def distance() -> np.ndarray:
        with torch.no_grad():
            simcc_x, simcc_y = student.eval()(batch["image"])
        points, _ = codec.decode(simcc_x[:, :17].numpy(), simcc_y[:, :17].numpy())
        return np.linalg.norm(points - teacher_points, axis=-1)[judged]

    before = distance()
    for _ in range(100):
        student.train()
        loss = objective(student, batch, epoch=0, max_epochs=1)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = distance()
    # Crop pixels in a 64x64 crop: from unrelated (~40 px apart) to on the teacher's bin for nearly every point.
    assert before.mean() > 20 and after.mean() < 0.25 * before.mean(), (before.mean(), after.mean())
    assert (after <= 2.0).mean() > 0.8, after


@pytest.mark.parametrize("recipe", sorted((REPO / "configs" / "paper").glob("*.yaml")) +
                         sorted((REPO / "configs" / "dwpose").glob("*.yaml")), ids=lambda path: path.name)
def test_recipes_are_valid_configs(recipe):
    data = yaml.safe_load(recipe.read_text())
    stage2 = data.pop("stage2", None)        # the stage-2 section, checked on its own
    config = validate_config(data, source=str(recipe))
    if recipe.parent.name == "paper":
        assert config.build_skeleton() == get_skeleton("coco_mpii21")
        assert config.loss.alpha == 0.3 and config.loss.kd_logit_scale == 10.0 and config.loss.kd_points == "all"
        assert {t.name: t.beta for t in config.teachers} == {"coco_expert": 0.45, "mpii_expert": 0.25}
    elif stage2 is None:
        assert config.loss.feature_kd is not None and config.teachers
    else:
        assert Stage2Spec.model_validate(stage2).stage1.name.endswith(".safetensors") and not config.teachers
        assert config.train.epochs == 60

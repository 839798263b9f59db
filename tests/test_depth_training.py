"""Issue 15, learning depth: the conditional depth loss (only where `annotated_z`), depth distillation from a 3D model
file, and a tiny end-to-end run on synthetic 2D + 3D sources whose 3D error falls below an untrained model's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from unionpose.core.depth import DepthCodec
from unionpose.core.simcc import SimCCCodec
from unionpose.data.sources import read_source
from unionpose.distill.depth_loss import depth_gt_loss
from unionpose.distill.multi_teacher import DistillationObjective, LossSpec
from unionpose.distill.objective import GroundTruthObjective
from unionpose.engine import load_config, train
from unionpose.engine.trainer import build_student, default_validator, seed_everything
from unionpose.eval.evaluate import evaluate_model
from unionpose.export.onnx import export_onnx
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate
from unionpose.teachers.base import StudentSpace
from unionpose.teachers.checkpoint import CheckpointTeacher
from unionpose.teachers.onnx import OnnxTeacher
from unionpose.teachers.resample import DepthResampler

SKELETON = get_skeleton("coco17")
CODEC = DepthCodec(bins=32)


def _batch(n: int = 2, k: int = 17) -> dict[str, torch.Tensor]:
    targets = [CODEC.encode(np.linspace(-0.3, 0.3, k), np.arange(k) < 10) for _ in range(n)]
    return {"image": torch.randn(n, 3, 64, 64), "target_x": torch.zeros(n, k, 128), "target_y": torch.zeros(n, k, 128),
            "target_weight": torch.zeros(n, k), "annotated": torch.ones(n, k, dtype=torch.bool),
            "visible": torch.full((n, k), 2), "target_z": torch.from_numpy(np.stack([t for t, _ in targets])),
            "target_z_weight": torch.from_numpy(np.stack([w for _, w in targets]))}


def test_the_depth_loss_only_reaches_points_labelled_in_3d():
    batch = _batch()
    logits = torch.randn(2, 17, CODEC.bins, requires_grad=True)
    depth_gt_loss(logits, batch).backward()
    reached = logits.grad.abs().sum(dim=-1) > 0
    assert reached[:, :10].all() and not reached[:, 10:].any()
    assert depth_gt_loss(logits, {**batch, "target_z_weight": torch.zeros(2, 17)}) == 0


def test_the_ground_truth_objective_adds_the_depth_term_for_a_3d_model_only():
    torch.manual_seed(0)
    batch = _batch()
    flat = GroundTruthObjective()(RTMPose("t", 17, (64, 64)), batch, 0, 1)
    assert set(flat) == {"loss"}
    deep = GroundTruthObjective(depth_weight=2.0)(RTMPose("t", 17, (64, 64), depth=CODEC), batch, 0, 1)
    assert set(deep) == {"loss", "gt", "depth"} and deep["depth"] > 0
    assert torch.isclose(deep["loss"], deep["gt"] + 2.0 * deep["depth"])


def test_depth_logits_are_read_at_the_students_depths():
    teacher, student = DepthCodec(range=1.0, bins=41), DepthCodec(range=0.5, bins=81)
    logits = torch.from_numpy(teacher.encode(np.array([0.25]), np.array([True]))[0])
    resampled = DepthResampler(teacher, student)(logits)
    assert resampled.shape == (1, 81) and student.decode(resampled.numpy())[0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="'metre' but the student's in 'body_height'"):
        DepthResampler(DepthCodec(unit="metre"), student)


def test_a_3d_model_file_teaches_depth_and_a_2d_one_does_not(tmp_path):
    torch.manual_seed(0)
    student_space = StudentSpace(SKELETON, (64, 64), depth=CODEC)
    files = {name: save_model_file(tmp_path / f"{name}.safetensors", RTMPose("t", 17, (64, 64), depth=depth),
                                   SKELETON) for name, depth in (("flat", None), ("deep", DepthCodec(bins=64)))}
    teachers = [(CheckpointTeacher.from_file(path, student_space), 0.5) for path in files.values()]
    batch = _batch()
    assert teachers[0][0](batch).simcc_z is None and teachers[1][0](batch).simcc_z.shape == (2, 17, CODEC.bins)
    terms = DistillationObjective(LossSpec(), teachers)(RTMPose("t", 17, (64, 64), depth=CODEC), batch, 0, 2)
    assert "kd_z/deep" in terms and "kd_z/flat" not in terms and terms["depth"] > 0 and terms["kd_z/deep"] > 0


def test_an_onnx_export_of_a_3d_model_teaches_the_same_depth(tmp_path):
    torch.manual_seed(0)
    student_space = StudentSpace(SKELETON, (64, 64), depth=CODEC)
    model_file = save_model_file(tmp_path / "deep.safetensors", RTMPose("t", 17, (64, 64), depth=DepthCodec(bins=64)),
                                 SKELETON)
    onnx_file = export_onnx(*load_model_file(model_file), tmp_path / "deep.onnx")
    batch = _batch()
    from_file = CheckpointTeacher.from_file(model_file, student_space)(batch).simcc_z
    from_onnx = OnnxTeacher(onnx_file, student_space)(batch).simcc_z
    assert from_onnx.shape == (2, 17, CODEC.bins) and torch.allclose(from_onnx, from_file, atol=1e-4)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic_depth")
    generate(folder, num_train=24, num_val=6, seed=0)
    return folder


def _recipe(data, output) -> dict:
    """RTMPose-t at 64x64 with a depth head, on COCO-17 people (2D only) beside full21 people (with 3D)."""
    images = str(data / "images")
    full21_val = {"name": "full21", "format": "coco", "annotations": str(data / "full21_val.json"), "images": images,
                  "skeleton": "coco_mpii21"}
    return {
        "skeleton": {"union": ["coco17", "mpii16"]},
        "model": {"size": "t", "input": [64, 64], "depth": {"bins": 64}},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"),
                            "images": images},
                           {"name": "full3d", "format": "coco", "annotations": str(data / "full21.json"),
                            "images": images, "skeleton": "coco_mpii21"}],
                 "val": [full21_val], "augment": {"enabled": False}},
        "train": {"epochs": 4, "batch_size": 8, "lr": 1e-3, "warmup_iters": 4, "workers": 0, "val_interval": 0,
                  "log_interval": 12, "ema": False, "device": "cpu"},
        "output": str(output),
    }


def _config(data, tmp_path, **train):
    recipe = _recipe(data, tmp_path / "run")
    recipe["train"].update(train)
    path = tmp_path / "depth.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return load_config(path)


def test_both_validators_report_depth_for_a_3d_model(data, tmp_path):
    torch.manual_seed(0)
    crops = _config(data, tmp_path)
    model = build_student(crops, crops.build_skeleton())
    found = default_validator(crops, crops.build_skeleton(), SimCCCodec((64, 64)), torch.device("cpu"))(model)
    assert set(found) == {"loss", "pck", "depth"} and 0 < found["depth"] < 2
    datasets = _config(data, tmp_path, validation="datasets")
    found = default_validator(datasets, datasets.build_skeleton(), SimCCCodec((64, 64)), torch.device("cpu"))(model)
    assert set(found) == {"full21/AP", "score", "full21/mpjpe", "full21/depth"}
    assert found["score"] == found["full21/AP"] and found["full21/mpjpe"] > 0


@pytest.mark.slow
def test_a_tiny_run_on_2d_and_3d_sources_learns_depth(data, tmp_path, capsys):
    """RTMPose-t at 64x64, 44 steps on synthetic COCO-17 people (2D only) beside full21 people (with 3D): MPJPE and
    the depth error on the validation people, in body heights, fall well below an untrained model's."""
    config = _config(data, tmp_path)
    seed_everything(config.train.seed)               # the trainer's initial weights
    untrained = save_model_file(tmp_path / "untrained.safetensors", build_student(config, config.build_skeleton()),
                                config.build_skeleton())
    result = train(config)
    errors = {name: evaluate_model(model, config.data.val, progress=False, flip_test=False).results["full21"]["3d"]
              for name, model in (("untrained", untrained), ("trained", result.final_model))}
    with capsys.disabled():
        for name, found in errors.items():
            print(f"\n{name} after {0 if name == 'untrained' else result.steps} steps: MPJPE {found['mpjpe']:.4f}, "
                  f"PA-MPJPE {found['pa_mpjpe']:.4f}, depth error {found['depth']:.4f} body heights over "
                  f"{found['points']} points")
    assert result.steps >= 40
    assert errors["trained"]["mpjpe"] < 0.6 * errors["untrained"]["mpjpe"]
    assert errors["trained"]["depth"] < 0.5 * errors["untrained"]["depth"]
    assert errors["trained"]["pa_mpjpe"] < errors["untrained"]["pa_mpjpe"]


@pytest.mark.slow
def test_the_depth_head_fits_the_depth_of_a_few_people_beyond_the_prior(tmp_path, capsys):
    """Depth is learnable from the pixels, not only its average: 32 synthetic people memorised for 240 steps
    (RTMPose-t at 64x64, no augmentation) get a crop depth error well under predicting depth 0 for every point."""
    data = tmp_path / "data"
    generate(data, num_train=12, num_val=1, seed=0)
    source = {"name": "full3d", "format": "coco", "annotations": str(data / "full21.json"),
              "images": str(data / "images"), "skeleton": "coco_mpii21"}
    recipe = {"skeleton": {"union": ["coco17", "mpii16"]}, "model": {"size": "t", "input": [64, 64],
                                                                      "depth": {"bins": 64}},
              "data": {"train": [source], "val": [source], "augment": {"enabled": False}},
              "train": {"epochs": 60, "batch_size": 8, "lr": 1.25e-4, "warmup_iters": 10, "workers": 0,
                        "val_interval": 0, "log_interval": 60, "ema": False, "device": "cpu"},
              "output": str(tmp_path / "run")}
    path = tmp_path / "memorise.yaml"
    path.write_text(yaml.safe_dump(recipe))
    config = load_config(path)
    result = train(config)
    people = read_source(config.data.train[0])[0]
    prior = float(np.mean(np.concatenate([np.abs(p.keypoints_3d[p.annotated_z, 2]) for p in people])))
    with capsys.disabled():
        print(f"\n{len(people)} people, {result.steps} steps: crop depth error {result.validation['depth']:.4f} "
              f"body heights; depth 0 everywhere: {prior:.4f}")
    assert result.steps == 240 and result.validation["depth"] < 0.5 * prior

"""The recipes in configs/: each validates, chained recipes agree, and the synthetic DWPose chain runs end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import REPO
from safetensors.torch import load_file

from unionpose.cli import main
from unionpose.data.config import load_data_config
from unionpose.data.mixture import UnionMixture
from unionpose.distill.stage2 import HeadSelfDistillation
from unionpose.engine import latest_checkpoint, load_config
from unionpose.engine.trainer import build_optimizer, build_student, set_train_mode
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.teachers import CheckpointTeacher, StudentSpace, build_teacher_cache, save_teacher_cache

CONFIGS = REPO / "configs"
SYNTHETIC = CONFIGS / "synthetic"
RECIPES = sorted(path for path in CONFIGS.rglob("*.yaml") if path.parent.name != "data")
DATA_CONFIGS = sorted((CONFIGS / "data").glob("*.yaml"))
# Recipe -> the recipe whose final model it reads (as teacher or stage 1), for every chain in configs/.
CHAINS = {
    "synthetic/unified_t_coco-mpii_kd.yaml": ["synthetic/teacher_coco17.yaml", "synthetic/teacher_mpii16.yaml"],
    "synthetic/dwpose_t_stage2.yaml": ["synthetic/dwpose_t_stage1.yaml"],
    "dwpose/dwpose-m_stage2_coco-wholebody.yaml": ["dwpose/dwpose-m_stage1_coco-wholebody.yaml"],
}


def recipe_id(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


@pytest.mark.parametrize("recipe", RECIPES, ids=recipe_id)
def test_every_recipe_validates_with_its_paths_resolved(recipe):
    config = load_config(recipe)          # the whole file, `stage2:` included; no dataset or model is opened
    assert config.build_skeleton().num_keypoints > 0
    sources = config.data.train + config.data.val
    assert all(s.annotations.is_absolute() and s.images.is_absolute() for s in sources)
    assert all(teacher.path.is_absolute() for teacher in config.teachers)
    if config.stage2 is not None:
        assert config.stage2.stage1.is_absolute() and not config.teachers
    if recipe.parent == SYNTHETIC:       # they all read what `unionpose synth --out runs/synthetic` writes
        assert all(s.annotations.parent == REPO / "runs" / "synthetic" for s in sources)


@pytest.mark.parametrize("recipe", DATA_CONFIGS, ids=recipe_id)
def test_data_configs_validate(recipe):
    assert load_data_config(recipe).data.train


@pytest.mark.parametrize("recipe", sorted(CHAINS), ids=str)
def test_chained_recipes_read_the_final_model_of_the_recipe_before(recipe):
    """Run from the repository root, each recipe's teachers (or stage-1 model) are its predecessors' outputs."""
    config = load_config(CONFIGS / recipe)
    before = [load_config(CONFIGS / name) for name in CHAINS[recipe]]
    reads = [config.stage2.stage1] if config.stage2 else [teacher.path for teacher in config.teachers]
    assert [path.resolve() for path in reads] == [(REPO / b.output / "final.safetensors").resolve() for b in before]
    if config.stage2:
        stage1 = before[0]
        assert (config.model.size, config.model.input) == (stage1.model.size, stage1.model.input)
        assert config.build_skeleton() == stage1.build_skeleton()


def test_synthetic_recipes_mirror_the_papers():
    paper = load_config(CONFIGS / "paper" / "unified_rtmpose-t_coco-mpii.yaml")
    synthetic = load_config(SYNTHETIC / "unified_t_coco-mpii_kd.yaml")
    assert synthetic.loss == paper.loss
    assert [(t.name, t.beta) for t in synthetic.teachers] == [(t.name, t.beta) for t in paper.teachers]
    assert synthetic.build_skeleton() == get_skeleton("coco_mpii21")
    assert load_config(SYNTHETIC / "unified_t_coco-mpii.yaml").teachers == []
    dwpose = load_config(CONFIGS / "dwpose" / "dwpose-m_stage1_coco-wholebody.yaml")
    stage1 = load_config(SYNTHETIC / "dwpose_t_stage1.yaml")
    assert stage1.loss == dwpose.loss and stage1.loss.feature_kd is not None
    assert [t.beta for t in stage1.teachers] == [t.beta for t in dwpose.teachers]


def test_stage2_config_errors_are_clear(tmp_path):
    recipe = SYNTHETIC / "dwpose_t_stage2.yaml"
    teacher = "teachers=[{name: extra, kind: checkpoint, path: t.safetensors, beta: 1.0}]"
    with pytest.raises(ValueError, match="stage-1 model is the only teacher of stage 2.*extra"):
        load_config(recipe, [teacher])
    with pytest.raises(ValueError, match="drop model.init"):
        load_config(recipe, ["model.init=m.safetensors"])
    stage1 = save_model_file(tmp_path / "stage1.safetensors", RTMPose("t", 21, (64, 64)), get_skeleton("coco_mpii21"))
    for mismatch in (["model.size=s", "model.input=[64, 64]"], ["model.input=[96, 64]"],
                     ["model.input=[64, 64]", "skeleton=coco17"]):
        config = load_config(recipe, [f"stage2.stage1={stage1}", *mismatch])
        with pytest.raises(ValueError, match=r"stage2.stage1 .*stage1.safetensors: holds RTMPose-t \[64, 64\]"):
            build_student(config, config.build_skeleton())


def test_stage2_student_trains_only_its_head_with_the_backbone_in_eval_mode(tmp_path):
    skeleton = get_skeleton("coco_mpii21")
    stage1 = save_model_file(tmp_path / "stage1.safetensors", RTMPose("t", 21, (64, 64)), skeleton)
    config = load_config(SYNTHETIC / "dwpose_t_stage2.yaml", [f"stage2.stage1={stage1}", "model.input=[64, 64]"])
    student = build_student(config, skeleton)
    optimizer = build_optimizer([student, HeadSelfDistillation(stage1)], lr=1e-3, weight_decay=0.0)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in student.head.parameters()}
    student.train()                      # as validation leaves a model it found training
    assert all(module.training for module in student.backbone.modules())
    set_train_mode(student, freeze_bn=False, frozen_backbone=True)      # before every epoch
    assert not any(module.training for module in student.backbone.modules())
    assert all(module.training for module in student.head.modules())


def synthetic_overrides(data: Path, recipe: Path, size: int = 64) -> list[str]:
    """Point a synthetic recipe at the tiny data set in `data` and shrink it to a one-epoch run of a few steps."""
    config = load_config(recipe)
    overrides = []
    for split in ("train", "val"):
        for index, source in enumerate(getattr(config.data, split)):
            overrides += [f"data.{split}.{index}.annotations={data / source.annotations.name}",
                          f"data.{split}.{index}.images={data / 'images'}"]
    return overrides + [f"model.input=[{size}, {size}]", "train.epochs=1", "train.batch_size=4", "train.workers=0",
                        "train.warmup_iters=1", "train.cosine_from_epoch=null", "train.log_interval=1",
                        "train.tensorboard=false", "data.mild_last_epochs=0"]


def train_records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if record["kind"] == "train"]


def backbone(path: Path) -> dict[str, torch.Tensor]:
    return {key: value for key, value in load_file(path).items() if key.startswith("backbone.")}


@pytest.mark.slow
def test_synthetic_dwpose_chain_with_checkpoint_onnx_and_coordinate_teachers(tmp_path, capsys):
    """synth -> a teacher -> stage 1 from its checkpoint, its ONNX export and its cached coordinates -> stage 1 with
    feature KD -> stage 2: the final model keeps the stage-1 backbone bit for bit; every loss term is logged."""
    data, runs = tmp_path / "synth", tmp_path / "runs"
    assert main(["synth", "--out", str(data), "--train", "6", "--val", "2"]) == 0

    teacher_recipe = SYNTHETIC / "teacher_coco17.yaml"
    assert main(["train", str(teacher_recipe), *synthetic_overrides(data, teacher_recipe), "model.size=t",
                 f"output={runs / 'teacher'}"]) == 0
    teacher = runs / "teacher" / "final.safetensors"
    onnx = tmp_path / "teacher.onnx"
    assert main(["export", "--model", str(teacher), "--out", str(onnx)]) == 0
    assert "passed" in capsys.readouterr().out

    # The coordinate-only teacher: the checkpoint teacher's predictions, cached once per training instance.
    stage1_recipe = SYNTHETIC / "dwpose_t_stage1.yaml"
    stage1_overrides = synthetic_overrides(data, stage1_recipe)
    config = load_config(stage1_recipe, stage1_overrides)
    skeleton = config.build_skeleton()
    instances = UnionMixture(config.data.train, skeleton).instances
    source = CheckpointTeacher.from_file(teacher, StudentSpace(skeleton, config.model.input))
    coordinates = save_teacher_cache(tmp_path / "coordinates.safetensors", build_teacher_cache(source, instances))

    mixed = (f"teachers=[{{name: ckpt, kind: checkpoint, path: {teacher}, beta: 0.5}}, "
             f"{{name: onnx, kind: onnx, path: {onnx}, beta: 0.3}}, "
             f"{{name: coords, kind: coordinates, path: {coordinates}, beta: 0.2}}]")
    assert main(["train", str(stage1_recipe), *stage1_overrides, mixed, "loss.feature_kd=null",
                 f"output={runs / 'mixed'}"]) == 0
    assert main(["train", str(stage1_recipe), *stage1_overrides, f"teachers.0.path={teacher}",
                 f"output={runs / 'stage1'}"]) == 0
    stage1 = runs / "stage1" / "final.safetensors"
    stage2_recipe = SYNTHETIC / "dwpose_t_stage2.yaml"
    assert main(["train", str(stage2_recipe), *synthetic_overrides(data, stage2_recipe), "train.epochs=2",
                 f"stage2.stage1={stage1}", f"output={runs / 'stage2'}"]) == 0

    # Every loss term of every run is logged, finite.
    expected = {"teacher": {"loss"}, "mixed": {"loss", "gt", "decay", "kd/ckpt", "kd/onnx", "kd/coords"},
                "stage1": {"loss", "gt", "decay", "kd/rtmpose_s", "feat/rtmpose_s"}, "stage2": {"loss", "kd/stage1"}}
    for run, terms in expected.items():
        records = train_records(runs / run)
        assert records and all(terms <= record.keys() for record in records), (run, records[0])
        assert all(torch.isfinite(torch.tensor([record[t] for t in terms])).all() for record in records)
    assert {record["epoch"] for record in train_records(runs / "stage2")} == {1, 2}

    # The stage-2 model: the stage-1 backbone bit for bit (never trained, BatchNorm statistics included) + a new head.
    final = runs / "stage2" / "final.safetensors"
    model, info = load_model_file(final)
    assert info.extra["distillation"] == "dwpose-stage2" and info.skeleton == skeleton
    stage1_backbone = backbone(stage1)
    trained = latest_checkpoint(runs / "stage2") / "model.safetensors"     # the weights as trained, not finalised
    for state in (backbone(final), backbone(trained)):
        assert state.keys() == stage1_backbone.keys()
        assert all(torch.equal(state[key], value) for key, value in stage1_backbone.items())
    stage1_head = load_model_file(stage1)[0].head.state_dict()
    assert not torch.equal(model.head.cls_x.weight, stage1_head["cls_x.weight"])

"""The config schema: the shipped recipe loads, unknown keys and bad values are errors naming the key path,
overrides, path resolution, the saved resolved config, and resume-compatibility checks."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from unionpose.engine.config import (
    apply_override, config_differences, load_config, save_config, validate_config,
)

SHIPPED = REPO / "configs" / "synthetic" / "rtmpose-t_coco17.yaml"


def minimal(**sections) -> dict:
    data = {
        "skeleton": {"union": ["coco17", "mpii16"]},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": "ann/coco17.json", "images": "img"}]},
        "output": "runs/x",
    }
    data.update(sections)
    return data


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "recipe" / "cfg.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_synthetic_config_loads():
    config = load_config(SHIPPED)
    assert config.model.size == "t" and config.model.input == (128, 96)
    assert config.build_skeleton().num_keypoints == 17
    assert config.teachers == []
    # dataset paths are relative to the recipe's folder: configs/synthetic/../../runs/synthetic
    assert config.data.train[0].annotations == (REPO / "runs" / "synthetic" / "coco17.json").resolve()
    assert config.output == "runs/rtmpose-t_coco17"


def test_defaults_follow_the_rtmpose_recipe(tmp_path):
    config = load_config(write(tmp_path, minimal()))
    train = config.train
    assert (train.lr, train.warmup_iters, train.warmup_ratio, train.seed) == (4e-3, 1000, 1e-5, 21)
    assert train.ema and train.ema_momentum == 2e-4 and train.min_lr is None
    assert config.teachers == [] and config.build_skeleton().num_keypoints == 21


@pytest.mark.parametrize("override, key_path", [
    ("train.lrr=1", "train.lrr: unknown key"),
    ("data.train.0.formt=coco", "data.train.0.formt: unknown key"),
    ("data.augment.flip=0.5", "data.augment.flip: unknown key"),
    ("optimizer.lr=1", "optimizer: unknown key"),
    ("train.epochs=many", "train.epochs: Input should be a valid integer"),
    ("train.lr=-1", "train.lr: Input should be greater than 0"),
    ("model.input=[100,96]", "model.input: input (height, width) must be multiples of 32"),
    ("model.size=xl", "model.size: Input should be 't', 's', 'm' or 'l'"),
    ("data.augment.flip_prob=2", "data.augment.flip_prob: Input should be less than or equal to 1"),
    ("teachers=[{name: a, kind: magic, path: t.onnx, beta: 1}]", "teachers.0.kind"),
    ("loss.alpah=0.3", "loss.alpah: unknown key"),
    ("skeleton.foo=1", "skeleton: expected a preset name"),
    ("train.cosine_from_epoch=500", "cosine_from_epoch (500) is after the last epoch"),
    ("loss.kd_temperature=10", "loss: kd_temperature is now kd_logit_scale"),
])
def test_invalid_settings_name_the_file_and_key(tmp_path, override, key_path):
    path = write(tmp_path, minimal())
    with pytest.raises(ValueError) as error:
        load_config(path, [override])
    assert str(path) in str(error.value) and key_path in str(error.value)


def test_missing_required_keys_and_bad_files(tmp_path):
    with pytest.raises(ValueError, match="output: required key is missing"):
        validate_config({k: v for k, v in minimal().items() if k != "output"})
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {epochs: [1,\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(broken)
    broken.write_text("- just a list\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_config(broken)


def test_overrides_parse_yaml_scalars(tmp_path):
    config = load_config(write(tmp_path, minimal()), [
        "train.lr=1e-3", "train.epochs=7", "train.ema=false", "train.grad_clip=null", "train.grad_clip=1.5",
        "model.input=[64, 96]", "data.train.0.ratio=2", "skeleton=coco17", "output=elsewhere",
    ])
    assert config.train.lr == 1e-3 and config.train.epochs == 7 and config.train.ema is False
    assert config.train.grad_clip == 1.5 and config.model.input == (64, 96)
    assert config.data.train[0].ratio == 2.0 and config.build_skeleton().num_keypoints == 17
    assert config.output == "elsewhere"


@pytest.mark.parametrize("override, message", [
    ("train", "must look like key.sub=value"),
    ("=3", "must look like key.sub=value"),
    ("train.lr.deeper=3", "train.lr is a value, not a section"),
    ("data.train.5.ratio=2", "data.train.5 must be an index below 1"),
    ("train.lr=[1, 2", "the value is not valid YAML"),
])
def test_malformed_overrides(override, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("[", r"\[")):
        apply_override(minimal(train={"lr": 1.0}), override)


def test_relative_paths_are_relative_to_the_config(tmp_path):
    teachers = [{"name": "coco_expert", "kind": "onnx", "path": "teachers/m.onnx", "beta": 0.45,
                 "skeleton": "own.yaml"}]
    config = load_config(write(tmp_path, minimal(model={"init": "weights/start.safetensors"}, teachers=teachers)))
    recipe = (tmp_path / "recipe").resolve()
    assert config.teachers[0].path == recipe / "teachers" / "m.onnx"
    assert config.teachers[0].skeleton == str(recipe / "own.yaml")
    assert config.data.train[0].annotations == recipe / "ann" / "coco17.json"
    assert config.data.train[0].images == recipe / "img"
    assert config.model.init == str(recipe / "weights" / "start.safetensors")
    assert config.output == "runs/x"     # the run directory stays relative to where training is launched


def test_saved_config_reloads_identically_from_its_run_directory(tmp_path):
    config = load_config(write(tmp_path, minimal()), ["train.epochs=3"])
    saved = save_config(config, tmp_path / "run" / "config.yaml")
    again = load_config(saved)
    assert again == config and config_differences(config, again) == []
    changed = load_config(saved, ["train.epochs=4", "data.train.0.ratio=0.5"])
    assert config_differences(config, changed) == ["data.train.0.ratio: 1.0 -> 0.5", "train.epochs: 3 -> 4"]


def test_learning_rate_scales_linearly_from_the_batch_it_was_tuned_for():
    def scaled(**train) -> float:
        return validate_config(minimal(train=train)).train.scaled_lr

    assert scaled(lr=4e-3, batch_size=32) == pytest.approx(4e-3)                     # no base batch: as written
    assert scaled(lr=4e-3, lr_batch_size=1024, batch_size=32) == pytest.approx(1.25e-4)
    assert scaled(lr=4e-3, lr_batch_size=1024, batch_size=1024) == pytest.approx(4e-3)
    with pytest.raises(ValueError, match="lr_batch_size"):
        validate_config(minimal(train={"lr_batch_size": 0}))

"""Validation inside training: the dataset validator reports exactly what `unionpose val` would (no flip test)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from unionpose.core.simcc import SimCCCodec
from unionpose.data.sources import DatasetSource
from unionpose.engine.config import validate_config
from unionpose.engine.trainer import default_validator
from unionpose.engine.validation import CropValidator, DatasetValidator
from unionpose.eval.evaluate import evaluate_model
from unionpose.eval.tables import headline
from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    generate(folder, num_train=4, num_val=6, seed=2)
    return folder


def config(folder: Path, validation: str) -> dict:
    images = str(folder / "images")
    return {"skeleton": {"union": ["coco17", "mpii16"]}, "model": {"size": "t", "input": [64, 64]},
            "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(folder / "coco17.json"),
                                "images": images}],
                     "val": [{"name": "coco", "format": "coco", "annotations": str(folder / "coco17_val.json"),
                              "images": images, "metric": "coco_ap"},
                             {"name": "mpii", "format": "mpii", "annotations": str(folder / "mpii16_val.json"),
                              "images": images, "metric": "pckh"}]},
            "train": {"batch_size": 4, "validation": validation}, "output": str(folder / "run")}


def test_dataset_validator_reports_the_evaluation_protocol(synthetic: Path, tmp_path: Path) -> None:
    settings = validate_config(config(synthetic, "datasets"))
    skeleton = settings.build_skeleton()
    torch.manual_seed(0)
    model = RTMPose("t", skeleton.num_keypoints, (64, 64)).train()
    validator = default_validator(settings, skeleton, SimCCCodec((64, 64)), torch.device("cpu"))
    assert isinstance(validator, DatasetValidator) and validator.metric == "score"
    metrics = validator(model)
    assert model.training                                   # handed back in the mode it came in
    path = save_model_file(tmp_path / "m.safetensors", model, skeleton)
    sources = [DatasetSource(**entry) for entry in config(synthetic, "datasets")["data"]["val"]]
    expected = evaluate_model(path, sources, flip_test=False, progress=False)
    for name, item in expected.datasets.items():
        label, value = headline(item.result)
        assert metrics[f"{name}/{label}"] == pytest.approx(value, abs=1e-12)
    assert metrics["score"] == pytest.approx((metrics["coco/AP"] + metrics["mpii/PCKh@0.5"]) / 2)


def test_crop_validation_stays_the_default(synthetic: Path) -> None:
    settings = validate_config({**config(synthetic, "crops"), "train": {"batch_size": 4}})
    validator = default_validator(settings, get_skeleton("coco_mpii21"), SimCCCodec((64, 64)), torch.device("cpu"))
    assert isinstance(validator, CropValidator)

"""The training engine's parts (schedule, EMA, optimiser groups, dataset, sampler) and a real run that learns."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.dataset import EpochBatchSampler, TopDownDataset, half_body_split
from unionpose.data.mixture import UnionMixture
from unionpose.data.sources import DatasetSource
from unionpose.engine import load_config, train
from unionpose.engine.ema import ModelEMA
from unionpose.engine.schedule import LearningRateSchedule
from unionpose.engine.trainer import build_optimizer, default_validator, seed_everything, set_train_mode
from unionpose.models import RTMPose, load_model_file
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    generate(folder, num_train=24, num_val=8, seed=0)
    return folder



def union_mixture(folder: Path) -> UnionMixture:
    sources = [DatasetSource(name="coco", format="coco", annotations=folder / "coco17.json", images=folder / "images"),
               DatasetSource(name="mpii", format="mpii", annotations=folder / "mpii16.json", images=folder / "images")]
    return UnionMixture(sources, get_skeleton("coco_mpii21"))


def test_schedule_warmup_constant_cosine():
    schedule = LearningRateSchedule(4e-3, epochs=10, iters_per_epoch=100, warmup_iters=50, cosine_from_epoch=5)
    assert schedule(0) == pytest.approx(4e-3 * 1e-5)
    assert schedule(25) == pytest.approx(4e-3 * (1e-5 + (1 - 1e-5) * 0.5))
    assert schedule(50) == schedule(499) == schedule(500) == pytest.approx(4e-3)
    assert schedule(750) == pytest.approx(2e-4 + 0.5 * (4e-3 - 2e-4))     # default floor: 0.05 x lr
    assert schedule(1000) == pytest.approx(2e-4)
    rates = [schedule(step) for step in range(50, 1001)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert LearningRateSchedule(1e-3, epochs=4, iters_per_epoch=3, warmup_iters=0, min_lr=0.0)(12) == 0.0


def test_ema_follows_the_momentum_with_warmup():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, momentum=2e-4, gamma=2000)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 3))                    # BatchNorm statistics and counter move
    ema.update(model)
    first = (1 - 2e-4) * math.exp(-1 / 2000) + 2e-4
    torch.testing.assert_close(ema.module[0].weight, start + first * 1.0)
    assert int(ema.module[1].num_batches_tracked) == 1
    ema.update(model)
    second = (1 - 2e-4) * math.exp(-2 / 2000) + 2e-4
    torch.testing.assert_close(ema.module[0].weight, start + 1.0 - (1 - first) * (1 - second))
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_adamw_without_decay_on_norms_and_biases():
    model = RTMPose("t", 17, (64, 64))
    optimizer = build_optimizer([model], lr=1e-3, weight_decay=0.05)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    skipped = {id(p) for p in no_decay["params"]}
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(id(m.weight) in skipped and id(m.bias) in skipped for m in norms)
    assert all(id(p) in skipped for n, p in model.named_parameters() if n.endswith(".bias"))
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_freeze_bn_keeps_batchnorm_in_eval_mode():
    model = RTMPose("t", 4, (64, 64))
    set_train_mode(model, freeze_bn=True)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and model.head.training
    set_train_mode(model, freeze_bn=False)
    assert all(m.training for m in norms)


def test_half_body_split_of_the_union_skeleton():
    upper, lower = half_body_split(get_skeleton("coco_mpii21"))
    assert lower == (11, 12, 13, 14, 15, 16, 17)          # hips, knees, ankles, pelvis
    assert upper == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 18, 19, 20)


def make_dataset(mixture: UnionMixture, enabled: bool = True) -> TopDownDataset:
    skeleton = mixture.skeleton
    augmenter = TopDownAugmenter(AugmentConfig(enabled=enabled), (64, 64), skeleton.flip_indices,
                                 *half_body_split(skeleton))
    return TopDownDataset(mixture, augmenter, SimCCCodec((64, 64)), seed=3,
                          dataset_names=[e.source.name for e in mixture.datasets])


def test_dataset_items_carry_targets_in_the_union_skeleton(synthetic):
    mixture = union_mixture(synthetic)
    dataset = make_dataset(mixture)
    coco_index, mpii_index = mixture.datasets[0].start, mixture.datasets[1].start
    coco, mpii = dataset[(0, 0, coco_index)], dataset[(0, 1, mpii_index)]
    assert coco["image"].shape == (3, 64, 64) and coco["image"].dtype == torch.float32
    assert coco["target_x"].shape == (21, 128) and coco["target_y"].shape == (21, 128)
    assert coco["matrix"].shape == (2, 3) and coco["keypoints"].shape == (21, 2)
    assert int(coco["dataset_index"]) == 0 and int(mpii["dataset_index"]) == 1
    assert int(coco["instance_index"]) == coco_index
    # the conditional weight: COCO labels no MPII-only point (17-20), MPII no face point (0-4)
    assert not coco["annotated"][17:].any() and (coco["target_weight"][17:] == 0).all()
    assert not mpii["annotated"][:5].any() and (mpii["target_weight"][:5] == 0).all()
    assert coco["target_weight"].sum() > 0 and mpii["target_weight"].sum() > 0
    assert ((coco["target_weight"] > 0) <= (coco["visible"] > 0)).all()


def test_augmentation_depends_only_on_seed_epoch_and_position(synthetic):
    dataset = make_dataset(union_mixture(synthetic))
    first, again = dataset[(2, 7, 4)], dataset[(2, 7, 4)]
    assert all(torch.equal(first[k], again[k]) for k in first)
    other_epoch = dataset[(3, 7, 4)]
    assert not torch.equal(first["matrix"], other_epoch["matrix"])
    plain = make_dataset(union_mixture(synthetic), enabled=False)
    assert torch.equal(plain[4]["image"], plain[(9, 9, 4)]["image"]) and not bool(plain[4]["flipped"])


def test_loader_workers_give_the_same_batches(synthetic):
    mixture = union_mixture(synthetic)
    dataset = make_dataset(mixture)
    batches = []
    for workers in (0, 2):
        sampler = EpochBatchSampler(lambda epoch: mixture.epoch_indices(epoch, seed=3), 6)
        sampler.set_epoch(1, start_batch=2)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers)
        batches.append([batch for _, batch in zip(range(2), loader)])
    for a, b in zip(*batches):
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_synthetic_training_run_learns(synthetic, tmp_path):
    """RTMPose-t at 64x64 on 35 synthetic COCO people: after 24 steps their GT-box crops are fitted much better.

    Two loader workers, forked after this process used OpenCV (the fixture drew the images): that must not hang."""
    recipe = {
        "skeleton": "coco17",
        "model": {"size": "t", "input": [64, 64]},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(synthetic / "coco17.json"),
                            "images": str(synthetic / "images")}],
                 "val": [{"name": "coco", "format": "coco", "annotations": str(synthetic / "coco17.json"),
                          "images": str(synthetic / "images")}],
                 "augment": {"enabled": False}},
        "train": {"epochs": 6, "batch_size": 8, "warmup_iters": 5, "cosine_from_epoch": 4, "workers": 2,
                  "val_interval": 0, "log_interval": 4, "ema": False, "device": "cpu"},
        "output": str(tmp_path / "run"),
    }
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(recipe))
    config = load_config(path)
    seed_everything(config.train.seed)       # the trainer's initial weights, scored before any step
    skeleton = config.build_skeleton()
    initial = RTMPose("t", 17, (64, 64))
    before = default_validator(config, skeleton, SimCCCodec((64, 64)), torch.device("cpu"))(initial)

    result = train(config)
    after = result.validation
    assert result.steps == 24 and after["loss"] < 0.9 * before["loss"]
    assert after["pck"] > 2 * before["pck"] and after["pck"] > 0.08
    model, info = load_model_file(result.final_model)
    assert info.skeleton == skeleton and json.loads(info.extra["training"])["step"] == 24
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["kind"] == "train"] == [4, 8, 12, 16, 20, 24]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["epochs"] == 6

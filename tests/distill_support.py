"""Shared pieces of the teacher and distillation tests: real fixture crops, tiny teachers with real outputs."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import FIXTURES, require
from torch.utils.data import default_collate

from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.dataset import TopDownDataset
from unionpose.data.mixture import UnionMixture
from unionpose.data.sources import DatasetSource
from unionpose.models import RTMPose
from unionpose.skeletons import Skeleton

SIZE = (64, 64)   # tiny crops keep every test fast


def coco_mpii_mixture() -> UnionMixture:
    """The COCO fixture (12 people, COCO-17) and the MPII fixture (5 people, MPII-16) in the 21-point union."""
    coco, mpii = require(FIXTURES / "coco"), require(FIXTURES / "mpii")
    return UnionMixture([
        DatasetSource(name="coco", format="coco", annotations=coco / "person_keypoints.json", images=coco / "images"),
        DatasetSource(name="mpii", format="mpii", annotations=mpii / "mpii_annotations.json", images=mpii / "images"),
    ])


def make_batch(mixture: UnionMixture, indices: list[int], size: tuple[int, int] = SIZE,
               augment: AugmentConfig | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch exactly as the data pipeline builds it (no augmentation unless `augment` is given)."""
    config = augment or AugmentConfig(enabled=False)
    augmenter = TopDownAugmenter(config, size, mixture.skeleton.flip_indices)
    dataset = TopDownDataset(mixture.instances, augmenter, SimCCCodec(size), seed=seed)
    keys = [(0, position, index) for position, index in enumerate(indices)] if config.enabled else indices
    return default_collate([dataset[key] for key in keys])


def smooth_teacher(skeleton: Skeleton, images: torch.Tensor, seed: int = 0, size: tuple[int, int] = SIZE) -> RTMPose:
    """An RTMPose-t whose outputs look like a trained model's without the training: BatchNorm statistics calibrated
    on `images` (an untrained toolbox-initialised network's activations vanish otherwise) and SimCC classifiers
    smoothed along the bin axis, so each keypoint's logits form broad peaks of order 1 that depend on the image."""
    torch.manual_seed(seed)
    model = RTMPose("t", skeleton.num_keypoints, size)
    kernel = torch.exp(-0.5 * (torch.arange(-12.0, 13.0) / 4.0) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1)
    with torch.no_grad():
        model.head.keypoint_conv.weight.normal_(std=0.02)
        for layer in (model.head.token_embed, model.head.cls_x, model.head.cls_y):
            layer.weight.normal_(std=0.1)
        for layer in (model.head.cls_x, model.head.cls_y):
            rows = layer.weight.t().unsqueeze(1)                     # (hidden, 1, bins)
            smoothed = F.conv1d(F.pad(rows, (12, 12), mode="replicate"), kernel)
            layer.weight.copy_(3.0 * smoothed.squeeze(1).t())
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.reset_running_stats()
                module.momentum = None           # a cumulative average over the calibration pass
        model.train()
        model(images)
    return model.eval()

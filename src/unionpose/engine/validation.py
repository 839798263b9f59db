"""Validation inside the trainer: a pluggable callable. `CropValidator` scores crops cut at the ground-truth boxes
(cheap); `DatasetValidator` runs the evaluation protocol (each dataset's own metric)."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from unionpose.core.constants import KL_LOGIT_SCALE
from unionpose.core.model_description import ModelInfo
from unionpose.data.dataset import TopDownDataset
from unionpose.data.sources import DatasetSource
from unionpose.distill.simcc_loss import kl_discrete_loss
from unionpose.eval.dataset_evaluation import evaluate_dataset
from unionpose.eval.tables import headline
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend


class Validator(Protocol):
    """What the trainer calls every `val_interval` epochs: model -> metrics, and which metric decides "best"."""

    metric: str                 # key of the returned dict that picks the best checkpoint
    higher_is_better: bool

    def __call__(self, model: nn.Module) -> dict[str, float]: ...


class CropValidator:
    """Validation loss and PCK on GT-box crops (no augmentation), overall and per dataset.

    PCK@t counts a point as correct when its decoded position is within t times the crop's longer side of the ground
    truth, over the points the target supervises (annotated, visible, inside the crop); 0.05 is 6.4 px at 128x96.
    The loss is the KL-discrete loss per crop (the training loss is summed over a batch, as the recipe does).
    The full COCO AP / PCKh evaluation lives in `unionpose.eval`; this is the cheap signal for picking checkpoints.
    A model with a depth head (and a dataset encoding depth) also gets `depth`: the mean |depth error| over the points
    labelled in 3D, in the depth unit, each depth read at its bin (the MPJPE of docs/3d.md needs `DatasetValidator`).
    """

    metric = "pck"
    higher_is_better = True

    def __init__(self, dataset: TopDownDataset, *, batch_size: int, workers: int, device: torch.device,
                 logit_scale: float = KL_LOGIT_SCALE, threshold: float = 0.05) -> None:
        if dataset.augmenter.config.enabled:
            raise ValueError("CropValidator needs a dataset with augmentation disabled")
        self.dataset = dataset
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                                 generator=torch.Generator())     # leaves the global RNG to the training run
        self.device = device
        self.logit_scale = logit_scale
        self.threshold = threshold

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        codec = self.dataset.codec
        limit = self.threshold * max(codec.input_size_hw)
        loss_sum, crops = 0.0, 0
        names = self.dataset.dataset_names
        correct, counted = np.zeros(len(names)), np.zeros(len(names))
        depth_codec = self.dataset.depth_codec
        depth_error, depth_points = 0.0, 0
        for batch in self.loader:
            images = batch["image"].to(self.device)
            simcc_x, simcc_y, *simcc_z = model(images)
            if simcc_z and depth_codec is not None:
                labelled = batch["target_z_weight"].numpy() > 0
                error_z = np.abs(depth_codec.decode(simcc_z[0].float().cpu().numpy())
                                 - depth_codec.decode(batch["target_z"].numpy()))
                depth_error += float(error_z[labelled].sum())
                depth_points += int(labelled.sum())
            targets = [batch[key].to(self.device) for key in ("target_x", "target_y", "target_weight")]
            loss_sum += float(kl_discrete_loss(simcc_x, simcc_y, *targets, logit_scale=self.logit_scale))
            crops += len(images)
            predicted, _ = codec.decode(simcc_x.float().cpu().numpy(), simcc_y.float().cpu().numpy())
            error = np.linalg.norm(predicted - batch["keypoints"].numpy(), axis=-1)
            supervised = batch["target_weight"].numpy() > 0
            dataset_index = batch["dataset_index"].numpy()
            for d in range(len(names)):
                mask = supervised & (dataset_index == d)[:, None]
                correct[d] += (error[mask] <= limit).sum()
                counted[d] += mask.sum()
        model.train(was_training)
        metrics = {"loss": loss_sum / max(crops, 1), "pck": float(correct.sum() / max(counted.sum(), 1))}
        if len(names) > 1:
            metrics.update({f"pck/{name}": float(correct[d] / max(counted[d], 1)) for d, name in enumerate(names)})
        if depth_points:
            metrics["depth"] = depth_error / depth_points
        return metrics


class DatasetValidator:
    """The evaluation protocol itself on `data.val`: every dataset scored with its own metric on its own points
    (COCO AP, PCKh or PCK; ground-truth boxes, no flip test), as `unionpose val` does.

    Dearer than `CropValidator` (decoding back to the image and the COCO evaluation), but its numbers are the ones a
    user reads in the tables, so the learning curves and the choice of the best checkpoint follow them. The metric
    that picks "best" is `score`, the mean of the datasets' headline numbers (AP and PCKh as fractions). A model with
    a depth head also reports `<dataset>/mpjpe` and `<dataset>/depth` where the data has 3D labels (not in `score`).
    """

    metric = "score"
    higher_is_better = True

    def __init__(self, sources: Sequence[DatasetSource], info: ModelInfo, *, batch_size: int,
                 device: torch.device) -> None:
        if not sources:
            raise ValueError("DatasetValidator needs at least one validation dataset")
        self.sources = list(sources)
        self.info = info
        self.batch_size = batch_size
        self.device = device

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        was_training = model.training
        runner = TopDownRunner(TorchBackend(model, self.device), self.info, flip_test=False,
                               batch_size=self.batch_size)
        metrics: dict[str, float] = {}
        errors_3d: dict[str, float] = {}
        try:
            for source in self.sources:
                result = evaluate_dataset(runner, source, progress=False).result
                label, value = headline(result)
                metrics[f"{source.name}/{label}"] = float(value or 0.0)
                if "3d" in result:
                    errors_3d.update({f"{source.name}/{key}": float(result["3d"][key]) for key in ("mpjpe", "depth")})
        finally:
            model.train(was_training)
        metrics["score"] = float(np.mean(list(metrics.values())))
        return metrics | errors_3d

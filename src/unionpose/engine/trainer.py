"""The training loop: data, model, objective, AdamW + schedule, EMA, mixed precision, checkpoints, validation, DDP."""
from __future__ import annotations

import json
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from unionpose.core.atomic import atomic_path
from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB, SIMCC_SPLIT_RATIO
from unionpose.core.model_description import ModelInfo
from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import TopDownAugmenter
from unionpose.data.dataset import EpochBatchSampler, TopDownDataset, half_body_split
from unionpose.data.mixture import UnionMixture
from unionpose.distill.multi_teacher import DistillationObjective
from unionpose.distill.objective import GroundTruthObjective
from unionpose.distill.stage2 import HeadSelfDistillation, finalise_stage2, prepare_stage2_student
from unionpose.engine.checkpoint import (
    Checkpoint, Progress, latest_checkpoint, load_checkpoint, newest_intact_checkpoint, restore_checkpoint,
    save_checkpoint,
)
from unionpose.engine.config import RESUMABLE_CHANGES, Config, config_differences, load_config, save_config
from unionpose.engine.distributed import DistributedContext, barrier, init_distributed, shutdown_distributed
from unionpose.engine.divergence import check_finite_loss
from unionpose.engine.ema import ModelEMA
from unionpose.engine.logging import MetricsLog, format_terms, progress_bar
from unionpose.engine.run_lock import RunLock
from unionpose.engine.schedule import LearningRateSchedule
from unionpose.engine.skipped_images import SkippedImages
from unionpose.engine.validation import CropValidator, DatasetValidator, Validator
from unionpose.models import read_model_info, save_model_file
from unionpose.models.initialise import initialise_model
from unionpose.models.rtmpose import RTMPose
from unionpose.skeletons import Skeleton
from unionpose.teachers.base import StudentSpace

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TrainResult:
    run_dir: Path
    final_model: Path           # EMA weights when EMA is on
    best_model: Path | None     # the weights that scored best in validation
    best_metric: float | None
    validation: dict[str, float]    # the last validation's metrics
    steps: int
    skipped_images: int = 0         # images left out mid-run under on_error: skip (see SkippedImages)


class TrainStep(nn.Module):
    """The model and the objective as one module: DDP then synchronises the objective's own parameters as well,
    and the objective may call any of the model's methods inside DDP's forward."""

    def __init__(self, model: RTMPose, objective: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.objective = objective

    def forward(self, batch: dict[str, torch.Tensor], epoch: int, max_epochs: int) -> dict[str, torch.Tensor]:
        return self.objective(self.model, batch, epoch, max_epochs)


def train(config: Config, *, resume: bool | str | Path = False, objective: nn.Module | None = None,
          validator: Validator | None = None) -> TrainResult:
    """Train as `config` says, in this process or as one rank of a torchrun job; returns where everything went.

    `resume`: False starts afresh (refusing a run directory that already holds checkpoints), True continues from the
    newest checkpoint of `config.output`, a path continues from that checkpoint folder (or run directory).
    `objective` defaults to what the config says: the ground-truth KL-discrete loss, with `teachers:` the
    multi-teacher distillation objective, with `stage2:` DWPose's head self-distillation (`build_objective`);
    `validator` to `CropValidator` on `data.val`. The run folder is locked for the run (`RunLock`): a second run or
    a resume while this one lives is refused.
    """
    context = init_distributed(config.train.device)
    try:
        with RunLock(config.output) if context.is_main else nullcontext():
            trainer = Trainer(config, context, resume=resume, objective=objective, validator=validator)
            result = trainer.fit()
            # Free DDP's reducer, the model and the optimiser before the process group goes (shutdown_distributed).
            del trainer
    finally:
        shutdown_distributed(context)
    return result


class Trainer:
    """Builds everything from the config, then `fit()` runs the epochs. Read top to bottom, it is the recipe."""

    def __init__(self, config: Config, context: DistributedContext, *, resume: bool | str | Path = False,
                 objective: nn.Module | None = None, validator: Validator | None = None) -> None:
        self.config = config
        self.context = context
        self.run_dir = Path(config.output)
        settings = config.train
        device = context.device
        if settings.precision == "fp16" and device.type != "cuda":
            raise ValueError("train.precision fp16 needs CUDA (use bf16 or fp32 on the CPU)")
        checkpoint = self._checkpoint_to_resume(resume) if resume else None
        if checkpoint is None and latest_checkpoint(self.run_dir) is not None:
            raise ValueError(f"{self.run_dir} already holds checkpoints: resume it (--resume) or choose another "
                             "output (output=...)")
        seed_everything(settings.seed)

        # Model, codec and data, all in the union skeleton.
        self.skeleton = config.build_skeleton()
        self.model = build_student(config, self.skeleton)
        if config.model.init and checkpoint is None:      # a resumed run takes its weights from the checkpoint
            self.initialise()
        self.codec = SimCCCodec(config.model.input, config.model.sigma)
        # Every image header is checked now: a bad file stops the run before its first step, not in an epoch.
        mixture = UnionMixture(config.data.train, self.skeleton, verify_images=True)
        self.dataset = training_dataset(mixture, self.skeleton, self.codec, config)
        self.skipped_images = SkippedImages(mixture)
        self.sampler = EpochBatchSampler(partial(mixture.epoch_indices, seed=settings.seed), settings.batch_size,
                                         rank=context.rank, world_size=context.world_size)
        # The loader draws worker seeds from its own generator, not the global RNG (which the checkpoint restores):
        # a resumed run starts one more loader iterator than an uninterrupted one. The crops use sample_rng only.
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=settings.workers,
                                 pin_memory=device.type == "cuda", persistent_workers=settings.workers > 0,
                                 generator=torch.Generator().manual_seed(settings.seed))
        self.validator = None
        if context.is_main:
            self.validator = validator or default_validator(config, self.skeleton, self.codec, device)

        # Objective, EMA, optimiser; then the checkpoint (if resuming) overwrites their fresh state.
        self.objective = objective or build_objective(config, self.skeleton, self.model, mixture)
        self.ema = ModelEMA(self.model, settings.ema_momentum) if settings.ema else None
        if context.backend == "nccl" and settings.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model.to(device)
        self.objective.to(device)
        if self.ema is not None:
            self.ema.module.to(device)
        self.optimizer = build_optimizer([self.model, self.objective], settings.scaled_lr, settings.weight_decay)
        self.scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16")
        self.progress = Progress()
        if checkpoint is not None:
            self.progress = restore_checkpoint(checkpoint, model=self.model, skeleton=self.skeleton,
                                               optimizer=self.optimizer, objective=self.objective, ema=self.ema,
                                               scaler=self.scaler)
        self.step_module = self.wrap_step()
        self.schedule = LearningRateSchedule(
            settings.scaled_lr, epochs=settings.epochs, iters_per_epoch=self.sampler.batches_per_epoch,
            warmup_iters=settings.warmup_iters, warmup_ratio=settings.warmup_ratio,
            cosine_from_epoch=settings.cosine_from_epoch, min_lr=settings.min_lr)
        self.log = None
        if context.is_main:
            self.log = MetricsLog(self.run_dir, resume_step=self.progress.step if checkpoint else None,
                                  tensorboard=settings.tensorboard)
            save_config(config, self.run_dir / "config.yaml")     # on resume: the settings it continues with
        self.last_validation: dict[str, float] = {}

    def initialise(self) -> None:
        """Load `model.init` into the fresh student; print what was loaded, mapped and left fresh, and keep that
        record in the run folder as init.json."""
        record = initialise_model(self.model, self.skeleton, self.config.model.init,
                                  source_skeleton=self.config.model.init_skeleton)
        if self.context.is_main:
            tqdm.write(record.summary())
            with atomic_path(self.run_dir / "init.json") as temporary:
                temporary.write_text(record.to_json())

    def wrap_step(self) -> nn.Module:
        """The model and objective as one module, under DDP when distributed. DDP registers the parameters that
        need gradients when it wraps them, so a change of that set (`set_backbone_frozen`) wraps them again."""
        step = TrainStep(self.model, self.objective)
        if not self.context.distributed:
            return step
        device = self.context.device
        return DistributedDataParallel(step, device_ids=[device.index] if device.type == "cuda" else None)

    def set_backbone_frozen(self, frozen: bool) -> None:
        """Backbone parameters without gradients while frozen: AdamW then skips them (no update, no weight decay, no
        moments: they start from zero when the backbone is released) and their backward is never computed."""
        backbone = self.model.backbone
        if all(parameter.requires_grad != frozen for parameter in backbone.parameters()):
            return
        backbone.requires_grad_(not frozen)
        self.step_module = self.wrap_step()

    def fit(self) -> TrainResult:
        settings = self.config.train
        total_steps = settings.epochs * self.sampler.batches_per_epoch
        bar = progress_bar(total_steps, self.progress.step, enabled=self.context.is_main)
        try:
            for epoch in range(self.progress.epoch, settings.epochs):
                bar.set_description(f"epoch {epoch + 1}/{settings.epochs}")
                self.train_one_epoch(epoch, bar)
                self.progress.epoch, self.progress.batch_in_epoch = epoch + 1, 0
                last = epoch + 1 == settings.epochs
                if self.validator is not None and (last or _every(settings.val_interval, epoch + 1)):
                    self.validate(epoch + 1)
                barrier(self.context)
                if last or _every(settings.checkpoint_interval, epoch + 1):
                    self.save_checkpoint()
        finally:
            bar.close()
            if self.log is not None:
                self.log.close()
        final = self.run_dir / "final.safetensors"
        if self.context.is_main:
            self.export_model(final)
        best = self.run_dir / "best.safetensors"
        return TrainResult(self.run_dir, final, best if best.is_file() else None, self.progress.best_metric,
                           self.last_validation, self.progress.step, len(self.skipped_images))

    def train_one_epoch(self, epoch: int, bar: tqdm) -> None:
        settings = self.config.train
        device = self.context.device
        # DWPose stage 2 freezes the backbone throughout, `freeze_backbone_epochs` for the first epochs only; from the
        # epoch alone, so a resumed run freezes exactly where the uninterrupted one did.
        frozen = self.config.stage2 is not None or epoch < settings.freeze_backbone_epochs
        self.set_backbone_frozen(frozen)
        set_train_mode(self.model, freeze_bn=settings.freeze_bn, frozen_backbone=frozen)
        self.objective.train()
        self.sampler.set_epoch(epoch, start_batch=self.progress.batch_in_epoch)
        autocast = partial(torch.autocast, device.type, dtype=PRECISIONS[settings.precision],
                           enabled=settings.precision != "fp32")
        parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        sums: dict[str, torch.Tensor] = {}
        count, started = 0, time.perf_counter()
        for batch in self.loader:
            self.skipped_images.record(batch)
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            lr = self.schedule(self.progress.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with autocast():
                terms = self.step_module(batch, epoch, settings.epochs)
            loss = terms["loss"]
            check_finite_loss(terms, self.progress.step, self.run_dir)
            self.optimizer.zero_grad(set_to_none=True)
            # The loss is a sum over the batch and DDP averages gradients over processes: scaling by their number
            # makes N processes with B/N crops each take exactly the step one process takes with B crops.
            self.scaler.scale(loss * self.context.world_size).backward()
            if settings.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(parameters, settings.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model)
            self.progress.step += 1
            self.progress.batch_in_epoch += 1
            bar.update(1)

            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.detach().float()
            count += 1
            epoch_done = self.progress.batch_in_epoch == self.sampler.batches_per_epoch
            if self.progress.step % settings.log_interval == 0 or epoch_done:
                self._log_training(epoch, sums, count, lr, time.perf_counter() - started, bar)
                sums, count, started = {}, 0, time.perf_counter()
            if settings.checkpoint_iters and self.progress.step % settings.checkpoint_iters == 0 and not epoch_done:
                self.save_checkpoint()

    def _log_training(self, epoch: int, sums: dict[str, torch.Tensor], count: int, lr: float, seconds: float,
                      bar: tqdm) -> None:
        """Mean of each term over the interval. Under torchrun a loss term covers one process's share of the batch, so
        the shares are summed (the global batch's value, as one process would log it); a term that is the same on
        every process (a schedule factor such as the distillation decay) is logged as it is."""
        names = sorted(sums)
        values = torch.stack([sums[name] for name in names]) / count
        if self.context.distributed:
            low, high = values.clone(), values.clone()
            dist.all_reduce(values)
            dist.all_reduce(low, op=dist.ReduceOp.MIN)
            dist.all_reduce(high, op=dist.ReduceOp.MAX)
            values = torch.where(low == high, high, values)
        if self.log is None:
            return
        record = dict(zip(names, values.tolist()))
        record["lr"] = lr
        bar.set_postfix(format_terms(record), refresh=False)
        record["images_per_s"] = count * self.config.train.batch_size / max(seconds, 1e-9)
        self.log.write("train", self.progress.step, epoch + 1, record)

    def validate(self, epoch: int) -> dict[str, float]:
        """Score the weights that would be exported (EMA when on); keep them as best.safetensors when they win."""
        model = self.ema.module if self.ema is not None else self.model
        metrics = self.validator(model)
        value = metrics[self.validator.metric]
        best = self.progress.best_metric
        improved = best is None or (value > best if self.validator.higher_is_better else value < best)
        if improved:
            self.progress.best_metric, self.progress.best_epoch = value, epoch
            self.export_model(self.run_dir / "best.safetensors")
        self.log.write("val", self.progress.step, epoch, {**metrics, "best": self.progress.best_metric})
        self.last_validation = metrics
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        tqdm.write(f"epoch {epoch}: validation {shown}{' (best)' if improved else ''}")
        return metrics

    def save_checkpoint(self) -> None:
        if self.context.is_main:
            save_checkpoint(self.run_dir, model=self.model, skeleton=self.skeleton, codec_sigma=self.codec.sigma,
                            optimizer=self.optimizer, objective=self.objective, ema=self.ema, scaler=self.scaler,
                            progress=self.progress, keep=self.config.train.keep_checkpoints)

    def export_model(self, path: Path) -> Path:
        model = self.ema.module if self.ema is not None else self.model
        if self.config.stage2 is not None:      # the stage-1 backbone, bit for bit, and the new head
            return finalise_stage2(self.config.stage2.stage1, model, path)
        provenance = {"epoch": self.progress.epoch, "step": self.progress.step, "ema": self.ema is not None}
        extra = {"training": json.dumps(provenance), "train_config": json.dumps(self.config.model_dump(mode="json"))}
        return save_model_file(path, model, self.skeleton, codec_sigma=self.codec.sigma, extra=extra)

    def _checkpoint_to_resume(self, resume: bool | str | Path) -> Checkpoint:
        """The checkpoint to continue from: the folder given, or the run's newest intact one; its run's saved config
        must match this one."""
        source = self.run_dir if resume is True else Path(resume)
        if (source / "state.json").exists():
            checkpoint = load_checkpoint(source)
        else:
            checkpoint = newest_intact_checkpoint(source, set_aside=self.context.is_main)
        if checkpoint is None:
            raise ValueError(f"nothing to resume: {source} holds no checkpoint (checkpoints/step_*)")
        directory = checkpoint.directory
        saved = directory.parent.parent / "config.yaml"
        if saved.is_file():
            previous = load_config(saved)
            changed = [c for c in config_differences(previous, self.config) if c.split(":")[0] not in RESUMABLE_CHANGES]
            if changed:
                raise ValueError(f"cannot resume {directory}: the config differs from the run's {saved} in "
                                 + "; ".join(changed) + f" (only {', '.join(RESUMABLE_CHANGES)} may change)")
        return checkpoint


def build_student(config: Config, skeleton: Skeleton) -> RTMPose:
    """The model to train: a fresh RTMPose (`Trainer.initialise` then loads `model.init` into it when a run starts),
    or for DWPose stage 2 the stage-1 model's backbone, frozen, under a fresh head."""
    if config.stage2 is None:
        return RTMPose(config.model.size, skeleton.num_keypoints, config.model.input, depth=config.model.depth_codec)
    stage1 = config.stage2.stage1
    info = read_model_info(stage1)
    if info.skeleton != skeleton or info.model_size != config.model.size or info.input_size != config.model.input:
        raise ValueError(f"stage2.stage1 {stage1}: holds RTMPose-{info.model_size} {list(info.input_size)} for "
                         f"skeleton {info.skeleton.name!r}, but the config says RTMPose-{config.model.size} "
                         f"{list(config.model.input)} for {skeleton.name!r}; set model.size, model.input and "
                         "skeleton to the stage-1 model's")
    return prepare_stage2_student(stage1)


def build_objective(config: Config, skeleton: Skeleton, model: RTMPose, mixture: UnionMixture) -> nn.Module:
    """The recipe's loss: the ground-truth loss alone, with teachers the distillation objective (distill/), or for
    DWPose stage 2 the stage-1 head's self-distillation."""
    if config.stage2 is not None:
        return HeadSelfDistillation(config.stage2.stage1, config.stage2.kd_logit_scale)
    if not config.teachers:
        return GroundTruthObjective(depth_weight=config.loss.depth_weight)
    student = StudentSpace(skeleton, tuple(config.model.input), SIMCC_SPLIT_RATIO, config.model.sigma,
                           depth=config.model.depth_codec)
    # Cached teachers key their predictions by the mixture's instance list, which the batch's instance_index indexes.
    return DistillationObjective.from_specs(config.loss, config.teachers, student, model.backbone.out_channels,
                                            mixture.instances)


def training_dataset(mixture: UnionMixture, skeleton: Skeleton, codec: SimCCCodec, config: Config) -> TopDownDataset:
    """The augmented crops of the training mixture, with RTMPose's milder augmentation for the last epochs."""
    upper, lower = half_body_split(skeleton)

    def augmenter(settings) -> TopDownAugmenter:
        return TopDownAugmenter(settings, config.model.input, skeleton.flip_indices, upper, lower)

    augment = config.data.augment
    mild_from = config.train.epochs - config.data.mild_last_epochs
    return TopDownDataset(mixture, augmenter(augment), codec, seed=config.train.seed,
                          dataset_names=[entry.source.name for entry in mixture.datasets],
                          mild_augmenter=augmenter(augment.mild()) if augment.enabled else None,
                          mild_from_epoch=mild_from, depth_codec=config.model.depth_codec)


def default_validator(config: Config, skeleton: Skeleton, codec: SimCCCodec,
                      device: torch.device) -> Validator | None:
    """What `train.validation` asks for on `data.val` (None when the config has no validation data): loss and
    PCK@0.05 on GT-box crops, or each dataset's own metric through the evaluation protocol."""
    if not config.data.val:
        return None
    if config.train.validation == "datasets":
        info = ModelInfo(skeleton, config.model.size, tuple(config.model.input), codec.split_ratio, codec.sigma,
                         IMAGE_MEAN_RGB, IMAGE_STD_RGB, depth=config.model.depth_codec)
        return DatasetValidator(config.data.val, info, batch_size=config.train.batch_size, device=device)
    mixture = UnionMixture(config.data.val, skeleton)
    plain = config.data.augment.model_copy(update={"enabled": False})
    augmenter = TopDownAugmenter(plain, config.model.input, skeleton.flip_indices)
    dataset = TopDownDataset(mixture, augmenter, codec, dataset_names=[e.source.name for e in mixture.datasets],
                             depth_codec=config.model.depth_codec)
    return CropValidator(dataset, batch_size=config.train.batch_size, workers=config.train.workers, device=device)


def build_optimizer(modules: list[nn.Module], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with no weight decay on norms, biases and other 0/1-D parameters (scales, gains), as timm does."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for name, parameter in module.named_parameters():
            if not parameter.requires_grad or id(parameter) in seen:
                continue
            seen.add(id(parameter))
            (no_decay if parameter.ndim <= 1 or name.endswith(".bias") else decay).append(parameter)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def set_train_mode(model: nn.Module, freeze_bn: bool, frozen_backbone: bool = False) -> None:
    """Training mode; with `freeze_bn` the BatchNorm layers keep their statistics (eval mode) and are not updated;
    a `frozen_backbone` (DWPose stage 2, the first `train.freeze_backbone_epochs`) stays in eval mode as a whole."""
    model.train()
    if frozen_backbone:
        model.backbone.eval()
    if freeze_bn:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (model initialisation); the data draws from (seed, epoch, position) instead."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _every(interval: int, epoch: int) -> bool:
    return interval > 0 and epoch % interval == 0

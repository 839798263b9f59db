"""The one YAML config schema of every recipe, validated into typed objects; `key.sub=value` overrides."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from unionpose.core.atomic import write_text_atomic
from unionpose.core.config_schema import ConfigModel
from unionpose.core.depth import (
    DEFAULT_DEPTH_BINS, DEFAULT_DEPTH_RANGE, DEFAULT_DEPTH_SIGMA, DEFAULT_DEPTH_UNIT, DepthCodec,
)
from unionpose.data.config import DataConfig, DataRecipe
from unionpose.data.sources import resolve_path
from unionpose.distill.multi_teacher import LossSpec
from unionpose.distill.stage2 import Stage2Spec
from unionpose.teachers.spec import TeacherSpec

PositiveInt = Annotated[int, Field(ge=1)]


class Strict(ConfigModel):
    """Every config section: unknown keys are errors (a typo must not be ignored), values are checked (no infinities,
    no booleans for numbers: `ConfigModel`)."""


class DepthConfig(Strict):
    """`model.depth`: the depth head (docs/3d.md); `model.depth={}` turns it on with these defaults."""

    range: float = Field(DEFAULT_DEPTH_RANGE, gt=0.0)     # bins span -range..+range of root-relative depth
    bins: int = Field(DEFAULT_DEPTH_BINS, ge=2)
    unit: str = Field(DEFAULT_DEPTH_UNIT, min_length=1)   # the unit of the 3D labels (recorded in the model file)
    sigma: float = Field(DEFAULT_DEPTH_SIGMA, gt=0.0)     # Gaussian target width in bins

    def codec(self) -> DepthCodec:
        return DepthCodec(range=self.range, bins=self.bins, unit=self.unit, sigma=self.sigma)


class ModelConfig(Strict):
    size: Literal["t", "s", "m", "l"] = "s"
    input: tuple[PositiveInt, PositiveInt] = (256, 192)    # (height, width), multiples of 32
    sigma: tuple[float, float] | None = None    # SimCC Gaussian (x, y) in bins; None: the codec's default
    # Weights of the same size to start from (models/initialise.py): a model file or a toolbox RTMPose checkpoint
    # of any skeleton and input (keypoints matched by name), or a backbone alone (the toolbox's pretrained CSPNeXt,
    # a UnionPose backbone file). Applied when a run starts, never on resume (the checkpoint holds the weights).
    init: str | None = None
    init_skeleton: str | None = None            # skeleton of a toolbox checkpoint in `init`; None: from its count
    depth: DepthConfig | None = None            # a depth head next to x and y; None: a 2D model

    @property
    def depth_codec(self) -> DepthCodec | None:
        return self.depth.codec() if self.depth is not None else None

    @field_validator("input")
    @classmethod
    def _multiple_of_32(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] % 32 or value[1] % 32:
            raise ValueError(f"input (height, width) must be multiples of 32, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _init_skeleton_needs_init(self) -> ModelConfig:
        if self.init_skeleton and not self.init:
            raise ValueError("init_skeleton names the skeleton of the weights in init; set init too")
        return self


class TrainConfig(Strict):
    epochs: PositiveInt = 420
    batch_size: PositiveInt = 256               # global: split evenly over the torchrun processes
    lr: float = Field(4e-3, gt=0.0)             # peak learning rate; for `lr_batch_size` crops per step when set
    lr_batch_size: PositiveInt | None = None    # the batch `lr` was tuned for (RTMPose: 4e-3 at 1024): the run uses
                                                # lr * batch_size / lr_batch_size, the linear rule of the reference
                                                # toolbox's auto-scaling (docs/conventions.md); None: lr as it is
    weight_decay: float = Field(0.0, ge=0.0)    # never applied to norms and biases
    warmup_iters: int = Field(1000, ge=0)
    warmup_ratio: float = Field(1e-5, gt=0.0, le=1.0)
    cosine_from_epoch: int | None = Field(None, ge=0)   # None: half the epochs
    min_lr: float | None = Field(None, ge=0.0)  # None: 5 % of the (scaled) lr, 2e-4 for lr 4e-3
    ema: bool = True
    ema_momentum: float = Field(2e-4, gt=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)       # max global gradient norm
    seed: int = 21
    workers: int = Field(2, ge=0)
    device: str = "auto"                        # auto | cpu | cuda
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast on CUDA; fp16 adds a gradient scaler
    sync_bn: bool = True                        # SyncBatchNorm across processes (NCCL only)
    freeze_bn: bool = False                     # BatchNorm in eval mode: fixed statistics, e.g. for fine-tuning
    freeze_backbone_epochs: int = Field(0, ge=0)   # first N epochs: backbone not updated, BatchNorm statistics fixed
    val_interval: int = Field(10, ge=0)         # epochs between validations (0: never; the last epoch always)
    validation: Literal["crops", "datasets"] = "crops"  # crops: loss and PCK@0.05 on GT-box crops (cheap);
                                                # datasets: each val set's own metric (AP, PCKh), as `unionpose val`
    checkpoint_interval: int = Field(1, ge=0)   # epochs between checkpoints (the last epoch always)
    checkpoint_iters: int | None = Field(None, ge=1)    # also every N iterations (for long epochs)
    keep_checkpoints: PositiveInt = 2
    log_interval: PositiveInt = 50              # iterations between metrics lines
    tensorboard: bool = True                    # mirror the metrics to TensorBoard when it is installed

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.cosine_from_epoch is not None and self.cosine_from_epoch > self.epochs:
            raise ValueError(f"cosine_from_epoch ({self.cosine_from_epoch}) is after the last epoch ({self.epochs})")
        if self.freeze_backbone_epochs > self.epochs:
            raise ValueError(f"freeze_backbone_epochs ({self.freeze_backbone_epochs}) is more than the epochs "
                             f"({self.epochs})")
        return self

    @property
    def scaled_lr(self) -> float:
        """The peak learning rate this run uses: `lr` scaled linearly from `lr_batch_size` to `batch_size`.

        AdamW at a small batch with a learning rate tuned for a big one does not learn at all: RTMPose-t at batch 32
        with 2e-3 or 4e-3 cannot even memorise 257 crops, while 4e-3 * 32 / 1024 = 1.25e-4 does (docs/conventions.md).
        """
        if self.lr_batch_size is None:
            return self.lr
        return self.lr * self.batch_size / self.lr_batch_size


class Config(DataRecipe):
    """A whole recipe: the data part (`skeleton`, `data`, shared with every reader of recipes) and the training."""

    model_config = ConfigDict(extra="forbid")

    model: ModelConfig = ModelConfig()
    teachers: list[TeacherSpec] = []            # empty: plain supervised training (the ground-truth loss alone)
    loss: LossSpec = LossSpec()                 # how GT and distillation terms combine; unused without teachers
    stage2: Stage2Spec | None = None            # DWPose stage 2: a new head on this stage-1 model's frozen backbone
    train: TrainConfig = TrainConfig()
    output: str                                 # the run directory

    @field_validator("loss", "stage2", mode="before")
    @classmethod
    def _renamed_keys(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kd_temperature" in value:
            raise ValueError("kd_temperature is now kd_logit_scale: it multiplies the logits (an inverse temperature)")
        return value

    @field_validator("data")
    @classmethod
    def _has_training_data(cls, data: DataConfig) -> DataConfig:
        if not data.train:
            raise ValueError("a training recipe needs at least one dataset in data.train")
        return data

    @model_validator(mode="after")
    def _check_stage2(self) -> Config:
        # Stage 2 distils from the stage-1 model alone and builds its student from it.
        if self.stage2 is not None and self.teachers:
            raise ValueError(f"stage2: the stage-1 model is the only teacher of stage 2; set teachers: [] "
                             f"(got {', '.join(t.name for t in self.teachers)})")
        if self.stage2 is not None and self.model.init:
            raise ValueError("stage2: the student is built from stage2.stage1; drop model.init")
        if self.stage2 is not None and self.model.depth is not None:
            raise ValueError("stage2 trains a 2D head; drop model.depth")
        if self.stage2 is not None and self.train.freeze_backbone_epochs:
            raise ValueError("stage2: the backbone stays frozen for the whole run; drop train.freeze_backbone_epochs")
        return self

    def resolve_paths(self, base: Path) -> Config:
        """Dataset files, the init weights (and a skeleton file for them), the stage-1 model and the teachers taken
        relative to `base` (the config's folder), made absolute (`resolve_path`), so the recipe reads the same files
        wherever it is launched from. `output` stays relative to the current folder."""
        recipe = super().resolve_paths(base)
        model = self.model.model_copy(update={"init": str(resolve_path(base, self.model.init))
                                              if self.model.init else None,
                                              "init_skeleton": _resolve_file(self.model.init_skeleton, base)})
        teachers = [t.model_copy(update={"path": resolve_path(base, t.path),
                                         "cache": resolve_path(base, t.cache) if t.cache else None,
                                         "skeleton": _resolve_file(t.skeleton, base)}) for t in self.teachers]
        stage2 = (self.stage2.model_copy(update={"stage1": resolve_path(base, self.stage2.stage1)})
                  if self.stage2 else None)
        return recipe.model_copy(update={"model": model, "teachers": teachers, "stage2": stage2})


# Keys that may differ between a run and its resumption: they change how it runs, not what it computes.
RESUMABLE_CHANGES = ("output", "train.device", "train.workers", "train.log_interval", "train.tensorboard",
                     "train.keep_checkpoints")


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config, apply `key.sub=value` overrides (values parsed as YAML scalars) and validate it.

    Relative dataset and model paths are relative to the config file's folder (as `unionpose data` reads recipes).

    Errors are ValueErrors that name the file and the key path, e.g. `cfg.yaml: train.lr: Input should be ...`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_bytes())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping of sections (skeleton, model, data, ...)")
    for override in overrides:
        apply_override(data, override)
    return validate_config(data, source=str(path)).resolve_paths(path.parent)


def validate_config(data: dict[str, Any], source: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        lines = [f"{_key_path(e['loc'])}: {_message(e)}" for e in error.errors()]
        raise ValueError(f"{source}: {len(lines)} invalid setting(s):\n  " + "\n  ".join(lines)) from None


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in the nested dict (list items by index: `data.train.0.ratio=2`)."""
    key, separator, text = override.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"override {override!r} must look like key.sub=value")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"override {override!r}: the value is not valid YAML: {error}") from None
    parts = key.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_list_index(part, node, where, override)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ValueError(f"override {override!r}: {where} is a value, not a section")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(last, node, key, override)] = value
    elif isinstance(node, dict):
        if isinstance(node.get(last), dict) and isinstance(value, dict):   # every other key would silently go
            raise ValueError(f"override {override!r} replaces the whole section {key.strip()}; set its keys one by "
                             f"one instead ({key.strip()}.name=value)")
        node[last] = value
    else:
        raise ValueError(f"override {override!r}: {'.'.join(parts[:-1])} is a value, not a section")


def save_config(config: Config, path: str | Path) -> Path:
    """The resolved config (defaults filled in) as YAML: it reproduces the run with `unionpose train`."""
    return write_text_atomic(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def config_differences(old: Config, new: Config) -> list[str]:
    """Key paths whose values differ between two configs, as `key: old -> new`."""
    changes: list[str] = []
    _diff(old.model_dump(mode="json"), new.model_dump(mode="json"), "", changes)
    return changes


def _diff(old: Any, new: Any, prefix: str, changes: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            _diff(old.get(key), new.get(key), f"{prefix}{key}.", changes)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, f"{prefix}{index}.", changes)
    elif old != new:
        changes.append(f"{prefix[:-1]}: {old!r} -> {new!r}")


def _resolve_file(spec: Any, base: Path) -> Any:
    """A skeleton given as a YAML file, relative to `base`; preset names and unions stay as they are."""
    return str(resolve_path(base, spec)) if isinstance(spec, str) and spec.endswith((".yaml", ".yml")) else spec


def _list_index(part: str, node: list, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ValueError(f"override {override!r}: {where} must be an index below {len(node)}")
    return int(part)


def _key_path(location: tuple) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return error["msg"].removeprefix("Value error, ")

"""The config-facing description of a dataset (`DatasetSource`), reading one, and the data part of a config file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from unionpose.core.errors import DataError
from unionpose.core.images import verify_image
from unionpose.data.instance import Instance
from unionpose.data.readers import FLAVOURS, ReadReport, read_coco, read_mpii
from unionpose.data.readers.mpii import DEFAULT_SKELETON as MPII_SKELETON
from unionpose.data.readers.report import BAD_IMAGE
from unionpose.skeletons import Skeleton, get_skeleton, union

Format = Literal["coco", "coco_wholebody", "halpe136", "crowdpose", "aic", "ochuman", "posetrack18", "mpii"]


class DatasetSource(BaseModel):
    """One dataset of a recipe: where its files are, how to read them, how often to sample it, how to score it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    format: Format
    annotations: Path                    # a file; for posetrack18 also a folder of per-video files
    images: Path                         # the folder that the annotation's image file names are relative to
    skeleton: str | None = None          # the dataset's own skeleton: preset name or YAML file; default per format
    ratio: float = Field(1.0, gt=0)      # sampling ratio per epoch: 1.0 each person once, 0.5 half, 2.0 twice
    on_error: Literal["raise", "skip"] = "raise"
    metric: Literal["coco_ap", "pckh", "pck"] | None = None

    def native_skeleton(self) -> Skeleton:
        return get_skeleton(self.skeleton or default_skeleton(self.format))

    def resolve_paths(self, base: Path) -> DatasetSource:
        """Relative paths (annotations, images, a skeleton YAML) taken relative to `base`, e.g. the config's folder."""
        update = {"annotations": _join(base, self.annotations), "images": _join(base, self.images)}
        if self.skeleton and self.skeleton.endswith((".yaml", ".yml")):
            update["skeleton"] = str(_join(base, self.skeleton))
        return self.model_copy(update=update)


class UnionOf(BaseModel):
    """`skeleton: {union: [coco17, mpii16]}`: the union of named skeletons, in this order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    union: list[str] = Field(min_length=1)


SkeletonSpec = str | UnionOf


class DataSplits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    train: list[DatasetSource] = []
    val: list[DatasetSource] = []

    @field_validator("train", "val")
    @classmethod
    def _unique_names(cls, sources: list[DatasetSource]) -> list[DatasetSource]:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"dataset names must be unique within a split; repeated: {', '.join(duplicates)}")
        return sources


class DataConfig(BaseModel):
    """The data part of a recipe: the union skeleton (None: the union of the datasets' skeletons) and the splits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skeleton: SkeletonSpec | None = None
    data: DataSplits


def _join(base: Path, path: str | Path) -> Path:
    """`base / path` with `..` folded away (symlinks kept), so messages show a readable path."""
    return Path(os.path.normpath(base / path))


def default_skeleton(format: str) -> str:
    return MPII_SKELETON if format == "mpii" else FLAVOURS[format].skeleton


def build_skeleton(spec: SkeletonSpec | None, sources: list[DatasetSource]) -> Skeleton:
    """The union skeleton a recipe asks for: a preset or file, an explicit union, or by default the union of the
    sources' native skeletons in the order the sources are listed."""
    if spec is None:
        if not sources:
            raise ValueError("no skeleton given and no datasets to take one from")
        return union(*(s.native_skeleton() for s in sources))
    if isinstance(spec, UnionOf):
        return union(*(get_skeleton(name) for name in spec.union))
    return get_skeleton(spec)


def read_source(spec: DatasetSource, verify_images: bool = False) -> tuple[list[Instance], ReadReport]:
    """Read one dataset into instances in its native skeleton; `verify_images` also checks every image file's
    header and end marker against the annotation (missing, truncated, wrong size), as `on_error` says."""
    if spec.format == "mpii":
        instances, report = read_mpii(spec.annotations, spec.images, spec.native_skeleton(), spec.on_error, spec.name)
    else:
        instances, report = read_coco(spec.annotations, spec.images, spec.format, spec.native_skeleton(),
                                      spec.on_error, spec.name)
    if verify_images:
        instances = _verify_images(instances, report, spec.on_error)
    return instances, report


def _verify_images(instances: list[Instance], report: ReadReport, on_error: str) -> list[Instance]:
    problems: dict[str, DataError | None] = {}
    for instance in instances:
        if instance.image not in problems:
            try:
                verify_image(instance.image, instance.image_size, record=f"image id {instance.image_id}")
                problems[instance.image] = None
            except DataError as error:
                if on_error == "raise":
                    raise
                problems[instance.image] = error
    kept = []
    for instance in instances:
        error = problems[instance.image]
        if error is None:
            kept.append(instance)
        else:
            report.skip(BAD_IMAGE, f"{error} (annotation {instance.ann_id})")
    return kept


def load_data_config(path: str | Path) -> DataConfig:
    """Read `skeleton` and `data.train` / `data.val` (lists of datasets) from a YAML recipe; the other keys (model,
    train, `data.augment`, ...) belong to the training recipe, whose own schema validates them (`unionpose train`).
    Relative paths are relative to the file's folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DataError(path, None, None, "config file not found") from None
    except yaml.YAMLError as error:
        raise DataError(path, None, None, f"not valid YAML: {error}") from None
    if not isinstance(raw, dict) or "data" not in raw:
        raise DataError(path, None, "data", "a recipe needs a 'data' section with 'train' and/or 'val' lists")
    try:
        data = raw["data"]
        if isinstance(data, dict):
            data = {key: data[key] for key in ("train", "val") if key in data}
        config = DataConfig.model_validate({"data": data} | ({"skeleton": raw["skeleton"]} if "skeleton" in raw else {}))
    except ValidationError as error:
        first = error.errors()[0]
        location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise DataError(path, None, location, f"{first['msg']}{more}") from None
    base = path.parent
    skeleton = config.skeleton
    if isinstance(skeleton, str) and skeleton.endswith((".yaml", ".yml")):
        skeleton = str(_join(base, skeleton))
    splits = DataSplits(train=[s.resolve_paths(base) for s in config.data.train],
                        val=[s.resolve_paths(base) for s in config.data.val])
    return DataConfig(skeleton=skeleton, data=splits)

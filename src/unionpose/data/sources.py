"""One dataset of a recipe (`DatasetSource`: files, format, sampling ratio, metric) and reading it into instances."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from unionpose.core.config_schema import ConfigModel
from unionpose.core.errors import DataError
from unionpose.core.images import MAX_PIXELS, verify_image
from unionpose.data.instance import Instance
from unionpose.data.readers import FLAVOURS, ReadReport, read_coco, read_mpii
from unionpose.data.readers.mpii import DEFAULT_SKELETON as MPII_SKELETON
from unionpose.data.readers.report import BAD_IMAGE
from unionpose.skeletons import Skeleton, get_skeleton

Format = Literal["coco", "coco_wholebody", "halpe136", "crowdpose", "aic", "ochuman", "posetrack18", "mpii"]


class DatasetSource(ConfigModel):
    """One dataset of a recipe: where its files are, how to read them, how often to sample it, how to score it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    format: Format
    annotations: Path                    # a file; for posetrack18 also a folder of per-video files
    images: Path                         # the folder that the annotation's image file names are relative to
    skeleton: str | None = None          # the dataset's own skeleton: preset name or YAML file; default per format
    ratio: float = Field(1.0, gt=0)      # sampling ratio per epoch: 1.0 each person once, 0.5 half, 2.0 twice
    on_error: Literal["raise", "skip"] = "raise"   # skip: bad records and images are counted and left out
    metric: Literal["coco_ap", "pckh", "pck"] | None = None
    max_image_pixels: int = Field(MAX_PIXELS, ge=1)    # larger images are refused from their header, never decoded
    allow_outside_images: bool = False   # file names may lead outside `images` (`..`, absolute paths)
    head_boxes: Path | None = None       # MPII: the official `mpii_gt_val.mat`, whose head boxes PCKh uses

    def native_skeleton(self) -> Skeleton:
        return get_skeleton(self.skeleton or default_skeleton(self.format))

    def resolve_paths(self, base: Path) -> DatasetSource:
        """Relative paths (annotations, images, a skeleton YAML) taken relative to `base`, the config's folder."""
        update = {"annotations": resolve_path(base, self.annotations), "images": resolve_path(base, self.images)}
        if self.head_boxes is not None:
            update["head_boxes"] = resolve_path(base, self.head_boxes)
        if self.skeleton and self.skeleton.endswith((".yaml", ".yml")):
            update["skeleton"] = str(resolve_path(base, self.skeleton))
        return self.model_copy(update=update)


def resolve_path(base: Path, path: str | Path) -> Path:
    """`path` taken relative to the folder `base` (a config file's), made absolute, with `..` folded away (symlinks
    inside kept), so that a recipe reads the same files wherever it is launched from and messages stay readable."""
    return Path(os.path.normpath(Path(base).resolve() / path))


def default_skeleton(format: str) -> str:
    return MPII_SKELETON if format == "mpii" else FLAVOURS[format].skeleton


def read_source(spec: DatasetSource, verify_images: bool = False) -> tuple[list[Instance], ReadReport]:
    """Read one dataset into instances in its native skeleton; `verify_images` also passes every image file through
    the image gate (`core.images.verify_image`: missing, truncated, wrong size, over `max_image_pixels`), reading
    headers only, as `on_error` says."""
    confine = not spec.allow_outside_images
    if spec.format == "mpii":
        instances, report = read_mpii(spec.annotations, spec.images, spec.native_skeleton(), spec.on_error, spec.name,
                                      spec.head_boxes, confine)
    else:
        if spec.head_boxes is not None:
            raise ValueError(f"dataset {spec.name!r}: head_boxes (MPII's evaluation file) is for format mpii")
        instances, report = read_coco(spec.annotations, spec.images, spec.format, spec.native_skeleton(),
                                      spec.on_error, spec.name, confine)
    if verify_images:
        instances = _verify_images(instances, report, spec.on_error, spec.max_image_pixels)
    return instances, report


def _verify_images(instances: list[Instance], report: ReadReport, on_error: str,
                   max_pixels: int) -> list[Instance]:
    problems: dict[str, DataError | None] = {}
    for instance in instances:
        if instance.image not in problems:
            try:
                verify_image(instance.image, instance.image_size, f"image id {instance.image_id}", max_pixels)
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

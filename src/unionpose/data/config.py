"""The data part of a recipe, one schema for every reader of it: the union skeleton and the `data:` section.

`DataRecipe` is what `unionpose data`, `unionpose val` and the data benchmarks read from a recipe (other sections are
left to the training schema, `unionpose.engine.config.Config`, which extends this one). Relative paths are taken
relative to the recipe's folder, made absolute, by one rule (`resolve_path`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator

from unionpose.core.config_schema import ConfigModel
from unionpose.core.errors import DataError
from unionpose.data.augment import AugmentConfig
from unionpose.data.sources import DatasetSource, resolve_path
from unionpose.skeletons import Skeleton, get_skeleton, union


class UnionOf(ConfigModel):
    """`skeleton: {union: [coco17, mpii16]}`: the union of named skeletons, in this order."""

    model_config = ConfigDict(frozen=True)

    union: list[str] = Field(min_length=1)


SkeletonSpec = str | UnionOf


class DataConfig(ConfigModel):
    """The `data:` section: training and validation datasets, and how training crops are augmented."""

    train: list[DatasetSource] = []
    val: list[DatasetSource] = []
    augment: AugmentConfig = AugmentConfig()
    mild_last_epochs: int = Field(30, ge=0)     # RTMPose's milder augmentation for the last epochs

    @field_validator("train", "val")
    @classmethod
    def _unique_names(cls, sources: list[DatasetSource]) -> list[DatasetSource]:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"dataset names must be unique within a split; repeated: {', '.join(duplicates)}")
        return sources


class DataRecipe(ConfigModel):
    """The union skeleton (None: the union of the training sets' skeletons) and the datasets of a recipe."""

    model_config = ConfigDict(extra="ignore")    # the other sections belong to the training schema

    skeleton: SkeletonSpec | None = None        # preset, YAML file, {union: [...]}
    data: DataConfig

    @field_validator("skeleton", mode="wrap")
    @classmethod
    def _one_skeleton_error(cls, value: Any, handler: Any) -> SkeletonSpec | None:
        # One clear message instead of one per union branch.
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected a preset name, a skeleton YAML file or {{union: [name, ...]}}, got {value!r}")

    def build_skeleton(self) -> Skeleton:
        return build_skeleton(self.skeleton, self.data.train)

    def resolve_paths(self, base: Path) -> DataRecipe:
        """Dataset files and a skeleton file taken relative to `base` (the recipe's folder), made absolute."""
        data = self.data.model_copy(update={"train": [s.resolve_paths(base) for s in self.data.train],
                                            "val": [s.resolve_paths(base) for s in self.data.val]})
        skeleton = self.skeleton
        if isinstance(skeleton, str) and skeleton.endswith((".yaml", ".yml")):
            skeleton = str(resolve_path(base, skeleton))
        return self.model_copy(update={"data": data, "skeleton": skeleton})


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


def load_data_config(path: str | Path) -> DataRecipe:
    """Read `skeleton` and `data` from a YAML recipe (paths resolved); errors are `DataError`s naming the file and
    the field. A data-only file holding just `data: {val: [...]}` is a recipe too."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_bytes())
    except FileNotFoundError:
        raise DataError(path, None, None, "config file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DataError(path, None, None, f"not valid YAML: {error}") from None
    if not isinstance(raw, dict) or "data" not in raw:
        raise DataError(path, None, "data", "a recipe needs a 'data' section with 'train' and/or 'val' lists")
    try:
        recipe = DataRecipe.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise DataError(path, None, location, f"{first['msg']}{more}") from None
    return recipe.resolve_paths(path.parent)


def load_val_datasets(path: str | Path) -> tuple[list[DatasetSource], SkeletonSpec | None]:
    """The `data.val` datasets (paths resolved) and the `skeleton` of a YAML recipe or data-only config."""
    recipe = load_data_config(path)
    if not recipe.data.val:
        raise DataError(Path(path), None, "data.val",
                        "no validation datasets: the config needs a 'data: {val: [...]}' list")
    return list(recipe.data.val), recipe.skeleton

"""The settings of one annotate run, and the sources of filled points (`--teachers`) it names."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import ValidationError

from unionpose.apps.labelling.sources import CacheSource, ExpertSource, ModelSource, PointSource
from unionpose.core.errors import DataError
from unionpose.data.sources import DatasetSource, resolve_path
from unionpose.skeletons import Skeleton
from unionpose.teachers.cache import FORMAT as CACHE_FORMAT
from unionpose.teachers.cache import load_teacher_cache
from unionpose.teachers.spec import TeacherSpec

MEDIAPIPE = "mediapipe"
RESERVED_NAMES = ("gt",)                    # `keypoint_source` of a ground-truth point


@dataclass(frozen=True)
class SourceSpec:
    """One source of filled points: a model file, an ONNX graph, a teacher's prediction cache or MediaPipe."""

    name: str
    kind: Literal["checkpoint", "onnx", "coordinates", "mediapipe"]
    path: Path | None = None
    skeleton: str | None = None                 # an ONNX graph without UnionPose metadata
    input: tuple[int, int] | None = None        # (h, w) of such a graph, when not fixed

    def open(self, flip_test: bool) -> PointSource:
        if self.kind == MEDIAPIPE:
            return ExpertSource(name=self.name)
        if self.kind == "coordinates":
            return CacheSource(load_teacher_cache(self.path), self.name)
        return ModelSource(self.path, self.name, self.skeleton, self.input, flip_test)


@dataclass(frozen=True)
class AnnotateConfig:
    """One annotate run: the datasets to complete, the sources, where to write, and how to judge points."""

    datasets: tuple[DatasetSource, ...]
    sources: tuple[SourceSpec, ...]
    out: Path                               # the output folder
    skeleton: str | Skeleton | None = None  # the union skeleton written; None: datasets' then sources' skeletons
    min_confidence: float = 0.3             # a filled point below it is written not annotated (v = 0)
    flip_test: bool = False
    audit_confidence: float = 0.5           # a source's point must be this confident to accuse a label
    audit_oks: float = 0.1                  # ... and this far (per-point OKS below it) from the label
    audit_draw: int = 12                    # the worst cases drawn per dataset
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError("no datasets to annotate: the data config's data.train list is empty")
        if not self.sources:
            raise ValueError("name at least one source of filled points with --teachers")
        names = [s.name for s in self.sources]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"source names must be unique (they are written as keypoint_source); repeated: "
                             f"{', '.join(repeated)}; name them with NAME=PATH")
        reserved = sorted(set(names) & set(RESERVED_NAMES))
        if reserved:
            raise ValueError(f"source name {reserved[0]!r} is reserved for ground-truth points; choose another")
        for field in ("min_confidence", "audit_confidence", "audit_oks"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise ValueError(f"{field.replace('_', '-')} must be in [0, 1], got {getattr(self, field)}")
        if self.workers < 1 or self.audit_draw < 0:
            raise ValueError(f"workers must be at least 1 and audit-draw at least 0, got {self.workers} and "
                             f"{self.audit_draw}")
        for dataset in self.datasets:
            if dataset.annotations.is_dir():
                raise DataError(dataset.annotations, None, None, f"dataset {dataset.name!r}: annotate completes one "
                                "annotation file per dataset, not a folder of them; list each file as a dataset")


def parse_sources(items: list[str]) -> tuple[SourceSpec, ...]:
    """`--teachers` items -> sources. An item is `mediapipe`, `[NAME=]FILE` (a UnionPose model file or teacher
    prediction cache `.safetensors`, an `.onnx` graph exported by UnionPose) or a recipe `.yaml` whose `teachers:`
    list is used as it is (for a foreign ONNX graph, give its `skeleton` and `input` there)."""
    sources: list[SourceSpec] = []
    for item in items:
        name, _, path = item.rpartition("=")
        if item == MEDIAPIPE or path == MEDIAPIPE:
            sources.append(SourceSpec(name or MEDIAPIPE, MEDIAPIPE))
            continue
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: teacher file not found (a model file, an .onnx graph, a prediction "
                                    "cache or a recipe .yaml; or 'mediapipe')")
        if path.suffix in (".yaml", ".yml"):
            if name:
                raise ValueError(f"{item}: a recipe names its teachers itself; drop '{name}='")
            sources += _recipe_teachers(path)
        elif path.suffix == ".safetensors":
            sources.append(SourceSpec(name or path.stem, "coordinates" if _is_cache(path) else "checkpoint", path))
        elif path.suffix == ".onnx":
            sources.append(SourceSpec(name or path.stem, "onnx", path))
        else:
            raise ValueError(f"{path}: a teacher is a .safetensors model file or prediction cache, an .onnx graph, "
                             "a recipe .yaml with a 'teachers' list, or 'mediapipe'")
    return tuple(sources)


def _is_cache(path: Path) -> bool:
    """Whether a .safetensors file is a teacher prediction cache (by its header) rather than a model file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as reader:
            return (reader.metadata() or {}).get("format") == CACHE_FORMAT
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {error}") from None


def _recipe_teachers(path: Path) -> list[SourceSpec]:
    """The `teachers:` of a recipe, validated by the training schema's own rules, paths relative to the recipe."""
    try:
        raw = yaml.safe_load(path.read_bytes())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise DataError(path, None, None, f"not valid YAML: {error}") from None
    teachers = raw.get("teachers") if isinstance(raw, dict) else None
    if not isinstance(teachers, list) or not teachers:
        raise DataError(path, None, "teachers", "expected a non-empty list of teachers")
    sources = []
    for index, entry in enumerate(teachers):
        try:
            spec = TeacherSpec.model_validate(entry)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise DataError(path, f"teachers[{index}]", where or None, first["msg"]) from None
        file = resolve_path(path.parent, spec.path)
        if spec.kind == "coordinates":
            sources.append(SourceSpec(spec.name, "coordinates", file))
        else:
            sources.append(SourceSpec(spec.name, spec.kind, file, spec.skeleton, spec.input))
    return sources

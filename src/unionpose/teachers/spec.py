"""The `teachers:` entries of a recipe (`TeacherSpec`) and how each becomes a `Teacher`."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

from pydantic import Field, model_validator

from unionpose.core.config_schema import ConfigModel
from unionpose.data.instance import Instance
from unionpose.skeletons import get_skeleton
from unionpose.teachers.base import StudentSpace, Teacher
from unionpose.teachers.cache import open_cached_teacher
from unionpose.teachers.checkpoint import CheckpointTeacher
from unionpose.teachers.onnx import OnnxTeacher


class TeacherSpec(ConfigModel):
    """One teacher of a recipe.

    kind: `checkpoint` (a UnionPose model file), `onnx` (a pose graph in the public RTMPose layout), or `coordinates`
    (a prediction cache written by an expert, e.g. MediaPipe: `path` is the cache file itself).
    mode: `online` runs the teacher on every augmented crop; `cached` runs it once per instance (written to `cache`)
    and warps its points into each crop. `coordinates` teachers are always cached.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")     # logged as kd/<name>; also a module key, so no dots
    kind: Literal["checkpoint", "onnx", "coordinates"]
    path: Path
    beta: float = Field(ge=0.0)                          # this teacher's share of the distillation loss
    skeleton: str | None = None     # preset name or skeleton file; required for an ONNX graph without our metadata
    input: tuple[int, int] | None = None                 # (h, w); for an ONNX graph without a fixed input size
    mode: Literal["online", "cached"] = "online"
    cache: Path | None = None                            # where cached predictions live (mode: cached)

    @model_validator(mode="after")
    def _check_combination(self) -> TeacherSpec:
        where = f"teacher {self.name!r}"
        if self.kind == "coordinates":
            if "mode" in self.model_fields_set and self.mode == "online":
                raise ValueError(f"{where}: a 'coordinates' teacher is a prediction cache; it cannot run online")
            if self.cache is not None:
                raise ValueError(f"{where}: a 'coordinates' teacher's cache is `path` itself; drop `cache`")
            self.mode = "cached"
        elif self.mode == "cached" and self.cache is None:
            raise ValueError(f"{where}: mode 'cached' needs `cache`, the file its predictions are written to")
        elif self.mode == "online" and self.cache is not None:
            raise ValueError(f"{where}: `cache` is only used with mode 'cached'")
        if self.input is not None and self.kind != "onnx":
            raise ValueError(f"{where}: `input` is only for ONNX graphs; a {self.kind} teacher knows its input size")
        return self


def build_teacher(spec: TeacherSpec, student: StudentSpace, instances: Sequence[Instance] | None = None) -> Teacher:
    """The teacher a spec describes, for this student. A cached teacher needs the training instance list (the one
    the batch's `instance_index` refers to) to key and check its cache."""
    skeleton = get_skeleton(spec.skeleton) if spec.skeleton else None
    if spec.kind == "coordinates":
        source = None
    elif spec.kind == "checkpoint":
        source = CheckpointTeacher.from_file(spec.path, student, spec.name)
        if skeleton is not None and skeleton != source.skeleton:
            raise ValueError(f"teacher {spec.name!r}: {spec.path} predicts skeleton {source.skeleton.name!r}, "
                             f"not the declared {skeleton.name!r}")
    else:
        source = OnnxTeacher(spec.path, student, spec.name, skeleton, spec.input)
    if spec.mode == "online":
        return source
    if instances is None:
        raise ValueError(f"teacher {spec.name!r}: a cached teacher needs the training instances to check its cache")
    return open_cached_teacher(spec.cache or spec.path, student, instances, spec.name, source, skeleton)

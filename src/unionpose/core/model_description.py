"""The description of a pose model (`ModelInfo`) and its one codec to string metadata.

A UnionPose model file (safetensors) and a UnionPose ONNX export both carry the description as string key -> string
value metadata, so that a predictor needs nothing but the file. The two containers differ only in their header keys
(and ONNX names its outputs); everything else is written and read here, once.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from unionpose.core.depth import DepthCodec
from unionpose.core.values import is_number
from unionpose.skeletons import Skeleton

ONNX_INPUT = "input"
ONNX_OUTPUTS_LOGITS = ("simcc_x", "simcc_y")
ONNX_OUTPUTS_DECODED = ("keypoints", "scores")
ONNX_OUTPUT_DEPTH_LOGITS = "simcc_z"        # a model with a depth head has a third output
ONNX_OUTPUT_DEPTH = "depth"                 # ... and a decoded graph its root-relative depths
DESCRIPTION_FIELDS = ("skeleton", "model_size", "input_size", "codec", "normalisation")
DEPTH_FIELD = "depth"                       # optional: only a model with a depth head has it


@dataclass(frozen=True)
class ModelInfo:
    """Everything a predictor needs besides the weights."""

    skeleton: Skeleton
    model_size: str
    input_size: tuple[int, int]     # (height, width)
    split_ratio: float
    sigma: tuple[float, float]      # SimCC Gaussian (x, y) in bins, as trained
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    extra: dict[str, str] = field(default_factory=dict)   # caller's fields, e.g. training provenance
    depth: DepthCodec | None = None     # the depth head's bins, range and unit; None: a 2D model

    def output_names(self, decoded: bool = False) -> tuple[str, ...]:
        """The outputs of this model's ONNX graph, in order."""
        names = ONNX_OUTPUTS_DECODED if decoded else ONNX_OUTPUTS_LOGITS
        if self.depth is not None:
            names += (ONNX_OUTPUT_DEPTH if decoded else ONNX_OUTPUT_DEPTH_LOGITS,)
        return names


@dataclass(frozen=True)
class Container:
    """How one kind of file marks its metadata as a UnionPose description."""

    label: str                      # for messages: "model file", "ONNX export"
    format_key: str
    version_key: str
    format: str
    version: str
    hint: str = ""                  # added to the message when the file is not one of ours
    graph: bool = False             # an inference graph: also say how its input is laid out and name its outputs

    @property
    def reserved(self) -> tuple[str, ...]:
        graph_fields = ("outputs",) if self.graph else ()
        return (self.format_key, self.version_key, *DESCRIPTION_FIELDS, DEPTH_FIELD, *graph_fields)


MODEL_FILE = Container("model file", "format", "format_version", "unionpose-model", "1",
                       hint="; a toolbox checkpoint needs `unionpose convert`")
ONNX = Container("ONNX export", "unionpose_format", "unionpose_format_version", "unionpose-onnx", "1", graph=True)
INPUT_LAYOUT = "N x 3 x H x W, (pixel - mean) / std, applied outside the graph"


def encode_model_info(info: ModelInfo, container: Container, decoded: bool = False) -> dict[str, str]:
    """The metadata of `info` for `container`; `decoded` says which outputs a graph has.

    `info.extra` is written too; a field that would overwrite a reserved one is an error.
    """
    metadata = {
        container.format_key: container.format,
        container.version_key: container.version,
        "skeleton": info.skeleton.to_json(),
        "model_size": info.model_size,
        "input_size": json.dumps(list(info.input_size)),
        "codec": json.dumps({"split_ratio": info.split_ratio, "sigma": [float(s) for s in info.sigma]}),
        "normalisation": json.dumps({"mean": list(info.mean), "std": list(info.std), "color": "RGB"}
                                    | ({"layout": INPUT_LAYOUT} if container.graph else {})),
    }
    if info.depth is not None:
        metadata[DEPTH_FIELD] = json.dumps(info.depth.to_dict())
    if container.graph:
        metadata["outputs"] = json.dumps({"names": list(info.output_names(decoded)),
                                          "units": "keypoints in crop pixels" if decoded else "SimCC logits per bin"})
    for key, value in info.extra.items():
        if key in container.reserved:
            raise ValueError(f"extra metadata field {key!r} would overwrite a reserved field "
                             f"({', '.join(container.reserved)})")
        if not isinstance(value, str):
            raise ValueError(f"extra metadata field {key!r} must be a string, got {type(value).__name__}")
        metadata[key] = value
    return metadata


def decode_model_info(metadata: Mapping[str, str], container: Container, source: str) -> ModelInfo:
    """Parse what `encode_model_info` wrote; errors name `source` and the field."""
    if metadata.get(container.format_key) != container.format:
        found = (f"{container.format_key} {metadata[container.format_key]!r}" if container.format_key in metadata
                 else f"no {container.format_key!r} field")
        raise ValueError(f"{source}: not a UnionPose {container.label} ({found}{container.hint})")
    if metadata.get(container.version_key) != container.version:
        raise ValueError(f"{source}: unsupported {container.version_key} {metadata.get(container.version_key)!r} "
                         f"(this UnionPose reads {container.version!r})")
    missing = [name for name in DESCRIPTION_FIELDS if name not in metadata]
    if missing:
        raise ValueError(f"{source}: metadata field {missing[0]!r} is missing" +
                         (f" (also {', '.join(missing[1:])})" if missing[1:] else ""))
    skeleton = Skeleton.from_dict(_json_field(metadata, "skeleton", source), source=f"{source} metadata 'skeleton'")
    height, width = _numbers(_json_field(metadata, "input_size", source), 2, "input_size", source)
    codec = _json_field(metadata, "codec", source)
    normalisation = _json_field(metadata, "normalisation", source)
    if not isinstance(codec, dict) or not isinstance(normalisation, dict):
        raise ValueError(f"{source}: metadata fields 'codec' and 'normalisation' must be JSON objects")
    return ModelInfo(
        skeleton=skeleton,
        model_size=metadata["model_size"],
        input_size=(int(height), int(width)),
        split_ratio=_numbers([codec.get("split_ratio")], 1, "codec.split_ratio", source)[0],
        sigma=_numbers(codec.get("sigma"), 2, "codec.sigma", source),
        mean=_numbers(normalisation.get("mean"), 3, "normalisation.mean", source),
        std=_numbers(normalisation.get("std"), 3, "normalisation.std", source),
        extra={key: value for key, value in metadata.items() if key not in container.reserved},
        depth=(DepthCodec.from_dict(_json_field(metadata, DEPTH_FIELD, source), f"{source} metadata 'depth'")
               if DEPTH_FIELD in metadata else None),
    )


def _json_field(metadata: Mapping[str, str], name: str, source: str) -> Any:
    try:
        return json.loads(metadata[name])
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: metadata field {name!r} is not valid JSON ({error})") from error


def _numbers(value: Any, count: int, name: str, source: str) -> tuple[float, ...]:
    if not (isinstance(value, list) and len(value) == count and all(is_number(v) for v in value)):
        raise ValueError(f"{source}: metadata field {name!r} must be a list of {count} numbers, got {value!r}")
    return tuple(float(v) for v in value)

"""The description of a pose model stored in an ONNX graph's metadata, so an export is self-describing."""
from __future__ import annotations

import json
from typing import Any, Mapping

from unionpose.models.model_file import ModelInfo
from unionpose.skeletons import Skeleton

FORMAT = "unionpose-onnx"
FORMAT_VERSION = "1"
ONNX_INPUT = "input"
ONNX_OUTPUTS_LOGITS = ("simcc_x", "simcc_y")
ONNX_OUTPUTS_DECODED = ("keypoints", "scores")


def info_to_metadata(info: ModelInfo, decoded: bool) -> dict[str, str]:
    """String key -> string value pairs for `metadata_props` (ONNX stores nothing else there)."""
    outputs = ONNX_OUTPUTS_DECODED if decoded else ONNX_OUTPUTS_LOGITS
    return {
        "unionpose_format": FORMAT,
        "unionpose_format_version": FORMAT_VERSION,
        "skeleton": info.skeleton.to_json(),
        "model_size": info.model_size,
        "input_size": json.dumps(list(info.input_size)),
        "codec": json.dumps({"split_ratio": info.split_ratio, "sigma": list(info.sigma)}),
        "normalisation": json.dumps({"mean": list(info.mean), "std": list(info.std), "color": "RGB",
                                     "layout": "N x 3 x H x W, (pixel - mean) / std, applied outside the graph"}),
        "outputs": json.dumps({"names": list(outputs),
                               "units": "keypoints in crop pixels" if decoded else "SimCC logits per bin"}),
    }


def info_from_metadata(metadata: Mapping[str, str], source: str) -> ModelInfo:
    """Parse what `info_to_metadata` wrote; errors name `source` and the field."""
    if metadata.get("unionpose_format") != FORMAT or metadata.get("unionpose_format_version") != FORMAT_VERSION:
        raise ValueError(f"{source}: metadata is not {FORMAT} version {FORMAT_VERSION} (found "
                         f"{metadata.get('unionpose_format')!r} {metadata.get('unionpose_format_version')!r})")
    skeleton = Skeleton.from_dict(_field(metadata, "skeleton", source), source=f"{source} metadata 'skeleton'")
    height, width = _numbers(_field(metadata, "input_size", source), 2, "input_size", source)
    codec = _field(metadata, "codec", source)
    normalisation = _field(metadata, "normalisation", source)
    if not isinstance(codec, dict) or not isinstance(normalisation, dict):
        raise ValueError(f"{source}: metadata fields 'codec' and 'normalisation' must be JSON objects")
    if "model_size" not in metadata:
        raise ValueError(f"{source}: metadata field 'model_size' is missing")
    return ModelInfo(
        skeleton=skeleton,
        model_size=metadata["model_size"],
        input_size=(int(height), int(width)),
        split_ratio=_numbers([codec.get("split_ratio")], 1, "codec.split_ratio", source)[0],
        sigma=_numbers(codec.get("sigma"), 2, "codec.sigma", source),
        mean=_numbers(normalisation.get("mean"), 3, "normalisation.mean", source),
        std=_numbers(normalisation.get("std"), 3, "normalisation.std", source),
    )


def _field(metadata: Mapping[str, str], name: str, source: str) -> Any:
    if name not in metadata:
        raise ValueError(f"{source}: metadata field {name!r} is missing")
    try:
        return json.loads(metadata[name])
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: metadata field {name!r} is not valid JSON ({error})") from error


def _numbers(value: Any, count: int, name: str, source: str) -> tuple[float, ...]:
    valid = isinstance(value, list) and len(value) == count and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not valid:
        raise ValueError(f"{source}: metadata field {name!r} must be a list of {count} numbers, got {value!r}")
    return tuple(float(v) for v in value)

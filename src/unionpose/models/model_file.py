"""The UnionPose model file: one `.safetensors` holding the weights plus all a predictor needs (skeleton, input size,
codec, normalisation) as string metadata."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from unionpose.atomic import atomic_path
from unionpose.data.simcc import default_sigma
from unionpose.models.rtmpose import RTMPose
from unionpose.skeletons import Skeleton

FORMAT = "unionpose-model"
FORMAT_VERSION = "1"
REQUIRED_FIELDS = ("format", "format_version", "skeleton", "model_size", "input_size", "codec", "normalisation")
# RGB, in 0-255 pixel units, as the RTMPose recipes normalise (REFERENCE §4).
RGB_MEAN = (123.675, 116.28, 103.53)
RGB_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class ModelInfo:
    """Everything in a model file besides the weights."""

    skeleton: Skeleton
    model_size: str
    input_size: tuple[int, int]     # (height, width)
    split_ratio: float
    sigma: tuple[float, float]      # SimCC Gaussian (x, y) in bins, as trained
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    extra: dict[str, str] = field(default_factory=dict)   # caller's fields, e.g. training provenance


def save_model_file(path: str | Path, model: RTMPose, skeleton: Skeleton, *,
                    codec_sigma: tuple[float, float] | None = None, extra: dict[str, str] | None = None) -> Path:
    """Write `model` and its description to `path` atomically (a reader never sees a half-written file)."""
    path = Path(path)
    if skeleton.num_keypoints != model.num_keypoints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_keypoints} keypoints but the model predicts "
                         f"{model.num_keypoints}")
    sigma = codec_sigma if codec_sigma is not None else default_sigma(model.input_size, model.split_ratio)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skeleton": skeleton.to_json(),
        "model_size": model.size,
        "input_size": json.dumps(list(model.input_size)),
        "codec": json.dumps({"split_ratio": model.split_ratio, "sigma": [float(s) for s in sigma]}),
        "normalisation": json.dumps({"mean": list(RGB_MEAN), "std": list(RGB_STD), "color": "RGB"}),
    }
    for key, value in (extra or {}).items():
        if key in metadata:
            raise ValueError(f"extra metadata field {key!r} would overwrite a reserved field ({', '.join(metadata)})")
        if not isinstance(value, str):
            raise ValueError(f"extra metadata field {key!r} must be a string, got {type(value).__name__}")
        metadata[key] = value
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)
    return path


def _read(path: Path, with_tensors: bool) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with safe_open(path, framework="pt") as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()} if with_tensors else {}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {error}") from error
    return metadata, tensors


def _json_field(metadata: dict[str, str], name: str, path: Path) -> Any:
    try:
        return json.loads(metadata[name])
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: metadata field {name!r} is not valid JSON ({error})") from error


def _numbers(value: Any, count: int, name: str, path: Path) -> tuple[float, ...]:
    valid = isinstance(value, list) and len(value) == count and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not valid:
        raise ValueError(f"{path}: metadata field {name!r} must be a list of {count} numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _parse_info(metadata: dict[str, str], path: Path) -> ModelInfo:
    if metadata.get("format") != FORMAT:
        found = f"format {metadata['format']!r}" if "format" in metadata else "no 'format' field"
        raise ValueError(f"{path}: not a UnionPose model file ({found}; "
                         "a toolbox checkpoint needs `unionpose convert`)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: unsupported format_version {metadata.get('format_version')!r} "
                         f"(this UnionPose reads {FORMAT_VERSION!r})")
    missing = [name for name in REQUIRED_FIELDS if name not in metadata]
    if missing:
        raise ValueError(f"{path}: metadata field {missing[0]!r} is missing" +
                         (f" (also {', '.join(missing[1:])})" if missing[1:] else ""))
    skeleton = Skeleton.from_dict(_json_field(metadata, "skeleton", path), source=f"{path} metadata 'skeleton'")
    height, width = _numbers(_json_field(metadata, "input_size", path), 2, "input_size", path)
    codec = _json_field(metadata, "codec", path)
    normalisation = _json_field(metadata, "normalisation", path)
    if not isinstance(codec, dict) or not isinstance(normalisation, dict):
        raise ValueError(f"{path}: metadata fields 'codec' and 'normalisation' must be JSON objects")
    split_ratio = _numbers([codec.get("split_ratio")], 1, "codec.split_ratio", path)[0]
    return ModelInfo(
        skeleton=skeleton,
        model_size=metadata["model_size"],
        input_size=(int(height), int(width)),
        split_ratio=split_ratio,
        sigma=_numbers(codec.get("sigma"), 2, "codec.sigma", path),
        mean=_numbers(normalisation.get("mean"), 3, "normalisation.mean", path),
        std=_numbers(normalisation.get("std"), 3, "normalisation.std", path),
        extra={key: value for key, value in metadata.items() if key not in REQUIRED_FIELDS},
    )


def read_model_info(path: str | Path) -> ModelInfo:
    """The description alone, without reading the weights."""
    path = Path(path)
    return _parse_info(_read(path, with_tensors=False)[0], path)


def load_model_file(path: str | Path) -> tuple[RTMPose, ModelInfo]:
    """The model (in eval mode, on the CPU) and its description; errors name the file and the field or keys."""
    path = Path(path)
    metadata, tensors = _read(path, with_tensors=True)
    info = _parse_info(metadata, path)
    try:
        model = RTMPose(info.model_size, info.skeleton.num_keypoints, info.input_size, info.split_ratio)
    except ValueError as error:
        raise ValueError(f"{path}: metadata describes no valid model: {error}") from error
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{key} {tuple(tensors[key].shape)} vs {tuple(value.shape)}"
                  for key, value in expected.items() if key in tensors and tensors[key].shape != value.shape]
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
        if keys:
            problems.append(f"{label}: {', '.join(keys[:10])}" + (f", ... ({len(keys)} in all)" if keys[10:] else ""))
    if problems:
        raise ValueError(f"{path}: weights do not match RTMPose-{info.model_size} with {info.skeleton.num_keypoints} "
                         f"keypoints at {info.input_size[0]}x{info.input_size[1]}: " + "; ".join(problems))
    model.load_state_dict(tensors)
    return model.eval(), info

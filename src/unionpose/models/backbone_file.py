"""The UnionPose backbone file: a CSPNeXt backbone alone (`backbone.*` tensors) in one `.safetensors`, to start new
models from. It carries no skeleton, input size or codec: a backbone does not depend on them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from unionpose.core.atomic import atomic_path
from unionpose.core.model_description import MODEL_FILE
from unionpose.models.rtmpose import MODEL_SIZES, RTMPose

BACKBONE_FORMAT = "unionpose-backbone"
BACKBONE_FORMAT_VERSION = "1"
BACKBONE_PREFIX = "backbone."
_RESERVED = (MODEL_FILE.format_key, MODEL_FILE.version_key, "model_size")


@dataclass(frozen=True)
class BackboneFile:
    """What a backbone file holds: the zoo size, the tensors under our `backbone.*` names, the caller's metadata."""

    model_size: str
    tensors: dict[str, torch.Tensor]
    extra: dict[str, str] = field(default_factory=dict)


def save_backbone_file(path: str | Path, model: RTMPose, extra: dict[str, str] | None = None) -> Path:
    """Write `model`'s backbone (parameters and BatchNorm statistics) atomically; `extra` is free string metadata."""
    path = Path(path)
    clashes = sorted(set(extra or {}) & set(_RESERVED))
    if clashes:
        raise ValueError(f"extra metadata field(s) {', '.join(clashes)} would overwrite reserved fields")
    metadata = {MODEL_FILE.format_key: BACKBONE_FORMAT, MODEL_FILE.version_key: BACKBONE_FORMAT_VERSION,
                "model_size": model.size, **(extra or {})}
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()
               if key.startswith(BACKBONE_PREFIX)}
    with atomic_path(path) as temporary:
        save_file(tensors, temporary, metadata=metadata)
    return path


def is_backbone_file(metadata: dict[str, str]) -> bool:
    """Whether safetensors metadata marks a UnionPose backbone file."""
    return metadata.get(MODEL_FILE.format_key) == BACKBONE_FORMAT


def read_backbone_file(path: str | Path) -> BackboneFile:
    """Read and check a backbone file: every tensor of the declared size's backbone, with its shape, and nothing
    else; errors name the file and the tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone file not found: {path}")
    try:
        with safe_open(path, framework="pt") as reader:
            metadata = reader.metadata() or {}
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {error}") from error
    if not is_backbone_file(metadata):
        raise ValueError(f"{path}: not a UnionPose backbone file (format {metadata.get(MODEL_FILE.format_key)!r})")
    version = metadata.get(MODEL_FILE.version_key)
    if version != BACKBONE_FORMAT_VERSION:
        raise ValueError(f"{path}: backbone file version {version!r} is not supported (this UnionPose reads "
                         f"{BACKBONE_FORMAT_VERSION})")
    size = metadata.get("model_size")
    if size not in MODEL_SIZES:
        raise ValueError(f"{path}: field 'model_size' is {size!r}, not one of {', '.join(MODEL_SIZES)}")
    with torch.device("meta"):       # shapes only
        expected = {key: value.shape for key, value in RTMPose(size, 1, (32, 32)).state_dict().items()
                    if key.startswith(BACKBONE_PREFIX)}
    problems = [f"{label}: {', '.join(keys[:5])}" + (f", ... ({len(keys)} in all)" if keys[5:] else "")
                for label, keys in (
                    ("missing", sorted(set(expected) - set(tensors))),
                    ("unexpected", sorted(set(tensors) - set(expected))),
                    ("wrong shape", [f"{key} {tuple(tensors[key].shape)} vs {tuple(shape)}"
                                     for key, shape in expected.items()
                                     if key in tensors and tensors[key].shape != shape]))
                if keys]
    if problems:
        raise ValueError(f"{path}: tensors do not match the RTMPose-{size} backbone it declares: "
                         + "; ".join(problems))
    extra = {key: value for key, value in metadata.items() if key not in _RESERVED}
    return BackboneFile(model_size=size, tensors=tensors, extra=extra)

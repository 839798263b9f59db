"""The UnionPose model file: one `.safetensors` holding the weights plus all a predictor needs (skeleton, input size,
codec, normalisation) as string metadata."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from unionpose.core.atomic import atomic_path
from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB
from unionpose.core.model_description import MODEL_FILE, ModelInfo, decode_model_info, encode_model_info
from unionpose.core.simcc import default_sigma
from unionpose.models.rtmpose import RTMPose
from unionpose.skeletons import Skeleton


def save_model_file(path: str | Path, model: RTMPose, skeleton: Skeleton, *,
                    codec_sigma: tuple[float, float] | None = None, extra: dict[str, str] | None = None) -> Path:
    """Write `model` and its description to `path` atomically (a reader never sees a half-written file)."""
    path = Path(path)
    if skeleton.num_keypoints != model.num_keypoints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_keypoints} keypoints but the model predicts "
                         f"{model.num_keypoints}")
    sigma = codec_sigma if codec_sigma is not None else default_sigma(model.input_size, model.split_ratio)
    info = ModelInfo(skeleton=skeleton, model_size=model.size, input_size=model.input_size,
                     split_ratio=model.split_ratio, sigma=tuple(float(s) for s in sigma), mean=IMAGE_MEAN_RGB,
                     std=IMAGE_STD_RGB, extra=dict(extra or {}), depth=model.depth)
    metadata = encode_model_info(info, MODEL_FILE)
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


def read_model_info(path: str | Path) -> ModelInfo:
    """The description alone, without reading the weights."""
    path = Path(path)
    return decode_model_info(_read(path, with_tensors=False)[0], MODEL_FILE, str(path))


def load_model_file(path: str | Path) -> tuple[RTMPose, ModelInfo]:
    """The model (in eval mode, on the CPU) and its description; errors name the file and the field or keys."""
    path = Path(path)
    metadata, tensors = _read(path, with_tensors=True)
    info = decode_model_info(metadata, MODEL_FILE, str(path))
    try:
        model = RTMPose(info.model_size, info.skeleton.num_keypoints, info.input_size, info.split_ratio, info.depth)
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

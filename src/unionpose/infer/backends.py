"""Pose backends: an ONNXRuntime session or a PyTorch model behind one call, crops -> SimCC logits.

Nothing here imports torch: an ONNX model runs with the base install. A `.safetensors` model file needs PyTorch
(`unionpose[train]`), imported only when such a file is loaded.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort

from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB, SIMCC_SPLIT_RATIO
from unionpose.core.errors import MissingDependencyError
from unionpose.core.model_description import (
    ONNX, ONNX_OUTPUT_DEPTH, ONNX_OUTPUT_DEPTH_LOGITS, ONNX_OUTPUTS_DECODED, ONNX_OUTPUTS_LOGITS, ModelInfo,
    decode_model_info,
)
from unionpose.core.simcc import default_sigma
from unionpose.skeletons import Skeleton, get_skeleton

DEVICES = re.compile(r"cpu|cuda(:\d+)?")     # where a pose model may run


class PoseBackend(Protocol):
    """Normalised crops (N, 3, H, W) float32 -> (simcc_x, simcc_y), or (keypoints, scores) when `decoded`; a model
    with a depth head adds a third array: simcc_z, or the decoded depth (N, K)."""

    decoded: bool

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, ...]: ...


class OnnxBackend:
    """An ONNX pose model run by ONNXRuntime (CPU unless `providers` says otherwise).

    Accepted graphs: the public RTMPose layout (one input, outputs `simcc_x`, `simcc_y`; any two 3-D outputs are
    taken in that order) and UnionPose's decoded export (outputs `keypoints` (N, K, 2) crop px, `scores` (N, K)).
    A UnionPose export of a model with a depth head has a third output, `simcc_z` or `depth`, which is read too.
    """

    def __init__(self, model: str | Path | ort.InferenceSession, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.session = model if isinstance(model, ort.InferenceSession) else open_session(model, providers, threads)
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()
        names = [output.name for output in outputs]
        self.decoded = names[:2] == list(ONNX_OUTPUTS_DECODED)
        if not self.decoded and names[:2] != list(ONNX_OUTPUTS_LOGITS):
            if len(outputs) != 2 or any(len(output.shape) != 3 for output in outputs):
                raise ValueError(f"ONNX pose model {model}: expected outputs simcc_x, simcc_y (N, K, bins) or "
                                 f"keypoints, scores; got {[(o.name, o.shape) for o in outputs]}")
        self.output_names = names[:3] if names[2:3] in ([ONNX_OUTPUT_DEPTH_LOGITS], [ONNX_OUTPUT_DEPTH]) else names[:2]
        batch = self.session.get_inputs()[0].shape[0]
        self.fixed_batch = batch if isinstance(batch, int) else None   # released RTMPose graphs often fix batch 1

    def __call__(self, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.fixed_batch is None or len(crops) == self.fixed_batch:
            return self._run(crops)
        parts = []   # a fixed-batch graph runs chunk by chunk, the last chunk padded with zeros
        for start in range(0, len(crops), self.fixed_batch):
            chunk = crops[start:start + self.fixed_batch]
            padding = np.zeros((self.fixed_batch - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
            parts.append([output[:len(chunk)] for output in self._run(np.concatenate([chunk, padding]))])
        return tuple(np.concatenate(outputs) for outputs in zip(*parts))

    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(crops)}))


def open_session(path: str | Path, providers: list[str] | None = None,
                 threads: int | None = None) -> ort.InferenceSession:
    """An ONNXRuntime session, or a ValueError naming the file when it is not a loadable ONNX graph."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    except Exception as error:   # ONNXRuntime raises its own classes (InvalidProtobuf, Fail, ...), none shared
        raise ValueError(f"{path}: not a loadable ONNX model: {error}") from error


def load_pose_model(path: str | Path, skeleton: str | Skeleton | None = None,
                    input_size: tuple[int, int] | None = None, device: str = "cpu"
                    ) -> tuple[PoseBackend, ModelInfo]:
    """A backend and its description from a UnionPose model file (.safetensors) or an ONNX model.

    Our ONNX exports carry their description in the graph's metadata. A foreign ONNX model in the public RTMPose
    layout needs `skeleton` (and `input_size` (h, w) when the graph's input is not fixed-size); it is assumed to take
    RGB crops normalised with ImageNet's mean and std, as RTMPose does.
    """
    path = Path(path)
    if not DEVICES.fullmatch(device):
        raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
    if not path.is_file():
        raise FileNotFoundError(f"pose model not found: {path}")
    if path.suffix == ".safetensors":
        return _torch_model_file(path, device)
    if path.suffix != ".onnx":
        raise ValueError(f"{path}: a pose model is a UnionPose .safetensors file or an .onnx graph")
    backend = OnnxBackend(path, providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
                          if device.startswith("cuda") else None)
    metadata = backend.session.get_modelmeta().custom_metadata_map
    if ONNX.format_key in metadata:
        return backend, decode_model_info(metadata, ONNX, str(path))
    return backend, _foreign_info(backend, path, skeleton, input_size)


def _torch_model_file(path: Path, device: str) -> tuple[PoseBackend, ModelInfo]:
    """A UnionPose model file run by PyTorch, or a clear message when PyTorch is not installed."""
    try:
        import torch  # noqa: F401  (only to say clearly that it is missing)
    except ImportError:
        raise MissingDependencyError(
            f"{path}: a .safetensors model file runs on PyTorch, which is not installed; install "
            "`unionpose[train]`, or use an ONNX model (`unionpose export --model FILE`)") from None
    from unionpose.infer.torch_backend import TorchBackend
    from unionpose.models.model_file import load_model_file

    model, info = load_model_file(path)
    return TorchBackend(model, device), info


def _foreign_info(backend: OnnxBackend, path: Path, skeleton: str | Skeleton | None,
                  input_size: tuple[int, int] | None) -> ModelInfo:
    """Describe an ONNX model without UnionPose metadata from the user's skeleton and the graph's shapes."""
    if skeleton is None:
        raise ValueError(f"{path}: this ONNX model carries no UnionPose metadata; name its skeleton "
                         "(e.g. --skeleton coco17)")
    skeleton = skeleton if isinstance(skeleton, Skeleton) else get_skeleton(skeleton)
    if backend.decoded:
        raise ValueError(f"{path}: a decoded ONNX graph without UnionPose metadata cannot be described")
    input_shape = backend.session.get_inputs()[0].shape
    fixed = [dim if isinstance(dim, int) else None for dim in input_shape[2:]]
    if input_size is None:
        if len(fixed) != 2 or None in fixed:
            raise ValueError(f"{path}: the graph's input {input_shape} has no fixed height and width; "
                             "give the input size (h, w)")
        input_size = (fixed[0], fixed[1])
    height, width = (int(v) for v in input_size)
    bins_x = backend.session.get_outputs()[0].shape[2]
    split_ratio = bins_x / width if isinstance(bins_x, int) else SIMCC_SPLIT_RATIO
    keypoints = backend.session.get_outputs()[0].shape[1]
    if isinstance(keypoints, int) and keypoints != skeleton.num_keypoints:
        raise ValueError(f"{path}: the graph predicts {keypoints} keypoints but skeleton {skeleton.name!r} has "
                         f"{skeleton.num_keypoints}")
    return ModelInfo(skeleton=skeleton, model_size="unknown", input_size=(height, width), split_ratio=split_ratio,
                     sigma=default_sigma((height, width), split_ratio), mean=IMAGE_MEAN_RGB, std=IMAGE_STD_RGB)

"""ONNX export of a pose model (public RTMPose layout or with decoding in the graph) and its parity check."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from unionpose.core.atomic import atomic_path
from unionpose.core.depth import DepthCodec
from unionpose.core.model_description import ONNX, ONNX_INPUT, ONNX_OUTPUTS_DECODED, ModelInfo, encode_model_info
from unionpose.core.simcc import SimCCCodec

OPSET = 17
MIN_OPSET, MAX_OPSET = 11, 23   # the opsets both graphs (logits and decoded) export at with torch's exporter
LOGIT_TOLERANCE = 1e-4


class DecodedPose(nn.Module):
    """A pose model followed by SimCC decoding (argmax per axis, bin / split ratio, score = min of the maxima).

    Outputs keypoints (N, K, 2) in crop pixels and scores (N, K); invalid points (score <= 0) read -1 and 0, as
    `SimCCCodec.decode` gives them. With a depth head also depth (N, K): root-relative, as `DepthCodec.decode`.
    """

    def __init__(self, model: nn.Module, split_ratio: float, depth: DepthCodec | None = None) -> None:
        super().__init__()
        self.model = model
        self.split_ratio = float(split_ratio)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        simcc_x, simcc_y, *simcc_z = self.model(x)
        max_x, bin_x = simcc_x.max(dim=2)
        max_y, bin_y = simcc_y.max(dim=2)
        keypoints = torch.stack([bin_x, bin_y], dim=-1).float() / self.split_ratio
        scores = torch.minimum(max_x, max_y)
        valid = scores > 0
        keypoints = torch.where(valid.unsqueeze(-1), keypoints, torch.full_like(keypoints, -1.0))
        decoded = (keypoints, torch.where(valid, scores, torch.zeros_like(scores)))
        if self.depth is None:
            return decoded
        depth = simcc_z[0].argmax(dim=2).float() * self.depth.step - self.depth.range
        return decoded + (depth,)


def export_onnx(model: nn.Module, info: ModelInfo, path: str | Path, decode: bool = False,
                opset: int = OPSET) -> Path:
    """Write `model` as ONNX with a dynamic batch axis and `info` in the graph's metadata; returns the path.

    Without `decode` the graph has the public RTMPose layout (input `input` N x 3 x H x W, normalised RGB; outputs
    `simcc_x`, `simcc_y`), which other RTMPose tools read as is; a model with a depth head adds `simcc_z` (or, decoded,
    `depth`) after them.
    """
    path = Path(path)
    height, width = info.input_size
    model = model.eval().cpu()
    if (info.depth is None) != (getattr(model, "depth", None) is None):
        raise ValueError("the model and its description disagree on the depth head")
    # eval() on the wrapper too: the exporter restores its mode afterwards, and a wrapper in training mode would put
    # the caller's model into training mode with it
    graph = DecodedPose(model, info.split_ratio, info.depth).eval() if decode else model
    outputs = list(info.output_names(decode))
    example = torch.zeros(1, 3, height, width)
    with atomic_path(path) as temporary:
        with warnings.catch_warnings():   # the TorchScript exporter (dynamo=False) warns that it is legacy
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(graph, (example,), str(temporary), input_names=[ONNX_INPUT], output_names=outputs,
                              dynamic_axes={name: {0: "batch"} for name in [ONNX_INPUT, *outputs]},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
        proto = onnx.load(temporary)
        onnx.helper.set_model_props(proto, encode_model_info(info, ONNX, decoded=decode))
        onnx.checker.check_model(proto)
        onnx.save(proto, temporary)
    return path


@dataclass(frozen=True)
class ParityReport:
    """How the ONNX graph's outputs compare with the PyTorch model's on the same crops."""

    batch: int
    tolerance: float                # LOGIT_TOLERANCE, scaled up by the largest |logit| when that exceeds 1
    max_logit_difference: float     # NaN for a decoded graph (it has no logits)
    max_score_difference: float
    max_depth_difference: float     # NaN for a model without a depth head
    coordinates_identical: bool     # decoded keypoints equal, bin for bin, where the argmax is decisive
    ambiguous: int                  # keypoints left out of that comparison: top two logits within 2 x tolerance

    @property
    def passed(self) -> bool:
        logits_ok = np.isnan(self.max_logit_difference) or self.max_logit_difference <= self.tolerance
        depth_ok = np.isnan(self.max_depth_difference) or self.max_depth_difference <= self.tolerance
        return logits_ok and depth_ok and self.max_score_difference <= self.tolerance and self.coordinates_identical

    def __str__(self) -> str:
        logits = "" if np.isnan(self.max_logit_difference) else f"max |logit diff| {self.max_logit_difference:.2e}, "
        ties = f" ({self.ambiguous} near-tied keypoints left out)" if self.ambiguous else ""
        if not np.isnan(self.max_depth_difference):
            logits += f"max |depth logit or depth diff| {self.max_depth_difference:.2e}, "
        return (f"ONNX parity on {self.batch} crops: {logits}max |score diff| {self.max_score_difference:.2e} "
                f"(tolerance {self.tolerance:.1e}), decoded coordinates "
                f"{'identical' if self.coordinates_identical else 'DIFFER'}{ties}: "
                f"{'passed' if self.passed else 'FAILED'}")


def check_parity(model: nn.Module, info: ModelInfo, onnx_path: str | Path, crops: np.ndarray | None = None,
                 batch: int = 4, seed: int = 0) -> ParityReport:
    """Run the PyTorch model and the ONNX graph on the same normalised crops and compare.

    The tolerance is LOGIT_TOLERANCE for logits up to 1 (a trained model's range) and grows with the largest logit
    beyond that: float32 rounding is relative, and a random network's logits can reach the hundreds. Coordinates
    must be identical wherever the argmax is decisive; a keypoint whose two best bins are within rounding noise of
    each other could flip either way in any two float32 runtimes, so it is counted, not compared.
    `crops` default to a seeded random batch (standard normal, like normalised pixels); a batch above 1 also
    exercises the dynamic batch axis.
    """
    if crops is None:
        height, width = info.input_size
        crops = np.random.default_rng(seed).standard_normal((batch, 3, height, width)).astype(np.float32)
    codec = SimCCCodec(info.input_size, info.sigma, info.split_ratio)
    with torch.inference_mode():
        logits = model.eval().cpu()(torch.from_numpy(np.ascontiguousarray(crops)))
    simcc_x, simcc_y, *simcc_z = (output.float().numpy() for output in logits)
    keypoints, scores = codec.decode(simcc_x, simcc_y)
    tolerance = LOGIT_TOLERANCE * max(1.0, float(np.abs(simcc_x).max()), float(np.abs(simcc_y).max()))
    decisive = np.minimum(_top_two_margin(simcc_x), _top_two_margin(simcc_y)) > 2 * tolerance
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]
    first, second, *third = session.run(outputs, {session.get_inputs()[0].name: np.ascontiguousarray(crops)})
    depth_difference = float("nan")
    if outputs[:2] == list(ONNX_OUTPUTS_DECODED):
        logit_difference = float("nan")
        onnx_keypoints, onnx_scores = first, second
        if simcc_z:    # decoded depths agree where the depth argmax is decisive
            depth, decisive_z = info.depth.decode(simcc_z[0]), _top_two_margin(simcc_z[0]) > 2 * tolerance
            depth_difference = float(np.abs(third[0] - depth)[decisive_z].max(initial=0.0))
    else:
        logit_difference = float(max(np.abs(first - simcc_x).max(), np.abs(second - simcc_y).max()))
        onnx_keypoints, onnx_scores = codec.decode(first, second)
        if simcc_z:
            depth_difference = float(np.abs(third[0] - simcc_z[0]).max())
    if bool(simcc_z) != bool(third):
        raise ValueError(f"{onnx_path}: the graph has outputs {outputs}, but the model "
                         f"{'has' if simcc_z else 'has no'} depth head")
    return ParityReport(
        batch=len(crops),
        tolerance=tolerance,
        max_logit_difference=logit_difference,
        max_score_difference=float(np.abs(onnx_scores - scores).max()),
        max_depth_difference=depth_difference,
        coordinates_identical=bool(np.array_equal(onnx_keypoints[decisive], keypoints[decisive])),
        ambiguous=int((~decisive).sum()),
    )


def _top_two_margin(logits: np.ndarray) -> np.ndarray:
    """(N, K, bins) -> (N, K): how far the best bin is above the second best."""
    top_two = np.partition(logits, -2, axis=-1)[..., -2:]
    return top_two[..., 1] - top_two[..., 0]

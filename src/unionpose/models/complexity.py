"""Parameter counts and GFLOPs of RTMPose models, in the convention of the published zoo table."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unionpose.models.rtmpose import RTMPose


@dataclass(frozen=True)
class Complexity:
    params: int
    gflops: float   # multiply-adds, in billions (see count_gflops)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gflops(model: nn.Module, input_size: tuple[int, int], batch_size: int = 1) -> float:
    """Billions of multiply-adds for one forward pass at `input_size` (h, w), per image.

    The published RTMPose "GFLOPs" count one multiply-add as one FLOP (the toolbox's analysis tool), whereas
    FlopCounterMode counts it as two, so its total is halved. Only convolutions and matrix products are counted;
    the toolbox also counts norms and pooling, which adds under 2 % for these models.
    """
    parameter = next(model.parameters())
    x = torch.zeros(batch_size, 3, *input_size, device=parameter.device, dtype=parameter.dtype)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2 / batch_size / 1e9


def model_complexity(size: str, num_keypoints: int, input_size: tuple[int, int] = (256, 192)) -> Complexity:
    """Parameters and GFLOPs of a zoo model, measured on the meta device (shapes only: no memory, no compute)."""
    with torch.device("meta"):
        model = RTMPose(size, num_keypoints, input_size).eval()
    return Complexity(count_parameters(model), count_gflops(model, input_size))

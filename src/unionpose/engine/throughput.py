"""The bare model's training speed: forward + backward on random crops, the yardstick of a full training step."""
from __future__ import annotations

import time

import numpy as np
import torch

from unionpose.models.rtmpose import RTMPose


def images_per_second(stamps: list[float], warmup: int, batch: int) -> float:
    """From the median step time after warm-up: robust to the odd step slowed down by another process."""
    return batch / float(np.median(np.diff(stamps[warmup:])))


class BareStep:
    """One forward and backward of a fresh RTMPose on random crops, nothing else (no data, loss terms, optimiser):
    what a training step would cost if everything around the model were free. A callable, so that a benchmark can
    interleave it with full training steps and compare the two under the same machine load."""

    def __init__(self, size: str, keypoints: int, input_hw: tuple[int, int], batch: int, *,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = RTMPose(size, keypoints, input_hw).to(self.device).train()
        self.images = torch.randn(batch, 3, *input_hw, device=self.device)

    def __call__(self) -> None:
        simcc_x, simcc_y = self.model(self.images)[:2]
        (simcc_x.sum() + simcc_y.sum()).backward()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def bare_training_rate(size: str, keypoints: int, input_hw: tuple[int, int], batch: int, *, steps: int = 10,
                       warmup: int = 2, device: torch.device | str = "cpu") -> float:
    """Crops per second of `BareStep`, from the median step time after `warmup` steps."""
    step = BareStep(size, keypoints, input_hw, batch, device=device)
    stamps = []
    for _ in range(warmup + steps + 1):
        step()
        stamps.append(time.perf_counter())
    return images_per_second(stamps, warmup, batch)

"""The bare model's training speed: forward + backward on random crops, the yardstick of a full training step."""
from __future__ import annotations

import time

import numpy as np
import torch

from unionpose.models.rtmpose import RTMPose


def images_per_second(stamps: list[float], warmup: int, batch: int) -> float:
    """From the median step time after warm-up: robust to the odd step slowed down by another process."""
    return batch / float(np.median(np.diff(stamps[warmup:])))


def bare_training_rate(size: str, keypoints: int, input_hw: tuple[int, int], batch: int, *, steps: int = 10,
                       warmup: int = 2, device: torch.device | str = "cpu") -> float:
    """Crops per second of a fresh RTMPose's forward and backward alone (no data, loss terms or optimiser): what
    a training step would cost if everything around the model were free."""
    device = torch.device(device)
    model = RTMPose(size, keypoints, input_hw).to(device).train()
    images = torch.randn(batch, 3, *input_hw, device=device)
    stamps = []
    for _ in range(warmup + steps + 1):
        simcc_x, simcc_y = model(images)
        (simcc_x.sum() + simcc_y.sum()).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return images_per_second(stamps, warmup, batch)

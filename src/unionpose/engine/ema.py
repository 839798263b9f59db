"""Exponential moving average of the weights with RTMPose's warm-up term (ExpMomentumEMA; docs/conventions.md)."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


class ModelEMA:
    """A frozen copy of the model whose weights (and BatchNorm statistics) trail the trained ones.

    After update number n (from 0) the copy moves towards the model by
    `(1 - momentum) * exp(-(n + 1) / gamma) + momentum`: almost a plain copy at the start, when the weights change
    fast, settling to `momentum` (2e-4) after a few `gamma` iterations. Integer buffers (BatchNorm's batch counter)
    are copied. Validation and the exported model use these weights when EMA is on.
    """

    def __init__(self, model: nn.Module, momentum: float = 2e-4, gamma: float = 2000.0) -> None:
        if not 0.0 < momentum < 1.0 or gamma <= 0:
            raise ValueError(f"EMA momentum must be in (0, 1) and gamma > 0, got {momentum} and {gamma}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.momentum = float(momentum)
        self.gamma = float(gamma)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the copy towards `model`; the floating-point tensors in one fused call (`torch._foreach_lerp_`: the
        same lerp per element as `Tensor.lerp_`, without a Python-level call per tensor)."""
        weight = (1.0 - self.momentum) * math.exp(-(self.updates + 1) / self.gamma) + self.momentum
        source = model.state_dict()
        averages, targets = [], []
        for name, average in self.module.state_dict().items():
            if average.is_floating_point():
                averages.append(average)
                targets.append(source[name])
            else:
                average.copy_(source[name])
        torch._foreach_lerp_(averages, targets, weight)
        self.updates += 1

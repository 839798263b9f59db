"""The RTMPose learning-rate schedule: linear warm-up, constant, then cosine to a floor (docs/conventions.md)."""
from __future__ import annotations

import math


class LearningRateSchedule:
    """Learning rate as a pure function of the global iteration, so resuming needs nothing but the step.

    lr(step) = warmup(step) * base(step): warmup rises linearly from `warmup_ratio` to 1 over `warmup_iters`
    iterations; base is `lr` until epoch `cosine_from_epoch`, then follows a cosine down to `min_lr`, reached at the
    end of the last epoch. The cosine moves every iteration, as the recipe's iteration-converted epoch schedule does.
    """

    def __init__(self, lr: float, *, epochs: int, iters_per_epoch: int, warmup_iters: int = 1000,
                 warmup_ratio: float = 1e-5, cosine_from_epoch: int | None = None, min_lr: float | None = None) -> None:
        if iters_per_epoch < 1 or epochs < 1:
            raise ValueError(f"schedule: epochs ({epochs}) and iterations per epoch ({iters_per_epoch}) must be >= 1")
        self.lr = float(lr)
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)
        self.total_iters = epochs * iters_per_epoch
        start = epochs // 2 if cosine_from_epoch is None else cosine_from_epoch
        self.cosine_start = min(max(start, 0), epochs) * iters_per_epoch
        self.min_lr = self.lr * 0.05 if min_lr is None else float(min_lr)

    def __call__(self, step: int) -> float:
        if step < self.cosine_start:
            base = self.lr
        else:
            length = max(self.total_iters - self.cosine_start, 1)
            progress = min((step - self.cosine_start) / length, 1.0)
            base = self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))
        if step < self.warmup_iters:
            base *= self.warmup_ratio + (1.0 - self.warmup_ratio) * step / self.warmup_iters
        return base

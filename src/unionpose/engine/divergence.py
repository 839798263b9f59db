"""A diverged run stops with one message: the step, the loss terms, and the last checkpoint worth resuming from.

A non-finite loss means the weights are lost (or about to be): continuing would only write NaN checkpoints. The
checkpoint to go back to is the newest one whose weights are all finite; one written right after the step that blew
up may already hold NaN weights, so each is looked at, newest first.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from unionpose.engine.checkpoint import CHECKPOINT_PREFIX


class TrainingDivergedError(FloatingPointError):
    """The loss became infinite or NaN; the message says where and what to do."""


def check_finite_loss(terms: dict[str, torch.Tensor], step: int, run_dir: Path) -> None:
    """Raise `TrainingDivergedError` when `terms["loss"]` is not finite (one device sync per step, as before)."""
    if torch.isfinite(terms["loss"]):
        return
    values = ", ".join(f"{name} {float(value.detach()):.4g}" for name, value in terms.items())
    good = last_finite_checkpoint(run_dir)
    resume = (f"the last good checkpoint is {good} (--resume continues from there)" if good is not None
              else "no checkpoint with finite weights was written before it")
    raise TrainingDivergedError(f"{run_dir}: training diverged at step {step}: the loss is not finite ({values}); "
                                f"{resume}; lower train.lr or set train.grad_clip")


def last_finite_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint folder of `run_dir` whose model weights are all finite, or None."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    for directory in sorted((p for p in folder.iterdir() if p.name.startswith(CHECKPOINT_PREFIX)), reverse=True):
        try:
            with safe_open(directory / "model.safetensors", framework="pt") as reader:
                if all(torch.isfinite(reader.get_tensor(key)).all() for key in reader.keys()):
                    return directory
        except (SafetensorError, OSError):
            continue
    return None

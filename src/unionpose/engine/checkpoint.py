"""Training checkpoints for exact resume: model files plus the optimiser, EMA, RNG and sampler position, never pickle.

A checkpoint is a folder `checkpoints/step_00001234/` in the run directory:
  model.safetensors   the trained weights, a complete UnionPose model file (`unionpose predict --model` reads it)
  ema.safetensors     the EMA weights, also a model file (only when EMA is on)
  state.safetensors   every other tensor: optimiser moments, the objective's parameters, RNG states
  state.json          step, epoch, position in the epoch, best metric, optimiser hyper-parameters, RNG scalars,
                      and the SHA-256 of the three files above, so a damaged file is caught instead of resumed from.
The folder is written under a temporary name and renamed into place, so a run killed at any moment leaves either a
complete checkpoint or none; a damaged one is an error naming the file, never a silent restart from scratch. Resuming
a run goes back to the newest intact checkpoint, saying which damaged ones it set aside (`newest_intact_checkpoint`).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from unionpose.engine.ema import ModelEMA
from unionpose.models import load_model_file, save_model_file
from unionpose.models.rtmpose import RTMPose
from unionpose.skeletons import Skeleton

STATE_FORMAT = "unionpose-training-state"
STATE_VERSION = 1
CHECKPOINT_PREFIX = "step_"
INCOMPLETE_PREFIX = ".incomplete-"
DAMAGED_PREFIX = "damaged-"


@dataclass
class Progress:
    """Where training stands: what the sampler and the schedule need to continue exactly."""

    step: int = 0                   # optimiser steps done
    epoch: int = 0                  # the epoch in progress (or the next one, when batch_in_epoch == 0)
    batch_in_epoch: int = 0         # global batches of `epoch` already trained on
    best_metric: float | None = None
    best_epoch: int | None = None


@dataclass
class Checkpoint:
    """A verified checkpoint read from disk, ready to be restored into live objects."""

    directory: Path
    progress: Progress
    state: dict[str, Any]           # state.json
    tensors: dict[str, torch.Tensor]


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:08d}"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint folder with the highest step in a run directory (unverified), or None when there is none."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    candidates = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)]
    return max(candidates, key=lambda p: p.name) if candidates else None


def save_checkpoint(
    run_dir: str | Path,
    *,
    model: RTMPose,
    skeleton: Skeleton,
    codec_sigma: tuple[float, float],
    optimizer: torch.optim.Optimizer,
    objective: nn.Module,
    ema: ModelEMA | None,
    scaler: torch.amp.GradScaler,
    progress: Progress,
    keep: int = 2,
) -> Path:
    """Write a checkpoint of the current step atomically and keep only the `keep` newest ones."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{INCOMPLETE_PREFIX}*"):      # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    final = folder / checkpoint_name(progress.step)
    temporary = Path(tempfile.mkdtemp(prefix=f"{INCOMPLETE_PREFIX}{final.name}-", dir=folder))
    try:
        save_model_file(temporary / "model.safetensors", model, skeleton, codec_sigma=codec_sigma)
        if ema is not None:
            save_model_file(temporary / "ema.safetensors", ema.module, skeleton, codec_sigma=codec_sigma)
        tensors, optimizer_info = _optimizer_tensors(optimizer)
        tensors.update({f"objective.{k}": v.detach().cpu().contiguous() for k, v in objective.state_dict().items()})
        rng_tensors, rng_info = _capture_rng()
        tensors.update(rng_tensors)
        save_file(tensors, str(temporary / "state.safetensors"))
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "progress": asdict(progress),
            "optimizer": optimizer_info,
            "ema_updates": ema.updates if ema is not None else None,
            "scaler": scaler.state_dict(),
            "rng": rng_info,
            "sha256": {p.name: _sha256(p) for p in sorted(temporary.glob("*.safetensors"))},
        }
        (temporary / "state.json").write_text(json.dumps(state, indent=1))
        if final.exists():                                 # re-saving a step after a resume: swap, then discard
            discarded = folder / f"{INCOMPLETE_PREFIX}old-{final.name}-{os.getpid()}"
            os.replace(final, discarded)
            os.replace(temporary, final)
            shutil.rmtree(discarded, ignore_errors=True)
        else:
            os.replace(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    older = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX))
    for old in older[: max(len(older) - max(keep, 1), 0)]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(directory: str | Path) -> Checkpoint:
    """Read and verify a checkpoint folder; any missing, truncated or altered file is a ValueError naming it."""
    directory = Path(directory)
    state_path = directory / "state.json"
    if not state_path.is_file():
        raise ValueError(f"{directory}: not a training checkpoint (no state.json)")
    try:
        state = json.loads(state_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{state_path}: unreadable (truncated or corrupted?): {error}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{state_path}: not a UnionPose training state (format {state.get('format')!r})"
                         if isinstance(state, dict) else f"{state_path}: not a UnionPose training state")
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"{state_path}: unsupported version {state.get('version')!r} (this UnionPose reads "
                         f"{STATE_VERSION})")
    for name, expected in state.get("sha256", {}).items():
        path = directory / name
        if not path.is_file():
            raise ValueError(f"{path}: missing from the checkpoint")
        if _sha256(path) != expected:
            raise ValueError(f"{path}: corrupted or truncated (SHA-256 differs from the one recorded in state.json)")
    for required in ("model.safetensors", "state.safetensors"):
        if required not in state.get("sha256", {}):
            raise ValueError(f"{state_path}: field 'sha256' does not list {required}")
    try:
        tensors = load_file(str(directory / "state.safetensors"))
        progress = Progress(**state["progress"])
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{directory / 'state.safetensors'}: unreadable: {error}") from None
    except (KeyError, TypeError) as error:
        raise ValueError(f"{state_path}: field 'progress' is malformed: {error}") from None
    return Checkpoint(directory=directory, progress=progress, state=state, tensors=tensors)


def newest_intact_checkpoint(run_dir: str | Path, set_aside: bool = True) -> Checkpoint | None:
    """The newest checkpoint of a run that verifies (`load_checkpoint`), or None when the run has none at all.

    A damaged newer one (a disk fault, a file altered by hand) does not end the run's history: it is reported on
    stderr with the reason and, with `set_aside` (the process that owns the run), renamed `damaged-step_...` so it is
    never picked again nor counted among the checkpoints to keep. With no intact checkpoint at all nothing is moved,
    and the error lists every checkpoint and why.
    """
    folder = Path(run_dir) / "checkpoints"
    candidates = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)),
                        reverse=True) if folder.is_dir() else []
    damaged: list[tuple[Path, ValueError]] = []
    for directory in candidates:
        try:
            checkpoint = load_checkpoint(directory)
        except ValueError as error:
            damaged.append((directory, error))
            continue
        for bad, error in damaged:
            moved = ""
            if set_aside:
                os.replace(bad, bad.with_name(f"{DAMAGED_PREFIX}{bad.name}"))
                moved = f" (moved to {DAMAGED_PREFIX}{bad.name})"
            print(f"skipped damaged checkpoint {bad}{moved}: {error}", file=sys.stderr)
        if damaged:
            print(f"resuming from {directory}, the newest intact checkpoint", file=sys.stderr)
        return checkpoint
    if damaged:
        raise ValueError(f"{run_dir}: no intact checkpoint to resume from: "
                         + "; ".join(f"{bad.name}: {error}" for bad, error in damaged))
    return None


def restore_checkpoint(
    checkpoint: Checkpoint,
    *,
    model: RTMPose,
    skeleton: Skeleton,
    optimizer: torch.optim.Optimizer,
    objective: nn.Module,
    ema: ModelEMA | None,
    scaler: torch.amp.GradScaler,
) -> Progress:
    """Load a verified checkpoint into the live objects (all built from the same config) and the global RNGs."""
    directory = checkpoint.directory
    load_weights(directory / "model.safetensors", model, skeleton)
    has_ema = (directory / "ema.safetensors").is_file()
    if (ema is not None) != has_ema:
        raise ValueError(f"{directory}: the checkpoint was written with EMA {'on' if has_ema else 'off'}; "
                         f"set train.ema={'true' if has_ema else 'false'} to resume it")
    if ema is not None:
        load_weights(directory / "ema.safetensors", ema.module, skeleton)
        ema.updates = int(checkpoint.state["ema_updates"])
    objective_state = {k[len("objective."):]: v for k, v in checkpoint.tensors.items() if k.startswith("objective.")}
    try:
        objective.load_state_dict(objective_state)
    except RuntimeError as error:
        raise ValueError(f"{directory}: the objective's parameters do not match this config: {error}") from None
    _load_optimizer(optimizer, checkpoint.tensors, checkpoint.state["optimizer"], directory)
    if checkpoint.state["scaler"]:
        scaler.load_state_dict(checkpoint.state["scaler"])
    _restore_rng(checkpoint.tensors, checkpoint.state["rng"])
    return checkpoint.progress


def load_weights(path: str | Path, model: nn.Module, skeleton: Skeleton) -> None:
    """Copy a model file's weights into `model`, which must have the same size, input and skeleton."""
    loaded, info = load_model_file(path)
    if info.skeleton != skeleton or info.model_size != model.size or info.input_size != tuple(model.input_size):
        raise ValueError(f"{path}: holds RTMPose-{info.model_size} {info.input_size} for skeleton "
                         f"{info.skeleton.name!r}, but the config builds RTMPose-{model.size} {model.input_size} "
                         f"for {skeleton.name!r}")
    model.load_state_dict(loaded.state_dict())


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split the optimiser's state into tensors (moments, step counts) and JSON (hyper-parameters, other scalars)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any],
                    directory: Path) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in info.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    live = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in info["param_groups"]] != [len(g["params"]) for g in live]:
        raise ValueError(f"{directory}: the optimiser's parameter groups do not match this model and objective")
    # JSON has no tuples: give hyper-parameters such as `betas` back the type the optimiser uses.
    groups = [{key: tuple(value) if isinstance(current.get(key), tuple) else value for key, value in group.items()}
              for group, current in zip(info["param_groups"], live)]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as error:
        raise ValueError(f"{directory}: the optimiser state does not match this model: {error}") from None


def _capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global RNG states of torch (CPU and CUDA), NumPy and Python, as tensors plus JSON scalars."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{index}"] = cuda_state
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    info = {"numpy": [name, int(position), int(has_gauss), float(cached_gaussian)], "python": [version, gauss_next]}
    return tensors, info


def _restore_rng(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    name, position, has_gauss, cached_gaussian = info["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    version, gauss_next = info["python"]
    random.setstate((version, tuple(int(v) for v in tensors["rng.python"].tolist()), gauss_next))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

"""Where a training step's time goes, stage by stage, and the full engine step against the bare model, side by side.

    python benchmarks/train_step.py --out train_step.json

For each input size (`--inputs`: 256x192 at batch 16, RTMPose's crop; 128x96 at batch 32, the demo's) and each
teacher setting (`--teachers`: none; one online teacher; the same teacher cached), with an RTMPose student and a
teacher of the same size and input (random weights: the speed does not depend on them), on synthetic people:

- `stages_ms`: milliseconds per batch of each stage, measured one stage at a time in the main process: decode (image
  file -> pixels), augment (crop, geometry, colour, blur, dropout), encode (SimCC targets), item_rest (the rest of
  building an item: colour conversion, normalisation, tensors), collate, host_to_device, forward (student and loss
  terms), teacher (its share of the forward, online or replayed from the cache), backward, optimiser (zero_grad +
  AdamW step), ema. The data stages run in the loader workers, in parallel with the model: they lengthen a step only
  when the workers cannot keep up. The stages replay the loop's body with timers around its parts (the loop itself
  carries no instrumentation); under CUDA each timer synchronises.
- `full_step_ms` and `bare_step_ms`: medians of per-step times of the trainer's own loop (`Trainer.train_one_epoch`
  with its loader workers, logging and all) and of `BareStep` (forward + backward of the same model on random
  tensors), run alternately, one step of each in turn (`AlternatingClock`), so that both see the same load on a
  shared machine. `ratio`: the median over full steps of each one's time over the mean of the two bare steps around
  it (with its quartiles), the engine's overhead over the model itself.

Prints one JSON object, also written to --out. Timings on a loaded machine move from run to run: compare the ratios
of one run, not absolute times across runs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import numpy as np
import torch
from torch.utils.data import default_collate

import unionpose.data.dataset as dataset_module
from unionpose.data.augment import TopDownAugmenter
from unionpose.engine.config import validate_config
from unionpose.engine.distributed import init_distributed
from unionpose.engine.throughput import BareStep
from unionpose.engine.trainer import PRECISIONS, Trainer
from unionpose.models import save_model_file
from unionpose.models.rtmpose import RTMPose
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate
from reporting import emit

SKELETON = "coco17"
TEACHER_SETTINGS = ("none", "online", "cached")


class Stopwatch:
    """Seconds spent per named stage, summed over calls; under CUDA each timing synchronises first and last."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[stage] += time.perf_counter() - start

    def wrap(self, stage: str, function: Callable) -> Callable:
        """`function`, timed as `stage` on every call."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(stage):
                return function(*args, **kwargs)
        return timed


class AlternatingClock:
    """Stands in for the progress bar: `train_one_epoch` calls `update(1)` after every optimiser step, and this clock
    then runs one bare step. Full and bare steps alternate one by one, so both see the same load on a shared machine;
    a full step is timed from the end of the bare step before it (the first, which starts the loader, is not)."""

    def __init__(self, bare: BareStep) -> None:
        self.bare = bare
        self.full_seconds: list[float] = []
        self.bare_seconds: list[float] = []
        self._resumed: float | None = None

    def update(self, steps: int) -> None:
        stopped = time.perf_counter()
        if self._resumed is not None:
            self.full_seconds.append(stopped - self._resumed)
        self.bare()
        self._resumed = time.perf_counter()
        self.bare_seconds.append(self._resumed - stopped)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass


def stage_times(trainer: Trainer, batches: int) -> dict[str, float]:
    """Milliseconds per batch of each stage: the loop's body replayed in the main process with timers around its
    parts, and the dataset's, codec's and teachers' calls wrapped by timers (see the module docstring)."""
    device = trainer.context.device
    watch = Stopwatch(device)
    dataset = trainer.dataset
    settings = trainer.config.train
    autocast = partial(torch.autocast, device.type, dtype=PRECISIONS[settings.precision],
                       enabled=settings.precision != "fp32")
    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(dataset_module, "load_image",
                                                watch.wrap("decode", dataset_module.load_image)))
        patches.enter_context(mock.patch.object(TopDownAugmenter, "__call__",
                                                watch.wrap("augment", TopDownAugmenter.__call__)))
        patches.enter_context(mock.patch.object(dataset.codec, "encode", watch.wrap("encode", dataset.codec.encode)))
        for teacher, _ in getattr(trainer.objective, "teachers", ()):
            kind = type(teacher)
            patches.enter_context(mock.patch.object(kind, "__call__", watch.wrap("teacher", kind.__call__)))
        trainer.sampler.set_epoch(0)
        for count, keys in enumerate(trainer.sampler):
            if count == 1:
                watch.seconds.clear()       # the first batch warms up (allocations, lazy initialisation)
            with watch("item"):
                items = [dataset[key] for key in keys]
            with watch("collate"):
                batch = default_collate(items)      # the DataLoader's own collate function
            with watch("host_to_device"):
                batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            with watch("forward"), autocast():
                terms = trainer.step_module(batch, 0, settings.epochs)
            with watch("optimiser"):
                trainer.optimizer.zero_grad(set_to_none=True)
            with watch("backward"):
                trainer.scaler.scale(terms["loss"]).backward()
            with watch("optimiser"):
                trainer.scaler.step(trainer.optimizer)
                trainer.scaler.update()
            with watch("ema"):
                trainer.ema.update(trainer.model)
            if count == batches:
                break
    seconds = dict(watch.seconds)
    seconds["item_rest"] = seconds.pop("item") - sum(seconds[s] for s in ("decode", "augment", "encode"))
    seconds["forward"] -= seconds.get("teacher", 0.0)
    order = ("decode", "augment", "encode", "item_rest", "collate", "host_to_device", "forward", "teacher",
             "backward", "optimiser", "ema")
    return {stage: round(1e3 * seconds[stage] / batches, 2) for stage in order if stage in seconds}


def alternating_step_times(trainer: Trainer, bare: BareStep, warmup: int, steps: int) -> tuple[np.ndarray,
                                                                                           np.ndarray]:
    """Seconds per step of the trainer's own loop (`steps`) and of the bare model around them (`steps` + 1: full
    step i runs between bare steps i and i + 1), alternating, after `warmup` steps of each."""
    clock = AlternatingClock(bare)
    trainer.sampler.batches_per_epoch = trainer.progress.batch_in_epoch + warmup + steps + 1
    trainer.train_one_epoch(0, clock)
    return np.asarray(clock.full_seconds[warmup:]), np.asarray(clock.bare_seconds[warmup:])


def make_teacher(folder: Path, size: str, input_hw: tuple[int, int]) -> Path:
    torch.manual_seed(0)
    model = RTMPose(size, get_skeleton(SKELETON).num_keypoints, input_hw).eval()
    return save_model_file(folder / f"teacher_{size}_{input_hw[0]}x{input_hw[1]}.safetensors", model,
                           get_skeleton(SKELETON))


def build_trainer(args: argparse.Namespace, data: Path, scratch: Path, input_hw: tuple[int, int], batch: int,
                  teacher: str, name: str) -> Trainer:
    people = json.loads((data / "synth_meta.json").read_text())["people"][f"{SKELETON}.json"]
    batches = 1 + args.stage_batches + args.warmup + args.steps + 1
    teachers = []
    if teacher != "none":
        spec = {"name": "teacher", "kind": "checkpoint", "path": str(make_teacher(scratch, args.size, input_hw)),
                "beta": 1.0}
        if teacher == "cached":
            spec.update(mode="cached", cache=str(scratch / f"{name}_cache.safetensors"))
        teachers.append(spec)
    config = validate_config({
        "skeleton": SKELETON,
        "model": {"size": args.size, "input": list(input_hw)},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(data / f"{SKELETON}.json"),
                            "images": str(data / "images"), "ratio": math.ceil(batches * batch / people)}]},
        "teachers": teachers,
        "train": {"epochs": 1, "batch_size": batch, "workers": args.workers, "device": args.device,
                  "precision": args.precision, "warmup_iters": 10, "log_interval": 10**6, "checkpoint_interval": 0,
                  "tensorboard": False},
        "output": str(scratch / name),
    })
    return Trainer(config, init_distributed(args.device))


def one_setting(args: argparse.Namespace, data: Path, scratch: Path, input_hw: tuple[int, int], batch: int,
                teacher: str) -> dict:
    name = f"{input_hw[0]}x{input_hw[1]}_{teacher}"
    trainer = build_trainer(args, data, scratch, input_hw, batch, teacher, name)
    stages = stage_times(trainer, args.stage_batches)
    bare = BareStep(args.size, get_skeleton(SKELETON).num_keypoints, input_hw, batch, device=trainer.context.device)
    full, bare_times = alternating_step_times(trainer, bare, args.warmup, args.steps)
    del trainer
    ratios = full / (0.5 * (bare_times[:-1] + bare_times[1:]))     # each full step against the bare steps around it
    data_ms = sum(stages[s] for s in ("decode", "augment", "encode", "item_rest", "collate"))
    result = {
        "input_hw": list(input_hw), "batch": batch, "teacher": teacher, "stages_ms": stages,
        "data_ms_per_step_per_worker": round(data_ms / max(args.workers, 1), 2),
        "full_step_ms": round(1e3 * float(np.median(full)), 1),
        "bare_step_ms": round(1e3 * float(np.median(bare_times)), 1),
        "ratio": round(float(np.median(ratios)), 3),
        "ratio_quartiles": [round(float(q), 3) for q in np.percentile(ratios, (25, 75))],
    }
    print(json.dumps(result), flush=True)
    return result


def input_spec(text: str) -> tuple[tuple[int, int], int]:
    """'256x192:16' -> ((256, 192), 16)."""
    size, batch = text.split(":")
    height, width = (int(v) for v in size.lower().split("x"))
    return (height, width), int(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="t", choices=("t", "s", "m", "l"), help="student and teacher (default t)")
    parser.add_argument("--inputs", default="256x192:16,128x96:32", help="HxW:batch, comma-separated")
    parser.add_argument("--teachers", default=",".join(TEACHER_SETTINGS), help="none, online, cached")
    parser.add_argument("--steps", type=int, default=16, help="timed full steps (default 16)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first (default 2)")
    parser.add_argument("--stage-batches", type=int, default=3,
                        help="batches timed stage by stage, after one untimed (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    teachers = args.teachers.split(",")
    unknown = set(teachers) - set(TEACHER_SETTINGS)
    if unknown:
        parser.error(f"--teachers: unknown {sorted(unknown)}; choose from {', '.join(TEACHER_SETTINGS)}")

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        data = scratch / "synthetic"
        generate(data, num_train=64, num_val=1, seed=0)
        runs = [one_setting(args, data, scratch, input_hw, batch, teacher)
                for input_hw, batch in map(input_spec, args.inputs.split(",")) for teacher in teachers]
    result = {
        "benchmark": "train_step", "model": f"rtmpose-{args.size}", "workers": args.workers,
        "precision": args.precision, "device": str(init_distributed(args.device).device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "load_average": [round(v, 2) for v in os.getloadavg()], "steps": args.steps, "warmup": args.warmup,
        "runs": runs,
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()

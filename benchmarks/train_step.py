"""Training throughput: a full step of the engine against the bare model's forward + backward, in one run.

    python benchmarks/train_step.py --size t --input 128x96 --batch 16 --out train_step.json

A *full step* is what `unionpose train` does per iteration: load the images (loader workers), crop and augment them,
encode SimCC targets, forward, the KL-discrete loss, backward, AdamW, EMA. The *bare* figure runs only the model's
forward and backward on random tensors of the same batch shape. Their ratio is the engine's overhead (data pipeline,
loss, optimiser, bookkeeping); `data_images_per_s` is the loader alone. Rates use the median step time. Data: the
synthetic people (generated into a temporary folder unless --data names one made by `unionpose synth`).
Prints one JSON object, also written to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import torch

from unionpose.engine.config import validate_config
from unionpose.engine.distributed import init_distributed
from unionpose.engine.throughput import bare_training_rate, images_per_second
from unionpose.engine.trainer import Trainer
from unionpose.synthetic import generate


class StepClock:
    """Stands in for the progress bar: `train_one_epoch` calls `update(1)` after every optimiser step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def update(self, steps: int) -> None:
        self.times.append(time.perf_counter())

    def set_postfix(self, *args, **kwargs) -> None:
        pass


def full_step_rate(trainer: Trainer, warmup: int, batch: int) -> float:
    clock = StepClock()
    trainer.train_one_epoch(0, clock)
    return images_per_second(clock.times, warmup, batch)


def data_rate(trainer: Trainer, warmup: int, batch: int) -> float:
    trainer.sampler.set_epoch(1)
    stamps = []
    for _ in trainer.loader:
        stamps.append(time.perf_counter())
    return images_per_second(stamps, warmup, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="t", choices=("t", "s", "m", "l"))
    parser.add_argument("--input", default="128x96", help="HxW, multiples of 32 (default 128x96)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--data", type=Path, help="a `unionpose synth` folder (default: generate a small one)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    height, width = (int(v) for v in args.input.lower().split("x"))

    with tempfile.TemporaryDirectory() as scratch:
        data = args.data
        if data is None:
            data = Path(scratch) / "synthetic"
            generate(data, num_train=64, num_val=1, seed=0)
        people = json.loads((data / "synth_meta.json").read_text())["people"]["coco17.json"]
        batches = args.warmup + args.steps + 1
        repeats = math.ceil(batches * args.batch / people)      # each person several times per epoch if needed
        config = validate_config({
            "skeleton": "coco17",
            "model": {"size": args.size, "input": [height, width]},
            "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"),
                                "images": str(data / "images"), "ratio": repeats}]},
            "train": {"epochs": 1, "batch_size": args.batch, "workers": args.workers, "device": args.device,
                      "precision": args.precision, "warmup_iters": 10, "log_interval": 10**6,
                      "checkpoint_interval": 0, "tensorboard": False},
            "output": str(Path(scratch) / "run"),
        })
        trainer = Trainer(config, init_distributed(args.device))
        trainer.sampler.batches_per_epoch = batches      # time the first `batches` steps of the epoch
        full = full_step_rate(trainer, args.warmup, args.batch)
        loader_only = data_rate(trainer, args.warmup, args.batch)
        device = trainer.context.device
        del trainer
    bare = bare_training_rate(args.size, 17, (height, width), args.batch, steps=args.steps, warmup=args.warmup,
                              device=device)
    result = {
        "benchmark": "train_step", "model": f"rtmpose-{args.size}", "input_hw": [height, width],
        "batch": args.batch, "steps": args.steps, "workers": args.workers, "precision": args.precision,
        "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "full_step_images_per_s": round(full, 2), "bare_model_images_per_s": round(bare, 2),
        "data_images_per_s": round(loader_only, 2), "overhead_ratio": round(bare / full, 3),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

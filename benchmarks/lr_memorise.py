"""Can RTMPose-t memorise a small set at a given learning rate? The measurement behind `train.lr_batch_size`.

    python benchmarks/lr_memorise.py --out lr_memorise.json [--work runs/lr_memorise] [--lrs 1.25e-4 7.1e-4 2e-3 4e-3]

RTMPose-t from scratch at 128x96, batch 32, no augmentation, trained on the COCO-like people of 132 synthetic images
(demo preset, seed 3: 257 people, 8 steps an epoch) for 40 epochs (320 steps) and validated on the same crops every 8
epochs (PCK@0.05 of the crop): a rate that cannot memorise them cannot learn anything larger. The rates: RTMPose's
4e-3 for batches of 1024 scaled linearly to 32 (1.25e-4), by the square root (7.1e-4), and unscaled. Prints one JSON
object, also written to --out.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from unionpose.engine.config import validate_config
from unionpose.engine.trainer import train
from unionpose.synthetic import PRESETS, generate
from reporting import emit

DATA_SEED = 3


def memorise(data: Path, lr: float, run: Path) -> dict:
    """One run at `lr`; its validation PCK and loss after every 8 epochs."""
    people = {"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"), "images": str(data / "images")}
    config = validate_config({
        "skeleton": "coco17", "model": {"size": "t", "input": [128, 96]},
        "data": {"train": [people], "val": [people], "augment": {"enabled": False}, "mild_last_epochs": 0},
        "train": {"epochs": 40, "batch_size": 32, "lr": lr, "warmup_iters": 20, "cosine_from_epoch": 40, "ema": False,
                  "seed": 21, "workers": 0, "val_interval": 8, "log_interval": 8, "tensorboard": False},
        "output": str(run)}, source=f"lr_memorise {lr:g}")
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    train(config)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"lr": lr, "seconds": round(time.perf_counter() - started, 1),
            "curve": [{"step": r["step"], "pck@0.05": round(r["pck"], 3), "loss": round(r["loss"], 4)}
                      for r in records if r.get("kind") == "val"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--work", type=Path, default=Path("runs/lr_memorise"), help="data and runs")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1.25e-4, 7.1e-4, 2e-3, 4e-3])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.work / "data"
    if not (data / "synth_meta.json").is_file():
        generate(data, 264, 4, DATA_SEED, params=PRESETS["demo"])
    runs = [memorise(data, lr, args.work / f"lr{lr:g}") for lr in args.lrs]
    result = {"benchmark": "lr_memorise", "model": "rtmpose-t", "input": [128, 96], "batch": 32, "steps": 320,
              "data_seed": DATA_SEED, "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": runs}
    emit(result, args.out)


if __name__ == "__main__":
    main()

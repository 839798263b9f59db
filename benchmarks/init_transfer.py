"""Starting a 21-point union model from a trained 17-point model against training it from scratch, same budget.

    python benchmarks/init_transfer.py --out init_transfer.json      # 55 min on 2 shared CPU cores
    python benchmarks/init_transfer.py --scenes benchmark --train 8000 --source-epochs 60 --student-epochs 30 ...

On the synthetic people (`unionpose.synthetic`), by default with EASY_SCENES (below): on the benchmark's own scenes
a 17-point RTMPose-t at 96x64 was still at COCO-like AP 0.0 after 570 steps of 32 crops, so there is nothing to
transfer at a CPU budget. A COCO-like RTMPose (17 points) is trained on the COCO-like half; then two 21-point
students (COCO-17 + MPII-16, the paper's union) are trained on both halves with the same recipe and budget, one
started from the 17-point model (`model.init`: backbone and head copied, the 17 keypoint channels mapped
by name, the 4 MPII-only points fresh), one from scratch. Every model is scored before training and after every
epoch on the COCO-like validation set (COCO AP on its 17 points) and on the MPII-like one (OKS AP with the MPII
sigmas on its 16 points, and PCKh@0.5), ground-truth boxes, no flip test. Reported: the curves (scores in percent),
and the epochs each student needs to reach the 17-point model's final COCO-like AP.

The learning rate is RTMPose's 4e-3 at batch 1024 scaled by sqrt(batch / 1024) for AdamW (7e-4 at batch 32).
Prints one JSON object, also written to --out.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB, SIMCC_SPLIT_RATIO
from unionpose.core.model_description import ModelInfo
from unionpose.core.simcc import default_sigma
from unionpose.data.sources import DatasetSource
from unionpose.engine.config import validate_config
from unionpose.engine.distributed import init_distributed, shutdown_distributed
from unionpose.engine.trainer import Trainer
from unionpose.eval.evaluate import evaluate_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.skeletons import Skeleton
from unionpose.synthetic import SynthParams, generate

BATCH_OF_THE_RECIPE = 1024
LR_OF_THE_RECIPE = 4e-3
# EASY_SCENES: one to three people of more even size, upright, fewer occluders, less clutter and noise, so that a
# CPU budget of an hour reaches a COCO-like AP worth comparing (the benchmark's default scenes need many hours).
EASY_SCENES = SynthParams(people_weights=(0.3, 0.4, 0.3), scale_range=(0.8, 1.3), roll_std=8.0, wide_roll_prob=0.05,
                          any_roll_prob=0.0, small_head_prob=0.1, occluder_weights=(0.5, 0.35, 0.15), clutter=0.5,
                          faded_figure_prob=0.1, low_contrast_prob=0.05, noise_prob=0.3, blur_prob=0.1)


class EpochScores:
    """The trainer's validator: COCO-like AP, MPII-like AP and PCKh of the model after every epoch, kept in order."""

    metric = "coco_ap"
    higher_is_better = True

    def __init__(self, data: Path, skeleton: Skeleton, size: str, input_hw: tuple[int, int]) -> None:
        images = str(data / "images")
        self.sources = [
            DatasetSource(name="coco", format="coco", annotations=str(data / "coco17_val.json"), images=images,
                          metric="coco_ap"),
            DatasetSource(name="mpii_ap", format="mpii", annotations=str(data / "mpii16_val.json"), images=images,
                          metric="coco_ap"),
            DatasetSource(name="mpii_pckh", format="mpii", annotations=str(data / "mpii16_val.json"), images=images,
                          metric="pckh"),
        ]
        self.info = ModelInfo(skeleton=skeleton, model_size=size, input_size=input_hw, split_ratio=SIMCC_SPLIT_RATIO,
                              sigma=default_sigma(input_hw), mean=IMAGE_MEAN_RGB, std=IMAGE_STD_RGB)
        self.curve: list[dict[str, float]] = []

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        runner = TopDownRunner(TorchBackend(model), self.info, flip_test=False, batch_size=64)
        result = evaluate_model(runner, self.sources, progress=False).datasets
        model.train(was_training)
        scores = {"coco_ap": 100 * result["coco"].result["AP"], "mpii_ap": 100 * result["mpii_ap"].result["AP"],
                  "mpii_pckh": 100 * result["mpii_pckh"].result["PCKh@0.5"]}
        self.curve.append({key: round(value, 2) for key, value in scores.items()})
        return scores


def train_model(name: str, out: Path, data: Path, args: argparse.Namespace, skeleton_spec: str | dict,
                datasets: list[str], epochs: int, init: Path | None) -> dict:
    """One model trained as the recipe says, in a fresh run folder; its curve starts with the score of the initial
    weights (epoch 0)."""
    images = str(data / "images")
    train_sets = {"coco": {"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"),
                           "images": images},
                  "mpii": {"name": "mpii", "format": "mpii", "annotations": str(data / "mpii16.json"),
                           "images": images}}
    run_dir = out / "runs" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    config = validate_config({
        "skeleton": skeleton_spec,
        "model": {"size": args.size, "input": list(args.input), "init": str(init) if init else None},
        "data": {"train": [train_sets[d] for d in datasets], "augment": {"rotation_factor": 45.0},
                 "mild_last_epochs": 0},
        "train": {"epochs": epochs, "batch_size": args.batch, "lr": args.lr, "weight_decay": 0.0,
                  "warmup_iters": args.warmup, "cosine_from_epoch": epochs // 2, "ema": False, "seed": args.seed,
                  "workers": args.workers, "device": "cpu", "val_interval": 1, "checkpoint_interval": 0,
                  "log_interval": 50, "tensorboard": False},
        "output": str(run_dir),
    }, source=f"init_transfer {name}")
    context = init_distributed("cpu")
    started = time.perf_counter()
    try:
        skeleton = config.build_skeleton()
        scores = EpochScores(data, skeleton, args.size, tuple(args.input))
        trainer = Trainer(config, context, validator=scores)
        scores(trainer.model)                                  # epoch 0: the starting weights
        result = trainer.fit()
        del trainer
    finally:
        shutdown_distributed(context)
    return {"skeleton": skeleton.name, "keypoints": skeleton.num_keypoints, "datasets": datasets,
            "init": str(init) if init else None, "epochs": epochs, "steps": result.steps,
            "seconds": round(time.perf_counter() - started, 1), "final_model": str(result.final_model),
            "curve": scores.curve}


def epochs_to_reach(curve: list[dict[str, float]], target: float) -> int | None:
    """The first epoch (0: before training) whose COCO-like AP is at least `target`, or None within the budget."""
    return next((epoch for epoch, scores in enumerate(curve) if scores["coco_ap"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--work", type=Path, default=Path("runs/init_transfer"),
                        help="data and runs (reuses a synthetic set already there)")
    parser.add_argument("--train", type=int, default=3000, help="synthetic training images, half per dataset")
    parser.add_argument("--val", type=int, default=160, help="synthetic validation images")
    parser.add_argument("--scenes", choices=("easy", "benchmark"), default="easy",
                        help="EASY_SCENES (default) or the synthetic benchmark's own scenes")
    parser.add_argument("--source-epochs", type=int, default=25, help="epochs of the 17-point model")
    parser.add_argument("--student-epochs", type=int, default=6,
                        help="epochs of each 21-point student (each sees both halves: twice the source's steps)")
    parser.add_argument("--size", default="t", choices=("t", "s", "m", "l"))
    parser.add_argument("--input", type=lambda text: tuple(int(v) for v in text.lower().split("x")), default=(128, 96),
                        help="HxW crop, multiples of 32 (default 128x96)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, help="default: 4e-3 * sqrt(batch / 1024), RTMPose's lr for AdamW")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up iterations")
    parser.add_argument("--workers", type=int, default=1, help="loader workers")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1: steadiest on a shared machine)")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    if args.lr is None:
        args.lr = LR_OF_THE_RECIPE * math.sqrt(args.batch / BATCH_OF_THE_RECIPE)
    torch.set_num_threads(args.threads)

    data = args.work / "data"
    started = time.perf_counter()
    params = EASY_SCENES if args.scenes == "easy" else SynthParams()
    wanted = {"seed": args.seed, "train_images": args.train, "val_images": args.val, "params": asdict(params)}
    meta = data / "synth_meta.json"
    if meta.is_file():
        written = json.loads(meta.read_text())
        if any(json.dumps(written.get(key)) != json.dumps(value) for key, value in wanted.items()):
            raise SystemExit(f"{data} holds another synthetic set (see its synth_meta.json); choose another --work")
    else:
        generate(data, args.train, args.val, args.seed, workers=max(args.workers, 1), params=params)
    union = {"union": ["coco17", "mpii16"]}
    source = train_model("source_17", args.work, data, args, "coco17", ["coco"], args.source_epochs, None)
    target = source["curve"][-1]["coco_ap"]
    students = {
        "from_source": train_model("from_source", args.work, data, args, union, ["coco", "mpii"],
                                   args.student_epochs, Path(source["final_model"])),
        "from_scratch": train_model("from_scratch", args.work, data, args, union, ["coco", "mpii"],
                                    args.student_epochs, None),
    }
    result = {
        "benchmark": "init_transfer", "model": f"rtmpose-{args.size}", "input_hw": list(args.input),
        "scenes": args.scenes, "train_images": args.train, "val_images": args.val, "batch": args.batch,
        "lr": round(args.lr, 6), "warmup_iters": args.warmup, "seed": args.seed, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "target_coco_ap": target,
        "epochs_to_reach_target": {name: epochs_to_reach(run["curve"], target) for name, run in students.items()},
        "final": {name: run["curve"][-1] for name, run in {"source_17": source, **students}.items()},
        "models": {"source_17": source, **students},
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Starting a 21-point union model from a trained 17-point model, against starting it from a backbone or from scratch.

    python benchmarks/init_transfer.py --out init_transfer.json [--work runs/init_transfer] [--epochs 6]

On the demo's data (synthetic people, demo preset, seed 21) and with the demo's recipe for the unified student
(`unionpose.apps.demo.stage_config`: RTMPose-t at 128x96, both datasets, the same epochs, batch and learning rate),
three 21-point students (COCO-17 + MPII-16, the paper's union) differ only in where they start:

- `from_17_point_model`: the shipped COCO-like teacher (a trained 17-point RTMPose-t; `--source` for another):
  backbone and head copied, the 17 keypoint channels mapped by name, the 4 MPII-only points fresh (`model.init`);
- `from_backbone`: the shipped pretrained backbone with a new head (where the demo's students start);
- `from_scratch`: nothing.

Every student is scored before training (epoch 0) and after every epoch on the COCO-like validation set (AP on its 17
points) and the MPII-like one (PCKh@0.5 on its 16), ground-truth boxes, no flip test. Reported: the curves (percent),
and the epochs each needs to reach the 17-point model's own COCO-like AP. Prints one JSON object, also to --out.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from unionpose.apps.demo import make_data, stage_config
from unionpose.apps.demo_setup import DEFAULT_SCALE, STUDENTS
from unionpose.apps.demo_weights import shipped_weights, weight_paths
from unionpose.engine.config import validate_config
from unionpose.engine.distributed import init_distributed, shutdown_distributed
from unionpose.engine.trainer import Trainer
from reporting import emit

DATA_SEED = 21
KEYS = {"coco/AP": "coco_ap", "mpii/PCKh@0.5": "mpii_pckh"}


def train_from_start(name: str, init: Path | None, work: Path, data: Path, epochs: int, seed: int,
                  weights: dict[str, Path]) -> dict:
    """The demo's unified student started from `init` (None: from scratch), scored at epoch 0 and after each epoch."""
    unified = next(stage for stage in STUDENTS if stage.name == "unified")
    recipe = stage_config(unified, work / name, data, replace(DEFAULT_SCALE, student_epochs=epochs), seed, weights)
    recipe["model"]["init"] = str(init) if init else None
    recipe["train"]["checkpoint_interval"] = 0
    shutil.rmtree(work / name, ignore_errors=True)
    config = validate_config(recipe, source=f"init_transfer {name}")
    context = init_distributed("cpu")
    started = time.perf_counter()
    try:
        trainer = Trainer(config, context)
        curve = [trainer.validator(trainer.model)]             # epoch 0: the starting weights
        trainer.validator = _Recorder(trainer.validator, curve)
        result = trainer.fit()
        del trainer
    finally:
        shutdown_distributed(context)
    return {"init": str(init) if init else None, "epochs": epochs, "steps": result.steps,
            "seconds": round(time.perf_counter() - started, 1),
            "curve": [{KEYS[k]: round(100 * v, 2) for k, v in scores.items() if k in KEYS} for scores in curve]}


class _Recorder:
    """The trainer's validator, also keeping every epoch's scores."""

    def __init__(self, validator, curve: list[dict[str, float]]) -> None:
        self.validator, self.curve = validator, curve
        self.metric, self.higher_is_better = validator.metric, validator.higher_is_better

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        scores = self.validator(model)
        self.curve.append(scores)
        return scores


def epochs_to_reach(curve: list[dict[str, float]], target: float) -> int | None:
    """The first epoch (0: before training) whose COCO-like AP is at least `target`, or None within the budget."""
    return next((epoch for epoch, scores in enumerate(curve) if scores["coco_ap"] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--work", type=Path, default=Path("runs/init_transfer"), help="data and runs")
    parser.add_argument("--source", type=Path, help="the 17-point model file (default: the shipped COCO-like teacher)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_SCALE.student_epochs, help="epochs of each student")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = weight_paths(shipped_weights())
    source = args.source or weights["teacher_coco"]

    data = args.work / "data"
    if not (data / "synth_meta.json").is_file():
        make_data(data, DEFAULT_SCALE, DATA_SEED)
    started = time.perf_counter()
    starts = {"from_17_point_model": source, "from_backbone": weights["backbone"], "from_scratch": None}
    runs = {name: train_from_start(name, init, args.work, data, args.epochs, args.seed, weights)
            for name, init in starts.items()}
    target = _source_score(source, data)
    result = {
        "benchmark": "init_transfer", "source": str(source), "source_coco_ap": target, "epochs": args.epochs,
        "recipe": "the demo's unified student (apps.demo.stage_config)", "data_seed": DATA_SEED, "seed": args.seed,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "epochs_to_reach_source_ap": {name: epochs_to_reach(run["curve"], target) for name, run in runs.items()},
        "final": {name: run["curve"][-1] for name, run in runs.items()},
        "runs": runs, "seconds": round(time.perf_counter() - started, 1),
    }
    emit(result, args.out)


def _source_score(source: Path, data: Path) -> float:
    """The 17-point model's own COCO-like AP on the same validation set, scored the same way (no flip test)."""
    from unionpose.apps.demo_setup import dataset_sources
    from unionpose.data.sources import DatasetSource
    from unionpose.eval.evaluate import evaluate_model

    coco = DatasetSource(**dataset_sources(data, "val")["coco"])
    return round(100 * evaluate_model(source, [coco], flip_test=False, progress=False).datasets["coco"].result["AP"],
                 2)


if __name__ == "__main__":
    main()

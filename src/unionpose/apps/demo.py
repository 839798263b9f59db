"""`unionpose demo`: the paper's experiment in miniature on synthetic people, with tables and a report.

Two "datasets" with different skeletons (COCO-like 17 points, MPII-like 16 points, on different images), one expert
teacher each, single-dataset students, and a 21-point unified student trained without and with distillation from both
teachers; then every model scored with the paper's protocol: COCO-like AP on 17 points, MPII-like PCKh@0.5 on 16,
their average, and AP on all 21 points (Khan et al. 2024, Tables 1, 2 and 5).

The teachers and the students' pretrained backbone come with the package (`demo_weights`, made once by
`--retrain-teachers`); the demo generates its data, trains the four students from that backbone, and evaluates all.
Each stage writes its result into the output folder; a re-run reuses finished stages (unless `force`) and resumes an
interrupted training from its last checkpoint.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from unionpose.apps.demo_setup import (
    ALPHA, BETA, DEFAULT_SCALE, QUICK_SCALE, STUDENTS, TEACHERS, UNTRAINED, DemoResult, DemoScale, Stage,
    dataset_sources,
)
from unionpose.apps.demo_tables import format_tables
from unionpose.apps.demo_weights import retrain_weights, shipped_weights, weight_paths

# Augmentation for the students' short runs: RTMPose's recipe with milder rotation, scale and dropout.
STUDENT_AUGMENT = {"rotation_factor": 45.0, "dropout_prob": 0.5, "scale_range": [0.75, 1.25]}


def run_demo(out_dir: str | Path = "runs/demo", *, quick: bool = False, force: bool = False, seed: int = 21,
             weights: str | Path | None = None, retrain_teachers: bool = False,
             say: Callable[[str], None] = print) -> DemoResult:
    """Generate the data, train the four students, evaluate every model and write `results.json` and `report.md`.

    `weights`: a folder with the teachers and the backbone (default: the shipped ones); `retrain_teachers` makes
    them again first, into `out_dir/weights_build` (hours on a CPU).
    """
    scale = QUICK_SCALE if quick else DEFAULT_SCALE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=out)
    started = time.perf_counter()

    if retrain_teachers:
        weights = retrain_weights(out / "weights_build", say=say)
    given = weight_paths(Path(weights) if weights is not None else shipped_weights())
    result.models.update({name: given[name] for name in TEACHERS})

    data_dir = out / "data"
    result.seconds["data"] = _stage(out, "data", force, say, lambda: make_data(data_dir, scale, seed))
    for stage in STUDENTS:
        result.seconds[stage.name] = _stage(
            out, stage.name, force, say,
            lambda stage=stage: train_student(stage, out, data_dir, scale, seed, given, force))
        result.models[stage.name] = out / "runs" / stage.name / "final.safetensors"
    result.models[UNTRAINED] = out / "runs" / UNTRAINED / "model.safetensors"

    def evaluate() -> None:
        save_untrained(result.models[UNTRAINED], given["backbone"], scale, seed)
        evaluate_models(result.models, data_dir, out / "evaluation")

    result.seconds["evaluation"] = _stage(out, "evaluation", force, say, evaluate)
    result.metrics = json.loads((out / "evaluation" / "metrics.json").read_text())["models"]
    result.throughput = _throughput(out, scale)
    result.tables = format_tables(result.metrics)
    say("\n" + result.tables)
    result.seconds["total"] = time.perf_counter() - started
    from unionpose.apps.demo_report import write_demo_report

    result.report = write_demo_report(result, scale, given)
    (out / "results.json").write_text(json.dumps(
        {"scale": scale.description, "seed": seed, "weights": {k: str(v) for k, v in given.items()},
         "seconds": result.seconds, "throughput": result.throughput,
         "models": {k: str(v) for k, v in result.models.items()}, "metrics": result.metrics}, indent=2))
    say(f"\nresults: {out / 'results.json'}\nreport:  {result.report}")
    return result


def _stage(out: Path, name: str, force: bool, say: Callable[[str], None], work: Callable[[], None]) -> float:
    """Run one stage unless its done-marker exists; return (and record) its wall time."""
    marker = out / "stages" / f"{name}.json"
    if marker.is_file() and not force:
        seconds = json.loads(marker.read_text())["seconds"]
        say(f"[{name}] done earlier ({seconds:.0f} s), reused; --force redoes it")
        return seconds
    say(f"[{name}] ...")
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seconds": seconds}))
    say(f"[{name}] {seconds:.0f} s")
    return seconds


def make_data(data_dir: Path, scale: DemoScale, seed: int) -> None:
    from unionpose.synthetic import PRESETS, generate

    if data_dir.exists():   # a stage that did not finish: start it again from nothing
        shutil.rmtree(data_dir)
    generate(data_dir, scale.train_images, scale.val_images, seed, params=PRESETS[scale.preset], progress=True)


def stage_config(stage: Stage, out: Path, data_dir: Path, scale: DemoScale, seed: int,
                 weights: dict[str, Path]) -> dict[str, Any]:
    """The recipe of one student, as a config dict (the same schema as configs/; saved in its run folder).

    Every student starts from the shipped backbone with a new head, sees its own datasets for the same number of
    epochs (the unified ones see both, as in the paper), and is validated after every epoch on the COCO-like and
    MPII-like validation sets with their own metrics: the learning curves of the report.
    """
    train, val = dataset_sources(data_dir, "train"), dataset_sources(data_dir, "val")
    config: dict[str, Any] = {
        "skeleton": stage.skeleton,
        "model": {"size": scale.student_size, "input": list(scale.input), "init": str(weights["backbone"])},
        "data": {"train": [train[d] for d in stage.datasets], "val": [val["coco"], val["mpii"]],
                 "augment": STUDENT_AUGMENT, "mild_last_epochs": 0},
        "teachers": [{"name": name.removeprefix("teacher_"), "kind": "checkpoint", "beta": BETA[name],
                      "path": str(weights[name])} for name in stage.teachers],
        "train": student_schedule(scale, seed),
        "output": str(out / "runs" / stage.name),
    }
    if stage.teachers:
        config["loss"] = {"alpha": ALPHA}
    return config


def student_schedule(scale: DemoScale, seed: int) -> dict[str, Any]:
    """The `train:` section every demo student shares: the scale's epochs, batch and scaled rate, validated with the
    evaluation protocol after every epoch."""
    return {"epochs": scale.student_epochs, "batch_size": scale.batch_size, "lr": scale.lr,
            "lr_batch_size": scale.lr_batch_size, "warmup_iters": scale.warmup_iters, "cosine_from_epoch": 0,
            "freeze_backbone_epochs": scale.freeze_backbone_epochs,
            "ema": False, "seed": seed, "workers": 1, "val_interval": 1, "validation": "datasets",
            "log_interval": 10, "tensorboard": False}


def train_student(stage: Stage, out: Path, data_dir: Path, scale: DemoScale, seed: int, weights: dict[str, Path],
           force: bool) -> None:
    from unionpose.engine.checkpoint import latest_checkpoint
    from unionpose.engine.config import validate_config
    from unionpose.engine.trainer import train

    config = validate_config(stage_config(stage, out, data_dir, scale, seed, weights),
                             source=f"demo stage {stage.name}")
    run_dir = Path(config.output)
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    train(config, resume=latest_checkpoint(run_dir) is not None)   # an interrupted stage continues where it stopped


def evaluate_models(models: dict[str, Path], data_dir: Path, out: Path) -> dict[str, dict[str, Any]]:
    """Every model on every validation set, each scored on that set's own keypoints (Khan et al. 2024), flip test
    on; writes each model's evaluation folder and `metrics.json`, and returns the metrics."""
    from unionpose.data.sources import DatasetSource
    from unionpose.eval.evaluate import evaluate_model

    val = [DatasetSource(**entry) for entry in dataset_sources(data_dir, "val").values()]
    scores: dict[str, dict[str, Any]] = {}
    for name, path in models.items():
        evaluation = evaluate_model(path, val, flip_test=True, out_dir=out / name, name=name)
        # The per-person details stay in the per-model folders; the summary keeps every number but those.
        scores[name] = {dataset: {k: v for k, v in evaluation.datasets[dataset].result.items() if k != "per_instance"}
                        for dataset in evaluation.datasets}
    (out / "metrics.json").write_text(json.dumps({"models": scores}, indent=2, default=float))
    return scores


def save_untrained(path: Path, backbone: Path, scale: DemoScale, seed: int) -> None:
    """The students' starting point as a model file: the shipped backbone under a new 21-point head (the floor
    every student must clear)."""
    import torch

    from unionpose.engine.trainer import seed_everything
    from unionpose.models import RTMPose, save_model_file
    from unionpose.models.initialise import initialise_model
    from unionpose.skeletons import get_skeleton

    skeleton = get_skeleton("coco_mpii21")
    seed_everything(seed)
    model = RTMPose(scale.student_size, skeleton.num_keypoints, scale.input)
    initialise_model(model, skeleton, backbone)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        save_model_file(path, model.eval(), skeleton)


def _throughput(out: Path, scale: DemoScale) -> dict[str, dict[str, float]]:
    """Training crops/s of every student (median over its logged intervals) next to the bare forward + backward of
    the same model on random crops, measured here and now: their ratio is the pipeline's and the teachers' cost."""
    from statistics import median

    from unionpose.engine.throughput import bare_training_rate

    bare = bare_training_rate(scale.student_size, 21, scale.input, scale.batch_size)
    rates: dict[str, dict[str, float]] = {}
    for stage in STUDENTS:
        records = [json.loads(line) for line in (out / "runs" / stage.name / "metrics.jsonl").read_text().splitlines()]
        measured = [r["images_per_s"] for r in records if r.get("kind") == "train" and "images_per_s" in r]
        rates[stage.name] = {"crops_per_s": median(measured) if measured else 0.0, "bare_crops_per_s": bare}
    return rates


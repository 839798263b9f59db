"""`unionpose demo`: the paper's experiment in miniature on synthetic people, with tables and a report.

Two "datasets" with different skeletons (COCO-like 17 points, MPII-like 16 points, on different images), one expert
teacher each, single-dataset students, and a 21-point unified student trained without and with distillation from both
teachers — then every model scored with the paper's protocol: COCO-like AP on 17 points, MPII-like PCKh@0.5 on 16,
their average, and AP on all 21 points (Khan et al. 2024, Tables 1, 2 and 5).

Each stage writes its result into the output folder; a re-run reuses finished stages (unless `force`) and resumes an
interrupted training from its last checkpoint.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from unionpose.apps.demo_setup import DEFAULT_SCALE, QUICK_SCALE, STAGES, DemoResult, DemoScale, Stage
from unionpose.data.sources import DatasetSource

# The paper's distillation weights (Khan et al. 2024): loss = alpha * GT + (1 - alpha) * sum_j beta_j * KD_j.
ALPHA = 0.30
BETA = {"coco": 0.45, "mpii": 0.25}


def run_demo(out_dir: str | Path = "runs/demo", *, quick: bool = False, force: bool = False, seed: int = 21,
             say: Callable[[str], None] = print) -> DemoResult:
    """Generate the data, train the six models, evaluate them and write `results.json` and `report.md`."""
    scale = QUICK_SCALE if quick else DEFAULT_SCALE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=out)
    started = time.perf_counter()

    data_dir = out / "data"
    result.seconds["data"] = _stage(out, "data", force, say, lambda: _make_data(data_dir, scale, seed))
    for stage in STAGES:
        model = out / "runs" / stage.name / "final.safetensors"
        result.seconds[stage.name] = _stage(out, stage.name, force, say,
                                            lambda stage=stage: _train(stage, out, data_dir, scale, seed, force))
        result.models[stage.name] = model
    result.seconds["evaluation"] = _stage(out, "evaluation", force, say,
                                          lambda: _evaluate(result.models, data_dir, out / "evaluation"))
    evaluation = json.loads((out / "evaluation" / "metrics.json").read_text())
    result.metrics = evaluation["models"]
    result.tables = format_tables(result.metrics)
    say("\n" + result.tables)
    result.seconds["total"] = time.perf_counter() - started
    from unionpose.apps.demo_report import write_demo_report

    result.report = write_demo_report(result, scale)
    (out / "results.json").write_text(json.dumps(
        {"scale": scale.__dict__, "seconds": result.seconds, "models": {k: str(v) for k, v in result.models.items()},
         "metrics": result.metrics}, indent=2))
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


def _make_data(data_dir: Path, scale: DemoScale, seed: int) -> None:
    import shutil

    from unionpose.synthetic import generate

    if data_dir.exists():   # a stage that did not finish: start it again from nothing
        shutil.rmtree(data_dir)
    generate(data_dir, scale.train_images, scale.val_images, seed, workers=1, progress=True)


def dataset_sources(data_dir: Path, split: str) -> dict[str, DatasetSource]:
    """The demo's datasets: COCO-like and MPII-like for training; for validation also all 21 points."""
    images = str(data_dir / "images")
    if split == "train":
        return {"coco": DatasetSource(name="coco", format="coco", annotations=str(data_dir / "coco17.json"),
                                      images=images),
                "mpii": DatasetSource(name="mpii", format="mpii", annotations=str(data_dir / "mpii16.json"),
                                      images=images)}
    return {"coco": DatasetSource(name="coco", format="coco", annotations=str(data_dir / "coco17_val.json"),
                                  images=images, metric="coco_ap"),
            "mpii": DatasetSource(name="mpii", format="mpii", annotations=str(data_dir / "mpii16_val.json"),
                                  images=images, metric="pckh"),
            "all21": DatasetSource(name="all21", format="coco", annotations=str(data_dir / "full21_val.json"),
                                   images=images, skeleton="coco_mpii21", metric="coco_ap")}


def stage_config(stage: Stage, out: Path, data_dir: Path, scale: DemoScale, seed: int) -> dict[str, Any]:
    """The recipe of one stage, as a config dict (the same schema as configs/; saved in its run folder)."""
    train = dataset_sources(data_dir, "train")
    val = dataset_sources(data_dir, "val")
    epochs = scale.teacher_epochs if stage.teacher else scale.student_epochs
    teachers = [{"name": name.removeprefix("teacher_"), "kind": "checkpoint", "beta": BETA[name.removeprefix("teacher_")],
                 "path": str(out / "runs" / name / "final.safetensors")} for name in stage.teachers]
    config: dict[str, Any] = {
        "skeleton": stage.skeleton,
        "model": {"size": scale.teacher_size if stage.teacher else scale.student_size, "input": list(scale.input)},
        "data": {"train": [train[d].model_dump(exclude_defaults=True) for d in stage.datasets],
                 "val": [val[d].model_dump(exclude_defaults=True) for d in stage.datasets],
                 "augment": {"rotation_factor": 45.0}, "mild_last_epochs": 1 if epochs > 2 else 0},
        "teachers": teachers,
        "train": {"epochs": epochs, "batch_size": scale.batch_size, "lr": 2e-3, "weight_decay": 0.0,
                  "warmup_iters": 50, "cosine_from_epoch": max(epochs // 2, 0), "ema": False, "seed": seed,
                  "workers": 1, "val_interval": 0, "log_interval": 10, "tensorboard": False},
        "output": str(out / "runs" / stage.name),
    }
    if teachers:
        config["loss"] = {"alpha": ALPHA}
    return config


def _train(stage: Stage, out: Path, data_dir: Path, scale: DemoScale, seed: int, force: bool) -> None:
    import shutil

    from unionpose.engine.checkpoint import latest_checkpoint
    from unionpose.engine.config import validate_config
    from unionpose.engine.trainer import train

    config = validate_config(stage_config(stage, out, data_dir, scale, seed), source=f"demo stage {stage.name}")
    run_dir = Path(config.output)
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    train(config, resume=latest_checkpoint(run_dir) is not None)   # an interrupted stage continues where it stopped


def _evaluate(models: dict[str, Path], data_dir: Path, out: Path) -> None:
    """Every model on every validation set, each scored on that set's own keypoints (Khan et al. 2024)."""
    from unionpose.eval.evaluate import evaluate_model

    val = list(dataset_sources(data_dir, "val").values())
    scores: dict[str, dict[str, Any]] = {}
    for name, path in models.items():
        evaluation = evaluate_model(path, val, flip_test=True, out_dir=out / name, name=name)
        # The per-person details stay in the per-model folders; the summary keeps every number but those.
        scores[name] = {dataset: {k: v for k, v in evaluation.datasets[dataset].result.items() if k != "per_instance"}
                        for dataset in evaluation.datasets}
    (out / "metrics.json").write_text(json.dumps({"models": scores}, indent=2, default=float))


def headline_percent(result: dict[str, Any], shared: bool = False) -> float:
    """A dataset's headline number in percent (AP, PCKh@0.5 or PCK); `shared`: on the points the model has."""
    from unionpose.eval.tables import headline

    if shared and "shared" in result:
        result = result["shared"]
    return 100.0 * float(headline(result)[1])


def format_tables(metrics: dict[str, dict[str, Any]]) -> str:
    """The paper's Tables 1, 2 and 5, from the evaluation's metrics."""
    label = {s.name: s.label for s in STAGES}

    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    def table(title: str, head: list[str], rows: list[list[str]]) -> str:
        lines = [title, row(head), row(["---"] * len(head))] + [row(r) for r in rows]
        return "\n".join(lines)

    t1 = []
    for name in ("student_mpii", "student_coco", "unified_kd", "teacher_coco", "teacher_mpii"):
        m = metrics[name]
        # The paper's convention: a COCO-only model on MPII is scored on the shared points; AP counts all COCO points.
        pckh, ap = headline_percent(m["mpii"], shared=True), headline_percent(m["coco"])
        t1.append([label[name], f"{pckh:.2f}", f"{ap:.2f}", f"{(pckh + ap) / 2:.2f}"])
    t2 = []
    for name in ("unified", "unified_kd"):
        m = metrics[name]
        pckh, ap = headline_percent(m["mpii"]), headline_percent(m["coco"])
        t2.append([label[name], f"{pckh:.2f}", f"{ap:.2f}", f"{(pckh + ap) / 2:.2f}"])
    t5 = [[label[name], f"{headline_percent(metrics[name]['all21']):.2f}"]
          for name in ("student_mpii", "student_coco", "unified", "unified_kd")]
    return "\n\n".join([
        table("Table 1 — each dataset on its own keypoints (MPII-like PCKh@0.5 on the points the model has; "
              "COCO-like AP on all 17)", ["model", "MPII PCKh@0.5", "COCO AP", "average"], t1),
        table("Table 2 — unified student without and with distillation",
              ["model", "MPII PCKh@0.5", "COCO AP", "average"], t2),
        table("Table 5 — AP on all 21 points (missing points count as misses)", ["model", "AP (21 points)"], t5),
    ])

"""Do DWPose's two stages help? Its variants side by side over several seeds, with a larger 21-point teacher.

    python benchmarks/dwpose_stages.py --seeds 21 22 23 --out dwpose_stages.json [--work runs/dwpose_stages]

DWPose (Yang et al. 2023) distils a bigger frozen teacher of the same skeleton into RTMPose (stage 1: ground truth +
logit KD + feature KD through a trained 1x1 alignment conv, both KD terms decayed by 1 - epoch / max_epochs), then
trains a fresh head on the student's own frozen backbone from the student's logits (stage 2). Here, on the demo's
synthetic people (data seed 21, every training person with all 21 points of the union skeleton labelled):

- teacher: the shipped `teacher_full21_160x128` (RTMPose-t at 160x128, 1.67 times the students' pixels and compute,
  fine-tuned from the demo's pretraining on the 8000-image corpus the demo never uses; `unionpose demo
  --retrain-teachers` remakes it);
- students: RTMPose-t at 128x96 from the shipped backbone with a new head, the demo's student recipe (6 epochs,
  batch 32, 4e-3 for batches of 1024 scaled to 1.25e-4), validated after every epoch;
- (a) no distillation; (b) stage 1 with logit KD only; (c) stage 1 with logit + feature KD; (d) (c) followed by
  stage 2 (as many epochs as stage 1, head only, at the rate a new head on a fixed backbone takes: 4e-3 at batch
  32). Probes: `--decay none`, `--feature-kd W`, `--stage2-epochs N`, `--variants ...` (run folders are named after
  what differs, so the default runs are reused).

DWPose's loss GT + d * (0.1 KD + 7e-5 FEAT) is written in UnionPose's form (alpha 0.5, beta 0.1, feature_kd 3.5e-5:
exactly half of it, which AdamW does not see), as in configs/dwpose. The teacher sees the student's crop resized to
160x128 (a 7% horizontal stretch: its crops are 0.8 as wide as tall, the students' 0.75); its stride-32 feature (5x4)
is area-averaged onto the student's 4x3 grid for the feature loss.

Every model is scored with flip test and ground-truth boxes: COCO OKS AP over all 21 points and per part (AP with
only that part's points and sigmas, as COCO-WholeBody scores its parts); the teacher twice, at its own crops and given
the students' crops as the loss sees it. Reported per variant: mean and sample standard deviation over the seeds,
each step's gain (difference of the means, and the mean +- std of the per-seed differences: a seed fixes the head's
initialisation, the crop order and the augmentation for every variant), whether it is larger than the spread, the
training cost of each stage (wall seconds of the run, median crops/s), and each variant's mean validation curve (AP
after every epoch, no flip test). Finished runs are reused (their recorded times with them). Prints a table; writes
the JSON to --out and the table beside it (.md).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import torch

from unionpose.apps.demo import STUDENT_AUGMENT, make_data, student_schedule
from unionpose.apps.demo_setup import DEFAULT_SCALE, DemoScale
from unionpose.apps.demo_weights import corpus_sources, shipped_weights, validation_curve, weight_paths
from unionpose.core.simcc import default_sigma
from unionpose.data.sources import DatasetSource
from unionpose.engine.checkpoint import latest_checkpoint
from unionpose.engine.config import validate_config
from unionpose.engine.trainer import train
from unionpose.eval.evaluate import evaluate_model
from unionpose.eval.part_ap import part_ap
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.models.model_file import read_model_info
from unionpose.skeletons import get_skeleton
from unionpose.teachers import CheckpointTeacher, StudentSpace
from reporting import summarise

DATA_SEED = 21
VARIANTS = {"plain": "(a) no distillation", "logit": "(b) stage 1: logit KD",
            "logit_feature": "(c) stage 1: logit + feature KD", "stage2": "(d) (c) + stage 2"}
STEPS = (("logit", "plain"), ("logit_feature", "logit"), ("stage2", "logit_feature"), ("logit_feature", "plain"),
         ("stage2", "plain"))
DWPOSE_LOSS = {"alpha": 0.5, "kd_logit_scale": 10.0, "kd_points": "all", "decay": "linear"}
TEACHER_BETA = 0.1
FEATURE_KD = 3.5e-5
# Stage 2 gets stage 1's epochs (the same budget per stage; an epoch of it costs less than half of a stage-1 epoch
# with the teacher: no backward through the backbone). With 2 epochs the fresh head had not converged (its KD loss
# still falling fast at the end).
STAGE2_EPOCHS = 6
STAGE2_LR = 4e-3                      # at batch 32 (lr_batch_size 32): a new head on a fixed backbone
# Parts of the 21-point union for the per-part AP (each a COCO AP over only its points).
PARTS = {"head": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "upper_neck", "head_top"],
         "torso": ["left_shoulder", "right_shoulder", "left_hip", "right_hip", "pelvis", "thorax"],
         "arms": ["left_elbow", "right_elbow", "left_wrist", "right_wrist"],
         "legs": ["left_knee", "right_knee", "left_ankle", "right_ankle"]}
TEACHER = "teacher_full"


@dataclass(frozen=True)
class Settings:
    """What a probe may change; a run's folder name says where it differs from DWPose's settings."""

    feature_kd: float = FEATURE_KD
    decay: str = "linear"
    stage2_epochs: int = STAGE2_EPOCHS

    def run_name(self, variant: str) -> str:
        name = variant
        if variant != "plain" and self.decay != "linear":
            name += f"_decay-{self.decay}"
        if variant in ("logit_feature", "stage2") and self.feature_kd != FEATURE_KD:
            name += f"_feature-{self.feature_kd:g}"
        return name + (f"_{self.stage2_epochs}ep" if variant == "stage2" else "")


def variant_config(variant: str, run_dir: Path, data_dir: Path, scale: DemoScale, seed: int,
                   weights: dict[str, Path], settings: Settings, stage1: Path | None = None) -> dict[str, Any]:
    """One variant's recipe (the schema of configs/). Stage 2 trains `stage1`'s frozen backbone under a new head."""
    train, val = corpus_sources(data_dir, "train"), corpus_sources(data_dir, "val")
    config: dict[str, Any] = {
        "skeleton": "coco_mpii21",
        "model": {"size": scale.student_size, "input": list(scale.input), "init": str(weights["backbone"])},
        "data": {"train": [train["full"]], "val": [val["full"]], "augment": STUDENT_AUGMENT, "mild_last_epochs": 0},
        "train": student_schedule(scale, seed),
        "output": str(run_dir),
    }
    if variant in ("logit", "logit_feature"):
        config["teachers"] = [{"name": "large", "kind": "checkpoint", "path": str(weights[TEACHER]),
                               "beta": TEACHER_BETA}]
        config["loss"] = {**DWPOSE_LOSS, "decay": settings.decay,
                          "feature_kd": settings.feature_kd if variant == "logit_feature" else None}
    elif variant == "stage2":
        if stage1 is None:
            raise ValueError("stage 2 needs the stage-1 model")
        del config["model"]["init"]
        config["stage2"] = {"stage1": str(stage1), "kd_logit_scale": DWPOSE_LOSS["kd_logit_scale"]}
        config["train"].update(epochs=settings.stage2_epochs, lr=STAGE2_LR, lr_batch_size=scale.batch_size,
                               warmup_iters=20)
    return config


def train_variant(config: dict[str, Any]) -> dict[str, float]:
    """Train (or reuse) one run; its wall time is recorded beside it, so a reused run reports it too."""
    run_dir = Path(config["output"])
    cost_file = run_dir / "benchmark_cost.json"
    if (run_dir / "final.safetensors").is_file() and cost_file.is_file():
        return json.loads(cost_file.read_text())
    started = time.perf_counter()
    recipe = validate_config(config, source=f"dwpose_stages {run_dir.name}")
    train(recipe, resume=latest_checkpoint(run_dir) is not None)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["images_per_s"] for r in records if r.get("kind") == "train" and "images_per_s" in r]
    cost = {"seconds": time.perf_counter() - started, "crops_per_s": median(rates) if rates else 0.0}
    cost_file.write_text(json.dumps(cost))
    return cost


def loss_terms(run_dir: Path) -> dict[str, list[float]]:
    """Each logged loss term (unweighted; the feature term with its weight) averaged over every epoch's records."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    records = [r for r in records if r.get("kind") == "train"]
    terms = [key for key in ("gt", "kd/large", "feat/large", "kd/stage1") if any(key in r for r in records)]
    epochs = sorted({r["epoch"] for r in records})
    return {key: [float(np.mean([r[key] for r in records if r["epoch"] == epoch and key in r])) for epoch in epochs]
            for key in terms}


def ap_curve(run_dir: Path) -> list[float]:
    """AP (percent, all 21 points, no flip test) after each epoch, from the run's own validation."""
    return [100.0 * record["all21/AP"] for record in validation_curve(run_dir / "metrics.jsonl")]


def score(model: Path, source: DatasetSource, truth: dict[str, Any], out: Path) -> dict[str, float]:
    """AP (percent) over all 21 points and per part, flip test, ground-truth boxes; `truth` is `source`'s annotation
    file, read once by the caller."""
    evaluation = evaluate_model(model, [source], flip_test=True, out_dir=out, name=out.name)
    predictions = json.loads((out / f"predictions_{source.name}.json").read_text())
    skeleton = get_skeleton("coco_mpii21")
    scores = {"all": 100.0 * evaluation.datasets[source.name].result["AP"]}
    scores.update({part: 100.0 * part_ap(truth, predictions, skeleton, names)["AP"] for part, names in PARTS.items()})
    return scores


def student_view(teacher_path: Path, student_input: tuple[int, int]) -> TopDownRunner:
    """The teacher as the distillation loss sees it: given the student's crop (resized to its own input) and its bins
    resampled to the student's, wrapped as a runner so the same evaluation scores it."""
    info = read_model_info(teacher_path)
    teacher = CheckpointTeacher.from_file(teacher_path, StudentSpace(info.skeleton, student_input), TEACHER)

    class StudentViewTeacher(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            output = teacher({"image": images})
            return output.simcc_x, output.simcc_y

    student_info = replace(info, input_size=student_input, sigma=default_sigma(student_input, info.split_ratio))
    return TopDownRunner(TorchBackend(StudentViewTeacher()), student_info, flip_test=True)


def compare(scores: dict[str, list[dict[str, float]]], keys: list[str]) -> dict[str, dict[str, Any]]:
    """Each step's gain per number: difference of the means, the per-seed (paired) differences, and whether the
    gain is larger than the spread (|difference| > the larger standard deviation of the two variants)."""
    steps: dict[str, dict[str, Any]] = {}
    for after, before in STEPS:
        if not (scores.get(after) and scores.get(before)):
            continue
        step: dict[str, Any] = {}
        for key in keys:
            a = [s[key] for s in scores[after]]
            b = [s[key] for s in scores[before]]
            difference = float(np.mean(a) - np.mean(b))
            spread = max(summarise(a)["std"], summarise(b)["std"])
            step[key] = {"difference": difference, "paired": summarise([x - y for x, y in zip(a, b)]),
                         "spread": spread, "larger_than_spread": abs(difference) > spread}
        steps[f"{after} - {before}"] = step
    return steps


def format_table(result: dict[str, Any]) -> str:
    keys = ["all", *PARTS]
    lines = ["| model | AP, 21 points | " + " | ".join(f"AP {part}" for part in PARTS) + " | training cost |",
             "|---|" + "---|" * (len(keys) + 1)]
    teacher = result["teacher"]["scores"]
    lines.append(f"| teacher: {result['teacher']['model']} | {teacher['all']:.2f} | "
                 + " | ".join(f"{teacher[p]:.2f}" for p in PARTS) + " | shipped |")
    view = result["teacher"]["scores_on_student_crops"]
    lines.append("| teacher, given the students' crops (as the loss sees it) | " + f"{view['all']:.2f} | "
                 + " | ".join(f"{view[p]:.2f}" for p in PARTS) + " | |")
    for variant, numbers in result["variants"].items():
        label = numbers["label"]
        cells = [f"{numbers['scores'][k]['mean']:.2f} +- {numbers['scores'][k]['std']:.2f}" for k in keys]
        cost = numbers["cost"]
        alone = " (stage 2 alone)" if variant == "stage2" else ""
        lines.append(f"| {label} | " + " | ".join(cells)
                     + f" | {cost['seconds']['mean']:.0f} s{alone}, {cost['crops_per_s']['mean']:.0f} crops/s |")
    lines += ["", "| step | AP gain (means) | paired gain, mean +- std | larger than the spread? | "
              + " | ".join(f"{part} gain" for part in PARTS) + " |", "|---|---|---|---|" + "---|" * len(PARTS)]
    for name, step in result["steps"].items():
        after, before = name.split(" - ")
        overall = step["all"]
        lines.append(f"| {VARIANTS[after][:3]} vs {VARIANTS[before][:3]} | {overall['difference']:+.2f} | "
                     f"{overall['paired']['mean']:+.2f} +- {overall['paired']['std']:.2f} | "
                     f"{'yes' if overall['larger_than_spread'] else 'no'} (spread {overall['spread']:.2f}) | "
                     + " | ".join(f"{step[p]['difference']:+.2f}" for p in PARTS) + " |")
    epochs = max(len(numbers["curve_mean"]) for numbers in result["variants"].values())
    header = " | ".join(str(epoch + 1) for epoch in range(epochs))
    lines += ["", f"| mean validation AP after epoch (no flip) | {header} |", "|---|" + "---|" * epochs]
    for numbers in result["variants"].values():
        lines.append(f"| {numbers['label']} | " + " | ".join(f"{v:.1f}" for v in numbers["curve_mean"]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23])
    parser.add_argument("--work", type=Path, default=Path("runs/dwpose_stages"), help="run folders (reused if present)")
    parser.add_argument("--weights", type=Path, help="teacher and backbone folder (default: the shipped weights)")
    parser.add_argument("--epochs", type=int, help="stage-1 epochs (default: the demo's student epochs)")
    parser.add_argument("--train-images", type=int, help="training images (default: the demo's); a smoke test")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="a subset, for a probe (stage2 needs logit_feature's run)")
    parser.add_argument("--feature-kd", type=float, default=FEATURE_KD, help="weight of the feature loss")
    parser.add_argument("--decay", choices=["linear", "none"], default="linear", help="of the stage-1 KD terms")
    parser.add_argument("--stage2-epochs", type=int, default=STAGE2_EPOCHS)
    parser.add_argument("--out", type=Path, help="also write the JSON here, and the table beside it (.md)")
    args = parser.parse_args()
    scale = DEFAULT_SCALE
    if args.epochs or args.train_images:
        scale = replace(scale, student_epochs=args.epochs or scale.student_epochs,
                        train_images=args.train_images or scale.train_images,
                        val_images=min(scale.val_images, args.train_images or scale.val_images))
    weights = weight_paths(args.weights or shipped_weights())
    settings = Settings(args.feature_kd, args.decay, args.stage2_epochs)

    data_dir = args.work / "data"
    if not (data_dir / "synth_meta.json").is_file():
        make_data(data_dir, scale, DATA_SEED)
    source = DatasetSource(**corpus_sources(data_dir, "val")["full"])
    truth = json.loads(Path(source.annotations).read_text())
    variants = [variant for variant in VARIANTS if variant in args.variants]
    scores: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    costs: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    curves: dict[str, list[list[float]]] = {variant: [] for variant in variants}
    terms: dict[str, list[dict[str, list[float]]]] = {variant: [] for variant in variants}
    for seed in args.seeds:
        runs = args.work / f"seed{seed}"
        for variant in variants:
            name = settings.run_name(variant)
            stage1 = runs / settings.run_name("logit_feature") / "final.safetensors" if variant == "stage2" else None
            config = variant_config(variant, runs / name, data_dir, scale, seed, weights, settings, stage1)
            print(f"[seed {seed}] {VARIANTS[variant]} ...", flush=True)
            costs[variant].append(train_variant(config))
            curves[variant].append(ap_curve(runs / name))
            terms[variant].append(loss_terms(runs / name))
            scores[variant].append(score(runs / name / "final.safetensors", source, truth, runs / "evaluation" / name))
            print(f"[seed {seed}] {VARIANTS[variant]}: AP {scores[variant][-1]['all']:.2f}", flush=True)
    teacher_scores = score(weights[TEACHER], source, truth, args.work / "evaluation_teacher")
    teacher_view = score(student_view(weights[TEACHER], scale.input), source, truth,
                         args.work / "evaluation_teacher_student_view")
    teacher_info = read_model_info(weights[TEACHER])
    teacher_model = f"RTMPose-{teacher_info.model_size} {teacher_info.input_size[0]}x{teacher_info.input_size[1]}"

    keys = ["all", *PARTS]
    result: dict[str, Any] = {
        "benchmark": "dwpose_stages", "seeds": args.seeds, "data_seed": DATA_SEED, "scale": scale.description,
        "loss": {**DWPOSE_LOSS, "decay": settings.decay, "beta": TEACHER_BETA, "feature_kd": settings.feature_kd},
        "stage2": {"epochs": settings.stage2_epochs, "lr": STAGE2_LR, "lr_batch_size": scale.batch_size},
        "parts": PARTS,
        "teacher": {"file": str(weights[TEACHER]), "model": teacher_model, "scores": teacher_scores,
                    "scores_on_student_crops": teacher_view},
        "variants": {variant: {"label": label,
                               "scores": {k: summarise([s[k] for s in scores[variant]]) for k in keys},
                               "cost": {k: summarise([c[k] for c in costs[variant]])
                                        for k in ("seconds", "crops_per_s")},
                               "curve_mean": np.mean(curves[variant], axis=0).tolist(),
                               "loss_terms_mean": {key: np.mean([t[key] for t in terms[variant]], axis=0).tolist()
                                                   for key in terms[variant][0]}}
                     for variant, label in VARIANTS.items() if variant in variants},
        "steps": compare(scores, keys),
    }
    table = format_table(result)
    print(table)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(table + "\n")


if __name__ == "__main__":
    main()

"""The demo's report: tables, findings, learning curves, loss terms, per-keypoint bars, drawn predictions, speed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unionpose.apps.demo_setup import ALPHA, BETA, LABELS, STUDENTS, TEACHERS, DemoResult, DemoScale
from unionpose.apps.demo_tables import format_findings
from unionpose.apps.demo_weights import MANIFEST

DRAWN_IMAGES = 3


def write_demo_report(result: DemoResult, scale: DemoScale, weights: dict[str, Path]) -> Path:
    """Write `report.md` and its PNGs into the demo folder; return the report's path."""
    import matplotlib

    matplotlib.use("Agg")

    out = result.out_dir
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    runs = {s.name: out / "runs" / s.name / "metrics.jsonl" for s in STUDENTS}
    curves = plot_learning_curves(runs, figures / "learning_curves.png")
    terms = plot_loss_terms(runs, figures / "loss_terms.png")
    bars = plot_keypoint_bars(result.metrics, figures / "keypoints_all21.png")
    drawn = draw_models(result.models, out / "data", figures / "predictions.png")
    manifest = weights["backbone"].parent / MANIFEST
    provenance = json.loads(manifest.read_text()) if manifest.is_file() else {}
    speed = "\n".join(f"| {LABELS[name]} | {rates['crops_per_s']:.0f} | {rates['bare_crops_per_s']:.0f} | "
                      f"{rates['bare_crops_per_s'] / max(rates['crops_per_s'], 1e-9):.2f} |"
                      for name, rates in result.throughput.items())
    seconds = "\n".join(f"| {name} | {value:.0f} |" for name, value in result.seconds.items())
    corpus = provenance.get("corpus", {})
    kd_terms = " + ".join(f"{beta:g} KD_{name.removeprefix('teacher_')}" for name, beta in BETA.items())
    teacher_scores = "\n".join(f"| {name} | " + ", ".join(f"{k} {v:g}" if k == "epoch" else f"{k} {v:.3f}"
                                                      for k, v in scores.items()) + " |"
                               for name, scores in provenance.get("corpus_validation", {}).items())
    text = f"""# UnionPose demo: the paper's experiment in miniature

Synthetic people, scene preset `{scale.preset}` ({scale.train_images} training images: the first half labelled
COCO-like with 17 points, the second half MPII-like with 16 points; {scale.val_images} validation images with all 21
points). Students: RTMPose-{scale.student_size} at {scale.input[0]}x{scale.input[1]}, {scale.student_epochs} epochs over
their own training set (the unified students see both halves), batch {scale.batch_size}, learning rate
{scale.lr:g} for batches of {scale.lr_batch_size} scaled linearly to {scale.lr * scale.batch_size / scale.lr_batch_size:.3g},
all starting from the same pretrained backbone with a new head. Distillation: loss = {ALPHA:g} GT + {1 - ALPHA:g} ({kd_terms}),
each KD term decayed by (1 - epoch/epochs), both teachers online on every crop. Evaluation: ground-truth
boxes, flip test.

Teachers and backbone: `{weights['backbone'].parent}` (made once by `unionpose demo --retrain-teachers` on
{corpus.get('train_images', '?')} other synthetic images, seed {corpus.get('seed', '?')}, never the demo's).

{result.tables}

## Findings (the paper's claims, checked on these numbers)

{format_findings(result.metrics)}

## Learning curves (validation after every epoch: COCO-like AP, MPII-like PCKh@0.5)

![learning curves]({curves.relative_to(out)})

The teachers' and the pretraining's own curves are in `{manifest}`; their last validation on the corpus:

| weights | corpus validation |
|---|---|
{teacher_scores}

## Training loss terms

![loss terms]({terms.relative_to(out)})

## Per keypoint on all 21 points (mean keypoint similarity against each person's best prediction)

![per-keypoint]({bars.relative_to(out)})

## Every model on the same validation images

Rows: {', '.join(LABELS[name] for name in _drawn_models(result.models))}.

![predictions]({drawn.relative_to(out)})

Per-model evaluation reports (per-keypoint tables and charts, worst-scored people drawn): `evaluation/<model>/`.

## Training speed (crops per second)

| student | full step | bare forward + backward | ratio |
|---|---|---|---|
{speed}

## Wall time per stage (seconds)

| stage | seconds |
|---|---|
{seconds}
"""
    path = out / "report.md"
    path.write_text(text)
    return path


def _records(metrics_file: Path) -> list[dict]:
    return [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]


def plot_learning_curves(metrics_files: dict[str, Path], path: Path) -> Path:
    """Validation headline numbers after every epoch, one line per student, one panel per dataset."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, metrics_file in metrics_files.items():
        validation = [r for r in _records(metrics_file) if r.get("kind") == "val"]
        for ax, key in zip(axes, ("coco/AP", "mpii/PCKh@0.5")):
            ax.plot([r["epoch"] for r in validation], [100 * r.get(key, 0.0) for r in validation], marker="o",
                    label=LABELS[name])
    for ax, title in zip(axes, ("COCO-like AP (all 17 points)", "MPII-like PCKh@0.5 (all 16 points)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_loss_terms(metrics_files: dict[str, Path], path: Path) -> Path:
    """One panel per student: every logged loss term against the step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics_files), figsize=(4 * len(metrics_files), 3.5))
    for ax, (name, metrics_file) in zip(np.atleast_1d(axes), metrics_files.items()):
        train = [r for r in _records(metrics_file) if r.get("kind") == "train"]
        terms = sorted({k for r in train for k in r if k == "loss" or "/" in k or k in ("gt", "kd")})
        for term in terms:
            ax.plot([r["step"] for r in train if term in r], [r[term] for r in train if term in r], label=term)
        ax.set_title(LABELS[name], fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_keypoint_bars(metrics: dict[str, dict], path: Path) -> Path:
    """Per-keypoint similarity on the 21-point validation set: one bar group per keypoint, one bar per student;
    below, the change distillation brings per keypoint (unified + distillation minus unified)."""
    import matplotlib.pyplot as plt

    from unionpose.skeletons import get_skeleton

    names = get_skeleton("coco_mpii21").names
    students = [s.name for s in STUDENTS]

    def similarity(model: str) -> np.ndarray:
        per_keypoint = metrics[model]["all21"]["per_keypoint"]
        table = dict(zip(per_keypoint["name"], per_keypoint["mean KS"]))
        return np.array([table.get(n) or 0.0 for n in names])

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(15, 7), gridspec_kw={"height_ratios": [2, 1]})
    width = 0.8 / len(students)
    for i, student in enumerate(students):
        top.bar(np.arange(len(names)) + i * width, similarity(student), width, label=LABELS[student])
    top.set_ylabel("mean keypoint similarity")
    top.legend(fontsize=8)
    change = similarity("unified_kd") - similarity("unified")
    bottom.bar(np.arange(len(names)) + 0.4 - width / 2, change, 0.6,
               color=["tab:green" if c >= 0 else "tab:red" for c in change])
    bottom.axhline(0, color="black", linewidth=0.5)
    bottom.set_ylabel("distillation's change")
    for ax in (top, bottom):
        ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _drawn_models(models: dict[str, Path]) -> list[str]:
    return [name for name in (*TEACHERS, *(s.name for s in STUDENTS)) if name in models]


def draw_models(models: dict[str, Path], data_dir: Path, path: Path) -> Path:
    """Each model's points (flip test, ground-truth boxes) on the same validation images: one row per model."""
    import cv2

    from unionpose.core.draw import draw_pose
    from unionpose.data.readers import read_coco
    from unionpose.infer.backends import load_pose_model
    from unionpose.infer.topdown import TopDownRunner

    instances, _ = read_coco(data_dir / "full21_val.json", data_dir / "images", skeleton="coco_mpii21")
    by_image: dict[str, list] = {}
    for instance in instances:
        by_image.setdefault(instance.image, []).append(instance)
    chosen = [image for image in sorted(by_image) if len(by_image[image]) > 1][:DRAWN_IMAGES]
    rows = []
    for name in _drawn_models(models):
        backend, info = load_pose_model(models[name])
        runner = TopDownRunner(backend, info, flip_test=True)
        tiles = []
        for image_path in chosen:
            image = cv2.imread(image_path)
            keypoints, scores = runner.predict(image, np.stack([i.box for i in by_image[image_path]]))
            for person, person_scores in zip(keypoints, scores):
                draw_pose(image, person, info.skeleton, person_scores, threshold=0.1)
            cv2.putText(image, LABELS[name], (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(image)
        rows.append(np.hstack(tiles))
    cv2.imwrite(str(path), np.vstack(rows))
    return path

"""The demo's report: the tables, training curves with each loss term, per-keypoint bars, and drawn predictions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unionpose.apps.demo_setup import STAGES, DemoResult, DemoScale


def write_demo_report(result: DemoResult, scale: DemoScale) -> Path:
    """Write `report.md` and its PNGs into the demo folder; return the report's path."""
    import matplotlib

    matplotlib.use("Agg")

    out = result.out_dir
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    curves = plot_training_curves({s.name: out / "runs" / s.name / "metrics.jsonl" for s in STAGES},
                                  figures / "training_curves.png")
    bars = plot_student_keypoint_bars(result.metrics, figures / "keypoints_all21.png")
    drawn = draw_predictions(result.models["unified_kd"], out / "data", figures / "unified_kd_predictions.png")
    seconds = "\n".join(f"| {name} | {value:.0f} |" for name, value in result.seconds.items())
    text = f"""# UnionPose demo: the paper's experiment in miniature

Synthetic people ({scale.train_images} training images — the first half labelled COCO-like with 17 points, the second
half MPII-like with 16 points — and {scale.val_images} validation images with all 21 points). Teachers: RTMPose-{scale.teacher_size},
{scale.teacher_epochs} epochs; students: RTMPose-{scale.student_size}, {scale.student_epochs} epochs; input
{scale.input[0]}x{scale.input[1]}. Ground-truth boxes, flip test on. Distillation: loss = 0.3 GT + 0.7 (0.45 KD_coco +
0.25 KD_mpii), every KD term decayed by (1 - epoch/epochs).

{result.tables}

## Training curves (each loss term)

![training curves]({curves.relative_to(out)})

## Per keypoint on all 21 points (mean keypoint similarity against each person's best prediction)

![per-keypoint]({bars.relative_to(out)})

## The unified student's 21 points on validation images

![predictions]({drawn.relative_to(out)})

Per-model evaluation reports (per-keypoint tables and charts, worst-scored people drawn): `evaluation/<model>/`.

## Wall time per stage (seconds)

| stage | seconds |
|---|---|
{seconds}
"""
    path = out / "report.md"
    path.write_text(text)
    return path


def plot_training_curves(metrics_files: dict[str, Path], path: Path) -> Path:
    """One panel per model: every logged loss term against the step."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (name, metrics_file) in zip(axes.flat, metrics_files.items()):
        records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
        train = [r for r in records if r.get("kind") == "train"]
        terms = sorted({k for r in train for k in r if k == "loss" or "/" in k or k in ("gt", "kd")})
        for term in terms:
            steps = [r["step"] for r in train if term in r]
            ax.plot(steps, [r[term] for r in train if term in r], label=term)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_student_keypoint_bars(metrics: dict[str, dict], path: Path) -> Path:
    """Per-keypoint similarity on the 21-point validation set, one bar group per keypoint, one bar per student."""
    import matplotlib.pyplot as plt

    from unionpose.skeletons import get_skeleton

    names = get_skeleton("coco_mpii21").names
    students = ["student_mpii", "student_coco", "unified", "unified_kd"]
    fig, ax = plt.subplots(figsize=(15, 4.5))
    width = 0.8 / len(students)
    for i, student in enumerate(students):
        per_keypoint = metrics[student]["all21"]["per_keypoint"]
        similarity = dict(zip(per_keypoint["name"], per_keypoint["mean KS"]))
        values = [similarity.get(n) or 0.0 for n in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=student)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("mean keypoint similarity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def draw_predictions(model_path: Path, data_dir: Path, path: Path, images: int = 6) -> Path:
    """The model's points on the first validation images, drawn on the people of the ground-truth boxes."""
    import cv2

    from unionpose.core.draw import draw_pose
    from unionpose.data.readers import read_coco
    from unionpose.infer.backends import load_pose_model
    from unionpose.infer.topdown import TopDownRunner

    backend, info = load_pose_model(model_path)
    runner = TopDownRunner(backend, info, flip_test=True)
    instances, _ = read_coco(data_dir / "full21_val.json", data_dir / "images", skeleton="coco_mpii21")
    by_image: dict[str, list] = {}
    for instance in instances:
        by_image.setdefault(instance.image, []).append(instance)
    tiles = []
    for image_path in sorted(by_image)[:images]:
        image = cv2.imread(image_path)
        boxes = np.stack([i.box for i in by_image[image_path]])
        keypoints, scores = runner.predict(image, boxes)
        for person, person_scores in zip(keypoints, scores):
            # every decoded point (score > 0): an undertrained model's SimCC maxima sit far below the usual 0.3
            draw_pose(image, person, info.skeleton, person_scores, threshold=1e-6)
        tiles.append(cv2.resize(image, (image.shape[1] * 2, image.shape[0] * 2), interpolation=cv2.INTER_LINEAR))
    rows = [np.hstack(tiles[i:i + 3]) for i in range(0, len(tiles), 3)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    cv2.imwrite(str(path), np.vstack(rows))
    return path

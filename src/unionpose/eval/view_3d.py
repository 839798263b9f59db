"""A 3D view for the evaluation report: a few people's predicted and true root-relative 3D poses side by side."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unionpose.eval.errors_3d import person_3d
from unionpose.eval.evaluation import DatasetEvaluation

PEOPLE_SHOWN = 4


def plot_people_3d(item: DatasetEvaluation, path: str | Path, unit: str, count: int = PEOPLE_SHOWN) -> Path | None:
    """The first `count` people with 3D labels: truth (green) and prediction (red, moved onto the truth's root),
    drawn with the skeleton's links in the data's unit, up as up; None when no person has 3D labels."""
    predictions = item.predictions
    if predictions.depth is None:
        return None
    poses = []
    for n, instance in enumerate(item.instances):
        pose = person_3d(instance, predictions.keypoints[n], predictions.depth[n], item.skeleton)
        if pose is not None:
            poses.append(pose)
        if len(poses) == count:
            break
    if not poses:
        return None
    figure = Figure(figsize=(3.2 * len(poses), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    for i, (_, aligned, truth, mask) in enumerate(poses):
        axes = figure.add_subplot(1, len(poses), i + 1, projection="3d")
        for points, colour in ((truth, "#2ca02c"), (aligned, "#d62728")):
            # Plot x (right), z (depth, away from the camera) and -y (up): the person stands upright.
            view = np.stack([points[:, 0], points[:, 2], -points[:, 1]], axis=1)
            for a, b in item.skeleton.links:
                if mask[a] and mask[b]:
                    axes.plot(*view[[a, b]].T, color=colour, linewidth=1.5)
            axes.scatter(*view[mask].T, color=colour, s=6)
        axes.set_xlabel(f"x ({unit})", fontsize=7)
        axes.set_ylabel("depth", fontsize=7)
        axes.set_zlabel("up", fontsize=7)
        axes.tick_params(labelsize=6)
        axes.set_box_aspect((1, 1, 1))
        axes.set_title(f"person {i + 1}", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path

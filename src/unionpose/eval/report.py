"""Markdown evaluation report: summary and per-keypoint tables, bar charts, every number as JSON, extra sections."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from unionpose.core.atomic import write_text_atomic
from unionpose.eval.tables import format_keypoint_table, format_paper_table, format_result, slug, write_json


def plot_keypoint_bars(result: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    """Horizontal bars, one per keypoint, of the result's first per-keypoint metric (in %), drawn with Agg.

    Uses a Figure with its own Agg canvas rather than pyplot, so it never touches the caller's matplotlib backend.
    """
    columns = result["per_keypoint"]
    label = list(columns)[2]
    names = columns["name"]
    values = [100.0 * v if v is not None else 0.0 for v in columns[label]]
    figure = Figure(figsize=(7.0, 0.8 + 0.28 * len(names)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = range(len(names))
    axes.barh(rows, values, color=["#4c72b0" if v is not None else "#cccccc" for v in columns[label]])
    axes.set_yticks(list(rows), names, fontsize=8)
    axes.invert_yaxis()  # first keypoint on top, as in the tables
    axes.set_xlim(0, 100)
    axes.set_xlabel(f"{label} (%)")
    axes.grid(axis="x", alpha=0.3)
    if title:
        axes.set_title(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def write_report(out_dir: str | Path, results: Mapping[str, Mapping[str, Any]], *, model: str = "model",
                 title: str = "Evaluation report", notes: Sequence[str] = (),
                 extra_sections: Sequence[str | Path] = ()) -> Path:
    """Write `report.md`, `metrics.json` and one bar chart per dataset into `out_dir`; returns the report's path.

    `results` maps dataset -> result dict (from coco_keypoint_ap, pckh or pck_bbox). `notes` are lines printed under
    the title (e.g. "GT boxes" or "detector boxes, AP 56.4"). `extra_sections` is the hook for callers with images
    (e.g. drawings of the worst instances): each item is a Markdown string, or a Path to an image, which is linked
    relative to the report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    lines += [f"- {note}" for note in notes]
    lines += ["", "## Summary", "", "```text", format_paper_table({model: results}), "```", ""]
    for dataset, result in results.items():
        chart = plot_keypoint_bars(result, out_dir / f"keypoints_{slug(dataset)}.png", title=f"{model} on {dataset}")
        lines += [f"## {dataset}", "", "```text", format_result(result), "```", "",
                  "```text", format_keypoint_table(result), "```", "", f"![{dataset} per keypoint]({chart.name})", ""]
    for section in extra_sections:
        if isinstance(section, Path):
            lines += [f"![{section.stem}]({_relative(section, out_dir)})", ""]
        else:
            lines += [section, ""]
    write_json(out_dir / "metrics.json", {"model": model, "results": results})
    lines += ["Every number: [metrics.json](metrics.json)", ""]
    return write_text_atomic(out_dir / "report.md", "\n".join(lines))


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()

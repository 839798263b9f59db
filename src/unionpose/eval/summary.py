"""What an evaluation prints and writes: the paper's table, per-dataset details, predictions, metrics and report."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unionpose.core.atomic import write_text_atomic
from unionpose.eval.evaluation import EvaluationResult
from unionpose.eval.results import write_results
from unionpose.eval.tables import format_3d_table, format_keypoint_table, format_paper_table, format_result, slug
from unionpose.eval.worst import WORST_COUNT, draw_worst_grid, worst_cases


def format_summary(evaluations: Sequence[EvaluationResult], points: str = "paper") -> str:
    """The paper's Table 1 layout (a row per model, a column per dataset, the average), and which points it used."""
    rows = {evaluation.model: evaluation.table_row(points) for evaluation in evaluations}
    lines = [format_paper_table(rows), ""]
    for evaluation in evaluations:
        for dataset, result in evaluation.results.items():
            if result["missing_points"]:
                shown = "shared points" if rows[evaluation.model][dataset] is result.get("shared") else "all points"
                lines.append(f"{evaluation.model} on {dataset}: {shown} in the table; {result['points']}")
    for evaluation in evaluations:
        boxes = ", ".join(f"{dataset} {result['boxes']}" for dataset, result in evaluation.results.items())
        lines.append(f"{evaluation.model}: flip test {_flip_words(evaluation.flip_test)}; boxes: {boxes}")
    return "\n".join(lines)


def _flip_words(flip_test: bool | None) -> str:
    return "unknown (the given runner does not say)" if flip_test is None else ("on" if flip_test else "off")


def format_details(evaluation: EvaluationResult) -> str:
    """Per dataset: what was scored, the metric's summary table and the per-keypoint table."""
    blocks = []
    for dataset, result in evaluation.results.items():
        header = f"== {evaluation.model} on {dataset} ({result['skeleton']}, {result['metric']}) =="
        parts = [header, *result["notes"], result["points"], format_result(result), "",
                 format_keypoint_table(result)]
        if "shared" in result:
            parts += ["", "shared points only:", format_result(result["shared"])]
        if "3d" in result:
            parts += ["", format_3d_table(result["3d"])]
        blocks.append("\n".join(parts))
    return "\n\n".join(blocks)


def write_evaluation(evaluation: EvaluationResult, out_dir: str | Path, worst: int = WORST_COUNT) -> Path:
    """Write predictions, metrics.json, tables.txt, the Markdown report and the worst-people drawings; returns the
    report's path (also in `evaluation.files`)."""
    from unionpose.eval.report import write_report   # matplotlib: imported only when a report is written
    from unionpose.eval.view_3d import plot_people_3d

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections: list[str | Path] = []
    if any(result["missing_points"] for result in evaluation.results.values()):
        sections.append("## Summary in the paper's convention\n\nThe summary above counts the points the model lacks "
                        "as misses; the paper's Table 1 scores PCKh / PCK on the shared points only:\n\n```text\n"
                        f"{format_summary([evaluation])}\n```")
    for dataset, item in evaluation.datasets.items():
        name = slug(dataset)
        evaluation.files[f"predictions_{dataset}"] = write_results(out_dir / f"predictions_{name}.json",
                                                                   item.predictions.results())
        cases = worst_cases(item, worst) if worst > 0 else []
        if cases:
            png = draw_worst_grid(cases, item.skeleton, out_dir / f"worst_{name}.png")
            evaluation.files[f"worst_{dataset}"] = png
            sections += [f"## Worst-scored people on {dataset}\n\nGreen: ground truth; red: prediction (every point "
                         f"the model predicts, whatever its score). Worst first.", png]
        if "3d" in item.result:
            errors = item.result["3d"]
            view = plot_people_3d(item, out_dir / f"view3d_{name}.png", errors["unit"])
            sections.append(f"## 3D on {dataset}\n\n```text\n{format_3d_table(errors)}\n```")
            if view is not None:
                evaluation.files[f"view3d_{dataset}"] = view
                sections += ["Root-relative 3D of the first people, up as up. Green: ground truth; red: prediction "
                             "(its pixels lifted with the truth's scale, its depth, moved onto the truth's root).",
                             view]
    notes = [f"model skeleton: {evaluation.skeleton.name} ({evaluation.skeleton.num_keypoints} points); flip test "
             f"{_flip_words(evaluation.flip_test)}"]
    notes += [f"{dataset}: {result['boxes']} boxes; {result['points']}" for dataset, result in
              evaluation.results.items()]
    report = write_report(out_dir, evaluation.results, model=evaluation.model, title=f"{evaluation.model}: evaluation",
                          notes=notes, extra_sections=sections)
    tables = write_text_atomic(out_dir / "tables.txt", format_summary([evaluation]) + "\n\n"
                               + format_details(evaluation) + "\n")
    evaluation.files.update({"report": report, "metrics": out_dir / "metrics.json", "tables": tables})
    return report

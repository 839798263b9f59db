"""`unionpose demo --quick`: the whole experiment runs, writes its tables and report, and re-runs reuse stages."""
from __future__ import annotations

import json

import pytest

from unionpose.apps.demo import format_tables
from unionpose.apps.demo_setup import STAGES
from unionpose.cli import main


def _result(metric: str, value: float, shared: float | None = None) -> dict:
    result = {"metric": metric, "AP": value} if metric == "coco_ap" else {
        "metric": metric, "thresholds": [0.5, 0.1], "PCKh@0.5": value}
    if shared is not None:
        result["shared"] = {**result, "PCKh@0.5": shared}
    return result


def test_tables_follow_the_papers_conventions():
    metrics = {s.name: {"coco": _result("coco_ap", 0.5), "mpii": _result("pckh", 0.4, shared=0.8),
                        "all21": _result("coco_ap", 0.3)} for s in STAGES}
    text = format_tables(metrics)
    # Table 1 scores MPII on the points a model has (the paper's "shared 12 points"); Table 2 on all 16.
    table1, table2, table5 = text.split("\n\n")
    assert "| COCO only | 80.00 | 50.00 | 65.00 |" in table1
    assert "| unified, no distillation | 40.00 | 50.00 | 45.00 |" in table2
    assert "| unified + distillation | 30.00 |" in table5


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    for title in ("Table 1", "Table 2", "Table 5"):
        assert title in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == {s.name for s in STAGES}
    for name, datasets in results["metrics"].items():
        assert set(datasets) == {"coco", "mpii", "all21"}, name
        assert datasets["mpii"]["metric"] == "pckh" and datasets["coco"]["metric"] == "coco_ap"
    # single-dataset students lack the other dataset's points, and the evaluation says so
    assert results["metrics"]["student_coco"]["mpii"]["missing_points"]
    report = (out / "report.md").read_text()
    for figure in ("figures/training_curves.png", "figures/keypoints_all21.png", "figures/unified_kd_predictions.png"):
        assert figure in report and (out / figure).is_file()
    assert set(results["seconds"]) >= {"data", "evaluation", "total", *(s.name for s in STAGES)}
    # a second run reuses every finished stage
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    assert printed.count("reused") == 0 and capsys.readouterr().out.count("reused") == len(STAGES) + 2

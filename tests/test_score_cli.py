"""`unionpose score` on real fixtures against pycocotools called directly; tables, JSON and the Markdown report."""
from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from conftest import FIXTURES, require
from unionpose.cli import main
from unionpose.eval import (
    STAT_NAMES, coco_keypoint_ap, format_keypoint_table, format_paper_table, ground_truth_as_results, headline, pckh,
    to_json, write_results,
)
from unionpose.eval.report import write_report
from unionpose.skeletons import get_skeleton

WHOLEBODY = FIXTURES / "wholebody_eval_example"
WHOLEBODY_PARTS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")  # the 133 order


def _score(tmp_path, *args: str) -> tuple[int, dict | None]:
    out = tmp_path / "score.json"
    out.unlink(missing_ok=True)        # --json refuses to replace an existing file (issue 14): each call writes anew
    code = main(["score", *args, "--json", str(out)])
    return code, json.loads(out.read_text()) if out.exists() else None


def _pycocotools_on_files(gt_path, results_path) -> np.ndarray:
    """What a user gets from pycocotools itself (its default sigmas are COCO's)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(results_path)), iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_wholebody_example_body_points_equal_pycocotools(tmp_path, capsys):
    gt_path = require(WHOLEBODY / "example_gt.json")
    results_path = WHOLEBODY / "example_pred.json"
    code, result = _score(tmp_path, "--gt", str(gt_path), "--results", str(results_path), "--skeleton", "coco17")
    assert code == 0
    expected = _pycocotools_on_files(gt_path, results_path)
    np.testing.assert_allclose([result[name] for name in STAT_NAMES], expected, rtol=0, atol=1e-9)
    assert 0.5 < result["AP"] < 1.0 and result["skeleton"] == "coco17"
    printed = capsys.readouterr().out
    assert "AP50" in printed and f"{100 * result['AP']:.2f}" in printed


def test_wholebody_predictions_with_all_133_points_are_sliced_to_the_body(tmp_path):
    gt_path = require(WHOLEBODY / "example_gt.json")
    predictions = json.loads((WHOLEBODY / "example_pred.json").read_text())
    flat = [{**p, "keypoints": sum((p[part] for part in WHOLEBODY_PARTS), [])} for p in predictions]
    assert len(flat[0]["keypoints"]) == 133 * 3
    whole_path = write_results(tmp_path / "pred133.json", flat)
    code, result = _score(tmp_path, "--gt", str(gt_path), "--results", str(whole_path))  # default skeletons
    assert code == 0
    expected = _pycocotools_on_files(gt_path, WHOLEBODY / "example_pred.json")
    np.testing.assert_allclose([result[name] for name in STAT_NAMES], expected, rtol=0, atol=1e-9)


def test_ground_truth_as_results_scores_one_through_the_cli(tmp_path, capsys):
    gt_path = require(FIXTURES / "coco" / "person_keypoints.json")
    results = write_results(tmp_path / "gt_as_results.json",
                            ground_truth_as_results(json.loads(gt_path.read_text())))
    code, result = _score(tmp_path, "--gt", str(gt_path), "--results", str(results), "--per-keypoint")
    assert code == 0 and all(result[name] == 1.0 for name in STAT_NAMES)
    printed = capsys.readouterr().out
    assert "right_ankle" in printed and "mean KS" in printed


def test_crowdpose_needs_a_named_skeleton_and_the_box_area(tmp_path, capsys):
    gt_path = require(FIXTURES / "crowdpose" / "test_crowdpose.json")
    results = write_results(tmp_path / "r.json", ground_truth_as_results(json.loads(gt_path.read_text())))
    code, _ = _score(tmp_path, "--gt", str(gt_path), "--results", str(results))
    assert code == 1 and "--skeleton" in capsys.readouterr().err
    code, _ = _score(tmp_path, "--gt", str(gt_path), "--results", str(results), "--skeleton", "crowdpose14")
    assert code == 1 and "missing field 'area'" in capsys.readouterr().err  # CrowdPose has no segment areas
    code, result = _score(tmp_path, "--gt", str(gt_path), "--results", str(results), "--skeleton", "crowdpose14",
                          "--box-area")
    assert code == 0 and result["AP"] == 1.0 and result["object_scale"] == "box area"


def test_empty_and_broken_results_files(tmp_path, capsys):
    gt_path = require(FIXTURES / "coco" / "person_keypoints.json")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    code, result = _score(tmp_path, "--gt", str(gt_path), "--results", str(empty))
    assert code == 0 and result["empty"] and result["AP"] == 0.0
    assert "NO PREDICTIONS" in capsys.readouterr().out
    broken = tmp_path / "broken.json"
    records = ground_truth_as_results(json.loads(gt_path.read_text()))
    records[2]["image_id"] = 12345
    broken.write_text(json.dumps(records))
    code, _ = _score(tmp_path, "--gt", str(gt_path), "--results", str(broken))
    error = capsys.readouterr().err
    assert code == 1 and str(broken) in error and "result 2: field 'image_id' = 12345" in error


# --- tables and reports ------------------------------------------------------------------------------------------

def _paper_result(metric: str, value: float) -> dict:
    if metric == "pckh":
        return {"metric": "pckh", "thresholds": [0.5, 0.1], "PCKh@0.5": value}
    return {"metric": "coco_ap", "AP": value}


def test_paper_table_reproduces_table_1_averages():
    rows = {  # Khan et al. 2024, Table 1, RTMPose-t rows
        "t MPII only": {"MPII": _paper_result("pckh", 0.8775), "COCO": _paper_result("coco_ap", 0.1982)},
        "t COCO only": {"MPII": _paper_result("pckh", 0.7762), "COCO": _paper_result("coco_ap", 0.6799)},
        "t unified": {"MPII": _paper_result("pckh", 0.7975), "COCO": _paper_result("coco_ap", 0.6203)},
        "t COCO, no MPII run": {"COCO": _paper_result("coco_ap", 0.6203)},
    }
    table = format_paper_table(rows).splitlines()
    assert table[0].split() == ["model", "MPII", "PCKh@0.5", "COCO", "AP", "average"]
    assert table[2].split()[-3:-1] == ["87.75", "19.82"]
    # The paper prints 53.79 and 72.81 for the exact halves 53.785 and 72.805; two decimals cannot settle a tie.
    for line, paper in zip(table[2:5], (53.79, 72.81, 70.89)):
        assert float(line.split()[-1]) == pytest.approx(paper, abs=0.0101)  # one unit in the last digit
    assert table[5].split()[-3:] == ["-", "62.03", "62.03"]


def _small_results() -> dict:
    gt = json.loads(require(FIXTURES / "coco" / "person_keypoints.json").read_text())
    coco17 = get_skeleton("coco17")
    coco = coco_keypoint_ap(gt, ground_truth_as_results(gt), coco17.sigmas, names=coco17.names)
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 200, size=(4, 16, 2))
    visible = np.ones((4, 16))
    visible[0, 9] = 0
    mpii = pckh(truth + rng.normal(0, 4, size=truth.shape), truth, visible, np.full(4, 12.0))
    return {"COCO": coco, "MPII": mpii}


def test_keypoint_table_and_strict_json():
    results = _small_results()
    table = format_keypoint_table(results["MPII"]).splitlines()
    assert table[0].split() == ["keypoint", "annotated", "PCKh@0.5", "PCKh@0.1"]
    assert len(table) == 2 + 16 and table[2 + 9].split()[:2] == ["head_top", "3"]
    text = to_json({**results, "undefined": float("nan")})
    assert json.loads(text)["undefined"] is None
    assert headline(results["MPII"]) == ("PCKh@0.5", results["MPII"]["PCKh@0.5"])


def test_markdown_report_with_charts_and_extra_sections(tmp_path):
    results = _small_results()
    picture = tmp_path / "worst" / "person_0.png"
    picture.parent.mkdir()
    cv2.imwrite(str(picture), np.zeros((8, 8, 3), np.uint8))
    report = write_report(tmp_path / "report", results, model="unified-t", notes=["GT boxes"],
                          extra_sections=["## Worst instances", picture])
    text = report.read_text()
    assert "unified-t" in text and "GT boxes" in text and "## Worst instances" in text
    assert "](../worst/person_0.png)" in text
    for dataset in ("COCO", "MPII"):
        chart = cv2.imread(str(report.parent / f"keypoints_{dataset}.png"))
        assert chart is not None and chart.shape[0] > 100
        assert f"](keypoints_{dataset}.png)" in text
    saved = json.loads((report.parent / "metrics.json").read_text())
    assert saved["results"]["COCO"]["AP"] == 1.0

"""`unionpose val` end to end: real (tiny, random) model files on the real COCO and MPII fixtures."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import FIXTURES, require
from unionpose.cli import main
from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random 21-point union model and a random MPII-only model, tiny (RTMPose-t at 96x64)."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    union = save_model_file(folder / "union21.safetensors", RTMPose("t", 21, (96, 64)), get_skeleton("coco_mpii21"))
    mpii = save_model_file(folder / "mpii_only.safetensors", RTMPose("t", 16, (96, 64)), get_skeleton("mpii16"))
    return union, mpii


@pytest.fixture
def config(tmp_path):
    """A data-only config with the COCO fixture and the MPII fixture (no head boxes: the default metric is PCK)."""
    coco, mpii = require(FIXTURES / "coco"), require(FIXTURES / "mpii")
    path = tmp_path / "val.yaml"
    path.write_text(
        "data:\n  val:\n"
        f"    - {{name: coco, format: coco, annotations: {coco}/person_keypoints.json, images: {coco}/images}}\n"
        f"    - {{name: mpii, format: mpii, annotations: {mpii}/mpii_annotations.json, images: {mpii}/images}}\n")
    return path


@pytest.mark.slow   # ~10 s: two models, flip test, 17 people, report with charts and drawings
def test_val_two_models_print_the_paper_table_and_write_reports(models, config, tmp_path, capsys):
    union, mpii = models
    out = tmp_path / "out"
    code = main(["val", "--model", str(union), "--model", str(mpii), "--data", str(config), "--out", str(out),
                 "--no-progress", "--worst", "4"])
    printed = capsys.readouterr().out
    assert code == 0
    header = next(line for line in printed.splitlines() if line.startswith("model "))
    assert header.split() == ["model", "coco", "AP", "mpii", "PCK@0.2", "average"]
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines()
            if line.split()[:1] in (["union21"], ["mpii_only"]) and len(line.split()) == 4}
    assert set(rows) == {"union21", "mpii_only"}
    for values in rows.values():
        coco_ap, mpii_pck, average = (float(v) for v in values)
        assert 0 <= coco_ap <= 100 and 0 <= mpii_pck <= 100
        assert average == pytest.approx((coco_ap + mpii_pck) / 2, abs=0.011)
    assert "mpii_only on coco: all points in the table; the model lacks 5 labelled point(s) (nose" in printed
    assert "right_ankle" in printed and "mean KS" in printed and "PCK@0.2" in printed   # per-keypoint tables
    for model in ("union21", "mpii_only"):
        folder = out / model
        for name in ("metrics.json", "report.md", "tables.txt", "predictions_coco.json", "predictions_mpii.json",
                     "worst_coco.png", "worst_mpii.png", "keypoints_coco.png"):
            assert (folder / name).is_file(), f"{model}/{name}"
        metrics = json.loads((folder / "metrics.json").read_text())["results"]
        assert metrics["coco"]["num_people"] == 12 and metrics["mpii"]["num_people"] == 5
        assert "not every person has a head box" in " ".join(metrics["mpii"]["notes"])
        predictions = json.loads((folder / "predictions_mpii.json").read_text())
        assert len(predictions) == 5 and len(predictions[0]["keypoints"]) == 16 * 3
    assert (out / "summary.txt").read_text().startswith("model ")
    mpii_only = json.loads((out / "mpii_only" / "metrics.json").read_text())["results"]["coco"]
    assert mpii_only["missing_points"] == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    assert "shared" in mpii_only


def test_val_errors_name_the_problem(models, config, capsys):
    union, _ = models
    detections = require(FIXTURES / "coco" / "person_detections.json")
    assert main(["val", "--model", str(union), "--data", str(config), "--detections", str(detections)]) == 1
    error = capsys.readouterr().err
    assert "--detections" in error and "name the dataset (DATASET=FILE), one of coco, mpii" in error
    assert main(["val", "--model", str(union), "--data", str(config), "--detections", f"mpii={detections}",
                 "--no-progress"]) == 1
    assert "detected boxes can only be scored with coco_ap" in capsys.readouterr().err
    assert main(["val", "--model", str(config), "--data", str(config)]) == 1
    assert "a pose model is a UnionPose .safetensors file or an .onnx graph" in capsys.readouterr().err

"""Issue 15, 3D errors: MPJPE (root-aligned), PA-MPJPE (Procrustes) and the depth error per part, and
`unionpose val` reporting them where the data has depth."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from unionpose.cli import main
from unionpose.core.depth import DepthCodec
from unionpose.data.readers.coco import read_coco
from unionpose.eval.errors_3d import errors_3d, part_names, procrustes
from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate

UNION = get_skeleton("coco_mpii21")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic_val3d")
    generate(folder, num_train=2, num_val=3, seed=5)
    people, _ = read_coco(folder / "full21_val.json", folder / "images", skeleton="coco_mpii21")
    return folder, people


def _projected(person) -> np.ndarray:
    """Every point's pixels, hidden ones too: the camera (scale and offset) fitted on the labelled points."""
    shown = person.visible > 0
    design = np.concatenate([person.keypoints_3d[shown, :2].reshape(-1, 1), np.tile(np.eye(2), (shown.sum(), 1))], 1)
    (scale, x, y), *_ = np.linalg.lstsq(design, person.keypoints[shown].reshape(-1), rcond=None)
    return person.keypoints_3d[:, :2] * scale + np.array([x, y])


def test_the_truth_itself_scores_zero_and_errors_are_in_the_datas_unit(synthetic):
    _, people = synthetic
    keypoints = np.stack([_projected(p) for p in people])
    depth = np.stack([p.keypoints_3d[:, 2] for p in people])
    found = errors_3d(people, keypoints, depth, UNION, "body_height")
    assert found["people"] == len(people) and found["unit"] == "body_height"
    assert found["mpjpe"] < 1e-3 and found["pa_mpjpe"] < 1e-3 and found["depth"] < 1e-4
    shifted = errors_3d(people, keypoints, depth + 0.1, UNION, "body_height")      # a constant depth offset
    assert shifted["mpjpe"] < 1e-3                                                   # root alignment removes it
    flattened = errors_3d(people, keypoints, np.zeros_like(depth), UNION, "body_height")
    truth = np.concatenate([p.keypoints_3d[p.annotated_z & (p.visible > 0), 2] for p in people])
    assert flattened["depth"] == pytest.approx(np.abs(truth).mean(), abs=1e-6)
    assert flattened["mpjpe"] == pytest.approx(flattened["depth"], abs=2e-3)        # only z is wrong


def test_people_without_3d_labels_are_left_out(synthetic):
    _, people = synthetic
    flat = [replace(p, keypoints_3d=None, annotated_z=None) for p in people]
    keypoints, depth = np.stack([_projected(p) for p in people]), np.zeros((len(people), 21))
    assert errors_3d(flat, keypoints, depth, UNION, "body_height") is None
    assert errors_3d(flat[:1] + people[1:], keypoints, depth, UNION, "body_height")["people"] == len(people) - 1


def test_procrustes_undoes_scale_rotation_and_translation():
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((12, 3))
    rotation, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    rotation *= np.sign(np.linalg.det(rotation))
    moved = 2.5 * truth @ rotation + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(procrustes(moved, truth), truth, atol=1e-9)


def test_wholebody_parts_are_body_feet_face_and_hands():
    names = part_names(get_skeleton("coco_wholebody133"))
    assert list(dict.fromkeys(names)) == ["body", "feet", "face", "hands"]
    assert names.count("hands") == 42 and names.count("face") == 68 and names.count("feet") == 6


@pytest.mark.slow    # ~5 s: a tiny random model over the synthetic validation people
def test_val_reports_3d_errors_where_the_data_has_depth(synthetic, tmp_path, capsys):
    folder, _ = synthetic
    torch.manual_seed(0)
    model = save_model_file(tmp_path / "t3d.safetensors", RTMPose("t", 21, (64, 64), depth=DepthCodec(bins=64)),
                            UNION)
    config = tmp_path / "val.yaml"
    config.write_text("data:\n  val:\n"
                      f"    - {{name: full21, format: coco, skeleton: coco_mpii21, "
                      f"annotations: {folder}/full21_val.json, images: {folder}/images}}\n"
                      f"    - {{name: coco, format: coco, annotations: {folder}/coco17_val.json, "
                      f"images: {folder}/images}}\n")
    code = main(["val", "--model", str(model), "--data", str(config), "--out", str(tmp_path / "out"),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and printed.count("PA-MPJPE") == 1                 # the 2D-only dataset has no 3D table
    assert "3D errors of" in printed and "in body_height (root-aligned; Procrustes-aligned)" in printed
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    errors = metrics["full21"]["3d"] if "full21" in metrics else metrics["results"]["full21"]["3d"]
    assert set(errors) >= {"mpjpe", "pa_mpjpe", "depth", "parts"} and errors["mpjpe"] > 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## 3D on full21" in report and "view3d_full21.png" in report and "3D on coco" not in report
    assert (tmp_path / "out" / "view3d_full21.png").stat().st_size > 10_000

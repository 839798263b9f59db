"""Finding 7 of issue 14: real data. MPII head sizes from the records or from the official evaluation file, so
`unionpose val` reports PCKh on MPII and `unionpose score` scores MPII results (`pred.mat` and our JSON); one reading
of repeated image records for the reader and the scorer; one box-clipping rule.

No official `mpii_gt_val.mat` / `pred.mat` is at hand, so these tests write files in their layout with
`scipy.io.savemat` (dataset_joints, jnt_missing, pos_gt_src, headboxes_src; preds) from the MPII fixture's people,
and check the numbers against the official formula written out below.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.io import savemat

from conftest import DATA, FIXTURES, require
from reliability_support import model_file
from unionpose.cli import main
from unionpose.core.errors import DataError
from unionpose.core.transforms import clip_box
from unionpose.data.readers import read_coco, read_mpii
from unionpose.data.readers.box_file import BoxFile
from unionpose.eval import ground_truth_as_results, score_results_file

OFFICIAL_JOINTS = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head", "rwri", "relb",
                   "rsho", "lsho", "lelb", "lwri")


def official_pckh(preds: np.ndarray, gt: dict, threshold: float = 0.5) -> tuple[float, np.ndarray]:
    """The MPII evaluation as the toolboxes' Python port computes it: the mean over joints (pelvis and thorax
    masked) weighted by their label counts, and each joint's PCKh, in percent. `preds` (N, 16, 2), 1-based."""
    pos_pred = np.transpose(preds, [1, 2, 0])
    visible = 1 - gt["jnt_missing"]
    error = np.linalg.norm(pos_pred - gt["pos_gt_src"], axis=1)
    head = np.linalg.norm(gt["headboxes_src"][1] - gt["headboxes_src"][0], axis=0) * 0.6
    scaled = error / (head * np.ones((len(error), 1))) * visible
    count = visible.sum(axis=1)
    joint = 100.0 * ((scaled <= threshold) * visible).sum(axis=1) / count
    mask = np.ones(16, dtype=bool)
    mask[6:8] = False
    return float((joint[mask] * count[mask] / count[mask].sum()).sum()), joint


@pytest.fixture
def official(tmp_path) -> dict:
    """The fixture's 5 MPII people as the official files hold them: joints 1-based, joint 3 of person 1 missing,
    head boxes around head top and upper neck; predictions off by known amounts; paths of the files."""
    records = json.loads(require(FIXTURES / "mpii/mpii_annotations.json").read_text())
    joints = np.array([r["joints"] for r in records], dtype=np.float64)          # (N, 16, 2), 0-based
    missing = np.zeros((16, len(records)))
    missing[3, 1] = 1
    top, neck = joints[:, 9], joints[:, 8]
    half = np.abs(top - neck).max(axis=1, keepdims=True) / 2 + 8
    centre = (top + neck) / 2
    corners = np.stack([centre - half, centre + half])                            # (2, N, 2) 0-based
    gt = {"dataset_joints": np.array(OFFICIAL_JOINTS, dtype=object)[None], "jnt_missing": missing,
          "pos_gt_src": np.transpose(joints + 1, [1, 2, 0]), "headboxes_src": np.transpose(corners + 1, [0, 2, 1])}
    savemat(tmp_path / "mpii_gt_val.mat", gt)
    noise = np.random.default_rng(0).normal(0, 14, joints.shape)
    preds = joints + 1 + noise                                                     # 1-based, as pred.mat
    savemat(tmp_path / "pred.mat", {"preds": preds})
    return {"gt": gt, "preds": preds, "joints": joints, "records": records, "head_boxes": corners.transpose(1, 0, 2),
            "gt_mat": tmp_path / "mpii_gt_val.mat", "pred_mat": tmp_path / "pred.mat"}


def test_score_reads_the_official_files_and_agrees_with_the_official_formula(official, tmp_path, capsys):
    out = tmp_path / "score.json"
    assert main(["score", "--gt", str(official["gt_mat"]), "--results", str(official["pred_mat"]), "--json",
                 str(out)]) == 0
    result = json.loads(out.read_text())
    mean, joint = official_pckh(official["preds"], official["gt"])
    assert result["metric"] == "pckh" and result["PCKh@0.5"] * 100 == pytest.approx(mean)
    ours = [100 * v if v is not None else None for v in result["per_keypoint"]["PCKh@0.5"]]
    assert ours == pytest.approx(joint.tolist())
    assert 0 < mean < 100 and "PCKh" in capsys.readouterr().out
    assert result["per_keypoint"]["annotated"][3] == 4                # the missing joint is not counted


def test_score_reads_our_json_results_against_the_json_ground_truth(official, tmp_path):
    records = official["records"]
    gt = tmp_path / "mpii_val.json"
    gt.write_text(json.dumps(records))
    results = [{"image_id": 0, "category_id": 1, "score": 1.0,
                "keypoints": np.concatenate([p - 1, np.ones((16, 1))], axis=1).reshape(-1).tolist()}
               for p in official["preds"]]
    ours = tmp_path / "predictions_mpii.json"
    ours.write_text(json.dumps(results))
    out = tmp_path / "score.json"
    assert main(["score", "--gt", str(gt), "--results", str(ours), "--head-boxes", str(official["gt_mat"]),
                 "--json", str(out)]) == 0
    from_json = json.loads(out.read_text())
    as_labelled = {**official["gt"], "jnt_missing": 1 - np.array([r["joints_vis"] for r in records]).T}  # the JSON's
    assert from_json["PCKh@0.5"] * 100 == pytest.approx(official_pckh(official["preds"], as_labelled)[0])
    assert main(["score", "--gt", str(gt), "--results", str(ours), "--json", str(tmp_path / "x.json")]) == 1


def test_mpii_reader_keeps_head_size_and_takes_the_official_head_boxes(official, tmp_path):
    records = official["records"]
    records[0]["head_size"] = 31.5
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(records))
    instances, _ = read_mpii(path, FIXTURES / "mpii/images")
    assert instances[0].head_size == 31.5 and instances[1].head_size is None
    instances, _ = read_mpii(path, FIXTURES / "mpii/images", head_boxes=official["gt_mat"])
    expected = official["head_boxes"].reshape(-1, 4)
    assert np.allclose([i.head_box for i in instances], expected, atol=1e-4)
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(records[::-1]))
    with pytest.raises(DataError, match=r"mpii_gt_val\.mat: person 0: field 'pos_gt_src': .* do not pair"):
        read_mpii(shuffled, FIXTURES / "mpii/images", head_boxes=official["gt_mat"])


def test_val_reports_pckh_on_mpii_with_the_official_head_boxes(official, tmp_path, capsys):
    model = model_file(tmp_path / "mpii.safetensors", skeleton="mpii16")
    config = tmp_path / "val.yaml"
    entry = {"name": "mpii", "format": "mpii", "annotations": str(FIXTURES / "mpii/mpii_annotations.json"),
             "images": str(FIXTURES / "mpii/images")}
    config.write_text(yaml.safe_dump({"data": {"val": [entry]}}))
    assert main(["val", "--model", str(model), "--data", str(config), "--no-progress", "--out",
                 str(tmp_path / "plain")]) == 0
    assert "metric: pck, the default for format mpii" in capsys.readouterr().out     # no head boxes: box PCK
    config.write_text(yaml.safe_dump({"data": {"val": [{**entry, "head_boxes": str(official["gt_mat"])}]}}))
    assert main(["val", "--model", str(model), "--data", str(config), "--no-progress", "--out",
                 str(tmp_path / "official")]) == 0
    metrics = json.loads((tmp_path / "official" / "metrics.json").read_text())["results"]["mpii"]
    assert metrics["metric"] == "pckh" and metrics["num_people"] == 5
    assert "metric: pckh, the default for format mpii" in capsys.readouterr().out


def _coco_with(tmp_path: Path, alter) -> Path:
    data = json.loads(require(FIXTURES / "coco/person_keypoints.json").read_text())
    alter(data)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    return path


def test_repeated_image_records_read_the_same_for_the_reader_and_the_scorer(tmp_path, capsys):
    original = require(FIXTURES / "coco/person_keypoints.json")
    doubled = _coco_with(tmp_path, lambda d: d["images"].extend(json.loads(json.dumps(d["images"]))))
    instances, report = read_coco(doubled, FIXTURES / "coco/images")
    assert len(instances) == len(read_coco(original, FIXTURES / "coco/images")[0]) and len(report.image_ids) == 4
    results = tmp_path / "results.json"
    results.write_text(json.dumps(ground_truth_as_results(json.loads(original.read_text()))))
    scored = score_results_file(doubled, results)
    assert scored["num_images"] == 4 and scored["AP"] == pytest.approx(1.0)

    def conflict(data: dict) -> None:
        data["images"].append({**data["images"][1], "file_name": "another.jpg"})

    conflicting = _coco_with(tmp_path, conflict)
    message = r"images\[4\] \(image id \d+\): field 'id': duplicate image id \d+ \(first in .*images\[1\]\) with " \
              r"other values in 'file_name'"
    with pytest.raises(DataError, match=message):
        read_coco(conflicting, FIXTURES / "coco/images")
    with pytest.raises(DataError, match=message):
        score_results_file(conflicting, results)


def test_one_box_clipping_rule_for_readers_box_files_and_transforms():
    path = require(DATA / "coco_train_mini/person_keypoints_train2017.json")
    data = json.loads(path.read_text())
    sizes = {image["id"]: (image["width"], image["height"]) for image in data["images"]}
    annotations = {a["id"]: a for a in data["annotations"]}
    instances, _ = read_coco(path, DATA / "coco_train_mini/images")
    at_the_edge = 0
    for instance in instances:
        bbox = annotations[instance.ann_id]["bbox"]
        width, height = sizes[instance.image_id]
        np.testing.assert_allclose(instance.box, clip_box(bbox, width, height), atol=1e-4)
        at_the_edge += bbox[0] + bbox[2] > width - 1 or bbox[1] + bbox[3] > height - 1
    assert at_the_edge > 0                  # boxes reaching the last pixel exist, and were clipped alike
    boxes = BoxFile(path)
    for instance in instances:
        found, _ = boxes.lookup(Path(instance.image).name)
        assert np.isclose(found, instance.box, atol=1e-4).all(axis=1).any()

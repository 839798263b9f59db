"""Model-driven evaluation: slicing a union model into each dataset's points, metrics, misses, files and reports."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from conftest import FIXTURES, require
from unionpose.core.images import load_image
from unionpose.data.config import load_val_datasets
from unionpose.data.instance import remap_instances
from unionpose.data.sources import DatasetSource, read_source
from unionpose.eval.evaluate import evaluate_model
from unionpose.eval.summary import format_summary
from unionpose.infer.oks import box_iou_matrix
from unionpose.skeletons import get_skeleton, keypoint_mapping
from unionpose.synthetic import generate

# Khan et al. 2024: MPII index -> index in the paper's 21-point union.
MPII_TO_UNION = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]
FACE = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """The synthetic benchmark's validation files: the same 19 people as COCO-17, MPII-16 (head boxes) and all 21."""
    out = tmp_path_factory.mktemp("synth")
    generate(out, 2, 8, seed=0)
    return {
        "coco": DatasetSource(name="coco", format="coco", annotations=out / "coco17_val.json", images=out / "images"),
        "mpii": DatasetSource(name="mpii", format="mpii", annotations=out / "mpii16_val.json", images=out / "images"),
        "full21": DatasetSource(name="full21", format="coco", skeleton="coco_mpii21",
                                annotations=out / "full21_val.json", images=out / "images"),
    }


class Oracle:
    """A stand-in model that answers every ground-truth box with that person's true 21 points, in its own skeleton.

    It knows the people of the COCO and MPII files by (image content, box), both paired with the 21-point file (the
    generator writes the same people in the same order to all three), so a prediction is exact whatever the crop.
    """

    def __init__(self, synth: dict, skeleton_name: str):
        self.skeleton = get_skeleton(skeleton_name)
        union = get_skeleton("coco_mpii21")
        full = read_source(synth["full21"])[0]
        self.answers: dict[tuple, np.ndarray] = {}
        self.image_keys: dict[str, str] = {}
        to_model = keypoint_mapping(union, self.skeleton)
        for name in ("coco", "mpii"):
            people = read_source(synth[name])[0]
            assert [p.image for p in people] == [p.image for p in full]
            for person, truth in zip(people, full):
                in_union = remap_instances([person], keypoint_mapping(person_skeleton(name), union))[0]
                labelled = in_union.visible > 0
                assert np.allclose(in_union.keypoints[labelled], truth.keypoints[labelled], atol=0.01)
                self.answers[self._key(person.image, person.box)] = to_model.apply(truth.keypoints)
        self.calls = 0

    def _key(self, image, box) -> tuple:
        if isinstance(image, str):
            image = self.image_keys.setdefault(image, hashlib.sha1(load_image(image).tobytes()).hexdigest())
        else:
            image = hashlib.sha1(image.tobytes()).hexdigest()
        return (image, *np.round(np.asarray(box, dtype=np.float64), 2).tolist())

    def predict_many(self, items):
        for image, boxes in items:
            self.calls += 1
            keypoints = np.stack([self.answers[self._key(image, box)] for box in boxes])
            yield keypoints.astype(np.float32), np.ones(keypoints.shape[:2], dtype=np.float32)


def person_skeleton(name: str):
    return get_skeleton("coco17" if name == "coco" else "mpii16")


def test_union_oracle_scores_perfectly_and_slices_point_by_point(synth, tmp_path):
    oracle = Oracle(synth, "coco_mpii21")
    evaluation = evaluate_model(oracle, [synth["coco"], synth["mpii"], synth["full21"]], out_dir=tmp_path,
                                progress=False, worst=4)
    results = evaluation.results
    assert results["coco"]["metric"] == "coco_ap" and results["coco"]["AP"] == pytest.approx(1.0)
    assert results["mpii"]["metric"] == "pckh"
    assert results["mpii"]["PCKh@0.5"] == pytest.approx(1.0) and results["mpii"]["PCKh@0.1"] == pytest.approx(1.0)
    assert results["full21"]["AP"] == pytest.approx(1.0) and results["full21"]["skeleton"] == "coco_mpii21"
    assert all(not r["missing_points"] and "shared" not in r for r in results.values())
    assert oracle.calls == 3 * 8          # each image decoded and predicted once per dataset

    # Union -> MPII: prediction joint j is union point MPII_TO_UNION[j] (Khan et al. 2024), for every joint.
    full = read_source(synth["full21"])[0]
    mpii = evaluation.datasets["mpii"].predictions.keypoints
    union_truth = np.stack([person.keypoints for person in full])
    assert np.allclose(mpii, union_truth[:, MPII_TO_UNION], atol=1e-4)
    # Union -> COCO: the first 17 union points, and the written results file holds them in that order.
    written = json.loads((tmp_path / "predictions_coco.json").read_text())
    assert len(written) == 19 and len(written[0]["keypoints"]) == 17 * 3
    coco_points = np.array([r["keypoints"] for r in written]).reshape(19, 17, 3)
    assert np.allclose(coco_points[..., :2], union_truth[:, :17], atol=1e-3)
    assert np.all(coco_points[..., 2] == 1.0)

    for name in ("metrics.json", "report.md", "tables.txt", "predictions_mpii.json", "predictions_full21.json",
                 "worst_coco.png", "worst_mpii.png", "keypoints_mpii.png"):
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["results"]["mpii"]["PCKh@0.5"] == pytest.approx(1.0)
    assert "worst_coco.png" in (tmp_path / "report.md").read_text()


def test_mpii_only_model_on_coco_counts_the_face_as_misses(synth):
    evaluation = evaluate_model(Oracle(synth, "mpii16"), [synth["coco"], synth["mpii"]], progress=False)
    coco = evaluation.results["coco"]
    assert coco["missing_points"] == FACE
    # All 17 points count: each person's OKS is the share of its labelled points that are not face points.
    visible = {p.ann_id: p.visible > 0 for p in read_source(synth["coco"])[0]}
    for record in coco["per_instance"]:
        labelled = visible[record["ann_id"]]
        assert record["oks"] == pytest.approx(labelled[5:].sum() / labelled.sum())
    assert coco["AP"] < 0.9
    assert coco["shared"]["AP"] == pytest.approx(1.0)     # the 12 shared points are exact
    similarity = dict(zip(coco["per_keypoint"]["name"], coco["per_keypoint"]["mean KS"]))
    assert all(similarity[name] == pytest.approx(0.0, abs=1e-9) for name in FACE)
    assert all(similarity[name] == pytest.approx(1.0) for name in similarity if name not in FACE)
    predictions = evaluation.datasets["coco"].predictions
    assert np.all(predictions.keypoints[:, :5] == 0) and np.all(predictions.keypoint_scores[:, :5] == 0)
    assert "12 shared points" in coco["points"]
    assert evaluation.results["mpii"]["PCKh@0.5"] == pytest.approx(1.0)
    # The paper's Table 1 scores the MPII-only model on all COCO points.
    assert evaluation.table_row("paper")["coco"] is coco
    assert evaluation.table_row("shared")["coco"] is coco["shared"]


def test_coco_only_model_on_mpii_offers_pckh_on_the_shared_points(synth):
    evaluation = evaluate_model(Oracle(synth, "coco17"), [synth["mpii"]], progress=False)
    mpii = evaluation.results["mpii"]
    assert mpii["missing_points"] == ["pelvis", "thorax", "upper_neck", "head_top"]
    annotated = dict(zip(mpii["per_keypoint"]["name"], mpii["per_keypoint"]["annotated"]))
    in_mean = sum(count for name, count in annotated.items() if name not in ("pelvis", "thorax"))
    misses = annotated["upper_neck"] + annotated["head_top"]
    assert mpii["PCKh@0.5"] == pytest.approx(1 - misses / in_mean)    # head top and upper neck are misses
    assert mpii["per_keypoint"]["PCKh@0.5"][9] == 0.0                  # head_top
    assert mpii["shared"]["PCKh@0.5"] == pytest.approx(1.0)
    assert "12 shared points" in mpii["points"]            # the paper's "COCO only (shared 12 points)"
    assert evaluation.table_row("paper")["mpii"] is mpii["shared"]
    assert evaluation.table_row("all")["mpii"] is mpii
    summary = format_summary([evaluation])
    assert "mpii PCKh@0.5" in summary and "100.00" in summary and "shared points in the table" in summary


def test_halpe_on_model_points_derives_thorax(synth):
    """The paper's all-21-points check: Halpe read in its own skeleton, scored on the model's 21 points."""
    halpe = DatasetSource(name="halpe", format="halpe136", annotations=require(FIXTURES / "coco" / "halpe136.json"),
                          images=FIXTURES / "coco" / "images")
    truth = {p.ann_id: p for p in read_source(halpe)[0]}
    native = halpe.native_skeleton()
    union = get_skeleton("coco_mpii21")

    class HalpeOracle:
        skeleton = union

        def predict_many(self, items):
            for _, boxes in items:
                people = [next(p for p in truth.values() if np.allclose(p.box, box)) for box in boxes]
                points = np.stack([keypoint_mapping(native, union).apply(p.keypoints) for p in people])
                shoulders = np.stack([p.keypoints[5:7].mean(axis=0) for p in people])
                points[:, union.index("thorax")] = shoulders
                yield points.astype(np.float32), np.ones(points.shape[:2], dtype=np.float32)

    evaluation = evaluate_model(HalpeOracle(), [halpe], on_model_points=["halpe"], progress=False)
    result = evaluation.results["halpe"]
    assert result["skeleton"] == "coco_mpii21" and result["AP"] == pytest.approx(1.0)
    labelled = dict(zip(result["per_keypoint"]["name"], result["per_keypoint"]["labelled"]))
    assert labelled["thorax"] > 0 and labelled["head_top"] > 0
    assert labelled["upper_neck"] == 0 and labelled["pelvis"] == 0    # never labelled in the Halpe fixture
    assert any("thorax = mean of left_shoulder and right_shoulder" in note for note in result["notes"])


class DetectionOracle:
    """Answers a detected box with the true pose of the labelled person it overlaps most (IoU >= 0.5, keypoint
    scores 0.9), and any other box with points at its centre at score 0.1 (below the 0.2 rescoring threshold)."""

    skeleton = get_skeleton("coco17")

    def __init__(self, people):
        self.people = people

    def predict_many(self, items):
        for _, boxes in items:
            keypoints, scores = [], []
            for box in boxes:
                overlap = box_iou_matrix(box[None], np.stack([p.box for p in self.people]))[0]
                best = int(np.argmax(overlap))
                if overlap[best] >= 0.5:
                    keypoints.append(self.people[best].keypoints)
                    scores.append(np.full(17, 0.9))
                else:
                    keypoints.append(np.tile(box[:2] + box[2:] / 2, (17, 1)))
                    scores.append(np.full(17, 0.1))
            yield np.asarray(keypoints, dtype=np.float32), np.asarray(scores, dtype=np.float32)


def test_detections_are_rescored_and_deduplicated_with_oks_nms():
    coco = DatasetSource(name="coco", format="coco", annotations=require(FIXTURES / "coco" / "person_keypoints.json"),
                         images=FIXTURES / "coco" / "images")
    detections = FIXTURES / "coco" / "person_detections.json"
    people = read_source(coco)[0]
    evaluation = evaluate_model(DetectionOracle(people), [coco], boxes={"coco": detections}, progress=False)
    result = evaluation.results["coco"]
    predictions = evaluation.datasets["coco"].predictions
    assert result["boxes"] == "detections" and result["num_results"] == len(predictions.scores)
    assert result["num_people"] == 12                   # 14 annotated; the 2 without keypoints are ignored regions
    # Several boxes on one person give one identical pose each: OKS-NMS keeps exactly one per person.
    raw = _detection_boxes(detections)
    on_people = box_iou_matrix(np.stack([b for b, _ in raw]), np.stack([p.box for p in people])).max(axis=1) >= 0.5
    assert on_people.sum() > 12
    found = predictions.keypoint_scores[:, 0] == np.float32(0.9)
    poses = {tuple(np.round(k, 2).ravel()) for k in predictions.keypoints[found]}
    assert len(poses) == found.sum() == 12
    # Person score = box score x mean keypoint score above 0.2; the stray boxes' 0.1 scores give 0.
    box_scores = {tuple(np.round(b, 2)): d["score"] for b, d in raw}   # (boxes clipped to the image do not match)
    checked = 0
    for box, score, kept in zip(predictions.boxes, predictions.scores, found):
        if kept and tuple(np.round(box, 2)) in box_scores:
            assert score == pytest.approx(box_scores[tuple(np.round(box, 2))] * 0.9, rel=1e-5)
            checked += 1
    assert checked >= 10
    assert np.all(predictions.scores[~found] == 0.0)
    assert result["AP"] == pytest.approx(1.0)          # every person found exactly, and outranking the strays


def _detection_boxes(path):
    return [(np.asarray(d["bbox"], dtype=np.float64), d) for d in json.loads(path.read_text())]


def test_val_config_accepts_a_training_recipe(tmp_path):
    (tmp_path / "recipe.yaml").write_text(
        "skeleton: {union: [coco17, mpii16]}\nmodel: {size: t}\n"
        "data:\n  augment: {enabled: false}\n  train:\n    - {name: a, format: coco, annotations: a.json, images: im}\n"
        "  val:\n    - {name: b, format: mpii, annotations: sub/b.json, images: im, metric: pck}\n")
    sources, skeleton = load_val_datasets(tmp_path / "recipe.yaml")
    assert [s.name for s in sources] == ["b"] and sources[0].annotations == tmp_path / "sub" / "b.json"
    assert skeleton.union == ["coco17", "mpii16"]
    (tmp_path / "bad.yaml").write_text("data:\n  val:\n    - {name: b, format: mpii, annotations: b.json, "
                                       "images: im, metric: oks}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: field 'data.val\[0\].metric'"):
        load_val_datasets(tmp_path / "bad.yaml")
    (tmp_path / "none.yaml").write_text("data:\n  train: []\n")
    with pytest.raises(ValueError, match="no validation datasets"):
        load_val_datasets(tmp_path / "none.yaml")


def test_pckh_without_head_boxes_is_a_clear_error_before_inference():
    mpii = DatasetSource(name="mpii", format="mpii", metric="pckh",
                         annotations=require(FIXTURES / "mpii" / "mpii_annotations.json"),
                         images=FIXTURES / "mpii" / "images")
    with pytest.raises(ValueError, match=r"mpii_annotations.json: record 0 .*field 'head_box'.*metric: pck"):
        evaluate_model(Unused(), [mpii], progress=False)


class Unused:
    skeleton = get_skeleton("mpii16")

    def predict_many(self, items):
        raise AssertionError("the error must come before inference")

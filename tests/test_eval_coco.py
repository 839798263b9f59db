"""COCO keypoint AP through pycocotools: union slicing, GT builders and mappings, results validation, real fixtures."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from conftest import FIXTURES, require
from unionpose.eval import (
    STAT_NAMES, GroundTruthError, ResultsError, build_ground_truth, coco_keypoint_ap, ground_truth_as_results,
    ground_truth_in_skeleton, read_results, results_from_arrays, slice_to_skeleton, validate_results, write_results,
)
from unionpose.infer.scoring import instance_score
from unionpose.skeletons import get_skeleton

COCO17 = get_skeleton("coco17")
MPII16 = get_skeleton("mpii16")
UNION21 = get_skeleton("coco_mpii21")
HALPE26 = get_skeleton("halpe26")
# Khan et al. 2024: MPII index i comes from this union index (docs/conventions.md).
MPII_FROM_UNION = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]


@pytest.fixture(scope="module")
def coco_gt() -> dict:
    return json.loads(require(FIXTURES / "coco" / "person_keypoints.json").read_text())


def _pycocotools_stats(gt: dict, results: list[dict], sigmas) -> np.ndarray:
    """pycocotools called directly, as a user would, on copies (it writes into its inputs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.array(sigmas)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def _perturbed(results: list[dict], seed: int, pixels: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for r in results:
        points = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
        points[:, :2] += rng.normal(0.0, pixels, size=(len(points), 2))
        points[:, 2] = rng.uniform(0.3, 1.0, size=len(points))
        out.append({**r, "keypoints": points.reshape(-1).tolist(), "score": float(rng.uniform(0.2, 1.0))})
    return out


# --- slicing a union model's output ------------------------------------------------------------------------------

def test_slice_to_skeleton_point_by_point():
    n = 3
    keypoints = np.stack([np.stack([np.arange(21) + 100 * p, -np.arange(21.0)], axis=-1) for p in range(n)])
    scores = np.tile(np.arange(21) / 100.0, (n, 1))
    mpii_kp, mpii_scores = slice_to_skeleton(keypoints, scores, UNION21, MPII16)
    coco_kp, coco_scores = slice_to_skeleton(keypoints, scores, UNION21, COCO17)
    assert mpii_kp.shape == (n, 16, 2) and mpii_scores.shape == (n, 16)
    for i, u in enumerate(MPII_FROM_UNION):
        np.testing.assert_array_equal(mpii_kp[:, i], keypoints[:, u])
        np.testing.assert_array_equal(mpii_scores[:, i], scores[:, u])
    np.testing.assert_array_equal(coco_kp, keypoints[:, :17])
    np.testing.assert_array_equal(coco_scores, scores[:, :17])


def test_slice_of_a_coco_only_model_leaves_mpii_only_points_empty():
    keypoints = np.ones((2, 17, 2))
    mpii_kp, mpii_scores = slice_to_skeleton(keypoints, np.ones((2, 17)), COCO17, MPII16)
    missing = [MPII16.index(n) for n in ("pelvis", "thorax", "upper_neck", "head_top")]
    assert (mpii_kp[:, missing] == 0).all() and (mpii_scores[:, missing] == 0).all()
    assert mpii_scores.sum() == 2 * 12  # the 12 shared points


def test_instance_score_is_box_score_times_mean_of_confident_points():
    box = np.array([0.9, 0.5, 1.0])
    points = np.array([[0.1, 0.5, 0.7], [0.2, 0.2, 0.1], [0.3, 0.9, 0.21]])
    # Row 0: mean(0.5, 0.7) = 0.6; row 1: nothing above 0.2 -> 0; row 2: mean(0.3, 0.9, 0.21) = 0.47.
    np.testing.assert_allclose(instance_score(box, points), [0.9 * 0.6, 0.0, 1.0 * 0.47])


# --- AP on the real fixtures -------------------------------------------------------------------------------------

def test_ground_truth_as_predictions_scores_one(coco_gt):
    result = coco_keypoint_ap(coco_gt, ground_truth_as_results(coco_gt), COCO17.sigmas, names=COCO17.names)
    assert all(result[name] == 1.0 for name in STAT_NAMES)
    assert result["num_people"] == 12 and result["num_results"] == 12
    assert all(v == 1.0 for v in result["per_keypoint"]["mean KS"])
    scored = [r for r in result["per_instance"] if r["oks"] is not None]
    assert len(scored) == 12 and all(r["oks"] == pytest.approx(1.0) for r in scored)


def test_matches_pycocotools_on_noisy_predictions_and_leaves_inputs_alone(coco_gt):
    results = _perturbed(ground_truth_as_results(coco_gt), seed=1, pixels=6.0)
    gt_before, results_before = copy.deepcopy(coco_gt), copy.deepcopy(results)
    ours = coco_keypoint_ap(coco_gt, results, COCO17.sigmas)
    expected = _pycocotools_stats(coco_gt, results, COCO17.sigmas)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], expected, rtol=0, atol=1e-12)
    assert 0.0 < ours["AP"] < 1.0
    assert coco_gt == gt_before and results == results_before


def test_per_instance_oks_and_keypoint_similarity_by_hand(coco_gt):
    results = ground_truth_as_results(coco_gt)
    target = results[0]
    points = np.asarray(target["keypoints"], dtype=np.float64).reshape(-1, 3)
    points[COCO17.index("left_wrist"), 0] += 10.0  # one point 10 px off
    results[0] = {**target, "keypoints": points.reshape(-1).tolist()}
    result = coco_keypoint_ap(coco_gt, results, COCO17.sigmas, names=COCO17.names)
    annotation = next(a for a in coco_gt["annotations"] if a["keypoints"] == target["keypoints"])
    sigma = COCO17.sigmas[COCO17.index("left_wrist")]
    similarity = np.exp(-(10.0 ** 2) / (2 * sigma) ** 2 / annotation["area"] / 2)
    labelled = annotation["num_keypoints"]
    person = next(r for r in result["per_instance"] if r["ann_id"] == annotation["id"])
    assert person["oks"] == pytest.approx((labelled - 1 + similarity) / labelled)
    assert person["result_index"] == 0
    column = dict(zip(result["per_keypoint"]["name"], result["per_keypoint"]["mean KS"]))
    count = dict(zip(result["per_keypoint"]["name"], result["per_keypoint"]["labelled"]))["left_wrist"]
    assert column["left_wrist"] == pytest.approx((count - 1 + similarity) / count)
    assert column["nose"] == 1.0


def test_box_area_option_equals_rewriting_the_areas(coco_gt):
    results = _perturbed(ground_truth_as_results(coco_gt), seed=2, pixels=5.0)
    boxed = copy.deepcopy(coco_gt)
    for a in boxed["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3]
    by_option = coco_keypoint_ap(coco_gt, results, COCO17.sigmas, use_area=False)
    assert by_option["object_scale"] == "box area"
    np.testing.assert_allclose([by_option[n] for n in STAT_NAMES], _pycocotools_stats(boxed, results, COCO17.sigmas))


def test_build_ground_truth_from_arrays_scores_like_the_file(coco_gt):
    """Rebuild the fixture's GT from arrays (as the trainer would from Instances) and score the same predictions."""
    annotations = coco_gt["annotations"]
    points = np.array([a["keypoints"] for a in annotations], dtype=np.float64).reshape(len(annotations), 17, 3)
    rebuilt = build_ground_truth(
        [a["image_id"] for a in annotations], np.array([a["bbox"] for a in annotations]), points[..., :2],
        points[..., 2].astype(int), np.array([a["area"] for a in annotations]), COCO17,
        ann_ids=[a["id"] for a in annotations])
    assert len(rebuilt["images"]) == 4
    assert [a["num_keypoints"] for a in rebuilt["annotations"]] == [a["num_keypoints"] for a in annotations]
    assert rebuilt["categories"][0]["keypoints"] == list(COCO17.names)
    results = _perturbed(ground_truth_as_results(coco_gt), seed=3, pixels=4.0)
    from_file = coco_keypoint_ap(coco_gt, results, COCO17.sigmas)
    from_arrays = coco_keypoint_ap(rebuilt, results, COCO17.sigmas)
    assert [from_arrays[n] for n in STAT_NAMES] == [from_file[n] for n in STAT_NAMES]


def test_union_model_scored_on_coco_through_slicing(coco_gt):
    """A 21-point prediction array, sliced to COCO's 17, scores exactly like the 17-point one."""
    truth = ground_truth_as_results(coco_gt)
    n = len(truth)
    coco_points = np.array([r["keypoints"] for r in truth]).reshape(n, 17, 3)
    union_points = np.zeros((n, 21, 2))
    union_points[:, :17] = coco_points[..., :2]
    union_points[:, 17:] = -50.0  # MPII-only points, which COCO must not see
    kp, scores = slice_to_skeleton(union_points, np.full((n, 21), 0.9), UNION21, COCO17)
    results = results_from_arrays([r["image_id"] for r in truth], kp, scores, instance_score(np.ones(n), scores))
    assert coco_keypoint_ap(coco_gt, results, COCO17.sigmas)["AP"] == 1.0


# --- GT in another skeleton: the paper's Halpe check ------------------------------------------------------------

def test_halpe_ground_truth_mapped_to_the_21_point_union():
    halpe = json.loads(require(FIXTURES / "coco" / "halpe136.json").read_text())
    thorax = {"thorax": ("left_shoulder", "right_shoulder")}
    mapped = ground_truth_in_skeleton(halpe, HALPE26, UNION21, derived=thorax, truncate=True)
    assert mapped["categories"][0]["keypoints"] == list(UNION21.names)
    for before, after in zip(halpe["annotations"], mapped["annotations"]):
        src = np.asarray(before["keypoints"], dtype=np.float64).reshape(136, 3)[:26]
        dst = np.asarray(after["keypoints"], dtype=np.float64).reshape(21, 3)
        np.testing.assert_array_equal(dst[:17], src[:17])  # COCO-17 unchanged
        np.testing.assert_array_equal(dst[UNION21.index("head_top")], src[HALPE26.index("head")])
        np.testing.assert_array_equal(dst[UNION21.index("upper_neck")], src[HALPE26.index("neck")])
        np.testing.assert_array_equal(dst[UNION21.index("pelvis")], src[HALPE26.index("hip")])
        left, right = src[5], src[6]
        if left[2] > 0 and right[2] > 0:
            np.testing.assert_allclose(dst[18], [*(left[:2] + right[:2]) / 2, min(left[2], right[2])])
        else:
            np.testing.assert_array_equal(dst[18], [0, 0, 0])
        assert after["num_keypoints"] == int((dst[:, 2] > 0).sum())
        assert after["bbox"] == before["bbox"] and after["area"] == before["area"]
    # The fixture's neck and hip are all zero (not labelled), head is labelled for most people.
    assert all(a["keypoints"][3 * 19 + 2] == 0 and a["keypoints"][3 * 17 + 2] == 0 for a in mapped["annotations"])
    result = coco_keypoint_ap(mapped, ground_truth_as_results(mapped), UNION21.sigmas, names=UNION21.names)
    assert result["AP"] == 1.0
    assert result["per_keypoint"]["labelled"][UNION21.index("upper_neck")] == 0
    assert result["per_keypoint"]["mean KS"][UNION21.index("upper_neck")] is None


def test_ground_truth_in_skeleton_refuses_a_count_mismatch_without_truncate():
    halpe = json.loads(require(FIXTURES / "coco" / "halpe136.json").read_text())
    with pytest.raises(GroundTruthError, match="136 keypoints.*truncate"):
        ground_truth_in_skeleton(halpe, HALPE26, UNION21)


# --- results files -----------------------------------------------------------------------------------------------

def test_results_file_round_trip(tmp_path, coco_gt):
    results = _perturbed(ground_truth_as_results(coco_gt), seed=4, pixels=2.0)
    results[0]["bbox"] = [1, 2, 3, 4]  # extra fields are dropped on writing
    path = write_results(tmp_path / "sub" / "results.json", results)
    again = read_results(path)
    assert "bbox" not in again[0] and len(again) == len(results)
    assert again[3]["keypoints"] == results[3]["keypoints"]


@pytest.mark.parametrize("change, message", [
    (lambda r: r[2].update(keypoints=r[2]["keypoints"][:-3]), r"result 2: field 'keypoints' has 16 keypoints"),
    (lambda r: r[1].update(image_id=999), r"result 1: field 'image_id' = 999 is not an image"),
    (lambda r: r[0].update(score=float("nan")), r"result 0: field 'score' must be a finite number"),
    (lambda r: r[4]["keypoints"].__setitem__(7, float("inf")),
     r"result 4: field 'keypoints' value 7 \(keypoint 2, y\)"),
    (lambda r: r[3].pop("category_id"), r"result 3: missing field 'category_id'"),
    (lambda r: r[5].update(category_id=2), r"result 5: field 'category_id' = 2 is not a category"),
])
def test_bad_results_name_file_record_and_field(tmp_path, coco_gt, change, message):
    results = copy.deepcopy(ground_truth_as_results(coco_gt))
    change(results)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(results))  # NaN and inf as JSON extensions, as some writers produce them
    with pytest.raises(ResultsError, match=message) as error:
        validate_results(read_results(path), 17, [i["id"] for i in coco_gt["images"]], [1], source=str(path))
    assert str(path) in str(error.value)


def test_wrong_keypoint_counts_are_caught_before_pycocotools(coco_gt):
    results = [{**r, "keypoints": r["keypoints"][:48]} for r in ground_truth_as_results(coco_gt)]
    with pytest.raises(ResultsError, match="result 0: field 'keypoints' has 16 keypoints .* skeleton has 17"):
        coco_keypoint_ap(coco_gt, results, COCO17.sigmas)
    with pytest.raises(GroundTruthError, match="has 17 keypoints, expected 16"):
        coco_keypoint_ap(coco_gt, [], MPII16.sigmas)  # sigmas of another skeleton than the GT's


def test_empty_prediction_set_gives_a_labelled_zero(coco_gt):
    result = coco_keypoint_ap(coco_gt, [], COCO17.sigmas)
    assert result["empty"] and result["num_results"] == 0
    assert all(result[name] == 0.0 for name in STAT_NAMES)
    assert result["num_people"] == 12 and all(v == 0.0 for v in result["per_keypoint"]["mean KS"])


def test_bad_ground_truth_names_the_annotation(coco_gt):
    broken = copy.deepcopy(coco_gt)
    del broken["annotations"][3]["num_keypoints"]
    with pytest.raises(GroundTruthError, match=r"annotation 3 \(id \d+\): missing field 'num_keypoints'"):
        coco_keypoint_ap(broken, [], COCO17.sigmas)

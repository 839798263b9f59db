"""Our COCO keypoint AP (faster-coco-eval underneath) against pycocotools itself: the ten numbers to 1e-9, and the
per-person matches, on the real fixtures and on randomised ground truth and predictions with every awkward case."""
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
from unionpose.eval import STAT_NAMES, coco_keypoint_ap, ground_truth_as_results, ground_truth_in_skeleton
from unionpose.eval.coco_oks import keypoint_oks_groups
from unionpose.skeletons import get_skeleton

COCO17 = get_skeleton("coco17")
WHOLEBODY = FIXTURES / "wholebody_eval_example"


def pycocotools_evaluator(gt: dict, results: list[dict], sigmas) -> COCOeval:
    """pycocotools called directly, as a user would, on copies (it writes into its inputs)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def best_matches(evaluator: COCOeval) -> dict[int, tuple[float, int]]:
    """Annotation id -> (best OKS, index of the result that gives it) of every scored person with a prediction in
    its image, from pycocotools' own OKS matrices (rows: the image's results by score, stable, at most maxDets)."""
    matches = {}
    for (image_id, category_id), oks in evaluator.ious.items():
        gts, dts = evaluator._gts[image_id, category_id], evaluator._dts[image_id, category_id]
        if len(oks) == 0:
            continue
        order = np.argsort([-d["score"] for d in dts], kind="mergesort")[:evaluator.params.maxDets[-1]]
        for j, g in enumerate(gts):
            if not g.get("iscrowd", 0) and g["num_keypoints"] > 0:
                best = int(np.argmax(oks[:, j]))
                matches[g["id"]] = (float(oks[best, j]), dts[order[best]]["id"] - 1)
    return matches


def assert_oks_equals_pycocotools(gt: dict, results: list[dict], sigmas, reference: COCOeval) -> None:
    """Our OKS matrices, all images at once, are pycocotools' per-image ones bit for bit."""
    k = len(sigmas)
    truth_points = np.asarray([a["keypoints"] for a in gt["annotations"]], dtype=np.float64).reshape(-1, k, 3)
    result_points = np.asarray([r["keypoints"] for r in results], dtype=np.float64).reshape(-1, k, 3)
    groups = keypoint_oks_groups(gt["annotations"], truth_points, results, result_points, np.asarray(sigmas),
                                 reference.params.maxDets[-1])
    compared = 0
    for key, expected in reference.ious.items():
        if len(expected):
            np.testing.assert_array_equal(groups[key].oks, expected)
            compared += 1
        elif key in groups:
            assert groups[key].oks.size == 0
    assert compared > 0


def assert_equals_pycocotools(gt: dict, results: list[dict], sigmas, **options) -> dict:
    """Our result for (gt, results) after checking its ten numbers, OKS matrices and per-person matches against
    pycocotools."""
    ours = coco_keypoint_ap(gt, results, sigmas, **options)
    reference = pycocotools_evaluator(gt, results, sigmas)
    assert_oks_equals_pycocotools(gt, results, sigmas, reference)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], reference.stats, rtol=0, atol=1e-9)
    matches = best_matches(reference)
    for person in ours["per_instance"]:
        if person["ann_id"] in matches:
            oks, index = matches[person["ann_id"]]
            assert person["oks"] == oks and person["result_index"] == index, person
        elif person["oks"] is not None:     # scored, no prediction in its image
            assert person["oks"] == 0.0 and person["result_index"] is None, person
    assert {p["ann_id"] for p in ours["per_instance"] if p["result_index"] is not None} == set(matches)
    return ours


# --- the real fixtures --------------------------------------------------------------------------------------------

def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    low, high = np.maximum(a[:2], b[:2]), np.minimum(a[:2] + a[2:], b[:2] + b[2:])
    inter = float(np.prod(np.clip(high - low, 0, None)))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_coco_fixture_with_a_pose_for_every_detected_box():
    """person_keypoints.json (crowds, people without keypoints) scored on one pose per box of the detections file:
    a box on a labelled person gets that person's points with noise, any other box points spread inside it; the
    box score is the pose score. Several boxes per person, false positives, people missed."""
    gt = json.loads(require(FIXTURES / "coco" / "person_keypoints.json").read_text())
    detections = json.loads(require(FIXTURES / "coco" / "person_detections.json").read_text())
    people = [a for a in gt["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        results = []
        for detection in detections:
            box = np.asarray(detection["bbox"], dtype=np.float64)
            same_image = [p for p in people if p["image_id"] == detection["image_id"]]
            overlaps = [_box_iou(box, np.asarray(p["bbox"], dtype=np.float64)) for p in same_image]
            if overlaps and max(overlaps) >= 0.5:
                points = np.asarray(same_image[int(np.argmax(overlaps))]["keypoints"], np.float64).reshape(-1, 3)
                xy = points[:, :2] + rng.normal(0.0, rng.uniform(1.0, 12.0), size=(17, 2))
            else:
                xy = box[:2] + rng.uniform(0.0, 1.0, size=(17, 2)) * box[2:]
            flat = np.concatenate([xy, rng.uniform(0.1, 1.0, size=(17, 1))], axis=1).reshape(-1)
            results.append({"image_id": detection["image_id"], "category_id": 1, "keypoints": flat.tolist(),
                            "score": float(detection["score"])})
        result = assert_equals_pycocotools(gt, results, COCO17.sigmas)
        assert 0.1 < result["AP"] < 1.0 and result["num_results"] == len(detections)


def test_wholebody_example_body_points():
    gt = json.loads(require(WHOLEBODY / "example_gt.json").read_text())
    predictions = json.loads((WHOLEBODY / "example_pred.json").read_text())
    results = [{key: p[key] for key in ("image_id", "category_id", "keypoints", "score")} for p in predictions]
    result = assert_equals_pycocotools(gt, results, COCO17.sigmas)
    assert 0.5 < result["AP"] < 1.0


def test_halpe_fixture_in_the_union_skeleton_with_its_own_sigmas():
    """Custom sigmas: Halpe's people mapped to the 21-point union (points it lacks unlabelled), scored with the
    union's sigmas on noisy copies of the truth."""
    halpe = json.loads(require(FIXTURES / "coco" / "halpe136.json").read_text())
    union = get_skeleton("coco_mpii21")
    gt = ground_truth_in_skeleton(halpe, get_skeleton("halpe26"), union,
                                  derived={"thorax": ("left_shoulder", "right_shoulder")}, truncate=True)
    rng = np.random.default_rng(5)
    results = []
    for record in ground_truth_as_results(gt):
        points = np.asarray(record["keypoints"], dtype=np.float64).reshape(-1, 3)
        points[:, :2] += rng.normal(0.0, 8.0, size=(len(points), 2))
        results.append({**record, "keypoints": points.reshape(-1).tolist(), "score": float(rng.uniform(0.2, 1))})
    result = assert_equals_pycocotools(gt, results, union.sigmas)
    assert 0.0 < result["AP"] < 1.0


# --- randomised ---------------------------------------------------------------------------------------------------

def random_case(seed: int) -> tuple[dict, list[dict], np.ndarray]:
    """Ground truth and predictions with the cases the evaluation treats specially.

    Ground truth: images without people, crowd regions (with and without points), people without labelled points,
    zero-area people, a second category with its own people, a listed category nobody belongs to, an annotation of
    an unlisted category; medium, large and small people; annotation ids from 0 for even seeds (pycocotools counts a
    match to id 0 as none). Predictions: noisy copies at several noise levels (OKS
    on both sides of every threshold), duplicates, false positives (also in images without people), an image with
    more predictions than maxDets, zero-extent poses, tied scores; some labelled people get no prediction and some
    images none at all. The keypoint count and sigmas change with the seed (a skeleton's own, or random ones).
    """
    rng = np.random.default_rng(seed)
    sigmas = [np.asarray(get_skeleton(name).sigmas) for name in ("coco17", "mpii16", "coco_wholebody133")]
    sigmas.append(rng.uniform(0.02, 0.12, size=int(rng.integers(5, 30))))
    sigmas = sigmas[seed % len(sigmas)]
    k = len(sigmas)
    images = [{"id": int(i)} for i in rng.choice(np.arange(1, 10_000), size=40, replace=False)]
    annotations, results = [], []

    def pose(box: np.ndarray, count: int) -> np.ndarray:
        return box[:2] + rng.uniform(0.0, 1.0, size=(count, 2)) * box[2:]

    for image in images:
        if rng.random() < 0.15:
            continue                                        # an image without people
        for _ in range(int(rng.integers(1, 7))):
            side = rng.choice([rng.uniform(8, 30), rng.uniform(35, 90), rng.uniform(100, 400)])
            box = np.array([*rng.uniform(0, 500, size=2), side * rng.uniform(0.4, 1.0), side])
            visible = rng.choice([0, 1, 2], p=[0.2, 0.2, 0.6], size=k)
            crowd = rng.random() < 0.06
            if rng.random() < 0.1 or (crowd and rng.random() < 0.5):
                visible[:] = 0                              # a person (or crowd region) without labelled points
            xy = np.where(visible[:, None] > 0, pose(box, k), 0.0)
            area = 0.0 if rng.random() < 0.05 else float(box[2] * box[3] * rng.uniform(0.4, 0.7))
            category = 2 if rng.random() < 0.1 else 1
            annotations.append({
                "id": len(annotations) + seed % 2, "image_id": image["id"], "category_id": category,
                "iscrowd": int(crowd),
                "bbox": box.tolist(), "area": area, "num_keypoints": int((visible > 0).sum()),
                "keypoints": np.concatenate([xy, visible[:, None]], axis=1).reshape(-1).tolist()})
            if crowd or rng.random() < 0.2:
                continue                                    # labelled people without a prediction
            for _ in range(1 + int(rng.random() < 0.15)):   # sometimes a duplicate
                spread = rng.choice([0.005, 0.01, 0.02, 0.04, 0.3]) * np.sqrt(box[2] * box[3])
                guess = np.where(visible[:, None] > 0, xy, pose(box, k)) + rng.normal(0, spread, size=(k, 2))
                results.append((image["id"], category, guess))
    annotations.append({**annotations[0], "id": len(annotations) + 1, "category_id": 7})  # not in 'categories'
    for _ in range(25):                                     # false positives, also where nobody is
        box = np.array([*rng.uniform(0, 500, size=2), *rng.uniform(10, 300, size=2)])
        results.append((int(rng.choice(images)["id"]), int(rng.choice([1, 1, 1, 2, 3])), pose(box, k)))
    crowded = images[int(rng.integers(len(images)))]["id"]
    for _ in range(30):                                     # beyond maxDets in one image
        results.append((crowded, 1, pose(np.array([*rng.uniform(0, 500, size=2), 80.0, 160.0]), k)))
    for _ in range(3):                                      # zero extent: every point at one place
        results.append((int(rng.choice(images)["id"]), 1, np.tile(rng.uniform(0, 500, size=2), (k, 1))))
    records = []
    for image_id, category, xy in results:
        score = float(np.round(rng.uniform(0.05, 1.0), 1))  # rounded: many ties
        flat = np.concatenate([xy, rng.uniform(0.0, 1.0, size=(k, 1))], axis=1).reshape(-1)
        records.append({"image_id": int(image_id), "category_id": category, "keypoints": flat.tolist(),
                        "score": score})
    order = rng.permutation(len(records))
    categories = [{"id": c, "name": name} for c, name in ((1, "person"), (2, "mannequin"), (3, "statue"))]
    gt = {"images": images, "annotations": annotations, "categories": categories}
    return gt, [records[i] for i in order], sigmas


@pytest.mark.parametrize("seed", range(8))
def test_randomised_predictions_equal_pycocotools(seed):
    gt, results, sigmas = random_case(seed)
    gt_before, results_before = copy.deepcopy(gt), copy.deepcopy(results)
    result = assert_equals_pycocotools(gt, results, sigmas)
    assert 0.0 < result["AP"] < 1.0 and 0.0 < result["AR"] < 1.0
    assert gt == gt_before and results == results_before


def test_randomised_with_the_box_area_as_scale():
    gt, results, sigmas = random_case(11)
    boxed = copy.deepcopy(gt)
    for annotation in boxed["annotations"]:
        annotation["area"] = annotation["bbox"][2] * annotation["bbox"][3]
    ours = coco_keypoint_ap(gt, results, sigmas, use_area=False)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], pycocotools_evaluator(boxed, results, sigmas).stats,
                               rtol=0, atol=1e-9)


def test_results_only_where_nobody_is():
    gt, _, sigmas = random_case(3)
    empty_images = sorted({i["id"] for i in gt["images"]} - {a["image_id"] for a in gt["annotations"]})
    rng = np.random.default_rng(0)
    results = [{"image_id": image_id, "category_id": 1, "score": 0.5,
                "keypoints": rng.uniform(0, 300, size=3 * len(sigmas)).tolist()} for image_id in empty_images]
    ours = coco_keypoint_ap(gt, results, sigmas)
    np.testing.assert_allclose([ours[name] for name in STAT_NAMES], pycocotools_evaluator(gt, results, sigmas).stats,
                               rtol=0, atol=1e-9)
    assert ours["AP"] == 0.0 and ours["num_results"] == len(empty_images) > 0
    assert all(p["result_index"] is None for p in ours["per_instance"])

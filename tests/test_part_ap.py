"""COCO AP per part of a skeleton, on the real COCO fixture, against pycocotools on hand-sliced data."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, require
from test_eval_coco import _perturbed, _pycocotools_stats

from unionpose.eval import ground_truth_as_results
from unionpose.eval.part_ap import part_ap
from unionpose.skeletons import get_skeleton

COCO17 = get_skeleton("coco17")
ARMS = ["left_elbow", "right_elbow", "left_wrist", "right_wrist"]
LEGS = ["left_knee", "right_knee", "left_ankle", "right_ankle"]


@pytest.fixture(scope="module")
def coco_gt() -> dict:
    return json.loads(require(FIXTURES / "coco" / "person_keypoints.json").read_text())


def test_part_ap_is_pycocotools_on_the_part_alone(coco_gt):
    results = _perturbed(ground_truth_as_results(coco_gt), seed=3, pixels=4.0)
    index = [COCO17.index(name) for name in ARMS]
    sliced_gt = json.loads(json.dumps(coco_gt))
    for annotation in sliced_gt["annotations"]:
        points = np.asarray(annotation["keypoints"], float).reshape(-1, 3)[index]
        annotation["keypoints"] = points.reshape(-1).tolist()
        annotation["num_keypoints"] = int((points[:, 2] > 0).sum())
    sliced_results = [{**r, "keypoints": np.asarray(r["keypoints"]).reshape(-1, 3)[index].reshape(-1).tolist()}
                      for r in results]
    expected = _pycocotools_stats(sliced_gt, sliced_results, [COCO17.sigmas[k] for k in index])
    assert part_ap(coco_gt, results, COCO17, ARMS)["AP"] == pytest.approx(expected[0], abs=1e-9)


def test_an_error_on_one_part_lowers_only_that_part(coco_gt):
    results = ground_truth_as_results(coco_gt)
    arms_off = [{**r, "keypoints": np.asarray(r["keypoints"], float).reshape(-1, 3).copy()} for r in results]
    for r in arms_off:
        for name in ARMS:
            r["keypoints"][COCO17.index(name), :2] += 25.0
        r["keypoints"] = r["keypoints"].reshape(-1).tolist()
    assert part_ap(coco_gt, results, COCO17, ARMS)["AP"] == pytest.approx(1.0)
    assert part_ap(coco_gt, arms_off, COCO17, ARMS)["AP"] < 0.5
    assert part_ap(coco_gt, arms_off, COCO17, LEGS)["AP"] == pytest.approx(1.0)


def test_unknown_points_are_refused(coco_gt):
    with pytest.raises(ValueError, match="head_top"):
        part_ap(coco_gt, [], COCO17, ["nose", "head_top"])

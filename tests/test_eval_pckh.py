"""MPII PCKh and box PCK: a hand-worked example, the standard mean and columns, real MPII joints, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FIXTURES, require
from unionpose.eval import head_size_from_boxes, pck_bbox, pckh
from unionpose.skeletons import get_skeleton

MPII = get_skeleton("mpii16").names
DIRECTION = np.array([0.6, 0.8])  # a 3-4-5 direction: offsets of 15 and 7.5 px are exact distances


def _hand_example():
    """Two people; the error of each joint (px) is chosen against thresholds worked out by hand below.

    Person A: head box (0, 0)-(30, 40), diagonal 50, head size 0.6 * 50 = 30 -> 15 px at 0.5, 3 px at 0.1.
    Person B: head box (0, 0)-(15, 20), diagonal 25, head size 15 -> 7.5 px at 0.5, 1.5 px at 0.1.
    None = joint not annotated (its prediction is absurd on purpose).
    """
    errors = {  # joint: (A, B)
        "right_ankle": (20, 7), "right_knee": (15, 8), "right_hip": (2, 1), "left_hip": (2.5, None),
        "left_knee": (0, 7.5), "left_ankle": (None, 0), "pelvis": (100, 0), "thorax": (0, 50),
        "upper_neck": (5, 1), "head_top": (16, 2), "right_wrist": (10, 9), "right_elbow": (0, 0),
        "right_shoulder": (4, 0), "left_shoulder": (0, None), "left_elbow": (14.9, 3), "left_wrist": (30, 7),
    }
    rng = np.random.default_rng(0)
    gt = rng.uniform(100, 900, size=(2, 16, 2))
    pred = gt.copy()
    visible = np.ones((2, 16), dtype=np.int64)
    for joint, per_person in errors.items():
        j = MPII.index(joint)
        for n, error in enumerate(per_person):
            if error is None:
                visible[n, j] = 0
                pred[n, j] = 1e6
            else:
                pred[n, j] += error * DIRECTION
    head_boxes = np.array([[0, 0, 30, 40], [0, 0, 15, 20]], dtype=np.float64)
    return pred, gt, visible, head_boxes


def test_head_size_is_six_tenths_of_the_head_box_diagonal():
    sizes = head_size_from_boxes(np.array([[0, 0, 30, 40], [10, 10, 25, 30]]))
    np.testing.assert_allclose(sizes, [30.0, 15.0])


def test_pckh_hand_worked_example():
    pred, gt, visible, head_boxes = _hand_example()
    result = pckh(pred, gt, visible, head_size_from_boxes(head_boxes))
    per_joint = dict(zip(MPII, result["per_keypoint"]["PCKh@0.5"]))
    # By hand at 0.5 (hits / annotated): ankles 1/2 and 1/1, knees 1/2 and 2/2, hips 2/2 and 1/1, pelvis 1/2,
    # thorax 1/2, upper neck 2/2, head top 1/2, wrists 1/2 and 1/2, elbows 2/2 and 2/2, shoulders 2/2 and 1/1.
    expected = {"right_ankle": 0.5, "right_knee": 0.5, "right_hip": 1.0, "left_hip": 1.0, "left_knee": 1.0,
                "left_ankle": 1.0, "pelvis": 0.5, "thorax": 0.5, "upper_neck": 1.0, "head_top": 0.5,
                "right_wrist": 0.5, "right_elbow": 1.0, "right_shoulder": 1.0, "left_shoulder": 1.0,
                "left_elbow": 1.0, "left_wrist": 0.5}
    assert per_joint == pytest.approx(expected)
    assert result["per_keypoint"]["annotated"] == [2, 2, 2, 1, 2, 1, 2, 2, 2, 2, 2, 2, 2, 1, 2, 2]
    # Mean without pelvis and thorax, pooled: 20 hits over 25 annotated joints (the plain mean of the 14 joint
    # rates would be 11.5 / 14 = 0.821: annotation counts must weigh).
    assert result["PCKh@0.5"] == pytest.approx(20 / 25)
    # At 0.1: A hits right hip, left hip, left knee, right elbow, left shoulder; B hits right hip, left ankle,
    # upper neck, right elbow, right shoulder -> 10 / 25.
    assert result["PCKh@0.1"] == pytest.approx(10 / 25)
    assert result["columns"] == pytest.approx({
        "Head": 0.75, "Shoulder": 1.0, "Elbow": 1.0, "Wrist": 0.5, "Hip": 1.0, "Knee": 0.75, "Ankle": 0.75,
        "Mean": 0.8, "Mean@0.1": 0.4})
    assert result["num_people"] == 2


def test_pckh_same_origin_shift_changes_nothing():
    """Adding 1 to both (0-based -> MPII's 1-based pixels) gives the same numbers; only a one-sided shift matters."""
    pred, gt, visible, head_boxes = _hand_example()
    size = head_size_from_boxes(head_boxes)
    base = pckh(pred, gt, visible, size)
    shifted = pckh(pred + 1.0, gt + 1.0, visible, size)
    assert shifted["per_keypoint"] == base["per_keypoint"] and shifted["columns"] == base["columns"]
    one_sided = pckh(pred + 1.0, gt, visible, size)
    assert one_sided["PCKh@0.1"] != base["PCKh@0.1"]


def test_pckh_joint_never_annotated_is_none_and_skipped():
    pred, gt, visible, head_boxes = _hand_example()
    visible[:, MPII.index("head_top")] = 0
    result = pckh(pred, gt, visible, head_size_from_boxes(head_boxes))
    assert result["per_keypoint"]["PCKh@0.5"][MPII.index("head_top")] is None
    assert result["columns"]["Head"] == pytest.approx(1.0)  # upper neck alone
    assert result["PCKh@0.5"] == pytest.approx(19 / 23)
    json.dumps(result, allow_nan=False)  # JSON-safe: no NaN anywhere


def test_pckh_on_real_mpii_joints():
    """The MPII fixture's joints (0-based) against themselves and against a known displacement of some joints."""
    records = json.loads(require(FIXTURES / "mpii" / "mpii_annotations.json").read_text())
    gt = np.array([r["joints"] for r in records], dtype=np.float64)
    visible = np.array([r["joints_vis"] for r in records])
    # The fixture carries no head boxes; for this test the head size is the head-top to upper-neck distance.
    head_size = np.linalg.norm(gt[:, MPII.index("head_top")] - gt[:, MPII.index("upper_neck")], axis=1)
    assert pckh(gt, gt, visible, head_size)["PCKh@0.5"] == 1.0
    pred = gt.copy()
    wrists = [MPII.index("left_wrist"), MPII.index("right_wrist")]
    pred[:, wrists, 0] += 0.6 * head_size[:, None]  # wrists 0.6 head sizes off: misses at 0.5
    result = pckh(pred, gt, visible, head_size)
    annotated = visible[:, [j for j, n in enumerate(MPII) if n not in ("pelvis", "thorax")]].sum()
    assert result["PCKh@0.5"] == pytest.approx(1 - visible[:, wrists].sum() / annotated)
    assert result["columns"]["Wrist"] == 0.0 and result["columns"]["Elbow"] == 1.0


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(pred=a["pred"][:, :15]), "pred"),
    (lambda a: a.update(head_size=np.array([30.0, 0.0])), "person 1"),
    (lambda a: a["pred"].__setitem__((0, 3, 0), np.nan), r"pred\[0, 3\]"),
])
def test_pckh_bad_input_names_the_problem(change, message):
    pred, gt, visible, head_boxes = _hand_example()
    arrays = {"pred": pred, "gt": gt, "visible": visible, "head_size": head_size_from_boxes(head_boxes)}
    change(arrays)
    with pytest.raises(ValueError, match=message):
        pckh(**arrays)


def test_pck_bbox_uses_the_longer_box_side():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[:, :, 0] = [[19, 21, 5], [9, 11, 0]]  # x errors in px
    visible = np.array([[2, 1, 0], [2, 2, 2]])
    boxes = np.array([[0, 0, 50, 100], [0, 0, 50, 20]], dtype=np.float64)  # longer sides 100 and 50 -> 20, 10 px
    result = pck_bbox(pred, gt, visible, boxes, threshold=0.2, names=["a", "b", "c"])
    # Person 0: 19 hit, 21 miss, third not annotated; person 1: 9 hit, 11 miss, 0 hit -> 3 / 5.
    assert result["PCK@0.2"] == pytest.approx(3 / 5)
    assert result["per_keypoint"]["PCK@0.2"] == pytest.approx([1.0, 0.0, 1.0])
    assert result["per_keypoint"]["annotated"] == [2, 2, 1]

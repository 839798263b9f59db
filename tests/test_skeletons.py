"""The skeleton algebra: presets, union order, mappings, validation errors, CLI."""
from __future__ import annotations

import numpy as np
import pytest

from unionpose.cli import main
from unionpose.skeletons import (Skeleton, SkeletonError, get_skeleton, keypoint_mapping, load_skeleton_file,
                                 preset_names, union)

PAPER_21 = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
            "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee",
            "left_ankle", "right_ankle", "pelvis", "thorax", "upper_neck", "head_top"]
MPII_TO_UNION = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]


def test_every_preset_loads_and_validates():
    expected = {"coco17": 17, "mpii16": 16, "halpe26": 26, "coco_wholebody133": 133, "crowdpose14": 14, "aic14": 14,
                "posetrack17": 17, "mediapipe_pose33": 33, "mediapipe_hand21": 21, "face68": 68, "coco_mpii21": 21}
    assert set(expected) <= set(preset_names())
    for name, k in expected.items():
        s = get_skeleton(name)
        assert s.num_keypoints == k == len(s.sigmas)
        assert sorted(s.flip_indices[s.flip_indices]) == list(range(k))  # an involution
        assert np.array_equal(s.flip_indices[s.flip_indices], np.arange(k))


def test_union_is_the_papers_21_point_order():
    u = union(get_skeleton("coco17"), get_skeleton("mpii16"))
    assert list(u.names) == PAPER_21
    assert u == get_skeleton("coco_mpii21")
    # flip: left/right swap, pelvis/thorax/upper_neck/head_top map to themselves
    assert list(u.flip_indices[17:]) == [17, 18, 19, 20]
    assert u.flip_indices[5] == 6 and u.flip_indices[15] == 16 and u.flip_indices[0] == 0
    # sigmas come from the first skeleton that has the point
    assert u.sigmas[:17] == get_skeleton("coco17").sigmas
    assert u.sigmas[17:] == get_skeleton("mpii16").sigmas[6:10]


def test_mpii_and_coco_mappings_into_the_union():
    u = get_skeleton("coco_mpii21")
    mpii, coco = get_skeleton("mpii16"), get_skeleton("coco17")
    assert list(keypoint_mapping(u, mpii).src_index) == MPII_TO_UNION
    into_union = keypoint_mapping(mpii, u)
    assert into_union.missing == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    assert list(keypoint_mapping(u, coco).src_index) == list(range(17))
    assert keypoint_mapping(coco, u).missing == ["pelvis", "thorax", "upper_neck", "head_top"]


def test_mapping_round_trips():
    rng = np.random.default_rng(0)
    u = get_skeleton("coco_mpii21")
    for name in ("coco17", "mpii16"):
        s = get_skeleton(name)
        points = rng.normal(size=(3, s.num_keypoints, 2))
        there = keypoint_mapping(s, u).apply(points)
        back = keypoint_mapping(u, s).apply(there)
        np.testing.assert_array_equal(back, points)
        scores = rng.random(s.num_keypoints)
        np.testing.assert_array_equal(keypoint_mapping(u, s).apply(keypoint_mapping(s, u).apply(scores)), scores)
    # the union's missing points are filled, not invented
    there = keypoint_mapping(get_skeleton("mpii16"), u).apply(np.ones((16, 2)), fill=-1.0)
    assert (there[:5] == -1).all() and (there[5:] == 1).all()


def test_aliases_match_halpe_and_mpii_by_name():
    halpe, u = get_skeleton("halpe26"), get_skeleton("coco_mpii21")
    m = keypoint_mapping(halpe, u)
    assert m.src_index[u.index("head_top")] == halpe.names.index("head")
    assert m.src_index[u.index("upper_neck")] == halpe.names.index("neck")
    assert m.src_index[u.index("pelvis")] == halpe.names.index("hip")
    assert m.missing == ["thorax"]


def test_derived_points_only_where_declared():
    halpe, u = get_skeleton("halpe26"), get_skeleton("coco_mpii21")
    m = keypoint_mapping(halpe, u, derived={"thorax": ("left_shoulder", "right_shoulder")})
    assert m.mask.all()
    points = np.zeros((26, 2))
    points[5], points[6] = (10, 20), (30, 40)
    assert tuple(m.apply(points)[u.index("thorax")]) == (20, 30)
    visible = np.full(26, 2)
    visible[6] = 1
    assert m.apply(visible, reduce="min")[u.index("thorax")] == 1
    with pytest.raises(SkeletonError, match="already has"):
        keypoint_mapping(halpe, u, derived={"pelvis": ("left_hip", "right_hip")})
    with pytest.raises(SkeletonError, match="lacks"):
        keypoint_mapping(get_skeleton("mpii16"), u, derived={"nose": ("left_eye", "right_eye")})


def test_wholebody_parts_and_hand_flip_pairs():
    wb = get_skeleton("coco_wholebody133")
    sizes = {part: len(members) for part, members in wb.parts.items()}
    assert sizes == {"body": 17, "feet": 6, "face": 68, "left_hand": 21, "right_hand": 21}
    assert wb.parts["left_hand"] == tuple(range(91, 112)) and wb.parts["right_hand"] == tuple(range(112, 133))
    for i in range(21):
        assert wb.flip_indices[91 + i] == 112 + i and wb.flip_indices[112 + i] == 91 + i
    assert wb.flip_indices[23] == 23 + 16  # jaw ends swap (300-W order)
    assert wb.flip_indices[23 + 30] == 23 + 30  # nose tip stays
    assert wb.names[17:23] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
                               "right_heel")


def test_posetrack_slots_and_user_yaml_round_trip(tmp_path):
    pt = get_skeleton("posetrack17")
    assert pt.names[1:3] == ("head_bottom", "head_top")
    path = tmp_path / "mine.yaml"
    path.write_text(get_skeleton("halpe26").to_yaml())
    assert load_skeleton_file(path) == get_skeleton("halpe26")
    assert Skeleton.from_dict(get_skeleton("coco_wholebody133").to_dict()) == get_skeleton("coco_wholebody133")


GOOD = """
name: tiny
names: [nose, left_eye, right_eye, neck]
sigmas: [0.026, 0.025, 0.025, 0.079]
flip_pairs: [[left_eye, right_eye]]
links: [[nose, left_eye], [nose, right_eye], [nose, neck]]
"""


@pytest.mark.parametrize("change, message", [
    (("names: [nose, left_eye, right_eye, neck]", "names: [nose, left_eye, right_eye, nose]"), "duplicate keypoint name 'nose'"),
    (("names: [nose, left_eye, right_eye, neck]", "names: [nose, left_eye, right_eye, upper_neck]"), None),
    (("names: [nose, left_eye, right_eye, neck]", "names: [head, left_eye, right_eye, head_top]"),
     "both are 'head_top' through the alias table"),
    (("flip_pairs: [[left_eye, right_eye]]", "flip_pairs: []"), "'left_eye' has no flip partner although 'right_eye'"),
    (("flip_pairs: [[left_eye, right_eye]]", "flip_pairs: [[left_eye, nose]]"), "not a left/right twin"),
    (("flip_pairs: [[left_eye, right_eye]]", "flip_pairs: [[left_eye, right_ey]]"), "unknown point 'right_ey' \\(did you mean 'right_eye'"),
    (("names: [nose, left_eye, right_eye, neck]", "names: [nose, left_eye, neck, chin]"), "flip_pairs\\[0\\] names unknown point 'right_eye'"),
    (("sigmas: [0.026, 0.025, 0.025, 0.079]", "sigmas: [0.026, 0.025, 0.025]"), "'sigmas' has 3 values but there are 4 names"),
    (("links: [[nose, left_eye], [nose, right_eye], [nose, neck]]", "links: [[nose, left_eye], [nose, chin]]"), "links\\[1\\] names unknown point 'chin'"),
    (("name: tiny", "name: tiny\ncolour: red"), "unknown field\\(s\\) \\['colour'\\]"),
    (("sigmas: [0.026, 0.025, 0.025, 0.079]", "sigmas: [0.026, 0.025, 0.025, -1]"), "sigma of 'neck' must be a positive"),
])
def test_validation_errors_name_file_field_and_point(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(*change))
    if message is None:  # an alias-renamed point is fine
        assert load_skeleton_file(path).num_keypoints == 4
        return
    with pytest.raises(SkeletonError, match=message) as info:
        load_skeleton_file(path)
    assert str(path) in str(info.value) or "tiny" in str(info.value)


def test_missing_flip_partner_without_twin(tmp_path):
    path = tmp_path / "lonely.yaml"
    path.write_text("names: [nose, left_eye]\nsigmas: [0.02, 0.02]\n")
    with pytest.raises(SkeletonError, match="flip partner of 'left_eye' is missing"):
        load_skeleton_file(path)


def test_unknown_preset_suggests_close_names():
    with pytest.raises(SkeletonError, match="did you mean coco17"):
        get_skeleton("coco18")


def test_cli_union_prints_order_and_mpii_mapping(capsys, tmp_path):
    out = tmp_path / "union.yaml"
    assert main(["skeleton", "union", "coco17", "mpii16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert ",".join(map(str, MPII_TO_UNION)) in text
    assert "lacks: nose, left_eye, right_eye, left_ear, right_ear" in text
    assert load_skeleton_file(out) == get_skeleton("coco_mpii21")
    assert main(["skeleton", "list"]) == 0
    assert "coco_wholebody133" in capsys.readouterr().out
    assert main(["skeleton", "show", "coco18"]) == 1
    assert "did you mean" in capsys.readouterr().err


def test_cli_show_draws_a_readable_picture(tmp_path, capsys):
    import cv2

    png = tmp_path / "wb.png"
    assert main(["skeleton", "show", "coco_wholebody133", "--draw", str(png)]) == 0
    table = capsys.readouterr().out
    assert " 91  left_hand_wrist        right_hand_wrist" in table
    image = cv2.imread(str(png))
    assert image.shape == (1400, 1000, 3)
    # every point is drawn at its template position in its part colour
    from unionpose.skeletons.template import template_positions

    wb = get_skeleton("coco_wholebody133")
    for k, (x, y) in enumerate(template_positions(wb)):
        assert tuple(int(v) for v in image[int(round(y)), int(round(x))]) != (40, 40, 40), wb.names[k]

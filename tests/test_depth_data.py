"""Issue 15, the 3D data contract: `keypoints_3d` read and checked, carried through remapping and crops, and the
synthetic people's 3D truth (camera space, pelvis-relative, in body heights)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unionpose.core.depth import DepthCodec
from unionpose.core.errors import DataError
from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.dataset import TopDownDataset
from unionpose.data.instance import remap_instances
from unionpose.data.readers.coco import read_coco
from unionpose.skeletons import get_skeleton, keypoint_mapping
from unionpose.synthetic import generate

UNION = "coco_mpii21"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic3d")
    generate(folder, num_train=4, num_val=3, seed=3)
    return folder


def format_keypoints_3d(points: np.ndarray, annotated_z: np.ndarray) -> list[float | None]:
    """The flat `keypoints_3d` list: null triples where a point has no 3D label."""
    flat: list[float | None] = []
    for point, labelled in zip(points.tolist(), annotated_z.tolist()):
        flat += point if labelled else [None, None, None]
    return flat


def _coco_file(tmp_path: Path, keypoints_3d) -> Path:
    keypoints = []
    for k in range(17):
        keypoints += [10.0 + k, 20.0 + k, 2]
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [5, 5, 50, 60],
                             "keypoints": keypoints, "keypoints_3d": keypoints_3d}]}
    path = tmp_path / "people.json"
    path.write_text(json.dumps(data))
    return path


def test_keypoints_3d_are_read_with_their_own_mask(tmp_path):
    points = np.arange(51, dtype=np.float64).reshape(17, 3) / 100
    labelled = np.ones(17, bool)
    labelled[[3, 4]] = False                       # the ears: labelled in 2D, not in 3D
    [person], _ = read_coco(_coco_file(tmp_path, format_keypoints_3d(points, labelled)), tmp_path)
    assert person.annotated.all() and person.annotated_z.tolist() == labelled.tolist()
    assert np.allclose(person.keypoints_3d[labelled], points[labelled]) and (person.keypoints_3d[~labelled] == 0).all()


def test_a_2d_file_has_no_3d(tmp_path):
    [person], _ = read_coco(_coco_file(tmp_path, None), tmp_path)
    assert person.keypoints_3d is None and person.annotated_z is None


@pytest.mark.parametrize("values, message", [
    ([0.0] * 50, "expected a list of 51 numbers or nulls"),
    ([0.0] * 3 + [float("nan")] + [0.0] * 47, r"keypoint 1 \(left_eye\) is not finite"),
    ([0.0] * 6 + [None, 0.0, 0.0] + [0.0] * 42, r"keypoint 2 \(right_eye\) has some of x, y, z null"),
    (["0"] * 51, "values must be numbers or null"),
])
def test_bad_3d_labels_are_one_line_errors_naming_file_record_and_field(tmp_path, values, message):
    path = _coco_file(tmp_path, values)
    with pytest.raises(DataError, match=message) as error:
        read_coco(path, tmp_path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text and "annotation id 7" in text and "'keypoints_3d'" in text


def test_remapping_into_the_union_keeps_3d_and_leaves_new_points_unlabelled(tmp_path):
    points = np.arange(51, dtype=np.float64).reshape(17, 3) / 100
    [person], _ = read_coco(_coco_file(tmp_path, format_keypoints_3d(points, np.ones(17, bool))), tmp_path)
    [mapped] = remap_instances([person], keypoint_mapping(get_skeleton("coco17"), get_skeleton(UNION)))
    assert mapped.keypoints_3d.shape == (21, 3) and mapped.annotated_z.tolist() == [True] * 17 + [False] * 4
    assert np.allclose(mapped.keypoints_3d[:17], points)


def test_synthetic_3d_truth_is_pelvis_relative_camera_space_in_body_heights(synthetic):
    """Orthographic camera: the 3D x, y are the 2D pixels minus the pelvis's, over the figure's height in pixels."""
    data = json.loads((synthetic / "full21_val.json").read_text())
    assert data["info"]["keypoints_3d_unit"] == "body_height"
    assert "keypoints_3d" not in json.loads((synthetic / "coco17.json").read_text())["annotations"][0]
    people, _ = read_coco(synthetic / "full21_val.json", synthetic / "images", skeleton=UNION)
    pelvis = get_skeleton(UNION).index("pelvis")
    for person in people:
        assert person.annotated_z.all() and np.allclose(person.keypoints_3d[pelvis], 0)
        assert np.abs(person.keypoints_3d[:, 2]).max() < 0.5           # within half a body height of the pelvis
        shown = person.visible > 0
        pixels = person.keypoints[shown] - person.keypoints[shown].mean(axis=0)
        units = person.keypoints_3d[shown, :2] - person.keypoints_3d[shown, :2].mean(axis=0)
        scale = (pixels * units).sum() / (pixels * pixels).sum()      # 1 / the height in pixels
        assert scale > 0 and np.abs(pixels * scale - units).max() < 2e-3


def test_crops_carry_depth_targets_and_a_mirror_swaps_them(synthetic):
    people, _ = read_coco(synthetic / "full21_val.json", synthetic / "images", skeleton=UNION)
    skeleton = get_skeleton(UNION)
    depth = DepthCodec()
    codec = SimCCCodec((64, 64))

    def item(flip: float) -> dict:
        config = AugmentConfig(flip_prob=flip, half_body_prob=0.0, shift_prob=0.0, rotation_prob=0.0,
                               scale_range=(1.0, 1.0), blur_prob=0.0, median_blur_prob=0.0, dropout_prob=0.0,
                               hsv_prob=0.0)
        augmenter = TopDownAugmenter(config, (64, 64), skeleton.flip_indices)
        return TopDownDataset(people, augmenter, codec, depth_codec=depth, seed=1)[(0, 0, 0)]

    plain, mirrored = item(0.0), item(1.0)
    expected, _ = depth.encode(people[0].keypoints_3d[:, 2], people[0].annotated_z)
    assert np.allclose(plain["target_z"].numpy(), expected) and plain["target_z_weight"].min() == 1
    assert np.allclose(mirrored["target_z"].numpy(), expected[skeleton.flip_indices]) and mirrored["flipped"]

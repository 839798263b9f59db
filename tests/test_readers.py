"""Every real fixture read by its reader, with the instance and keypoint counts checked against the files."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import DATA, FIXTURES, require
from unionpose.core.images import load_image, verify_image
from unionpose.data.readers import read_coco, read_detections, read_image_table, read_mpii
from unionpose.skeletons import get_skeleton

# (format, annotations, images, read, kept, skipped by reason, keypoints per person, labelled points, annotated points)
# "labelled" = points with visibility > 0 over the kept people, counted from the JSON files by hand-checked scripts.
# Differences from data/README.md's counts: the README counts people; the readers drop people without any labelled
# keypoint (COCO 14 -> 12, WholeBody 14 -> 12, Halpe 14 -> 12, CrowdPose 5 -> 4, WholeBody example 26 -> 24) and
# crowd boxes (coco_train_mini: 172 boxes = 86 people with keypoints + 81 without + 5 crowd).
FIXTURE_CASES = [
    ("coco", "coco/person_keypoints.json", "coco/images", 14, 12, {"no_keypoints": 2}, 17, 181, 12 * 17),
    ("coco_wholebody", "coco/coco_wholebody.json", "coco/images", 14, 12, {"no_keypoints": 2}, 133, 701, 746),
    # Halpe: 136 points, neck and hip never labelled, so 134 annotated per person.
    ("halpe136", "coco/halpe136.json", "coco/images", 14, 12, {"no_keypoints": 2}, 136, 856, 12 * 134),
    ("crowdpose", "crowdpose/test_crowdpose.json", "crowdpose/images", 5, 4, {"no_keypoints": 1}, 14, 47, 4 * 14),
    ("aic", "aic/test_aic.json", "aic/images", 9, 9, {}, 14, 101, 9 * 14),
    ("ochuman", "ochuman/test_ochuman.json", "ochuman/images", 5, 5, {}, 17, 73, 5 * 17),
    # PoseTrack18: the per-video files of val/ (1 + 2 + 11 people); the ears are never labelled (15 annotated).
    ("posetrack18", "posetrack18/annotations/val", "posetrack18", 14, 14, {}, 17, 182, 14 * 15),
    ("posetrack18", "posetrack18/annotations/test_posetrack18_val.json", "posetrack18", 14, 14, {}, 17, 182, 14 * 15),
    ("coco_wholebody", "wholebody_eval_example/example_gt.json", "wholebody_eval_example/images", 26, 24,
     {"no_keypoints": 2}, 133, 1827, 1913),
    ("coco", "../coco_train_mini/person_keypoints_train2017.json", "../coco_train_mini/images", 172, 86,
     {"crowd": 5, "no_keypoints": 81}, 17, 800, 86 * 17),
]


@pytest.mark.parametrize("fmt, annotations, images, read, kept, skipped, k, labelled, annotated", FIXTURE_CASES,
                         ids=[f"{c[0]}:{Path(c[1]).name}" for c in FIXTURE_CASES])
def test_fixture_counts(fmt, annotations, images, read, kept, skipped, k, labelled, annotated):
    path = require(FIXTURES / annotations)
    instances, report = read_coco(path, FIXTURES / images, fmt, dataset="fixture")
    assert (report.read, report.kept, dict(report.skipped)) == (read, kept, skipped)
    assert report.problems == []
    assert len(instances) == kept
    assert all(i.keypoints.shape == (k, 2) and i.visible.shape == (k,) and i.annotated.shape == (k,) for i in instances)
    assert sum(int((i.visible > 0).sum()) for i in instances) == labelled
    assert sum(int(i.annotated.sum()) for i in instances) == annotated
    for i in instances:
        assert i.keypoints.dtype == np.float32 and i.visible.dtype == np.int8 and i.annotated.dtype == bool
        assert Path(i.image).is_file(), i.image
        assert not (i.visible > 0)[~i.annotated].any(), "a point is visible but not annotated"
        h, w = i.image_size
        x, y, bw, bh = i.box
        assert 0 <= x and 0 <= y and x + bw <= w - 1 + 1e-3 and y + bh <= h - 1 + 1e-3 and bw >= 1 and bh >= 1
        assert i.dataset == "fixture"


def test_coco_values_and_box_clipping():
    instances, _ = read_coco(require(FIXTURES / "coco/person_keypoints.json"), FIXTURES / "coco/images")
    first = instances[0]
    assert (first.ann_id, first.image_id, first.image_size) == (442619, 785, (425, 640))
    assert first.image == str(FIXTURES / "coco/images/000000000785.jpg")
    np.testing.assert_allclose(first.box, [280.79, 44.73, 218.7, 346.68], rtol=1e-6)
    np.testing.assert_allclose(first.keypoints[:2], [[367, 81], [374, 73]])
    assert first.visible[:2].tolist() == [2, 2]
    # coco_train_mini annotation 217498: x + w = 640 = the image width, clipped to the last pixel column (639).
    mini_dir = require(DATA / "coco_train_mini")
    mini, _ = read_coco(mini_dir / "person_keypoints_train2017.json", mini_dir / "images")
    clipped = next(i for i in mini if i.ann_id == 217498)
    np.testing.assert_allclose(clipped.box, [534.89, 88.19, 639 - 534.89, 130.71], rtol=1e-5)


def test_wholebody_parts_and_valid_flags():
    instances, _ = read_coco(require(FIXTURES / "coco/coco_wholebody.json"), FIXTURES / "coco/images", "coco_wholebody")
    skeleton = get_skeleton("coco_wholebody133")
    parts = skeleton.parts
    by_id = {i.ann_id: i for i in instances}
    person = by_id[442619]        # lefthand_valid false, righthand / face / foot valid
    assert not person.annotated[list(parts["left_hand"])].any()
    assert person.annotated[list(parts["right_hand"])].all() and person.annotated[list(parts["face"])].all()
    assert person.annotated[list(parts["feet"])].all() and person.annotated[:17].all()
    np.testing.assert_allclose(person.keypoints[17], [439, 378])            # foot_kpts[0]
    np.testing.assert_allclose(person.keypoints[23], [355.823, 75.36])          # face_kpts[0]
    np.testing.assert_allclose(person.keypoints[112], [304.10366, 181.75134])  # righthand_kpts[0]
    assert person.visible[23] == 1 and person.visible[112] == 1
    # Annotation 531914's right hand carries label scores (0.04 .. 0.37) instead of flags: labelled -> visible 1.
    scored = by_id[531914]
    right = list(parts["right_hand"])
    assert scored.annotated[right].all() and set(scored.visible[right].tolist()) == {1}


def test_halpe_and_posetrack_quirks():
    halpe, _ = read_coco(require(FIXTURES / "coco/halpe136.json"), FIXTURES / "coco/images", "halpe136")
    skeleton = get_skeleton("halpe26+coco_wholebody133")
    for name in ("neck", "hip"):            # zero throughout the file: not annotated
        assert not any(i.annotated[skeleton.index(name)] for i in halpe)
    assert all(i.annotated[skeleton.index("head")] for i in halpe)
    assert sum(i.visible[skeleton.index("head")] > 0 for i in halpe) == 12

    folder, _ = read_coco(require(FIXTURES / "posetrack18/annotations/val"), FIXTURES / "posetrack18", "posetrack18")
    merged, _ = read_coco(FIXTURES / "posetrack18/annotations/test_posetrack18_val.json", FIXTURES / "posetrack18",
                          "posetrack18")
    assert sorted(i.ann_id for i in folder) == sorted(i.ann_id for i in merged)
    person = next(i for i in folder if i.ann_id == 1012834000000)
    np.testing.assert_allclose(person.head_box, [378, 503, 378 + 44, 503 + 53])   # bbox_head as x1, y1, x2, y2
    assert person.track_id == 0 and person.image_size == (1080, 1920)
    np.testing.assert_allclose(person.keypoints[1], [409.5254211, 555.3547363])       # head_bottom
    assert not person.annotated[[3, 4]].any() and person.annotated[[0, 1, 2, 5]].all()
    assert sorted({i.track_id for i in folder}) == list(range(11))
    assert all(Path(i.image).is_file() for i in folder)


def test_category_names_checked_against_the_skeleton():
    # AIC names its points "Right Shoulder", "Head top", "Neck": canonical names match aic14.
    instances, _ = read_coco(require(FIXTURES / "aic/test_aic.json"), FIXTURES / "aic/images", "aic")
    aic = get_skeleton("aic14")
    np.testing.assert_allclose(instances[0].keypoints[aic.index("head_top")], [395, 74])
    np.testing.assert_allclose(instances[0].keypoints[aic.index("neck")], [372, 170])


def test_mpii_center_scale_box():
    instances, report = read_mpii(require(FIXTURES / "mpii/mpii_annotations.json"), FIXTURES / "mpii/images")
    assert (report.read, report.kept) == (5, 5)
    assert all(i.keypoints.shape == (16, 2) and i.annotated.all() and i.head_box is None for i in instances)
    assert sum(int((i.visible > 0).sum()) for i in instances) == 5 * 16 - 4   # two records lack both ankles
    first = instances[0]          # 005808361.jpg, center (966, 340), scale 4.718488
    side = 200 * 4.718488
    center_x, center_y = 966 - 1, 340 + 15 * 4.718488 - 1
    np.testing.assert_allclose(first.box, [center_x - side / 2, center_y - side / 2, side, side], rtol=1e-6)
    np.testing.assert_allclose(first.keypoints[0], [804, 711])
    assert first.image == str(FIXTURES / "mpii/images/005808361.jpg") and first.ann_id == 0 and first.image_id == 0
    assert [i.image_id for i in instances] == [0, 1, 2, 3, 4]


def test_mpii_head_box(tmp_path):
    records = json.loads(require(FIXTURES / "mpii/mpii_annotations.json").read_text())
    records[1]["head_box"] = [300, 100, 340, 150]
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(records))
    instances, _ = read_mpii(path, FIXTURES / "mpii/images")
    np.testing.assert_allclose(instances[1].head_box, [300, 100, 340, 150])
    assert instances[0].head_box is None


@pytest.mark.parametrize("name, count, images", [
    ("coco/person_detections.json", 118, "coco/person_keypoints.json"),
    ("crowdpose/test_crowdpose_det_AP_40.json", 6, "crowdpose/test_crowdpose.json"),
    ("posetrack18/annotations/test_posetrack18_human_detections.json", 278, None),
])
def test_detection_files(name, count, images):
    table = None if images is None else read_image_table(FIXTURES / images, FIXTURES / Path(images).parent / "images")
    detections, report = read_detections(require(FIXTURES / name), table)
    assert (report.read, report.kept) == (count, count)
    assert all(d.category_id == 1 and d.box.shape == (4,) and d.box[2] >= 1 for d in detections)
    if table is not None:
        assert all(Path(d.image).is_file() and d.image_size == (table[d.image_id].height, table[d.image_id].width)
                   for d in detections)


def test_detection_filters(tmp_path):
    path = require(FIXTURES / "coco/person_detections.json")
    detections, report = read_detections(path, score_threshold=0.3)
    assert (report.kept, dict(report.skipped)) == (33, {"low_score": 85})
    assert min(d.score for d in detections) >= 0.3
    raw = json.loads(path.read_text())
    raw[0]["category_id"] = 3
    raw[1]["bbox"] = [700.0, 10.0, 20.0, 20.0]     # right of the 640-wide image
    altered = tmp_path / "dets.json"
    altered.write_text(json.dumps(raw))
    table = read_image_table(FIXTURES / "coco/person_keypoints.json", FIXTURES / "coco/images")
    _, report = read_detections(altered, table)
    assert dict(report.skipped) == {"other_category": 1, "outside_image": 1} and report.kept == 116
    _, report = read_detections(altered, category_ids=(1, 3))
    assert report.kept == 118


def test_load_and_verify_fixture_images():
    paths = sorted(require(FIXTURES).rglob("*.jpg")) + sorted((DATA / "coco_train_mini/images").glob("*.jpg"))[:10]
    assert len(paths) >= 30
    for path in paths:
        image = load_image(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert verify_image(path) == image.shape[:2]      # header size == decoded size
        np.testing.assert_array_equal(image, cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION))


def test_load_image_converts_gray_alpha_and_16_bit(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    np.testing.assert_array_equal(load_image(tmp_path / "gray.png", (6, 5)), np.repeat(gray[..., None], 3, axis=2))
    bgra = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), bgra[..., :3])
    deep = rng.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    np.testing.assert_array_equal(load_image(tmp_path / "deep.png"), (deep >> 8).astype(np.uint8))
    assert verify_image(tmp_path / "deep.png", (6, 5)) == (6, 5)

"""The synthetic people benchmark: deterministic, valid COCO/MPII files, ground truth that lands on the drawing."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from unionpose.cli import main
from unionpose.synthetic import PRESETS, SynthParams, generate, image_rng, is_annotated, preset_name, render_image
from unionpose.synthetic.figure import (
    HIGHLIGHT,
    SHADOW,
    Style,
    draw_figure,
    keypoint_visibility,
    place_figure,
    sample_body,
    shade,
)
from unionpose.skeletons import get_skeleton, keypoint_mapping

UNION = get_skeleton("coco_mpii21")
COCO = get_skeleton("coco17")
MPII = get_skeleton("mpii16")
WIDTH, HEIGHT = 320, 256
FILES = ("coco17.json", "mpii16.json", "coco17_val.json", "mpii16_val.json", "full21_val.json", "full21.json",
         "synth_meta.json")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "seed3"
    assert main(["synth", "--out", str(out), "--train", "8", "--val", "4", "--seed", "3"]) == 0
    return out


def _load(path: Path):
    return json.loads(path.read_text())


def _all_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_for_any_worker_count(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", 8, 4, seed=3, workers=2)
    first, second = _all_bytes(dataset), _all_bytes(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.startswith("images/")]) == 12
    for name in first:
        assert first[name] == second[name], name


def test_different_seed_gives_different_images(dataset: Path, tmp_path: Path) -> None:
    generate(tmp_path / "other", 8, 4, seed=4)
    first, other = _all_bytes(dataset), _all_bytes(tmp_path / "other")
    assert first["images/train_000000.jpg"] != other["images/train_000000.jpg"]
    assert first["full21_val.json"] != other["full21_val.json"]


def test_render_image_is_a_pure_function_of_its_generator() -> None:
    image_a, persons_a = render_image(image_rng(11, "val", 5))
    image_b, persons_b = render_image(image_rng(11, "val", 5))
    assert image_a.shape == (HEIGHT, WIDTH, 3) and image_a.dtype == np.uint8
    assert np.array_equal(image_a, image_b)
    assert all(np.array_equal(a.keypoints, b.keypoints) for a, b in zip(persons_a, persons_b))
    assert not np.array_equal(image_a, render_image(image_rng(11, "train", 5))[0])   # the split is in the seed


# ------------------------------------------------------------------------------------------------------ formats
def _check_coco(data: dict, skeleton, file_prefix: str, num_images: int) -> None:
    assert [c["keypoints"] for c in data["categories"]] == [list(skeleton.names)]
    assert data["categories"][0]["skeleton"] == [[a + 1, b + 1] for a, b in skeleton.links]
    images = {im["id"]: im for im in data["images"]}
    assert len(images) == num_images
    assert all(im["file_name"].startswith(file_prefix) and (im["width"], im["height"]) == (WIDTH, HEIGHT)
               for im in images.values())
    assert len({a["id"] for a in data["annotations"]}) == len(data["annotations"]) > 0
    for ann in data["annotations"]:
        assert ann["image_id"] in images and ann["category_id"] == 1 and ann["iscrowd"] == 0
        kp = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        assert kp.shape == (skeleton.num_keypoints, 3)
        assert set(kp[:, 2]) <= {0, 1, 2}
        assert ann["num_keypoints"] == int(np.count_nonzero(kp[:, 2]))
        labelled = kp[:, 2] > 0
        assert np.all(kp[~labelled, :2] == 0)
        assert np.all((kp[labelled, 0] >= 0) & (kp[labelled, 0] <= WIDTH - 1))
        assert np.all((kp[labelled, 1] >= 0) & (kp[labelled, 1] <= HEIGHT - 1))
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= WIDTH and y + h <= HEIGHT and w > 0 and h > 0
        assert 0 < ann["area"] <= w * h
        # every labelled point is on the person: inside its box (up to the limb's rounding)
        assert np.all((kp[labelled, 0] >= x - 1) & (kp[labelled, 0] <= x + w + 1))
        assert np.all((kp[labelled, 1] >= y - 1) & (kp[labelled, 1] <= y + h + 1))


def test_coco_files_are_valid(dataset: Path) -> None:
    _check_coco(_load(dataset / "coco17.json"), COCO, "train_", num_images=4)
    _check_coco(_load(dataset / "coco17_val.json"), COCO, "val_", num_images=4)
    _check_coco(_load(dataset / "full21_val.json"), UNION, "val_", num_images=4)
    coco_train = {im["file_name"] for im in _load(dataset / "coco17.json")["images"]}
    assert coco_train == {f"train_{i:06d}.jpg" for i in range(4)}          # the first half of the train images


def _check_mpii(records: list, prefix: str) -> None:
    assert isinstance(records, list) and records
    for r in records:
        assert r["image"].startswith(prefix)
        joints, vis = np.array(r["joints"], dtype=np.float64), np.array(r["joints_vis"])
        assert joints.shape == (16, 2) and vis.shape == (16,) and set(vis) <= {0, 1}
        assert np.all(joints[vis == 0] == -1)
        inside = joints[vis == 1]
        assert np.all((inside >= 0) & (inside <= [WIDTH - 1, HEIGHT - 1]))
        # read back with MPII's convention (box side 200*scale, centre y + 15*scale, 1-based centre): holds the joints
        side = 200 * r["scale"]
        cx, cy = r["center"][0] - 1, r["center"][1] + 15 * r["scale"] - 1
        assert np.all(np.abs(inside - [cx, cy]) <= side / 2)
        x1, y1, x2, y2 = r["head_box"]
        assert x2 - x1 == pytest.approx(y2 - y1, abs=0.02) and x2 > x1
        head_top, upper_neck = joints[MPII.index("head_top")], joints[MPII.index("upper_neck")]
        if vis[MPII.index("head_top")] and vis[MPII.index("upper_neck")]:
            middle = (head_top + upper_neck) / 2
            assert np.allclose(middle, [(x1 + x2) / 2, (y1 + y2) / 2], atol=0.02)
            assert np.linalg.norm(head_top - upper_neck) <= (x2 - x1) + 0.02       # the square spans the head


def test_mpii_files_are_valid(dataset: Path) -> None:
    train = _load(dataset / "mpii16.json")
    _check_mpii(train, "train_")
    assert {r["image"] for r in train} <= {f"train_{i:06d}.jpg" for i in range(4, 8)}   # the second half
    _check_mpii(_load(dataset / "mpii16_val.json"), "val_")


def test_validation_files_describe_the_same_people(dataset: Path) -> None:
    """coco17_val and mpii16_val are full21_val restricted to each dataset's points, matched by name."""
    full = _load(dataset / "full21_val.json")
    coco = _load(dataset / "coco17_val.json")
    mpii = _load(dataset / "mpii16_val.json")
    files = {im["id"]: im["file_name"] for im in full["images"]}
    assert len(full["annotations"]) == len(coco["annotations"]) == len(mpii)
    to_coco = keypoint_mapping(UNION, COCO).src_index
    to_mpii = keypoint_mapping(UNION, MPII).src_index
    for whole, part, record in zip(full["annotations"], coco["annotations"], mpii):
        kp = np.array(whole["keypoints"]).reshape(21, 3)
        assert np.array_equal(kp[to_coco], np.array(part["keypoints"]).reshape(17, 3))
        assert part["bbox"] == whole["bbox"] and part["image_id"] == whole["image_id"]
        assert record["image"] == files[whole["image_id"]]
        labelled = kp[to_mpii, 2] > 0
        assert np.array_equal(np.array(record["joints_vis"]), labelled.astype(int))
        assert np.allclose(np.array(record["joints"])[labelled], kp[to_mpii][labelled, :2])


def test_meta_records_the_run(dataset: Path) -> None:
    assert all((dataset / name).is_file() for name in FILES)
    meta = _load(dataset / "synth_meta.json")
    assert (meta["seed"], meta["train_images"], meta["val_images"]) == (3, 8, 4)
    assert (meta["coco_train_images"], meta["mpii_train_images"]) == (4, 4)
    assert meta["people"]["mpii16.json"] == len(_load(dataset / "mpii16.json"))
    assert meta["params"]["width"] == WIDTH and meta["person_filter"]["min_area"] > 0
    assert meta["preset"] == "benchmark"


def test_full21_labels_every_train_person_with_all_points(dataset: Path) -> None:
    """full21.json = coco17.json + mpii16.json people, each with all 21 points (the pretraining file)."""
    full, coco = _load(dataset / "full21.json"), _load(dataset / "coco17.json")
    assert len(full["images"]) == 8
    assert len(full["annotations"]) == len(coco["annotations"]) + len(_load(dataset / "mpii16.json"))
    assert full["categories"][0]["keypoints"] == list(UNION.names)
    to_coco = keypoint_mapping(UNION, COCO).src_index
    for whole, part in zip(full["annotations"], coco["annotations"]):   # the COCO half comes first, in order
        kp = np.array(whole["keypoints"]).reshape(-1, 3)
        assert np.array_equal(kp[to_coco].ravel(), np.array(part["keypoints"]))


def test_demo_preset_faces_the_camera_and_is_recorded(tmp_path: Path) -> None:
    meta = generate(tmp_path / "demo", 4, 2, seed=5, params=PRESETS["demo"])
    assert meta["preset"] == "demo" and meta["params"]["yaw_spread"] == PRESETS["demo"].yaw_spread
    assert preset_name(SynthParams(clutter=0.3)) == "custom"
    # Facing the camera within the spread: the nose is seen (visible 2) far more often than in the benchmark.
    def seen_noses(params: SynthParams) -> float:
        persons = [p for i in range(24) for p in render_image(image_rng(9, "train", i), params)[1] if is_annotated(p)]
        return float(np.mean([p.visible[0] == 2 for p in persons]))

    assert seen_noses(PRESETS["demo"]) > seen_noses(PRESETS["benchmark"]) + 0.15


def test_synth_command_offers_every_preset(tmp_path: Path) -> None:
    for name in PRESETS:
        assert main(["synth", "--out", str(tmp_path / name), "--train", "2", "--val", "1", "--preset", name]) == 0
        assert _load(tmp_path / name / "synth_meta.json")["preset"] == name


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 train images"):
        generate(tmp_path / "x", 1, 1, seed=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="busy.*not empty"):
        generate(tmp_path / "busy", 2, 1, seed=0)


# ----------------------------------------------------------------------------------------------------- drawing
# A palette where every part has its own colour, so a pixel tells which part it belongs to.
PALETTE = Style(
    skin=(140, 170, 220), hair=(0, 120, 0), shirt=(200, 40, 40), forearm=(140, 170, 220), trousers=(40, 40, 160),
    shin=(40, 40, 160), shoes=(255, 0, 255), belt=(120, 0, 120), buckle=(0, 255, 255), collar=(255, 255, 0),
    eye_white=(240, 240, 240), pupil=(10, 10, 10), nose=(0, 0, 255), ear=(0, 128, 128), mouth=(80, 0, 80),
)
BACKGROUND = (128, 128, 128)
# The colours each keypoint may show when visible (the part it sits on, or the part that joins there).
EXPECTED = {
    "nose": {"nose"}, "left_eye": {"pupil"}, "right_eye": {"pupil"}, "left_ear": {"ear"}, "right_ear": {"ear"},
    "left_shoulder": {"shirt"}, "right_shoulder": {"shirt"}, "left_elbow": {"shirt", "skin"},
    "right_elbow": {"shirt", "skin"}, "left_wrist": {"skin"}, "right_wrist": {"skin"},
    "left_hip": {"trousers", "belt"}, "right_hip": {"trousers", "belt"}, "left_knee": {"trousers"},
    "right_knee": {"trousers"}, "left_ankle": {"trousers", "shoes"}, "right_ankle": {"trousers", "shoes"},
    "pelvis": {"belt", "buckle", "trousers"}, "thorax": {"collar", "skin", "shirt"}, "upper_neck": {"skin", "hair"},
    "head_top": {"hair"},
}
SMALL_PARTS = {"nose", "left_eye", "right_eye", "left_ear", "right_ear", "head_top"}   # checked at the exact pixel


def _palette() -> tuple[np.ndarray, list[str]]:
    colors, labels = [BACKGROUND], ["background"]
    for name in ("skin", "hair", "shirt", "trousers", "shoes", "belt", "buckle", "collar", "eye_white", "pupil",
                 "nose", "ear", "mouth"):
        for factor in (SHADOW, 1.0, HIGHLIGHT):
            colors.append(shade(getattr(PALETTE, name), factor))
            labels.append(name)
    return np.array(colors, dtype=np.float64), labels


def _render_alone(seed: int, yaw: float, roll: float = 0.0):
    rng = np.random.default_rng(seed)
    figure = place_figure(sample_body(rng), PALETTE, UNION.names, yaw=yaw, roll=roll, height=230.0,
                          centre=(WIDTH / 2, HEIGHT / 2))
    image = np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    ids = np.zeros((HEIGHT, WIDTH), dtype=np.uint16)
    draw_figure(image, ids, figure, 32, light=np.array([-0.6, -0.8]))
    return image, figure, keypoint_visibility(ids, figure, 32)


def _misplaced_points(image: np.ndarray, keypoints: np.ndarray, visible: np.ndarray) -> list[str]:
    """Names of visible keypoints whose pixel (or, for limbs, 3x3 neighbourhood) shows none of the expected colours."""
    colors, labels = _palette()
    wrong = []
    for k, name in enumerate(UNION.names):
        if visible[k] != 2:
            continue
        x, y = round(keypoints[k, 0]), round(keypoints[k, 1])
        radius = 0 if name in SMALL_PARTS else 1
        patch = image[max(y - radius, 0):y + radius + 1, max(x - radius, 0):x + radius + 1].reshape(-1, 3)
        nearest = np.argmin(((patch[:, None, :].astype(np.float64) - colors[None]) ** 2).sum(-1), axis=1)
        if not {labels[i] for i in nearest} & EXPECTED[name]:
            wrong.append(name)
    return wrong


def test_visible_keypoints_land_on_their_body_parts() -> None:
    """Draw single figures in many poses and views on a plain background: the pixel under every visible keypoint
    has the colour of its own part (pupil at the eyes, nose colour at the nose, hair at the head top ...)."""
    checked = 0
    for seed in range(24):
        image, figure, visible = _render_alone(seed, yaw=seed * 2 * math.pi / 24, roll=math.radians(seed * 7 - 80))
        assert _misplaced_points(image, figure.keypoints, visible) == [], f"seed {seed}"
        checked += int(np.count_nonzero(visible == 2))
    assert checked > 24 * 12


def test_the_colour_check_catches_misplaced_points() -> None:
    """The check above is not vacuous: keypoints moved by a few pixels (a wrong offset or scale) fail it."""
    failures = 0
    for seed in range(6):
        image, figure, visible = _render_alone(seed, yaw=0.3 * seed)
        moved = figure.keypoints + 5.0
        failures += len(_misplaced_points(image, moved, visible))
    assert failures >= 12


def test_left_and_right_follow_the_view() -> None:
    """The person's left is on the image right when they face the camera, on the image left from behind;
    the face (eyes, nose) is only visible from the front."""
    left_shoulder, right_shoulder = UNION.index("left_shoulder"), UNION.index("right_shoulder")
    left_hip, right_hip = UNION.index("left_hip"), UNION.index("right_hip")
    face = [UNION.index(n) for n in ("nose", "left_eye", "right_eye")]
    front_face_visible = 0
    for seed in range(12):
        _, front, front_visible = _render_alone(seed, yaw=0.0)
        _, back, back_visible = _render_alone(seed, yaw=math.pi)
        assert front.keypoints[left_shoulder, 0] > front.keypoints[right_shoulder, 0]
        assert front.keypoints[left_hip, 0] > front.keypoints[right_hip, 0]
        assert back.keypoints[left_shoulder, 0] < back.keypoints[right_shoulder, 0]
        assert back.keypoints[left_hip, 0] < back.keypoints[right_hip, 0]
        assert np.all(back_visible[face] == 1)                   # inside the image, hidden by the head
        front_face_visible += int(np.count_nonzero(front_visible[face] == 2))
    assert front_face_visible >= 12 * 3 * 0.7                   # seen from the front unless a hand covers it


def test_scenes_have_occlusion_truncation_and_a_working_filter() -> None:
    counts = {0: 0, 1: 0, 2: 0}
    kept = dropped = 0
    for index in range(30):
        _, persons = render_image(image_rng(0, "train", index))
        for person in persons:
            for v in (0, 1, 2):
                counts[v] += int(np.count_nonzero(person.visible == v))
            if is_annotated(person):
                kept += 1
                assert person.area >= 600 and np.count_nonzero(person.visible) >= 8
            else:
                dropped += 1
    assert counts[1] > 0.1 * counts[2]              # occlusion is common
    assert counts[0] > 0                            # so is truncation at the image edge
    assert kept > 30 and dropped > 0

"""`unionpose data show`: augmented crops with their targets drawn where the targets are, deterministic by seed."""
from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA, FIXTURES, REPO, require

from unionpose.cli import main
from unionpose.data.augment import AugmentConfig, TopDownAugmenter, sample_rng
from unionpose.data.mixture import UnionMixture
from unionpose.data.preview import (
    CAPTION_HEIGHT,
    ZOOM,
    crop_rotation,
    denormalise,
    draw_crop,
    pick_instances,
    preview_dataset,
    write_previews,
)
from unionpose.core.transforms import normalise
from unionpose.data.config import load_data_config
from unionpose.skeletons import get_skeleton

CONFIG = REPO / "configs/data/coco_mini_mpii_fixture.yaml"
UNION = get_skeleton("coco_mpii21")
CROP_NAME = re.compile(r"\d\d_(coco|mpii)_ann\d+\.png")
GREY = (128, 128, 128)


@pytest.fixture(scope="module")
def train_mixture() -> UnionMixture:
    require(DATA / "coco_train_mini")
    require(FIXTURES / "mpii")
    config = load_data_config(CONFIG)
    return UnionMixture(config.data.train, config.skeleton)


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory, train_mixture: UnionMixture) -> Path:
    out = tmp_path_factory.mktemp("show") / "seed3"
    assert main(["data", "show", str(CONFIG), "--out", str(out), "--count", "6", "--seed", "3"]) == 0
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_show_writes_one_png_per_crop_and_a_sheet(shown: Path) -> None:
    names = sorted(_files(shown))
    crops = [n for n in names if n != "contact_sheet.png"]
    assert "contact_sheet.png" in names and len(crops) == 6
    assert all(CROP_NAME.fullmatch(n) for n in crops), crops
    assert {n.split("_")[1] for n in crops} == {"coco", "mpii"}     # the 5-person MPII set is not drowned out
    tile = cv2.imread(str(shown / crops[0]))
    assert tile.shape == (256 * ZOOM + CAPTION_HEIGHT, 192 * ZOOM, 3)
    sheet = cv2.imread(str(shown / "contact_sheet.png"))
    assert sheet.shape[0] > 2 * tile.shape[0] and sheet.shape[1] > 4 * tile.shape[1]   # 6 tiles: 2 rows of 4


def test_show_is_deterministic_by_seed(shown: Path, tmp_path: Path) -> None:
    assert main(["data", "show", str(CONFIG), "--out", str(tmp_path / "again"), "--count", "6", "--seed", "3"]) == 0
    assert _files(tmp_path / "again") == _files(shown)
    assert main(["data", "show", str(CONFIG), "--out", str(tmp_path / "other"), "--count", "6", "--seed", "4"]) == 0
    assert _files(tmp_path / "other") != _files(shown)


def test_drawn_points_sit_on_the_decoded_targets(train_mixture: UnionMixture, tmp_path: Path) -> None:
    """Each PNG shows its own item: at every supervised, visible point's (zoomed) target position the tile has that
    point's colour, and mostly not 4 pixels away (so a misplaced or unscaled drawing fails)."""
    crops, _ = write_previews(train_mixture, tmp_path, count=6, seed=11)
    dataset = preview_dataset(train_mixture, (256, 192), AugmentConfig(), seed=11)
    colors = np.array(UNION.point_colors())
    hits = shifted_hits = checked = 0
    for position, crop in enumerate(crops):
        item = dataset[(0, position, crop.instance_index)]
        keypoints, _ = dataset.codec.decode(item["target_x"].numpy(), item["target_y"].numpy())
        tile = cv2.imread(str(crop.path)).astype(np.int64)
        drawn = (item["target_weight"].numpy() > 0) & (item["visible"].numpy() == 2)
        assert crop.visible_points == int(drawn.sum())
        for k in np.flatnonzero(drawn):
            x, y = np.round((keypoints[k] + 0.5) * ZOOM - 0.5).astype(int)
            checked += 1
            hits += int(np.abs(tile[y, x] - colors[k]).max() <= 40)
            sx, sy = min(x + 4 * ZOOM, tile.shape[1] - 1), y
            shifted_hits += int(np.abs(tile[sy, sx] - colors[k]).max() <= 40)
    assert checked >= 20
    assert hits >= 0.9 * checked and shifted_hits <= 0.4 * checked


def test_not_annotated_points_are_left_out_and_occluded_ones_drawn_faint() -> None:
    skeleton = get_skeleton("coco17")
    crop = np.full((64, 48, 3), GREY, dtype=np.uint8)
    keypoints = np.tile([[24.0, 32.0]], (17, 1))
    keypoints[0] = (10, 10)      # nose: visible
    keypoints[5] = (38, 10)      # left shoulder: occluded
    keypoints[9] = (10, 54)      # left wrist: neither (not annotated, or outside the crop)
    visible = np.zeros(17, dtype=bool)
    occluded = np.zeros(17, dtype=bool)
    visible[0], occluded[5] = True, True
    image = draw_crop(crop, keypoints, visible, occluded, skeleton).astype(np.int64)
    colors = skeleton.point_colors()

    def pixel(point: tuple[float, float]) -> np.ndarray:
        x, y = (round((v + 0.5) * ZOOM - 0.5) for v in point)
        return image[y, x]

    assert np.array_equal(pixel(keypoints[0]), colors[0])                  # filled in full colour
    faint = pixel(keypoints[5])
    assert not np.array_equal(faint, colors[5]) and not np.array_equal(faint, GREY)   # a blend of both
    ring = max(2, round(1.5 * ZOOM)) + 2                                  # radius of the ring
    x, y = (round((v + 0.5) * ZOOM - 0.5) for v in keypoints[5])
    assert np.abs(image[y, x + ring] - colors[5]).max() < 90                # the ring around it
    x, y = (round((v + 0.5) * ZOOM - 0.5) for v in keypoints[9])
    assert np.all(image[y - 6:y + 7, x - 6:x + 7] == GREY)                 # nothing drawn there
    assert np.count_nonzero((image != GREY).any(axis=2)) < 400            # only the two points and no link


def test_val_split_shows_plain_crops(tmp_path: Path, train_mixture: UnionMixture) -> None:
    require(FIXTURES / "coco")
    config = load_data_config(CONFIG)
    crops, _ = write_previews(UnionMixture(config.data.val, config.skeleton), tmp_path, count=4, seed=0,
                              augment=AugmentConfig(enabled=False))
    assert [c.dataset for c in crops] == ["coco", "mpii", "coco", "mpii"]
    assert all(not c.flipped and c.rotation == 0 for c in crops)


def test_mild_augmentation_rotates_less(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    require(DATA / "coco_train_mini")
    assert main(["data", "show", str(CONFIG), "--out", str(tmp_path), "--count", "12", "--seed", "1", "--mild"]) == 0
    rotations = [abs(float(r)) for r in re.findall(r"rotation ([-+]\d+)", capsys.readouterr().out)]
    assert len(rotations) == 12 and max(rotations) <= 60 and max(rotations) > 0      # mild: rotation factor 60


def test_rotation_caption_matches_the_augmentation() -> None:
    augmenter = TopDownAugmenter(AugmentConfig(half_body_prob=0.0), (256, 192), UNION.flip_indices)
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    keypoints = np.random.default_rng(0).uniform(20, 100, size=(21, 2))
    seen_flip = seen_flipped_rotation = False
    for index in range(30):
        crop = augmenter(image, np.array([20.0, 20.0, 80.0, 90.0]), keypoints, np.full(21, 2), np.ones(21, bool),
                         sample_rng(0, 0, index))
        assert crop_rotation(crop.matrix, crop.flipped) == pytest.approx(crop.rotation, abs=1e-6)
        seen_flip |= crop.flipped
        seen_flipped_rotation |= crop.flipped and abs(crop.rotation) > 10
    assert seen_flip and seen_flipped_rotation


def test_denormalise_inverts_the_model_input() -> None:
    bgr = np.random.default_rng(1).integers(0, 256, size=(8, 6, 3), dtype=np.uint8)
    assert np.array_equal(denormalise(normalise(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))), bgr)


def test_pick_instances_takes_datasets_in_turn(train_mixture: UnionMixture) -> None:
    picked = pick_instances(train_mixture, 14, seed=2)
    datasets = [train_mixture[i].dataset for i in picked]
    assert datasets[:10] == ["coco", "mpii"] * 5 and datasets[10:] == ["coco"] * 4    # MPII has only 5 people
    assert len(set(picked)) == 14 and picked == pick_instances(train_mixture, 14, seed=2)


def test_bad_requests_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    require(DATA / "coco_train_mini")
    assert main(["data", "show", str(CONFIG), "--out", str(tmp_path), "--count", "0"]) == 1
    assert "count must be at least 1" in capsys.readouterr().err
    only_train = tmp_path / "train_only.yaml"
    only_train.write_text(f"data:\n  train:\n    - {{name: mpii, format: mpii, annotations: "
                          f"{FIXTURES / 'mpii/mpii_annotations.json'}, images: {FIXTURES / 'mpii/images'}}}\n")
    assert main(["data", "show", str(only_train), "--out", str(tmp_path), "--split", "val"]) == 1
    assert "data.val lists no datasets" in capsys.readouterr().err

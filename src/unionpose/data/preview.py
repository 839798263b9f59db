"""Previews of training crops with their targets drawn: a look at what the model is taught, after augmentation."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from unionpose.core.atomic import write_image_atomic
from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB
from unionpose.core.draw import draw_pose
from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.dataset import TopDownDataset, half_body_split
from unionpose.data.mixture import UnionMixture
from unionpose.skeletons import Skeleton

ZOOM = 2                        # crops are small (192x256); drawn at twice the size so the points can be told apart
OCCLUDED_STRENGTH = 0.45        # occluded points (visible=1) and their links are blended in at this strength
CAPTION_HEIGHT = 22
SHEET_COLUMNS = 4
SHEET_GAP = 6
SHEET_BACKGROUND = (40, 40, 40)
TEXT_COLOR = (235, 235, 235)
LEGEND = ("filled: visible=2   faint + ring: visible=1 (occluded; MPII files mark every labelled point 1)   "
          "not drawn: not annotated by the dataset, or outside the crop")


@dataclass
class PreviewCrop:
    """One crop written by `write_previews`: which person it shows and how it was augmented."""

    path: Path
    dataset: str
    instance_index: int         # index in the mixture
    ann_id: int                 # annotation id (COCO) or record index (MPII) in the dataset's file
    flipped: bool
    rotation: float             # degrees, counter-clockwise on the image
    visible_points: int         # points drawn filled
    occluded_points: int        # points drawn faint with a ring


def pick_instances(mixture: UnionMixture, count: int, seed: int) -> list[int]:
    """`count` mixture indices, taken from the datasets in turn (each in a seeded random order), so that a small
    dataset beside a big one still shows up; deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    orders = [list(entry.start + rng.permutation(entry.stop - entry.start)) for entry in mixture.datasets]
    picked: list[int] = []
    while len(picked) < count and any(orders):
        for order in orders:
            if order and len(picked) < count:
                picked.append(int(order.pop(0)))
    return picked


def preview_dataset(mixture: UnionMixture, input_size_hw: tuple[int, int], augment: AugmentConfig,
                    seed: int) -> TopDownDataset:
    """The training dataset over `mixture` as the trainer builds it (flip indices, half-body split, codec)."""
    skeleton = mixture.skeleton
    upper, lower = half_body_split(skeleton)
    augmenter = TopDownAugmenter(augment, input_size_hw, skeleton.flip_indices, upper, lower)
    return TopDownDataset(mixture, augmenter, SimCCCodec(input_size_hw), seed=seed,
                          dataset_names=[entry.source.name for entry in mixture.datasets])


def write_previews(mixture: UnionMixture, out_dir: str | Path, *, count: int = 8, seed: int = 0,
                   augment: AugmentConfig | None = None, input_size_hw: tuple[int, int] = (256, 192)
                   ) -> tuple[list[PreviewCrop], Path]:
    """Write `count` crops of `mixture` as the training dataset makes them, with their SimCC targets decoded and
    drawn, one PNG each, plus `contact_sheet.png`. Returns the crops and the sheet's path.

    The points drawn are the decoded targets (argmax of target_x / target_y) of the points with a target weight, so
    the picture shows exactly what the loss supervises: a point the dataset does not annotate, or one outside the
    crop, is not drawn. `augment` defaults to RTMPose's recipe; the same seed gives the same files.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if not len(mixture):
        raise ValueError("the datasets hold no instances to preview")
    augment = augment if augment is not None else AugmentConfig()
    dataset = preview_dataset(mixture, input_size_hw, augment, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    crops, tiles = [], []
    for position, index in enumerate(pick_instances(mixture, count, seed)):
        item = dataset[(0, position, index)]
        instance = mixture[index]
        keypoints, _ = dataset.codec.decode(item["target_x"].numpy(), item["target_y"].numpy())
        supervised = item["target_weight"].numpy() > 0
        visible = item["visible"].numpy()
        flipped = bool(item["flipped"])
        rotation = crop_rotation(item["matrix"].numpy(), flipped)
        image = draw_crop(denormalise(item["image"].numpy()), keypoints, supervised & (visible >= 2),
                          supervised & (visible == 1), mixture.skeleton)
        caption = f"{instance.dataset} ann {instance.ann_id}" + (" flip" if flipped else "") + f" rot {rotation:+.0f}"
        tile = add_caption(image, caption)
        path = out_dir / f"{position:02d}_{_safe(instance.dataset)}_ann{instance.ann_id}.png"
        _write_png(path, tile)
        tiles.append(tile)
        crops.append(PreviewCrop(path, instance.dataset, index, instance.ann_id, flipped, rotation,
                                 int((supervised & (visible >= 2)).sum()), int((supervised & (visible == 1)).sum())))
    sheet_path = out_dir / "contact_sheet.png"
    _write_png(sheet_path, contact_sheet(tiles, LEGEND))
    return crops, sheet_path


def denormalise(image: np.ndarray) -> np.ndarray:
    """The model input (3, h, w) float32 normalised RGB back to a BGR uint8 picture (inverse of `normalise`)."""
    mean = np.asarray(IMAGE_MEAN_RGB, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGE_STD_RGB, dtype=np.float32)[:, None, None]
    rgb = np.clip(np.rint(image * std + mean), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def crop_rotation(matrix: np.ndarray, flipped: bool) -> float:
    """The augmentation's rotation in degrees, read back from the image -> crop affine (mirror folded in when
    `flipped`): the crop's upward direction, seen in the (mirrored) image, is (sin r, -cos r)."""
    linear = np.asarray(matrix, dtype=np.float64)[:, :2]
    up = np.linalg.solve(linear, [0.0, -1.0])
    if flipped:
        up[0] = -up[0]
    return round(math.degrees(math.atan2(up[0], -up[1])), 6) + 0.0      # + 0.0: no "-0" in captions


def draw_crop(crop: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, occluded: np.ndarray,
              skeleton: Skeleton, zoom: int = ZOOM) -> np.ndarray:
    """A `zoom`-times enlarged copy of a BGR crop with the skeleton drawn: `visible` points filled, `occluded`
    points and the links that reach them faint with a ring; other points and their links are left out."""
    base = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
    points = (np.asarray(keypoints, dtype=np.float32) + 0.5) * zoom - 0.5       # pixel centres scale about -0.5
    visible, occluded = np.asarray(visible, dtype=bool), np.asarray(occluded, dtype=bool)
    radius, thickness = max(2, round(1.5 * zoom)), max(1, zoom // 2)
    solid = draw_pose(base.copy(), points, skeleton, visible.astype(np.float32), 0.5, radius, thickness)
    faint = draw_pose(base.copy(), points, skeleton, (visible | occluded).astype(np.float32), 0.5, radius, thickness)
    faint = cv2.addWeighted(faint, OCCLUDED_STRENGTH, base, 1.0 - OCCLUDED_STRENGTH, 0.0)
    image = np.where((solid != base).any(axis=2, keepdims=True), solid, faint)
    colors = skeleton.point_colors()
    for k in np.flatnonzero(occluded):
        centre = (round(points[k, 0]), round(points[k, 1]))
        cv2.circle(image, centre, radius + 2, colors[k], 1, cv2.LINE_AA)
    return image


def add_caption(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a dark strip below it holding `text`."""
    strip = np.full((CAPTION_HEIGHT, image.shape[1], 3), SHEET_BACKGROUND, dtype=np.uint8)
    cv2.putText(strip, text, (4, CAPTION_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOR, 1, cv2.LINE_AA)
    return np.concatenate([image, strip], axis=0)


def contact_sheet(tiles: Sequence[np.ndarray], title: str = "", columns: int = SHEET_COLUMNS) -> np.ndarray:
    """Equal-sized tiles in a grid, row by row, under a title line."""
    if not tiles:
        raise ValueError("contact_sheet: no tiles")
    height, width = tiles[0].shape[:2]
    columns = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    top = CAPTION_HEIGHT if title else 0
    sheet = np.full((top + rows * (height + SHEET_GAP) + SHEET_GAP, columns * (width + SHEET_GAP) + SHEET_GAP, 3),
                    SHEET_BACKGROUND, dtype=np.uint8)
    if title:
        cv2.putText(sheet, title, (SHEET_GAP, CAPTION_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOR, 1,
                    cv2.LINE_AA)
    for n, tile in enumerate(tiles):
        y = top + SHEET_GAP + (n // columns) * (height + SHEET_GAP)
        x = SHEET_GAP + (n % columns) * (width + SHEET_GAP)
        sheet[y:y + height, x:x + width] = tile
    return sheet


def _safe(name: str) -> str:
    """A dataset name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _write_png(path: Path, image: np.ndarray) -> None:
    write_image_atomic(path, image)

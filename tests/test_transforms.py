"""Top-down geometry on real images: box -> centre/scale, the 3-point affine, crops, keypoints and normalisation."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, require

from unionpose.core.transforms import (
    IMAGE_MEAN_RGB,
    IMAGE_STD_RGB,
    box_to_center_scale,
    clip_box,
    get_warp_matrix,
    mpii_center_scale_to_box,
    normalise,
    transform_points,
    warp_image,
)

OUTPUT_WH = (192, 256)


def coco_people() -> list[tuple[np.ndarray, dict]]:
    """(image, annotation) for every fixture person with keypoints, read straight from the COCO JSON."""
    folder = require(FIXTURES / "coco")
    data = json.loads((folder / "person_keypoints.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    images = {}
    people = []
    for annotation in data["annotations"]:
        if annotation["num_keypoints"] == 0 or annotation["iscrowd"]:
            continue
        image_id = annotation["image_id"]
        if image_id not in images:
            images[image_id] = cv2.imread(str(folder / "images" / files[image_id]))
        people.append((images[image_id], annotation))
    return people


def bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Image values (N, 3) at float points (N, 2), sampled independently of warpAffine."""
    x, y = points[:, 0], points[:, 1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    pixel = image.astype(np.float64)
    return (pixel[y0, x0] * (1 - fx) * (1 - fy) + pixel[y0, x0 + 1] * fx * (1 - fy)
            + pixel[y0 + 1, x0] * (1 - fx) * fy + pixel[y0 + 1, x0 + 1] * fx * fy)


def test_box_to_center_scale_pads_and_grows_the_short_side():
    center, scale = box_to_center_scale([10, 20, 30, 100])            # tall: width grows
    np.testing.assert_allclose(center, [25, 70])
    np.testing.assert_allclose(scale, [100 * 1.25 * 0.75, 100 * 1.25])
    center, scale = box_to_center_scale([0, 0, 200, 100], aspect_ratio=0.75, padding=1.0)   # wide: height grows
    np.testing.assert_allclose(center, [100, 50])
    np.testing.assert_allclose(scale, [200, 200 / 0.75])
    _, scale = box_to_center_scale([0, 0, 50, 50], aspect_ratio=1.0)
    np.testing.assert_allclose(scale, [62.5, 62.5])


def test_mpii_center_scale_to_box_follows_the_mpii_convention():
    box = mpii_center_scale_to_box([101.0, 201.0], 2.0)
    # side 400 px; centre moved down by 15 * scale = 30 px; centre - 1 for 0-based pixels
    np.testing.assert_allclose(box, [100 - 200, 200 + 30 - 200, 400, 400])


def test_mpii_boxes_hold_the_annotated_joints_of_real_people():
    path = require(FIXTURES / "mpii" / "mpii_annotations.json")
    for record in json.loads(path.read_text()):
        box = mpii_center_scale_to_box(record["center"], record["scale"])
        center, scale = box_to_center_scale(box, aspect_ratio=1.0)
        joints = np.asarray(record["joints"])[np.asarray(record["joints_vis"]) > 0]
        inside = np.abs(joints - center) <= scale / 2
        assert inside.all(), f"{record['image']}: joints outside the MPII crop"


def test_clip_box():
    # Clipped to the pixel centres [0, W-1] x [0, H-1], the one convention of the readers, box files and detector
    # (docs/conventions.md). This test asserted [0, W] before the conventions were unified (issue 14): the far edge
    # of the second box now stops at pixel 639 / 479, not at 640 / 480.
    np.testing.assert_allclose(clip_box([-10, 5, 50, 30], 640, 480), [0, 5, 40, 30])
    np.testing.assert_allclose(clip_box([600, 470, 100, 100], 640, 480), [600, 470, 39, 9])
    np.testing.assert_allclose(clip_box([700, 10, 20, 20], 640, 480)[2], 0)   # fully outside: zero width


def test_warp_matrix_maps_centre_width_and_rotation():
    center, scale = np.array([300.0, 200.0]), np.array([150.0, 200.0])
    matrix = get_warp_matrix(center, scale, 0.0, OUTPUT_WH)
    np.testing.assert_allclose(transform_points(center, matrix), [96, 128], atol=1e-9)
    # the crop's width covers scale[0] image pixels
    np.testing.assert_allclose(transform_points(center + [75.0, 0.0], matrix), [192, 128], atol=1e-9)
    # rotation by 90 deg: the image direction to the right of the centre becomes the crop's "up"
    matrix = get_warp_matrix(center, scale, 90.0, OUTPUT_WH)
    np.testing.assert_allclose(transform_points(center + [75.0, 0.0], matrix), [96, 128 - 96], atol=1e-9)
    # shift moves the source centre by a fraction of the scale
    matrix = get_warp_matrix(center, scale, 0.0, OUTPUT_WH, shift=(0.1, -0.2))
    np.testing.assert_allclose(transform_points(center + [15.0, -40.0], matrix), [96, 128], atol=1e-9)


def test_warp_matrix_inverse_round_trip_is_exact():
    rng = np.random.default_rng(0)
    for _ in range(50):
        center = rng.uniform(0, 1000, 2)
        scale = np.array([1.0, 4 / 3]) * rng.uniform(10, 800)
        rotation, shift = rng.uniform(-180, 180), rng.uniform(-0.3, 0.3, 2)
        forward = get_warp_matrix(center, scale, rotation, OUTPUT_WH, shift=shift)
        backward = get_warp_matrix(center, scale, rotation, OUTPUT_WH, shift=shift, inverse=True)
        points = rng.uniform(-500, 1500, (17, 2))
        np.testing.assert_allclose(transform_points(transform_points(points, forward), backward), points, atol=1e-6)


def test_transform_points_keeps_leading_axes():
    matrix = get_warp_matrix([50, 50], [60, 80], 30.0, OUTPUT_WH)
    points = np.arange(2 * 3 * 17 * 2, dtype=np.float32).reshape(2, 3, 17, 2)
    moved = transform_points(points, matrix)
    assert moved.shape == points.shape
    np.testing.assert_allclose(moved[1, 2, 5], transform_points(points[1, 2, 5], matrix))


def test_crop_of_a_real_image_puts_keypoints_on_the_same_content():
    rng = np.random.default_rng(1)
    for image, annotation in coco_people():
        keypoints = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
        labelled = keypoints[keypoints[:, 2] > 0, :2]
        height, width = image.shape[:2]
        box = clip_box(annotation["bbox"], width, height)
        center, scale = box_to_center_scale(box)
        rotation = rng.uniform(-60, 60)
        matrix = get_warp_matrix(center, scale, rotation, OUTPUT_WH)
        crop = warp_image(image, matrix, OUTPUT_WH)
        assert crop.shape == (256, 192, 3) and crop.dtype == np.uint8

        crop_points = transform_points(labelled, matrix).astype(np.float32)
        inverse = get_warp_matrix(center, scale, rotation, OUTPUT_WH, inverse=True)
        np.testing.assert_allclose(transform_points(crop_points, inverse), labelled, atol=1e-4)

        # the crop pixel nearest each keypoint shows the image content at that pixel's pre-image
        pixels = np.round(crop_points)
        pixels = pixels[(pixels[:, 0] >= 0) & (pixels[:, 0] < 192) & (pixels[:, 1] >= 0) & (pixels[:, 1] < 256)]
        sources = transform_points(pixels, inverse)
        keep = (sources[:, 0] >= 0) & (sources[:, 0] < width - 1) & (sources[:, 1] >= 0) & (sources[:, 1] < height - 1)
        assert keep.sum() >= 3, f"annotation {annotation['id']}: too few keypoints to compare"
        crop_values = crop[pixels[keep, 1].astype(int), pixels[keep, 0].astype(int)].astype(np.float64)
        np.testing.assert_allclose(crop_values, bilinear(image, sources[keep]), atol=2.0)


def test_normalise_gives_rgb_chw_with_reference_mean_and_std():
    image = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    tensor = normalise(image)
    assert tensor.shape == (3, 8, 6) and tensor.dtype == np.float32 and tensor.flags.c_contiguous
    for channel in range(3):
        expected = (image[:, :, channel] - IMAGE_MEAN_RGB[channel]) / IMAGE_STD_RGB[channel]
        np.testing.assert_allclose(tensor[channel], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="RGB image"):
        normalise(image[:, :, 0])

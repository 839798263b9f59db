"""Top-down augmentation on real COCO people: exact flips, keypoints on the same content, determinism, config."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, require
from pydantic import ValidationError

from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.data.augment import AugmentConfig, TopDownAugmenter, sample_rng

COCO_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
UPPER, LOWER = tuple(range(11)), tuple(range(11, 17))     # COCO-17: head and arms / hips and legs
INPUT_HW = (256, 192)
GEOMETRY_OFF = dict(
    flip_prob=0.0, half_body_prob=0.0, shift_prob=0.0, scale_prob=0.0, rotation_prob=0.0,
    hsv_prob=0.0, blur_prob=0.0, median_blur_prob=0.0, dropout_prob=0.0,
)


def coco_people() -> list[dict]:
    """Every fixture person with keypoints: image (BGR), box, keypoints (17, 2), visible, annotated."""
    folder = require(FIXTURES / "coco")
    data = json.loads((folder / "person_keypoints.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    images, people = {}, []
    for annotation in data["annotations"]:
        if annotation["num_keypoints"] == 0 or annotation["iscrowd"]:
            continue
        image_id = annotation["image_id"]
        if image_id not in images:
            images[image_id] = cv2.imread(str(folder / "images" / files[image_id]))
        keypoints = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(17, 3)
        people.append(dict(
            image=images[image_id], box_xywh=np.asarray(annotation["bbox"]), keypoints=keypoints[:, :2],
            visible=keypoints[:, 2].astype(np.int8), annotated=np.ones(17, bool),
        ))
    return people


def augmenter(**settings) -> TopDownAugmenter:
    return TopDownAugmenter(AugmentConfig(**settings), INPUT_HW, COCO_FLIP, UPPER, LOWER)


def test_defaults_follow_the_rtmpose_recipe_and_mild_is_milder():
    config = AugmentConfig()
    assert (config.flip_prob, config.half_body_prob, config.half_body_min_points) == (0.5, 0.3, 9)
    assert (config.shift_factor, config.shift_prob, config.scale_range) == (0.16, 0.3, (0.6, 1.4))
    assert (config.rotation_factor, config.rotation_prob, config.dropout_prob) == (80.0, 0.6, 1.0)
    assert (config.blur_prob, config.median_blur_prob, config.dropout_size) == (0.1, 0.1, (0.2, 0.4))
    mild = config.mild()
    assert (mild.shift_prob, mild.scale_range, mild.rotation_factor) == (0.0, (0.75, 1.25), 60.0)
    assert mild.dropout_prob == 0.5
    changed = {k for k, v in mild.model_dump().items() if v != config.model_dump()[k]}
    assert changed == {"shift_prob", "scale_range", "rotation_factor", "dropout_prob"}
    assert AugmentConfig(flip_prob=0.0).mild().flip_prob == 0.0      # other settings are kept


def test_config_rejects_unknown_keys_and_bad_ranges():
    with pytest.raises(ValidationError, match="flip_probability"):
        AugmentConfig(flip_probability=0.5)
    with pytest.raises(ValidationError, match="scale_range"):
        AugmentConfig(scale_range=(1.4, 0.6))
    with pytest.raises(ValidationError, match="flip_prob"):
        AugmentConfig(flip_prob=1.5)


def test_validation_mode_is_the_plain_crop():
    person = coco_people()[0]
    sample = augmenter(enabled=False)(**person)
    center, scale = box_to_center_scale(person["box_xywh"])
    matrix = get_warp_matrix(center, scale, 0.0, (192, 256))
    np.testing.assert_array_equal(sample.image, warp_image(person["image"], matrix, (192, 256)))
    np.testing.assert_allclose(sample.matrix, matrix)
    np.testing.assert_allclose(sample.keypoints, transform_points(person["keypoints"], matrix), atol=1e-4)
    assert not sample.flipped and sample.rotation == 0.0
    again = augmenter(enabled=False)(**person)
    np.testing.assert_array_equal(sample.image, again.image)


def test_keypoints_leaving_the_crop_become_invisible_but_stay_annotated():
    person = coco_people()[0]
    head = person["keypoints"][:5]
    head_box = np.concatenate([head.min(axis=0), head.max(axis=0) - head.min(axis=0)])
    sample = augmenter(enabled=False)(**{**person, "box_xywh": head_box})
    assert (sample.visible[:5] > 0).all()
    assert (sample.visible[11:] == 0).all() and sample.annotated.all()
    assert person["visible"][11:].all()                            # the caller's arrays are untouched


def test_crop_border_decides_visibility():
    person = coco_people()[0]
    center, scale = box_to_center_scale(person["box_xywh"])
    inverse = get_warp_matrix(center, scale, 0.0, (192, 256), inverse=True)
    crop_points = np.array([[-0.01, 10], [0, 10], [191, 10], [191.01, 10], [10, 255], [10, 255.01], [10, -0.01]])
    keypoints = person["keypoints"].copy()
    keypoints[:7] = transform_points(crop_points, inverse)
    sample = augmenter(enabled=False)(**{**person, "keypoints": keypoints})
    assert (sample.visible[:7] > 0).tolist() == [False, True, True, False, True, False, False]


def test_flip_swaps_visibility_and_annotation_with_the_points():
    person = coco_people()[0]
    visible, annotated = person["visible"].copy(), person["annotated"].copy()
    visible[9] = 0                  # left wrist not visible
    annotated[3] = False            # left ear not annotated
    sample = augmenter(**{**GEOMETRY_OFF, "flip_prob": 1.0})(
        **{**person, "visible": visible, "annotated": annotated}, rng=sample_rng(0, 0, 0))
    assert sample.visible[10] == 0 and sample.visible[9] > 0
    assert not sample.annotated[4] and sample.annotated[3]


def test_flip_equals_cropping_the_mirrored_image():
    for person in coco_people()[:4]:
        image = person["image"]
        width = image.shape[1]
        flipped = augmenter(**{**GEOMETRY_OFF, "flip_prob": 1.0})(**person, rng=sample_rng(0, 0, 0))
        plain = augmenter(enabled=False)(**person)
        assert flipped.flipped

        # crop the mirrored image around the mirrored box centre (x' = W - 1 - x)
        center, scale = box_to_center_scale(person["box_xywh"])
        mirrored_center = np.array([width - 1 - center[0], center[1]])
        matrix = get_warp_matrix(mirrored_center, scale, 0.0, (192, 256))
        expected = warp_image(cv2.flip(image, 1), matrix, (192, 256)).astype(int)
        difference = np.abs(flipped.image.astype(int) - expected)
        assert difference.max() <= 2 and difference.mean() < 0.05
        mirrored_points = np.stack([width - 1 - person["keypoints"][:, 0], person["keypoints"][:, 1]], axis=1)
        np.testing.assert_allclose(flipped.keypoints, transform_points(mirrored_points, matrix)[COCO_FLIP], atol=1e-4)
        np.testing.assert_array_equal(flipped.visible[flipped.visible > 0] > 0,
                                      (plain.visible[COCO_FLIP] > 0)[flipped.visible > 0])

        # each named point of the flipped crop sits on the mirrored pixel of the plain crop, showing the same content
        # (with the crop centre at w/2, column u of one crop is column w - u of the other)
        np.testing.assert_allclose(flipped.keypoints[:, 0], 192 - plain.keypoints[COCO_FLIP, 0], atol=1e-4)
        np.testing.assert_allclose(flipped.keypoints[:, 1], plain.keypoints[COCO_FLIP, 1], atol=1e-4)
        inside = flipped.visible > 0
        columns = np.round(flipped.keypoints[inside, 0]).astype(int)
        rows = np.round(flipped.keypoints[inside, 1]).astype(int)
        keep = (columns >= 1) & (columns <= 191)
        mirrored_values = plain.image[rows[keep], 192 - columns[keep]].astype(int)
        assert np.abs(flipped.image[rows[keep], columns[keep]].astype(int) - mirrored_values).max() <= 2
        assert np.abs(flipped.image[:, 1:].astype(int) - plain.image[:, :0:-1].astype(int)).mean() < 0.05

        # the returned matrix maps the original image into the flipped crop
        inverse = cv2.invertAffineTransform(flipped.matrix)
        np.testing.assert_allclose(transform_points(flipped.keypoints, inverse), person["keypoints"][COCO_FLIP],
                                   atol=1e-4)


def test_augmented_keypoints_land_on_the_same_image_content():
    geometry_only = dict(hsv_prob=0.0, blur_prob=0.0, median_blur_prob=0.0, dropout_prob=0.0)
    transform = augmenter(**geometry_only)
    compared = 0
    for index, person in enumerate(coco_people()):
        image = person["image"]
        for epoch in range(3):
            sample = transform(**person, rng=sample_rng(7, epoch, index))
            source = person["keypoints"][COCO_FLIP] if sample.flipped else person["keypoints"]
            inverse = cv2.invertAffineTransform(sample.matrix)
            np.testing.assert_allclose(transform_points(sample.keypoints, inverse), source, atol=1e-4)
            np.testing.assert_allclose(transform_points(sample.center, sample.matrix), [96, 128], atol=1e-6)

            pixels = np.round(sample.keypoints[sample.visible > 0]).astype(int)
            pixels = pixels[(pixels[:, 0] <= 191) & (pixels[:, 1] <= 255)]
            origins = transform_points(pixels, inverse)
            height, width = image.shape[:2]
            keep = (origins >= 1).all(axis=1) & (origins[:, 0] < width - 2) & (origins[:, 1] < height - 2)
            nearest = np.round(origins[keep]).astype(int)
            crop_values = sample.image[pixels[keep, 1], pixels[keep, 0]].astype(int)
            # bilinear sampling lies between the 2x2 neighbours of the pre-image
            low = np.minimum.reduce([image[nearest[:, 1] + dy, nearest[:, 0] + dx].astype(int)
                                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            high = np.maximum.reduce([image[nearest[:, 1] + dy, nearest[:, 0] + dx].astype(int)
                                      for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
            assert ((crop_values >= low - 1) & (crop_values <= high + 1)).all()
            compared += int(keep.sum())
    assert compared > 100


def test_same_seed_epoch_index_gives_the_same_sample_and_others_differ():
    person = coco_people()[1]
    transform = augmenter()
    first = transform(**person, rng=sample_rng(21, 3, 5))
    second = transform(**person, rng=sample_rng(21, 3, 5))
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.keypoints, second.keypoints)
    np.testing.assert_array_equal(first.matrix, second.matrix)
    for other in (sample_rng(21, 4, 5), sample_rng(21, 3, 6), sample_rng(22, 3, 5)):
        sample = transform(**person, rng=other)
        assert not np.array_equal(sample.matrix, first.matrix) or not np.array_equal(sample.image, first.image)


def test_random_box_draws_are_truncated_and_gated():
    person = coco_people()[0]
    transform = augmenter(**{**GEOMETRY_OFF, "flip_prob": 0.5, "shift_prob": 0.3, "scale_prob": 1.0,
                             "rotation_prob": 0.6})
    _, base_scale = box_to_center_scale(person["box_xywh"])
    samples = [transform(**person, rng=sample_rng(0, 0, i)) for i in range(300)]
    ratios = np.array([s.scale[0] / base_scale[0] for s in samples])
    rotations = np.array([s.rotation for s in samples])
    assert ratios.min() >= 0.6 - 1e-9 and ratios.max() <= 1.4 + 1e-9 and ratios.std() > 0.1
    assert np.abs(rotations).max() <= 80.0 and not (np.abs(rotations) == 80.0).any()    # truncated, not clipped
    assert 0.5 < np.mean(rotations != 0) < 0.7
    assert 0.4 < np.mean([s.flipped for s in samples]) < 0.6
    for sample in samples:       # the aspect ratio of the crop never changes
        assert sample.scale[0] / sample.scale[1] == pytest.approx(0.75)


def test_half_body_crops_one_half_and_needs_enough_points_and_a_split():
    person = next(p for p in coco_people() if (p["visible"] > 0).sum() >= 15)
    settings = {**GEOMETRY_OFF, "half_body_prob": 1.0}
    _, full_scale = box_to_center_scale(person["box_xywh"])
    halves = [augmenter(**settings)(**person, rng=sample_rng(0, 0, i)) for i in range(20)]
    for sample in halves:
        assert sample.scale[1] < full_scale[1]
        upper_in = (sample.visible[list(UPPER)] > 0).sum() == (person["visible"][list(UPPER)] > 0).sum()
        lower_in = (sample.visible[list(LOWER)] > 0).sum() == (person["visible"][list(LOWER)] > 0).sum()
        assert upper_in or lower_in                               # the chosen half is wholly inside the crop
    no_split = TopDownAugmenter(AugmentConfig(**settings), INPUT_HW, COCO_FLIP)(**person, rng=sample_rng(0, 0, 0))
    np.testing.assert_allclose(no_split.scale, full_scale)
    few = {**person, "visible": np.where(np.arange(17) < 8, person["visible"], 0).astype(np.int8)}
    np.testing.assert_allclose(augmenter(**settings)(**few, rng=sample_rng(0, 0, 0)).scale, full_scale)


def test_coarse_dropout_blacks_out_one_hole_of_the_configured_size():
    person = coco_people()[0]
    plain = augmenter(**GEOMETRY_OFF)(**person, rng=sample_rng(0, 0, 0))
    for index in range(10):
        holed = augmenter(**{**GEOMETRY_OFF, "dropout_prob": 1.0})(**person, rng=sample_rng(0, 0, index))
        changed = np.argwhere((holed.image != plain.image).any(axis=2))
        assert (holed.image[tuple(changed.T)] == 0).all()
        rows, columns = np.ptp(changed[:, 0]) + 1, np.ptp(changed[:, 1]) + 1
        assert int(0.2 * 256) - 2 <= rows <= int(0.4 * 256) and int(0.2 * 192) - 2 <= columns <= int(0.4 * 192)


def test_colour_and_blur_change_the_crop_but_not_the_geometry():
    person = coco_people()[0]
    plain = augmenter(**GEOMETRY_OFF)(**person, rng=sample_rng(0, 0, 0))
    photometric = {**GEOMETRY_OFF, "hsv_prob": 1.0, "blur_prob": 1.0, "median_blur_prob": 1.0}
    changed = augmenter(**photometric)(**person, rng=sample_rng(0, 0, 0))
    assert not np.array_equal(changed.image, plain.image)
    np.testing.assert_array_equal(changed.keypoints, plain.keypoints)
    assert changed.image.dtype == np.uint8 and changed.image.shape == (256, 192, 3)


def test_bad_inputs_name_the_field():
    person = coco_people()[0]
    with pytest.raises(ValueError, match="keypoints"):
        augmenter(enabled=False)(**{**person, "keypoints": person["keypoints"][:5]})
    with pytest.raises(ValueError, match="box_xywh"):
        augmenter(enabled=False)(**{**person, "box_xywh": np.array([0, 0, 0, 10])})
    with pytest.raises(ValueError, match="rng"):
        augmenter()(**person)
    with pytest.raises(ValueError, match="flip_indices"):
        TopDownAugmenter(AugmentConfig(), INPUT_HW, np.array([1, 2, 0]))
    with pytest.raises(ValueError, match="upper_body_ids"):
        TopDownAugmenter(AugmentConfig(), INPUT_HW, COCO_FLIP, upper_body_ids=(0, 17))


def test_jitter_draws_are_a_true_truncated_normal():
    """Clipping a normal at +-1 would put ~32 % of the draws exactly on the limits; truncation puts none there."""
    from unionpose.data.augment import truncated_normal

    draws = truncated_normal(np.random.default_rng(0), 20000)
    assert np.abs(draws).max() <= 1.0
    assert np.mean(np.abs(draws) > 0.99) < 0.02
    # the density still peaks in the middle: more mass in [-0.5, 0.5] than a uniform draw would give
    assert np.mean(np.abs(draws) < 0.5) > 0.55

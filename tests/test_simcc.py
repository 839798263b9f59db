"""SimCC codec: target shape and weights, encode-decode round trip, decoding parity with the reference toolbox."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import REFERENCE, require

from unionpose.core.simcc import SimCCCodec, default_sigma

REFERENCE_RUNS = ["rtmpose-s_coco-256x192", "rtmpose-t_coco-256x192", "rtmpose-t_coco-256x192/conditioned"]


def test_bins_and_default_sigma():
    codec = SimCCCodec()
    assert (codec.num_bins_x, codec.num_bins_y) == (384, 512)
    assert codec.sigma == (4.9, 5.66)
    assert SimCCCodec((256, 256)).sigma == (5.66, 5.66)
    # the rule for other sizes reproduces the recipe values and grows with the square root of the axis length
    for length, sigma in ((192, 4.9), (256, 5.66)):
        assert default_sigma((length, length), split_ratio=2.01)[0] == pytest.approx(sigma * 2.01 / 2, abs=0.01)
    small = SimCCCodec((128, 96))
    assert (small.num_bins_x, small.num_bins_y) == (192, 256)
    assert small.sigma == pytest.approx((5.66 * np.sqrt(96 / 256), 5.66 * np.sqrt(128 / 256)))


def test_target_is_an_unnormalised_gaussian_on_the_rounded_bin():
    codec = SimCCCodec()
    target = codec.encode(np.array([[50.3, 100.8]]), np.array([2]), np.array([True]))
    assert target.x.shape == (1, 384) and target.y.shape == (1, 512) and target.x.dtype == np.float32
    assert target.x[0].argmax() == 101 and target.y[0].argmax() == 202     # round(100.6), round(201.6)
    assert target.x[0].max() == pytest.approx(1.0) and target.y[0].max() == pytest.approx(1.0)
    # one sigma away the Gaussian is exp(-1/2); the integral is not normalised
    assert target.x[0, 101 + 7] == pytest.approx(np.exp(-0.5 * (7 / 4.9) ** 2), rel=1e-5)
    assert target.y[0, 202 - 11] == pytest.approx(np.exp(-0.5 * (11 / 5.66) ** 2), rel=1e-5)
    assert target.weight.tolist() == [1.0]


def test_weights_for_invisible_unannotated_and_out_of_range_points():
    codec = SimCCCodec()
    keypoints = np.array([
        [90.0, 120.0],      # visible, annotated
        [90.0, 120.0],      # not visible (COCO v=0)
        [90.0, 120.0],      # not annotated by its dataset
        [90.0, 120.0],      # labelled but occluded (v=1): still supervised
        [-10.0, 120.0],     # 20 bins left of the crop: the 3 sigma window (14.7 bins) misses it
        [-5.0, 120.0],      # 10 bins left of the crop: the window still overlaps it
        [90.0, 300.0],      # y far below the crop
        [np.nan, np.nan],   # missing coordinates
        [-7.5, 120.0],      # bin -15: the window's right end -15 + 14.7 + 1 still reaches bin 0
        [-8.0, 120.0],      # bin -16: it does not
    ])
    visible = np.array([2, 0, 2, 1, 2, 2, 2, 2, 2, 2])
    annotated = np.array([True, True, False, True, True, True, True, True, True, True])
    target = codec.encode(keypoints, visible, annotated)
    assert target.weight.tolist() == [1, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    assert not target.x[target.weight == 0].any() and not target.y[target.weight == 0].any()
    assert target.x[5, 0] > 0          # the tail of the outside point's Gaussian is inside


def test_encode_decode_round_trip_on_random_points():
    codec = SimCCCodec()
    rng = np.random.default_rng(0)
    keypoints = rng.uniform([0, 0], [191.74, 255.74], (500, 2))
    target = codec.encode(keypoints, np.full(500, 2), np.ones(500, bool))
    decoded, scores = codec.decode(target.x, target.y)            # (K, W) without a batch axis
    assert decoded.shape == (500, 2) and scores.shape == (500,)
    error = np.abs(decoded - keypoints)
    assert error.max() <= 0.25 + 1e-6                            # half a bin at split ratio 2
    np.testing.assert_allclose(scores, 1.0)


def test_decode_matches_reference_toolbox():
    for run in REFERENCE_RUNS:
        folder = require(REFERENCE / run)
        codec = SimCCCodec((256, 192))
        keypoints, scores = codec.decode(np.load(folder / "simcc_x.npy"), np.load(folder / "simcc_y.npy"))
        assert keypoints.shape == (2, 17, 2) and keypoints.dtype == np.float32
        np.testing.assert_array_equal(keypoints, np.load(folder / "decoded_keypoints.npy"), err_msg=run)
        np.testing.assert_allclose(scores, np.load(folder / "decoded_scores.npy"), rtol=1e-6, err_msg=run)


def test_decode_marks_non_positive_scores_invalid_and_checks_shapes():
    codec = SimCCCodec((64, 48))
    simcc_x = np.full((1, 2, 96), -1.0, dtype=np.float32)
    simcc_y = np.full((1, 2, 128), -1.0, dtype=np.float32)
    simcc_x[0, 1, 10], simcc_y[0, 1, 20] = 3.0, 2.0
    keypoints, scores = codec.decode(simcc_x, simcc_y)
    np.testing.assert_array_equal(keypoints[0, 0], [-1, -1])
    assert scores[0, 0] == 0.0
    np.testing.assert_array_equal(keypoints[0, 1], [5.0, 10.0])
    assert scores[0, 1] == 2.0
    with pytest.raises(ValueError, match="96 x-bins"):
        codec.decode(np.zeros((1, 2, 384)), simcc_y)


def test_soft_targets_from_coordinates_decode_back_with_confidence():
    codec = SimCCCodec()
    rng = np.random.default_rng(1)
    keypoints = rng.uniform([0, 0], [191.74, 255.74], (3, 17, 2))
    confidence = rng.uniform(0.1, 1.0, (3, 17))
    confidence[0, 4] = 0.0
    keypoints[1, 2] = np.nan
    x, y = codec.soft_targets_from_coordinates(keypoints, confidence)
    assert x.shape == (3, 17, 384) and y.shape == (3, 17, 512) and x.dtype == np.float32
    assert not x[0, 4].any() and not y[1, 2].any()
    decoded, scores = codec.decode(x, y)
    usable = confidence > 0
    usable[1, 2] = False
    assert np.abs(decoded - keypoints)[usable].max() <= 0.25 + 1e-6
    # the peak bin is at most half a bin from the exact centre: exp(-0.5**2 / (2 * 4.9**2)) > 0.994
    np.testing.assert_allclose(scores[usable], confidence[usable], rtol=6e-3)
    assert (scores[usable] <= confidence[usable] + 1e-6).all()
    # the Gaussian is centred on the exact coordinate, not on a rounded bin
    x, _ = codec.soft_targets_from_coordinates(np.array([[10.25, 10.0]]), np.array([1.0]))
    assert x[0, 20] == pytest.approx(x[0, 21])

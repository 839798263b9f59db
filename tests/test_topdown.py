"""Top-down inference: crop geometry, batching, and a known-answer check of decode + inverse affine + flip test."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from conftest import FIXTURES, require
from unionpose.core.model_description import ModelInfo
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.infer.backends import load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton

INPUT_SIZE = (128, 96)   # h, w
SPLIT_RATIO = 2.0




@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = RTMPose("t", 17, INPUT_SIZE)
    return save_model_file(tmp_path_factory.mktemp("model") / "t.safetensors", model, get_skeleton("coco17"))


def _info(skeleton_name: str = "coco17") -> ModelInfo:
    return ModelInfo(skeleton=get_skeleton(skeleton_name), model_size="oracle", input_size=INPUT_SIZE,
                     split_ratio=SPLIT_RATIO, sigma=(3.46, 4.0), mean=(123.675, 116.28, 103.53),
                     std=(58.395, 57.12, 57.375))


class OneHotOracle(nn.Module):
    """Stands in for a perfect model: recognises each crop it is given and answers one-hot SimCC logits at the
    ground-truth keypoints of that crop (peak 1), or, for a mirrored crop, where a real model would see them
    (left and right swapped, x mirrored; peak 2, so a misaligned flip average would pick the wrong bin)."""

    def __init__(self, image: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, info: ModelInfo):
        super().__init__()
        height, width = info.input_size
        self.flip = info.skeleton.flip_indices
        self.width, self.height = width, height
        self.crops, self.crop_keypoints = [], []
        mean, std = np.asarray(info.mean, np.float32), np.asarray(info.std, np.float32)
        for box, points in zip(boxes, keypoints):
            center, scale = box_to_center_scale(box, width / height, 1.25)
            matrix = get_warp_matrix(center, scale, 0.0, (width, height))
            crop = cv2.cvtColor(warp_image(image, matrix, (width, height)), cv2.COLOR_BGR2RGB)
            self.crops.append(((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1))
            self.crop_keypoints.append(transform_points(points, matrix))

    def _answer(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distances = [np.abs(crop - c).max() for c in self.crops]
        distances += [np.abs(crop - c[..., ::-1]).max() for c in self.crops]
        match = int(np.argmin(distances))
        assert distances[match] < 1e-3, "the runner fed a crop that matches no box"
        mirrored = match >= len(self.crops)
        points = self.crop_keypoints[match % len(self.crops)]
        if mirrored:
            points = points[self.flip] * [-1, 1] + [self.width - 1, 0]
        num_keypoints = len(points)
        simcc_x = np.zeros((num_keypoints, int(self.width * SPLIT_RATIO)), np.float32)
        simcc_y = np.zeros((num_keypoints, int(self.height * SPLIT_RATIO)), np.float32)
        bins = np.round(points * SPLIT_RATIO).astype(int)
        simcc_x[np.arange(num_keypoints), bins[:, 0]] = 2.0 if mirrored else 1.0
        simcc_y[np.arange(num_keypoints), bins[:, 1]] = 2.0 if mirrored else 1.0
        return simcc_x, simcc_y

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        answers = [self._answer(crop) for crop in x.numpy()]
        return (torch.from_numpy(np.stack([a[0] for a in answers])),
                torch.from_numpy(np.stack([a[1] for a in answers])))


def _scene(seed: int = 0):
    """A noise image (so every crop is recognisable), boxes (one off the image edge), keypoints inside them."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    boxes = np.array([[50, 40, 80, 120], [200, 100, 110, 60], [340, 230, 70, 90]], dtype=np.float64)
    keypoints = boxes[:, None, :2] + rng.uniform(0.05, 0.95, (3, 17, 2)) * boxes[:, None, 2:]
    keypoints[2, :, :] = np.minimum(keypoints[2], [399, 299])    # the third box leaves the image; its points do not
    return image, boxes, keypoints


@pytest.mark.parametrize("flip_test", [False, True])
def test_known_answer_model_gives_ground_truth_back(flip_test):
    image, boxes, keypoints = _scene()
    info = _info()
    runner = TopDownRunner(TorchBackend(OneHotOracle(image, boxes, keypoints, info)), info, flip_test=flip_test)
    predicted, scores = runner.predict(image, boxes)

    assert predicted.shape == (3, 17, 2) and scores.shape == (3, 17)
    np.testing.assert_allclose(scores, 1.5 if flip_test else 1.0)
    assert np.abs(predicted - keypoints).max() <= 0.5
    # exact: the GT snapped to the SimCC bin in the crop and mapped back to the image
    width, height = INPUT_SIZE[1], INPUT_SIZE[0]
    for box, points, prediction in zip(boxes, keypoints, predicted):
        center, scale = box_to_center_scale(box, width / height, 1.25)
        crop_points = transform_points(points, get_warp_matrix(center, scale, 0.0, (width, height)))
        snapped = np.round(crop_points * SPLIT_RATIO) / SPLIT_RATIO
        expected = transform_points(snapped, get_warp_matrix(center, scale, 0.0, (width, height), inverse=True))
        np.testing.assert_allclose(prediction, expected, atol=1e-3)


def test_flip_test_swaps_left_and_right_through_the_skeleton():
    """With an asymmetric skeleton order (MPII: right side first) the permutation must still land each point."""
    image, boxes, _ = _scene(seed=1)
    info = _info("mpii16")
    keypoints = boxes[:, None, :2] + np.random.default_rng(2).uniform(0.1, 0.9, (3, 16, 2)) * boxes[:, None, 2:]
    keypoints[2] = np.minimum(keypoints[2], [399, 299])
    runner = TopDownRunner(TorchBackend(OneHotOracle(image, boxes, keypoints, info)), info, flip_test=True)
    predicted, _ = runner.predict(image, boxes)
    assert np.abs(predicted - keypoints).max() <= 0.5


def test_random_model_on_a_real_image_keeps_points_inside_their_crops(model_file):
    image = cv2.imread(str(require(FIXTURES / "coco" / "images" / "000000000785.jpg")))
    backend, info = load_pose_model(model_file)
    boxes = np.array([[277.1, 45.7, 225.1, 333.6], [0, 0, 60, 40], [600, 400, 100, 100]])  # the last two at edges
    for flip_test in (False, True):
        keypoints, scores = TopDownRunner(backend, info, flip_test=flip_test).predict(image, boxes)
        assert keypoints.shape == (3, 17, 2) and scores.shape == (3, 17)
        assert keypoints.dtype == np.float32 and np.isfinite(keypoints).all()
        for box, points in zip(boxes, keypoints):
            center, scale = box_to_center_scale(box, 96 / 128, 1.25)
            assert (points >= center - scale / 2 - 1e-3).all() and (points <= center + scale / 2).all()


def test_predict_many_batches_across_images_and_keeps_order(model_file):
    backend, info = load_pose_model(model_file)
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (120 + 10 * i, 160, 3), dtype=np.uint8) for i in range(4)]
    boxes = [np.array([[10, 10, 50, 80], [60, 20, 40, 90], [5, 5, 100, 100]]), np.zeros((0, 4)),
             np.array([[30, 30, 60, 60]]), np.array([[0, 0, 160, 120], [20, 40, 30, 50]])]
    single = TopDownRunner(backend, info, flip_test=True)
    batched = TopDownRunner(backend, info, flip_test=True, batch_size=2)
    results = list(batched.predict_many(zip(images, boxes)))
    assert [len(k) for k, _ in results] == [3, 0, 1, 2]
    for image, image_boxes, (keypoints, scores) in zip(images, boxes, results):
        expected_keypoints, expected_scores = single.predict(image, image_boxes)
        np.testing.assert_allclose(keypoints, expected_keypoints, atol=1e-4)
        np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert results[1][0].shape == (0, 17, 2) and results[1][1].shape == (0, 17)


def test_bad_boxes_are_named():
    info = _info()
    runner = TopDownRunner(TorchBackend(nn.Identity()), info)
    with pytest.raises(ValueError, match=r"box 1 .* w, h > 0"):
        runner.crop(np.zeros((50, 50, 3), np.uint8), [[0, 0, 10, 10], [5, 5, 0, 10]])
    with pytest.raises(ValueError, match="shape"):
        runner.crop(np.zeros((50, 50, 3), np.uint8), [[0, 0, 10]])

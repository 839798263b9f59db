"""Pseudo-label confidence: read from COCO-WholeBody files and used as the per-point weight of the training target."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES, require

from unionpose.core.errors import DataError
from unionpose.core.simcc import SimCCCodec
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.dataset import TopDownDataset
from unionpose.data.readers import read_coco
from unionpose.skeletons import get_skeleton


def _with_confidence(tmp_path, confidence):
    source = require(FIXTURES / "coco" / "coco_wholebody.json")
    data = json.loads(source.read_text())
    for annotation in data["annotations"]:
        annotation["keypoint_confidence"] = confidence
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(data))
    return path


def test_confidence_is_read_and_points_without_one_are_not_annotated(tmp_path):
    confidence = [0.5] * 133
    confidence[18] = None          # a small toe: the experts cannot give it
    path = _with_confidence(tmp_path, confidence)
    instances, _ = read_coco(path, FIXTURES / "coco" / "images", format="coco_wholebody")
    assert instances and all(i.confidence is not None for i in instances)
    assert all(not i.annotated[18] and i.confidence[18] == 0 for i in instances)
    assert all(i.confidence[0] == np.float32(0.5) for i in instances)


def test_bad_confidence_names_file_record_and_field(tmp_path):
    path = _with_confidence(tmp_path, [2.0] * 133)
    with pytest.raises(DataError, match="keypoint_confidence") as info:
        read_coco(path, FIXTURES / "coco" / "images", format="coco_wholebody")
    assert "labels.json" in str(info.value) and "annotation id" in str(info.value)


def test_target_weight_is_scaled_by_confidence_and_follows_the_flip(tmp_path):
    confidence = list(np.linspace(0.1, 1.0, 133))
    path = _with_confidence(tmp_path, confidence)
    instances, _ = read_coco(path, FIXTURES / "coco" / "images", format="coco_wholebody")
    skeleton = get_skeleton("coco_wholebody133")
    codec = SimCCCodec((128, 96))
    for flip in (0.0, 1.0):
        config = AugmentConfig(flip_prob=flip, half_body_prob=0.0, rotation_prob=0.0, shift_prob=0.0,
                               scale_prob=0.0, dropout_prob=0.0)
        augmenter = TopDownAugmenter(config, (128, 96), skeleton.flip_indices)
        dataset = TopDownDataset(instances, augmenter, codec)
        item = dataset[0]
        plain = codec.encode(item["keypoints"].numpy(), item["visible"].numpy(), item["annotated"].numpy()).weight
        expected = np.asarray(confidence, dtype=np.float32)
        if flip:
            expected = expected[skeleton.flip_indices]
        np.testing.assert_allclose(item["target_weight"].numpy(), plain * expected, rtol=1e-6)
        assert bool(item["flipped"]) == bool(flip)

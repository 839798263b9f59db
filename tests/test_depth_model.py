"""Issue 15, the depth head: its codec, every RTMPose size, the model file, init, ONNX export (`simcc_z`) and the
runtime that decodes (x, y, z, score); models without a depth head keep their outputs and files."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from unionpose.core.depth import DepthCodec
from unionpose.core.model_description import MODEL_FILE, ModelInfo, decode_model_info, encode_model_info
from unionpose.export.onnx import check_parity, export_onnx
from unionpose.infer.backends import load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.models import RTMPose, load_model_file, read_model_info, save_model_file
from unionpose.models.initialise import initialise_model
from unionpose.skeletons import get_skeleton

SKELETON = get_skeleton("coco17")


def test_depth_codec_round_trips_to_the_bin_and_weights_only_labelled_points_in_range():
    codec = DepthCodec(range=1.0, bins=201, sigma=2.0)
    depth = np.array([-0.5, 0.0, 0.31, 2.0, np.nan, 0.2])
    target, weight = codec.encode(depth, np.array([True, True, True, True, True, False]))
    assert weight.tolist() == [1, 1, 1, 0, 0, 0] and (target[3:] == 0).all() and target[:3].max() == 1
    assert np.allclose(codec.decode(target[:3]), [-0.5, 0.0, 0.31], atol=codec.step / 2)


@pytest.mark.parametrize("value, message", [
    ({"range": 0, "bins": 8, "unit": "m", "sigma": 1}, "range must be a positive number"),
    ({"range": 1, "bins": 1, "unit": "m", "sigma": 1}, "bins must be an integer of at least 2"),
    ({"range": 1, "bins": 8, "unit": "", "sigma": 1}, "unit must be a non-empty name"),
    ({"range": 1, "bins": 8, "unit": "m"}, "must be an object with range, bins, unit and sigma"),
])
def test_a_bad_depth_description_names_its_source(value, message):
    with pytest.raises(ValueError, match=message):
        DepthCodec.from_dict(value, "model.safetensors metadata 'depth'")


@pytest.mark.parametrize("size", ["t", "s", "m", "l"])
def test_every_size_takes_a_depth_head(size):
    with torch.device("meta"):
        model = RTMPose(size, 17, (64, 64), depth=DepthCodec(bins=64))
        outputs = model(torch.zeros(2, 3, 64, 64, device="meta"))
    assert [tuple(o.shape) for o in outputs] == [(2, 17, 128), (2, 17, 128), (2, 17, 64)]


def test_a_2d_model_is_unchanged():
    torch.manual_seed(0)
    model = RTMPose("t", 17, (64, 64))
    assert len(model(torch.zeros(1, 3, 64, 64))) == 2 and model.depth is None
    assert "head.cls_z.weight" not in model.state_dict()
    info = ModelInfo(SKELETON, "t", (64, 64), 2.0, (4.0, 4.0), (0, 0, 0), (1, 1, 1))
    assert "depth" not in encode_model_info(info, MODEL_FILE)


def test_the_model_file_records_range_bins_and_unit(tmp_path):
    torch.manual_seed(0)
    codec = DepthCodec(range=0.8, bins=96, unit="metre", sigma=3.0)
    model = RTMPose("t", 17, (64, 64), depth=codec)
    path = save_model_file(tmp_path / "m.safetensors", model, SKELETON)
    loaded, info = load_model_file(path)
    assert info.depth == codec == loaded.depth and read_model_info(path).depth == codec
    image = torch.randn(1, 3, 64, 64)
    for ours, theirs in zip(model.eval()(image), loaded(image)):
        assert torch.equal(ours, theirs)
    metadata = encode_model_info(info, MODEL_FILE)
    assert json.loads(metadata["depth"]) == {"range": 0.8, "bins": 96, "unit": "metre", "sigma": 3.0}
    with pytest.raises(ValueError, match="m.safetensors metadata 'depth': depth bins must be"):
        decode_model_info({**metadata, "depth": '{"range": 1, "bins": 0.5, "unit": "m", "sigma": 1}'}, MODEL_FILE,
                          "m.safetensors")


def test_init_from_a_2d_model_starts_the_depth_head_fresh_and_back(tmp_path):
    torch.manual_seed(0)
    flat = save_model_file(tmp_path / "2d.safetensors", RTMPose("t", 17, (64, 64)), SKELETON)
    deep = RTMPose("t", 17, (64, 64), depth=DepthCodec(bins=64))
    record = initialise_model(deep, SKELETON, flat)
    assert "head.cls_z.weight" in record.fresh and "head.cls_x.weight" in record.loaded
    deep_file = save_model_file(tmp_path / "3d.safetensors", deep, SKELETON)
    record = initialise_model(RTMPose("t", 17, (64, 64)), SKELETON, deep_file)
    assert record.ignored == ["head.cls_z.weight"] and not record.fresh


@pytest.fixture(scope="module")
def depth_model(tmp_path_factory):
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("depth_model")
    model = RTMPose("t", 17, (64, 64), depth=DepthCodec(bins=64))
    with torch.no_grad():      # a fresh head's logits are ~1e-7 and tie within float rounding: make them spread
        for module in model.head.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.weight.normal_(0.0, 2.0 / module.weight[0].numel() ** 0.5)
    path = save_model_file(folder / "m.safetensors", model, SKELETON)
    return folder, *load_model_file(path)


@pytest.mark.parametrize("decode", [False, True])
def test_onnx_export_gains_a_depth_output_that_matches_pytorch(depth_model, decode):
    folder, model, info = depth_model
    path = export_onnx(model, info, folder / f"m_{decode}.onnx", decode=decode)
    outputs = [o.name for o in onnx.load(path).graph.output]
    assert outputs == (["keypoints", "scores", "depth"] if decode else ["simcc_x", "simcc_y", "simcc_z"])
    assert not model.training          # the export leaves the model as it found it
    report = check_parity(model, info, path)
    assert report.passed and report.max_depth_difference <= report.tolerance, str(report)


def test_the_runtime_decodes_x_y_z_and_score_the_same_from_pytorch_and_onnx(depth_model):
    folder, model, info = depth_model
    image = np.random.default_rng(0).integers(0, 255, (80, 90, 3), dtype=np.uint8)
    boxes = np.array([[5.0, 5.0, 60.0, 70.0], [20.0, 10.0, 40.0, 50.0]])
    results = []
    for name, decode in (("logits", False), ("decoded", True)):
        backend, loaded = load_pose_model(export_onnx(model, info, folder / f"{name}.onnx", decode=decode))
        assert loaded.depth == info.depth
        results.append(TopDownRunner(backend, loaded).predict(image, boxes))
    backend, _ = load_pose_model(folder / "m.safetensors")
    results.append(TopDownRunner(backend, info).predict(image, boxes))
    with torch.inference_mode():
        logits = model(torch.from_numpy(TopDownRunner(backend, info).crop(image, boxes)[0]))
    decisive = _decisive(*(output.numpy() for output in logits))
    depth = info.depth.decode(logits[2].numpy())
    assert decisive.mean() > 0.5
    for keypoints, scores in results:
        assert keypoints.shape == (2, 17, 3) and scores.shape == (2, 17)
        np.testing.assert_allclose(keypoints[..., 2][decisive], depth[decisive], atol=1e-6)
        np.testing.assert_allclose(keypoints[..., :2][decisive], results[0][0][..., :2][decisive], atol=1e-3)


def _decisive(*logits: np.ndarray) -> np.ndarray:
    """(N, K): points whose best bin beats the second by more than float rounding on every axis."""
    margins = [np.diff(np.sort(axis, axis=-1)[..., -2:], axis=-1)[..., 0] for axis in logits]
    return np.minimum.reduce(margins) > 1e-4


def test_flip_test_averages_depth_with_left_and_right_swapped(depth_model):
    _, model, info = depth_model
    backend, _ = load_pose_model(depth_model[0] / "m.safetensors")
    crops = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    keypoints, _ = TopDownRunner(backend, info, flip_test=True).predict_crops(crops)
    with torch.inference_mode():
        plain = model(torch.from_numpy(crops))[2].numpy()
        mirrored = model(torch.from_numpy(np.ascontiguousarray(crops[..., ::-1])))[2].numpy()
    average = (plain + mirrored[:, SKELETON.flip_indices]) / 2
    decisive = _decisive(average)
    assert decisive.mean() > 0.5
    np.testing.assert_array_equal(keypoints[..., 2][decisive], info.depth.decode(average)[decisive])

"""ONNX export: public layout and in-graph decoding, metadata round trip, parity, and the reference RTMPose ONNX."""
from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from conftest import FIXTURES, REFERENCE, require
from unionpose.cli import main
from unionpose.export.onnx import check_parity, export_onnx
from unionpose.infer.backends import OnnxBackend, load_pose_model
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton

INPUT_SIZE = (128, 96)




def _conditioned_model(seed: int = 0) -> RTMPose:
    """A random RTMPose-t whose activations and logits are of order 1 (the toolbox's init makes them vanish,
    which would make any tolerance meaningless): He-normal weights, BatchNorm statistics from one batch, and
    the classifiers scaled to a logit std of 0.1, which puts the largest logits near 1, as a trained model's peaks."""
    generator = torch.Generator().manual_seed(seed)
    model = RTMPose("t", 17, INPUT_SIZE)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                    * (2.0 / module.weight[0].numel()) ** 0.5)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.25, 0.75, generator=generator)
                module.bias.uniform_(-0.3, 0.3, generator=generator)
                module.reset_running_stats()
                module.momentum = None
        calibration = torch.randn(8, 3, *INPUT_SIZE, generator=generator)
        model.train()(calibration)
        simcc_x, simcc_y = model.eval()(calibration)
        model.head.cls_x.weight *= 0.1 / simcc_x.std()
        model.head.cls_y.weight *= 0.1 / simcc_y.std()
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_model_file(tmp_path_factory.mktemp("export") / "t.safetensors", _conditioned_model(),
                           get_skeleton("coco17"))


def _real_crops(runner: TopDownRunner) -> np.ndarray:
    image = cv2.imread(str(require(FIXTURES / "coco" / "images" / "000000196141.jpg")))
    crops, _ = runner.crop(image, np.array([[100, 50, 150, 300], [300, 100, 120, 260], [0, 0, 200, 200]]))
    return crops


def test_export_has_the_public_layout_and_passes_parity(model_file, tmp_path):
    model, info = load_model_file(model_file)
    path = export_onnx(model, info, tmp_path / "t.onnx")
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["simcc_x", "simcc_y"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 128, 96]
    report = check_parity(model, info, path, batch=5)
    assert report.passed, str(report)
    assert report.max_logit_difference < 1e-4 and report.coordinates_identical
    crops = _real_crops(TopDownRunner(TorchBackend(model), info))
    assert check_parity(model, info, path, crops=crops).passed
    # the metadata makes the file self-describing
    backend, read_info = load_pose_model(path)
    assert read_info == info and not backend.decoded
    assert backend(crops[:1])[0].shape == (1, 17, 192)                    # dynamic batch: 1 and 3 both run
    # a graph with a fixed batch of 1 (as released RTMPose exports are) runs any batch, chunk by chunk
    proto = onnx.load(path)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(proto, tmp_path / "fixed.onnx")
    fixed = OnnxBackend(tmp_path / "fixed.onnx")
    assert fixed.fixed_batch == 1
    for ours, dynamic in zip(fixed(crops), backend(crops)):
        np.testing.assert_allclose(ours, dynamic, atol=1e-5)


def test_decoded_export_gives_the_runner_the_same_keypoints(model_file, tmp_path):
    model, info = load_model_file(model_file)
    path = export_onnx(model, info, tmp_path / "t_decoded.onnx", decode=True)
    assert [o.name for o in onnx.load(path).graph.output] == ["keypoints", "scores"]
    assert check_parity(model, info, path).passed
    backend, _ = load_pose_model(path)
    image = cv2.imread(str(require(FIXTURES / "coco" / "images" / "000000196141.jpg")))
    boxes = np.array([[100, 50, 150, 300], [300, 100, 120, 260]])
    keypoints, scores = TopDownRunner(backend, info).predict(image, boxes)
    expected_keypoints, expected_scores = TopDownRunner(TorchBackend(model), info).predict(image, boxes)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-3)
    np.testing.assert_allclose(keypoints, expected_keypoints, atol=1e-3)
    with pytest.raises(ValueError, match="flip test needs"):
        TopDownRunner(backend, info, flip_test=True)


def test_parity_check_catches_a_different_model(model_file, tmp_path):
    model, info = load_model_file(model_file)
    path = export_onnx(model, info, tmp_path / "t.onnx")
    with torch.no_grad():
        model.head.cls_x.weight[:, :] += 0.01 * torch.randn_like(model.head.cls_x.weight)
    report = check_parity(model, info, path)
    assert not report.passed and "FAILED" in str(report)


def test_export_command_writes_and_checks(model_file, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    assert main(["export", "--model", str(model_file), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "passed" in printed and out.is_file()
    metadata = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert json.loads(metadata["skeleton"])["names"] == list(get_skeleton("coco17").names)
    assert json.loads(metadata["input_size"]) == [128, 96]
    assert main(["export", "--model", str(model_file), "--decode", "--out", str(tmp_path / "d.onnx")]) == 0


def test_reference_rtmpose_onnx_runs_as_a_backend():
    folder = require(REFERENCE / "rtmpose-t_coco-256x192")
    with pytest.raises(ValueError, match="no UnionPose metadata.*--skeleton"):
        load_pose_model(folder / "model.onnx")
    backend, info = load_pose_model(folder / "model.onnx", skeleton="coco17")
    assert info.input_size == (256, 192) and info.split_ratio == 2.0
    simcc_x, simcc_y = backend(np.load(folder / "input.npy").astype(np.float32))
    for ours, name in ((simcc_x, "simcc_x"), (simcc_y, "simcc_y")):
        reference = np.load(folder / f"{name}.npy")
        # the recipe weights give logits of ~1e-6 (see the reference README): compare relative to their size
        assert np.abs(ours - reference).max() <= 1e-3 * np.abs(reference).max()
    keypoints, scores = TopDownRunner(backend, info).codec.decode(simcc_x, simcc_y)
    np.testing.assert_array_equal(keypoints, np.load(folder / "decoded_keypoints.npy"))
    np.testing.assert_allclose(scores, np.load(folder / "decoded_scores.npy"), rtol=1e-3)
    # and end to end on a photo, with flip test, through the same runner as our own models
    image = cv2.imread(str(require(FIXTURES / "coco" / "images" / "000000000785.jpg")))
    keypoints, scores = TopDownRunner(backend, info, flip_test=True).predict(image, np.array([[277, 45, 225, 334]]))
    assert keypoints.shape == (1, 17, 2) and np.isfinite(keypoints).all()


def test_onnx_backend_rejects_graphs_of_another_layout(tmp_path):
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    with pytest.raises(ValueError, match="expected outputs simcc_x, simcc_y"):
        OnnxBackend(path)

"""Inference from an exported ONNX model where PyTorch cannot be imported: what the base install promises.

The subprocesses get a `sitecustomize` that makes every `import torch` fail, as in an environment without PyTorch.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import FIXTURES, require
from unionpose.core.images import read_image
from unionpose.export.onnx import export_onnx
from unionpose.infer.predictor import Predictor
from unionpose.models import RTMPose, load_model_file, save_model_file
from unionpose.skeletons import get_skeleton

NO_TORCH = '''
import sys


class NoTorch:
    """Every `import torch` fails, as where PyTorch is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
'''

PREDICT = '''
import sys

import numpy as np

from unionpose.core.images import read_image
from unionpose.infer.predictor import Predictor

poses = Predictor.from_file(sys.argv[1])(read_image(sys.argv[2]))
np.savez(sys.argv[3], keypoints=poses.keypoints, keypoint_scores=poses.keypoint_scores, scores=poses.scores)
print("torch loaded:", "torch" in sys.modules)
'''


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A random RTMPose-t (seeded) as a model file and as its ONNX export."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model")
    model_file = save_model_file(folder / "t.safetensors", RTMPose("t", 17, (128, 96)), get_skeleton("coco17"))
    return model_file, export_onnx(*load_model_file(model_file), folder / "t.onnx")


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory) -> dict[str, str]:
    """The environment of a subprocess in which `import torch` fails."""
    folder = tmp_path_factory.mktemp("no_torch")
    (folder / "sitecustomize.py").write_text(NO_TORCH)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}


def run(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], env=env, capture_output=True, text=True, timeout=300)


def test_torch_is_blocked_in_the_subprocess(without_torch):
    result = run(["-c", "import torch"], without_torch)
    assert result.returncode != 0 and "blocked by the test" in result.stderr


def test_predictor_runs_an_onnx_model_without_torch(model_files, without_torch, tmp_path):
    image = require(FIXTURES / "coco" / "images" / "000000000785.jpg")
    _, onnx_file = model_files
    expected = Predictor.from_file(onnx_file)(read_image(image))            # here, with torch importable
    result = run(["-c", PREDICT, str(onnx_file), str(image), str(tmp_path / "poses.npz")], without_torch)
    assert result.returncode == 0, result.stderr
    assert "torch loaded: False" in result.stdout
    found = np.load(tmp_path / "poses.npz")
    np.testing.assert_array_equal(found["keypoints"], expected.keypoints)
    np.testing.assert_array_equal(found["keypoint_scores"], expected.keypoint_scores)
    np.testing.assert_array_equal(found["scores"], expected.scores)


def test_predict_command_runs_an_onnx_model_without_torch(model_files, without_torch, tmp_path):
    image = require(FIXTURES / "coco" / "images" / "000000000785.jpg")
    _, onnx_file = model_files
    expected = Predictor.from_file(onnx_file)(read_image(image))
    out = tmp_path / "out"
    result = run(["-m", "unionpose", "predict", str(image), "--model", str(onnx_file), "--out", str(out),
                  "--formats", "jsonl,draw", "--quiet"], without_torch)
    assert result.returncode == 0, result.stderr
    lines = (out / "predictions.jsonl").read_text().splitlines()
    people = json.loads(lines[1])["people"]
    assert len(people) == len(expected) == 1
    np.testing.assert_allclose(people[0]["keypoints"], expected.keypoints[0], atol=1e-3)
    np.testing.assert_allclose(people[0]["keypoint_scores"], expected.keypoint_scores[0], atol=1e-3)
    assert len(list((out / "visualisation").glob("*.jpg"))) == 1


def test_a_model_file_without_torch_says_what_to_install(model_files, without_torch, tmp_path):
    image = require(FIXTURES / "coco" / "images" / "000000000785.jpg")
    model_file, _ = model_files
    result = run(["-m", "unionpose", "predict", str(image), "--model", str(model_file), "--out",
                  str(tmp_path / "out"), "--quiet"], without_torch)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "unionpose[train]" in result.stderr and "ONNX" in result.stderr and str(model_file) in result.stderr


def test_a_3d_onnx_model_predicts_depth_without_torch(without_torch, tmp_path):
    """Issue 15: an export with a depth head gives x, y, z and score with the base install; JSONL, COCO and NPZ
    carry the depth."""
    from unionpose.core.depth import DepthCodec

    image = require(FIXTURES / "coco" / "images" / "000000000785.jpg")
    torch.manual_seed(0)
    model = RTMPose("t", 17, (128, 96), depth=DepthCodec(bins=64))
    model_file = save_model_file(tmp_path / "t3d.safetensors", model, get_skeleton("coco17"))
    onnx_file = export_onnx(*load_model_file(model_file), tmp_path / "t3d.onnx")
    expected = Predictor.from_file(onnx_file)(read_image(image))
    assert expected.depth.shape == (1, 17)
    out = tmp_path / "out"
    result = run(["-m", "unionpose", "predict", str(image), "--model", str(onnx_file), "--out", str(out),
                  "--formats", "jsonl,coco,npz", "--quiet"], without_torch)
    assert result.returncode == 0, result.stderr
    person = json.loads((out / "predictions.jsonl").read_text().splitlines()[1])["people"][0]
    np.testing.assert_allclose(person["depth"], expected.depth[0], atol=1e-4)
    np.testing.assert_allclose(person["keypoints"], expected.keypoints[0], atol=1e-3)
    [record] = json.loads((out / "predictions.coco.json").read_text())
    np.testing.assert_allclose(record["depth"], expected.depth[0], atol=1e-4)
    np.testing.assert_allclose(np.load(out / "predictions.npz")["depth"], expected.depth, atol=1e-6)

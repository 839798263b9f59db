"""The UnionPose model file: round trip, atomic write, and clear errors on damaged or inconsistent files."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import REFERENCE, require
from safetensors.torch import save_file

from unionpose.models import RTMPose, load_model_file, load_toolbox_model, read_model_info, save_model_file
from unionpose.skeletons import get_skeleton, union


@pytest.fixture(scope="module")
def small_model() -> RTMPose:
    """A 21-keypoint t model at 64x96 (tiny maps, fast), with its BatchNorm statistics moved off their defaults."""
    torch.manual_seed(0)
    model = RTMPose("t", 21, input_size=(64, 96))
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 96))   # train mode: updates the running statistics
    return model.eval()


@pytest.fixture(scope="module")
def skeleton21():
    return union(get_skeleton("coco17"), get_skeleton("mpii16"))


@pytest.fixture
def saved(tmp_path, small_model, skeleton21):
    path = tmp_path / "student.safetensors"
    save_model_file(path, small_model, skeleton21, codec_sigma=(3.1, 3.2), extra={"trained_on": "coco+mpii"})
    return path


def test_round_trip_keeps_weights_and_description(saved, small_model, skeleton21):
    model, info = load_model_file(saved)
    assert not model.training
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        for ours, theirs in zip(model(x), small_model(x), strict=True):
            assert torch.equal(ours, theirs)
    for key, value in small_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert info.skeleton == skeleton21 and info.skeleton.names == skeleton21.names
    assert info.model_size == "t" and info.input_size == (64, 96) and info.split_ratio == 2.0
    assert info.sigma == (3.1, 3.2)
    assert info.mean == (123.675, 116.28, 103.53) and info.std == (58.395, 57.12, 57.375)
    assert info.extra == {"trained_on": "coco+mpii"}
    assert read_model_info(saved) == info


def test_write_is_atomic_and_leaves_no_temporary_file(saved, small_model, skeleton21):
    save_model_file(saved, small_model, skeleton21)   # overwrite in place
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    assert read_model_info(saved).sigma == pytest.approx((5.66 * (96 / 256) ** 0.5, 5.66 * (64 / 256) ** 0.5))


def test_reference_weights_survive_the_round_trip(tmp_path):
    model = load_toolbox_model(require(REFERENCE / "rtmpose-s_coco-256x192" / "model.safetensors"))
    path = save_model_file(tmp_path / "s.safetensors", model, get_skeleton("coco17"))
    reloaded, info = load_model_file(path)
    assert info.sigma == (4.9, 5.66)
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def test_save_rejects_inconsistent_inputs(tmp_path, small_model, skeleton21):
    with pytest.raises(ValueError, match="coco17.*17 keypoints.*predicts 21"):
        save_model_file(tmp_path / "a.safetensors", small_model, get_skeleton("coco17"))
    with pytest.raises(ValueError, match="'model_size' would overwrite"):
        save_model_file(tmp_path / "a.safetensors", small_model, skeleton21, extra={"model_size": "l"})
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        load_model_file(tmp_path / "nothing.safetensors")


def test_truncated_file_names_the_file(saved):
    data = saved.read_bytes()
    truncated = saved.with_name("truncated.safetensors")
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.safetensors: not a readable safetensors file"):
        load_model_file(truncated)
    truncated.write_bytes(data[:5])
    with pytest.raises(ValueError, match=r"truncated\.safetensors"):
        load_model_file(truncated)


def test_garbage_bytes_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ValueError, match=r"garbage\.safetensors: not a readable safetensors file"):
        load_model_file(garbage)


def _rewrite(path, small_model, **changes):
    """Write the weights of `small_model` with the metadata of `path` changed (None deletes a field)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as reader:
        metadata = reader.metadata()
    for key, value in changes.items():
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    out = path.with_name("edited.safetensors")
    save_file({k: v.contiguous() for k, v in small_model.state_dict().items()}, out, metadata=metadata)
    return out


def test_missing_metadata_field_is_named(saved, small_model):
    with pytest.raises(ValueError, match="metadata field 'codec' is missing"):
        load_model_file(_rewrite(saved, small_model, codec=None))
    with pytest.raises(ValueError, match="metadata field 'input_size' is not valid JSON"):
        load_model_file(_rewrite(saved, small_model, input_size="[64, 96"))
    with pytest.raises(ValueError, match="'normalisation.std' must be a list of 3 numbers"):
        load_model_file(_rewrite(saved, small_model, normalisation=json.dumps({"mean": [1, 2, 3], "std": [1]})))
    with pytest.raises(ValueError, match="unsupported format_version '7'"):
        load_model_file(_rewrite(saved, small_model, format_version="7"))


def test_toolbox_file_is_not_a_model_file():
    with pytest.raises(ValueError, match="not a UnionPose model file.*unionpose convert"):
        load_model_file(require(REFERENCE / "rtmpose-t_coco-256x192" / "model.safetensors"))


def test_weights_not_matching_the_declared_architecture_are_named(saved, small_model):
    with pytest.raises(ValueError, match=r"do not match RTMPose-s.*missing: backbone\.stages\.1\.csp\.blocks\.1.*"
                       r"wrong shape: backbone\.stem\.0\.conv\.weight \(12, 3, 3, 3\) vs \(16, 3, 3, 3\)"):
        load_model_file(_rewrite(saved, small_model, model_size="s"))
    with pytest.raises(ValueError, match=r"wrong shape: head\.token_embed\.weight \(256, 6\) vs \(256, 8\), "
                                         r"head\.cls_x\.weight \(192, 256\) vs \(256, 256\)"):
        load_model_file(_rewrite(saved, small_model, input_size="[64, 128]"))

"""RTMPose architecture: sizes, shapes, complexity, toolbox weight loading and parity with the reference outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REFERENCE, require

from unionpose.cli import main
from unionpose.models import (
    MODEL_SIZES,
    RTMPose,
    ToolboxArchitecture,
    check_toolbox_architecture,
    convert_toolbox_state_dict,
    count_gflops,
    infer_toolbox_architecture,
    load_model_file,
    load_toolbox_model,
    model_complexity,
    read_toolbox_state_dict,
)
from unionpose.models.toolbox_weights import toolbox_key_map

T_DIR = REFERENCE / "rtmpose-t_coco-256x192"
PARITY_DIRS = {
    "t_toolbox_init": T_DIR,
    "t_conditioned": T_DIR / "conditioned",
    "s_conditioned": REFERENCE / "rtmpose-s_coco-256x192",
}


def meta_model(size: str, num_keypoints: int = 17, input_size: tuple[int, int] = (256, 192)) -> RTMPose:
    """Shapes only: counting m and l needs no memory and no initialisation."""
    with torch.device("meta"):
        return RTMPose(size, num_keypoints, input_size)


# --- architecture ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(MODEL_SIZES))
def test_parameter_count_matches_published(size):
    params = sum(p.numel() for p in meta_model(size).parameters())
    assert abs(params / 1e6 - MODEL_SIZES[size].published_params_m) < 0.01


@pytest.mark.parametrize("name", ["rtmpose-t_coco-256x192", "rtmpose-s_coco-256x192"])
def test_parameter_count_matches_reference_exactly(name):
    config = json.loads(require(REFERENCE / name / "config.json").read_text())
    size = name.split("_")[0][-1]
    model = meta_model(size)
    assert sum(p.numel() for p in model.backbone.parameters()) == config["param_count"]["backbone"]
    assert sum(p.numel() for p in model.head.parameters()) == config["param_count"]["head"]


@pytest.mark.parametrize("size", list(MODEL_SIZES))
def test_gflops_are_multiply_adds_matching_published(size):
    # FlopCounterMode counts 2 per multiply-add; the published column counts 1 (and also norms and pooling).
    gflops = model_complexity(size, 17).gflops
    published = MODEL_SIZES[size].published_gflops
    assert abs(gflops - published) / published < 0.02


def test_count_gflops_on_a_real_model_equals_meta_count():
    model = RTMPose("t", 5, (64, 96)).eval()
    assert count_gflops(model, (64, 96)) == pytest.approx(model_complexity("t", 5, (64, 96)).gflops)


def test_shapes_for_any_keypoint_count_and_input_size():
    model = RTMPose("t", 5, input_size=(64, 96), split_ratio=2.0).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feature = model.forward_features(x)
        simcc_x, simcc_y = model(x)
    assert feature.shape == (2, 384, 2, 3)
    assert simcc_x.shape == (2, 5, 192) and simcc_y.shape == (2, 5, 128)
    assert torch.equal(model.forward_head(feature)[0], simcc_x)


def test_head_initialisation_follows_the_toolbox():
    torch.manual_seed(0)
    head = RTMPose("t", 17).head
    assert head.keypoint_conv.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.all(head.keypoint_conv.bias == 0)
    assert head.cls_x.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert head.gau.proj_in.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert head.cls_x.bias is None and head.gau.proj_in.bias is None
    assert torch.all(head.gau.residual_scale == 1) and head.token_norm.gain.item() == 1


def test_unknown_size_and_bad_input_size_are_clear_errors():
    with pytest.raises(ValueError, match="unknown RTMPose size 'x'.*t, s, m, l"):
        RTMPose("x", 17)
    with pytest.raises(ValueError, match="250x192.*multiples of 32"):
        RTMPose("t", 17, (250, 192))


# --- toolbox key mapping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", list(MODEL_SIZES))
def test_key_map_is_one_to_one_and_covers_the_model(size):
    model = meta_model(size)
    mapping = toolbox_key_map(model)
    assert set(mapping) == set(model.state_dict())
    assert len(set(mapping.values())) == len(mapping)


@pytest.mark.parametrize("name", ["rtmpose-t_coco-256x192", "rtmpose-s_coco-256x192"])
def test_key_map_names_exactly_the_toolbox_keys(name):
    listed = [line.split("\t")[0] for line in require(REFERENCE / name / "keys.txt").read_text().splitlines()]
    model = meta_model(name.split("_")[0][-1])
    assert sorted(toolbox_key_map(model).values()) == sorted(listed)


def test_infer_architecture_from_state_dicts():
    for size, folder in (("t", T_DIR), ("s", PARITY_DIRS["s_conditioned"])):
        state = read_toolbox_state_dict(require(folder / "model.safetensors"))
        assert infer_toolbox_architecture(state) == ToolboxArchitecture(size, 17, (256, 192))


def test_declared_architecture_is_checked():
    arch = ToolboxArchitecture("t", 17, (256, 192))
    check_toolbox_architecture(arch, size="t", num_keypoints=17, input_size=(256, 192))
    with pytest.raises(ValueError, match=r"ckpt\.pth: size m declared but the weights are t; keypoints 21"):
        check_toolbox_architecture(arch, size="m", num_keypoints=21, source="ckpt.pth")


@pytest.fixture(scope="module")
def t_state():
    return read_toolbox_state_dict(require(T_DIR / "conditioned" / "model.safetensors"))


def test_missing_unexpected_and_misshapen_keys_are_listed_with_the_file(t_state):
    model = RTMPose("t", 17)
    state = dict(t_state)
    del state["head.gau.uv.weight"]
    state["head.extra.weight"] = torch.zeros(1)
    state["head.cls_x.weight"] = torch.zeros(100, 256)
    with pytest.raises(ValueError) as error:
        convert_toolbox_state_dict(state, model, source="some/ckpt.pth")
    message = str(error.value)
    assert "some/ckpt.pth" in message
    assert "missing" in message and "head.gau.uv.weight" in message
    assert "does not have: head.extra.weight" in message
    assert "head.cls_x.weight (100, 256) vs (384, 256)" in message


def test_s_weights_do_not_load_into_a_t_model():
    state = read_toolbox_state_dict(require(PARITY_DIRS["s_conditioned"] / "model.safetensors"))
    with pytest.raises(ValueError, match="shape mismatches: backbone.stem.0.conv.weight"):
        convert_toolbox_state_dict(state, RTMPose("t", 17))


def test_released_pth_checkpoint_layout_loads(tmp_path, t_state):
    # A released checkpoint: {'meta': {... NumPy arrays ...}, 'state_dict': ...}, maybe DataParallel's `module.` prefix.
    checkpoint = {
        "meta": {"dataset_meta": {"sigmas": np.array([0.026, 0.025]), "num_keypoints": np.int64(17)}, "epoch": 420},
        "state_dict": {f"module.{key}": value for key, value in t_state.items()}
        | {"data_preprocessor.mean": torch.zeros(3, 1, 1)},
    }
    path = tmp_path / "rtmpose-t.pth"
    torch.save(checkpoint, path)
    state = read_toolbox_state_dict(path)
    assert set(state) == set(t_state)
    model = load_toolbox_model(path)
    assert torch.equal(model.head.cls_x.weight, t_state["head.cls_x.weight"])


class _NotAllowed:
    pass


def test_pth_with_arbitrary_objects_is_refused(tmp_path, t_state):
    path = tmp_path / "unsafe.pth"
    torch.save({"state_dict": t_state, "meta": _NotAllowed()}, path)
    with pytest.raises(ValueError, match=r"unsafe\.pth: cannot be loaded as a weights-only.*_NotAllowed"):
        read_toolbox_state_dict(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(ValueError, match="garbage.pth"):
        read_toolbox_state_dict(garbage)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        read_toolbox_state_dict(tmp_path / "absent.pth")


# --- parity with the reference toolbox ---------------------------------------------------------------------------


def _run(folder, dtype):
    model = load_toolbox_model(require(folder / "model.safetensors")).to(dtype)
    x = torch.from_numpy(np.load(folder / "input.npy")).to(dtype)
    assert not model.training
    with torch.no_grad():
        feature = model.forward_features(x)
        simcc_x, simcc_y = model.forward_head(feature)
    return {"feat": feature.numpy(), "simcc_x": simcc_x.numpy(), "simcc_y": simcc_y.numpy()}


def _assert_close(ours, reference, atol, relative):
    assert ours.shape == reference.shape
    error = np.abs(ours - reference).max()
    scale = np.abs(reference).max() if relative else 1.0
    assert scale > 0 and error / scale <= atol, f"max error {error:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("name", list(PARITY_DIRS))
def test_float32_parity(name):
    folder = PARITY_DIRS[name]
    outputs = _run(folder, torch.float32)
    relative = name == "t_toolbox_init"   # activations ~1e-6: only a relative comparison says anything
    for key, ours in outputs.items():
        _assert_close(ours, np.load(folder / f"{key}.npy"), 1e-4 if relative else 1e-3, relative)


@pytest.mark.parametrize("name", list(PARITY_DIRS))
def test_float64_parity(name):
    folder = PARITY_DIRS[name]
    outputs = _run(folder, torch.float64)
    relative = name == "t_toolbox_init"
    for key, ours in outputs.items():
        _assert_close(ours, np.load(folder / f"{key}_fp64.npy"), 1e-12 if relative else 1e-10, relative)


@pytest.mark.parametrize("name", list(PARITY_DIRS))
def test_decoded_keypoints_match(name):
    folder = PARITY_DIRS[name]
    outputs = _run(folder, torch.float32)
    simcc_x, simcc_y = outputs["simcc_x"], outputs["simcc_y"]
    keypoints = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], axis=-1) / 2.0
    scores = np.minimum(simcc_x.max(-1), simcc_y.max(-1))
    np.testing.assert_array_equal(keypoints, np.load(folder / "decoded_keypoints.npy"))
    reference_scores = np.load(folder / "decoded_scores.npy")
    np.testing.assert_allclose(scores, reference_scores, atol=1e-3 * np.abs(reference_scores).max())


# --- command line ------------------------------------------------------------------------------------------------


def test_cli_models_prints_the_zoo(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[0] in MODEL_SIZES}
    assert set(rows) == set(MODEL_SIZES)
    assert rows["t"][3] == "3.34" and rows["l"][3] == "27.66"
    assert rows["m"][5] == "74.6"
    assert main(["models", "--keypoints", "21", "--input", "256x256"]) == 0
    assert "21 keypoints, input 256x256" in capsys.readouterr().out
    assert main(["models", "--input", "250x192"]) == 1
    assert "multiples of 32" in capsys.readouterr().err


def test_cli_convert_reference_and_reload(tmp_path, capsys):
    source = require(T_DIR / "conditioned" / "model.safetensors")
    out = tmp_path / "rtmpose-t.safetensors"
    argv = ["convert", str(source), "--size", "t", "--keypoints", "17", "--input", "256x192", "--skeleton", "coco17"]
    assert main(argv + ["--out", str(out)]) == 0
    model, info = load_model_file(out)
    assert info.model_size == "t" and info.input_size == (256, 192) and info.skeleton.name == "coco17"
    assert info.extra["source_checkpoint"] == "model.safetensors"
    x = torch.from_numpy(np.load(T_DIR / "conditioned" / "input.npy"))
    with torch.no_grad():
        ours = model(x)
        reference = load_toolbox_model(source)(x)
    assert torch.equal(ours[0], reference[0]) and torch.equal(ours[1], reference[1])
    capsys.readouterr()
    assert main(["convert", str(source), "--size", "m", "--input", "384x288", "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "size m declared but the weights are t" in err and "input size 384x288" in err
    assert main(["convert", str(source), "--skeleton", "mpii16", "--out", str(tmp_path / "x")]) == 1
    assert "mpii16 has 16" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

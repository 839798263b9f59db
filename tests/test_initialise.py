"""Starting from released weights: model files and toolbox checkpoints of another skeleton or input size (keypoint
channels copied by name), backbone-only files, refusal of another model size, the record in the run folder, and
freezing the backbone for the first epochs (exact resume included)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REFERENCE, require
from safetensors.torch import load_file, save_file

from unionpose.cli import main
from unionpose.core.simcc import resampled_bin_positions
from unionpose.engine import latest_checkpoint, load_config, train
from unionpose.engine.checkpoint import load_checkpoint
from unionpose.models import (
    RTMPose, initialise_model, load_toolbox_model, read_backbone_file, read_toolbox_state_dict, save_backbone_file,
    save_model_file,
)
from unionpose.models.initialise import KEYPOINT_TENSORS
from unionpose.models.toolbox_weights import toolbox_key_map
from unionpose.skeletons import canonical, get_skeleton, union
from unionpose.synthetic import generate

COCO, MPII = get_skeleton("coco17"), get_skeleton("mpii16")
UNION = union(COCO, MPII)
REFERENCE_MODELS = {"t": REFERENCE / "rtmpose-t_coco-256x192" / "model.safetensors",
                    "s": REFERENCE / "rtmpose-s_coco-256x192" / "model.safetensors"}


def trained_like(size: str, num_keypoints: int, input_size: tuple[int, int], seed: int = 0) -> RTMPose:
    """A model whose every tensor (BatchNorm statistics included) is random, so no copy can pass by coincidence."""
    torch.manual_seed(seed)
    model = RTMPose(size, num_keypoints, input_size)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in key else torch.randn_like(tensor))
    return model


def fresh_union_model(input_size: tuple[int, int] = (64, 64)) -> tuple[RTMPose, dict[str, torch.Tensor]]:
    torch.manual_seed(1)
    model = RTMPose("t", UNION.num_keypoints, input_size)
    return model, {key: value.clone() for key, value in model.state_dict().items()}


def toolbox_state(model: RTMPose) -> dict[str, torch.Tensor]:
    """`model`'s tensors under the reference toolbox's key names, as its checkpoints hold them."""
    names = toolbox_key_map(model)
    return {names[key]: value.clone() for key, value in model.state_dict().items()}


def assert_channels_copied_by_name(record, source: dict[str, torch.Tensor], source_skeleton, model: RTMPose,
                                   before: dict[str, torch.Tensor]) -> None:
    """Each mapped output channel equals the source channel of the same canonical name, tensor by tensor; the
    channels of points the source lacks are untouched."""
    state = model.state_dict()
    mapped_targets = set()
    for name, source_channel, target_channel in record.keypoints:
        assert canonical(source_skeleton.names[source_channel]) == canonical(name) == UNION.names[target_channel]
        for key in KEYPOINT_TENSORS:
            assert torch.equal(state[key][target_channel], source[key][source_channel]), (key, name)
        mapped_targets.add(target_channel)
    fresh = [k for k in range(UNION.num_keypoints) if k not in mapped_targets]
    assert [UNION.names[k] for k in fresh] == record.fresh_keypoints
    for key in KEYPOINT_TENSORS:
        assert torch.equal(state[key][fresh], before[key][fresh])


def assert_partition(record, model: RTMPose) -> None:
    groups = [record.loaded, record.resampled, record.mapped, record.fresh]
    assert sorted(key for group in groups for key in group) == sorted(model.state_dict())


# --- a UnionPose model file of another skeleton -----------------------------------------------------------------


@pytest.mark.parametrize("source_skeleton", [COCO, MPII], ids=["coco17", "mpii16"])
def test_model_file_of_another_skeleton_maps_keypoint_channels_by_name(tmp_path, source_skeleton):
    source = trained_like("t", source_skeleton.num_keypoints, (64, 64))
    path = save_model_file(tmp_path / "source.safetensors", source, source_skeleton)
    model, before = fresh_union_model()
    record = initialise_model(model, UNION, path)

    source_state, state = source.state_dict(), model.state_dict()
    assert_channels_copied_by_name(record, source_state, source_skeleton, model, before)
    assert len(record.keypoints) == source_skeleton.num_keypoints
    for key in record.loaded:                              # backbone and keypoint-independent head, exactly
        assert torch.equal(state[key], source_state[key]), key
    assert sum(key.startswith("backbone.") for key in record.loaded) == len(source.backbone.state_dict())
    assert record.resampled == [] and record.fresh == [] and record.mapped == list(KEYPOINT_TENSORS)
    assert_partition(record, model)
    if source_skeleton is MPII:        # MPII's order is not the union's: ankles first, head_top last
        assert ("right_ankle", 0, 16) in record.keypoints and ("head_top", 9, 20) in record.keypoints
        assert record.fresh_keypoints == ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
    else:
        assert all(s == t for _, s, t in record.keypoints)
        assert record.fresh_keypoints == ["pelvis", "thorax", "upper_neck", "head_top"]
    assert json.loads(record.to_json())["keypoints"][0] == list(record.keypoints[0])
    assert "keypoint channels by name" in record.summary()


def test_a_model_file_names_its_own_skeleton(tmp_path):
    path = save_model_file(tmp_path / "source.safetensors", trained_like("t", 17, (64, 64)), COCO)
    with pytest.raises(ValueError, match="predicts skeleton 'coco17', not the 'mpii16' named for it"):
        initialise_model(fresh_union_model()[0], UNION, path, source_skeleton="mpii16")


# --- another input size -----------------------------------------------------------------------------------------


def test_another_input_size_resamples_the_geometry_dependent_head_tensors(tmp_path):
    source = trained_like("t", 17, (96, 64))
    path = save_model_file(tmp_path / "source.safetensors", source, COCO)
    model, before = fresh_union_model((128, 96))
    record = initialise_model(model, UNION, path)
    assert sorted(record.resampled) == ["head.cls_x.weight", "head.cls_y.weight", "head.token_embed.weight"]
    state, source_state = model.state_dict(), source.state_dict()
    assert all(state[key].shape == before[key].shape for key in state)
    assert_channels_copied_by_name(record, source_state, COCO, model, before)
    assert_partition(record, model)

    # classifiers: target bin b reads the source at the bin that sits at the same place in the crop
    rows = source_state["head.cls_y.weight"].double().numpy()
    position = resampled_bin_positions(96, 2.0, 128, 2.0)
    expected = np.stack([np.interp(position, np.arange(len(rows)), rows[:, c]) for c in range(rows.shape[1])], 1)
    np.testing.assert_allclose(state["head.cls_y.weight"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert state["head.cls_x.weight"].shape == (192, 256) and state["head.cls_y.weight"].shape == (256, 256)
    # token embedding: a constant map stays constant, scaled by the token-count ratio (3x2 -> 4x3 cells)
    with torch.no_grad():
        source.head.token_embed.weight.fill_(1.5)
    save_model_file(path, source, COCO)
    initialise_model(model, UNION, path)
    torch.testing.assert_close(model.head.token_embed.weight, torch.full((256, 12), 1.5 * 6 / 12))


def test_the_same_input_size_copies_the_head_exactly(tmp_path):
    source = trained_like("t", 21, (96, 64))
    path = save_model_file(tmp_path / "source.safetensors", source, UNION)
    model, _ = fresh_union_model((96, 64))
    record = initialise_model(model, UNION, path)
    assert record.resampled == [] and record.fresh_keypoints == []
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))


def test_transposed_input_resamples_even_when_shapes_agree(tmp_path):
    """96x64 and 64x96 both give 6 tokens; the feature maps are 3x2 and 2x3, so the embedding must move."""
    path = save_model_file(tmp_path / "source.safetensors", trained_like("t", 17, (96, 64)), COCO)
    record = initialise_model(fresh_union_model((64, 96))[0], UNION, path)
    assert "head.token_embed.weight" in record.resampled


# --- backbone-only files ----------------------------------------------------------------------------------------


def test_backbone_file_round_trip_and_it_loads_the_backbone_and_nothing_else(tmp_path):
    source = trained_like("t", 17, (256, 192))
    path = save_backbone_file(tmp_path / "backbone.safetensors", source, extra={"pretrained_on": "synthetic"})
    backbone = read_backbone_file(path)
    expected = {f"backbone.{key}": value for key, value in source.backbone.state_dict().items()}
    assert backbone.model_size == "t" and backbone.extra == {"pretrained_on": "synthetic"}
    assert backbone.tensors.keys() == expected.keys()
    assert all(torch.equal(backbone.tensors[key], value) for key, value in expected.items())

    model, before = fresh_union_model()
    record = initialise_model(model, UNION, path)
    state = model.state_dict()
    assert sorted(record.loaded) == sorted(expected)
    assert all(torch.equal(state[key], value) for key, value in expected.items())
    assert all(torch.equal(state[key], before[key]) for key in state if not key.startswith("backbone."))
    assert record.fresh_keypoints == list(UNION.names) and record.keypoints == []
    assert_partition(record, model)
    with pytest.raises(ValueError, match="would overwrite reserved"):
        save_backbone_file(tmp_path / "x.safetensors", source, extra={"model_size": "l"})


def test_a_damaged_backbone_file_is_a_clear_error(tmp_path):
    path = save_backbone_file(tmp_path / "backbone.safetensors", trained_like("t", 1, (32, 32)))
    tensors = load_file(path)
    tensors.pop("backbone.stem.0.conv.weight")
    save_file(tensors, tmp_path / "broken.safetensors", metadata={"format": "unionpose-backbone",
                                                                  "format_version": "1", "model_size": "t"})
    with pytest.raises(ValueError, match=r"broken\.safetensors: .*RTMPose-t backbone.*missing: backbone\.stem\.0"):
        read_backbone_file(tmp_path / "broken.safetensors")


def test_toolbox_backbone_checkpoint_loads_by_prefix_and_lists_the_rest(tmp_path):
    """As the toolbox's pretrained cspnext-*_udp-aic-coco files: `backbone.*` plus a heatmap head, in a `.pth`."""
    source = trained_like("t", 17, (256, 192))
    state = {key: value for key, value in toolbox_state(source).items() if key.startswith("backbone.")}
    state["head.final_layer.weight"] = torch.randn(17, 384, 1, 1)
    state["head.final_layer.bias"] = torch.zeros(17)
    path = tmp_path / "cspnext-t_udp-aic-coco_210e-256x192.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": state}, path)
    model, before = fresh_union_model()
    record = initialise_model(model, UNION, path)
    assert record.kind == "toolbox backbone checkpoint"
    assert record.ignored == ["head.final_layer.bias", "head.final_layer.weight"]
    state = model.state_dict()
    expected = {key: value for key, value in source.state_dict().items() if key.startswith("backbone.")}
    assert sorted(record.loaded) == sorted(expected)
    assert all(torch.equal(state[key], value) for key, value in expected.items())
    assert all(torch.equal(state[key], before[key]) for key in state if not key.startswith("backbone."))

    out = tmp_path / "cspnext-t.safetensors"      # the same file converted once to a backbone file
    assert main(["convert", str(path), "--backbone-only", "--out", str(out)]) == 0
    converted = read_backbone_file(out)
    assert converted.model_size == "t" and converted.extra["source_checkpoint"] == path.name
    assert all(torch.equal(converted.tensors[key], value) for key, value in expected.items())


# --- toolbox RTMPose checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["t", "s"])
def test_reference_toolbox_state_dicts_load_as_full_checkpoints_and_as_backbones(size, tmp_path):
    path = require(REFERENCE_MODELS[size])
    reference = load_toolbox_model(path).state_dict()
    for input_size in ((256, 192), (96, 64)):
        torch.manual_seed(1)
        model = RTMPose(size, 21, input_size)
        before = {key: value.clone() for key, value in model.state_dict().items()}
        record = initialise_model(model, UNION, path)
        assert record.kind == "toolbox RTMPose checkpoint" and "coco17 inferred" in record.notes[0]
        assert_channels_copied_by_name(record, reference, COCO, model, before)
        assert all(torch.equal(model.state_dict()[key], reference[key]) for key in record.loaded)
        assert len(record.keypoints) == 17 and len(record.resampled) == (0 if input_size == (256, 192) else 3)
        assert_partition(record, model)

    backbone_path = tmp_path / f"cspnext-{size}.safetensors"        # the same file without its head
    save_file({key: value for key, value in read_toolbox_state_dict(path).items() if key.startswith("backbone.")},
              backbone_path)
    model = RTMPose(size, 21, (256, 192))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    record = initialise_model(model, UNION, backbone_path)
    assert record.kind == "toolbox backbone checkpoint" and record.ignored == []
    assert sorted(record.loaded) == sorted(key for key in reference if key.startswith("backbone."))
    state = model.state_dict()
    assert all(torch.equal(state[key], reference[key]) for key in record.loaded)
    assert all(torch.equal(state[key], before[key]) for key in state if not key.startswith("backbone."))


def test_toolbox_skeleton_is_named_when_the_count_is_ambiguous(tmp_path):
    aic = get_skeleton("aic14")
    source = trained_like("t", 14, (64, 64))
    path = tmp_path / "rtmpose-t_aic.safetensors"
    save_file(toolbox_state(source), path)
    target = union(COCO, aic)
    model = RTMPose("t", target.num_keypoints, (64, 64))
    with pytest.raises(ValueError, match="14 keypoints do not identify one.*set model.init_skeleton"):
        initialise_model(model, target, path)
    with pytest.raises(ValueError, match="predicts 14 keypoints but model.init_skeleton 'coco17' has 17"):
        initialise_model(model, target, path, source_skeleton="coco17")
    record = initialise_model(model, target, path, source_skeleton="aic14")
    assert record.notes == [] and len(record.keypoints) == 14
    state = model.state_dict()
    for name, source_channel, target_channel in record.keypoints:
        assert canonical(aic.names[source_channel]) == target.names[target_channel]
        assert torch.equal(state["head.keypoint_conv.weight"][target_channel],
                           source.state_dict()["head.keypoint_conv.weight"][source_channel])


# --- another model size ---------------------------------------------------------------------------------------


def test_another_model_size_is_refused_naming_the_tensors(tmp_path):
    small = trained_like("s", 17, (64, 64))
    files = [save_model_file(tmp_path / "s.safetensors", small, COCO),
             save_backbone_file(tmp_path / "s_backbone.safetensors", small)]
    torch.save(toolbox_state(small), tmp_path / "s_toolbox.pth")
    files.append(tmp_path / "s_toolbox.pth")
    for path in files:
        model, before = fresh_union_model()
        with pytest.raises(ValueError, match=r"(RTMPose|CSPNeXt)-s.* cannot initialise RTMPose-t .*"
                                             r"backbone\.stem\.0\.conv\.weight \(16, 3, 3, 3\) vs \(12, 3, 3, 3\)"
                                             r".*set model\.size: s"):
            initialise_model(model, UNION, path)
        assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())   # untouched


def test_files_that_are_not_weights_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        initialise_model(fresh_union_model()[0], UNION, tmp_path / "absent.pth")
    save_file({"head.other.weight": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="neither an RTMPose checkpoint .* nor a CSPNeXt backbone"):
        initialise_model(fresh_union_model()[0], UNION, tmp_path / "other.safetensors")


# --- training: init.json, never on resume, freeze_backbone_epochs ----------------------------------------------------


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """COCO-like people into the 21-point union at 64x64: 3 steps of 4 crops per epoch, no validation."""
    folder = tmp_path_factory.mktemp("initialise")
    generate(folder / "synthetic", num_train=10, num_val=1, seed=0)
    config = {
        "skeleton": {"union": ["coco17", "mpii16"]},
        "model": {"size": "t", "input": [64, 64]},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": "synthetic/coco17.json",
                            "images": "synthetic/images"}],
                 "mild_last_epochs": 0},
        "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 1, "workers": 0, "log_interval": 1, "ema": False,
                  "checkpoint_interval": 1, "keep_checkpoints": 20, "tensorboard": False, "device": "cpu"},
        "output": "run",
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path



def test_training_run_records_its_init_and_resume_does_not_reapply_it(recipe, tmp_path, capsys):
    source = trained_like("t", 16, (96, 64))
    init = save_model_file(tmp_path / "mpii_start.safetensors", source, MPII)
    run = tmp_path / "run"
    assert main(["train", str(recipe), f"output={run}", "--init", str(init)]) == 0
    assert "init from" in capsys.readouterr().out
    record = json.loads((run / "init.json").read_text())
    assert record["source"] == str(init.resolve()) and record["kind"] == "UnionPose model file"
    assert len(record["keypoints"]) == 16 and record["fresh_keypoints"][:1] == ["nose"]
    assert sorted(record["resampled"]) == ["head.cls_y.weight", "head.token_embed.weight"]   # 96x64 -> 64x64
    init = yaml.safe_load((run / "config.yaml").read_text())["model"]["init"]
    assert init == str(Path(record["source"]))

    Path(init).unlink()      # a resumed run takes its weights from the checkpoint, never from model.init again
    with pytest.raises(ValueError, match=r"cannot resume .*train\.epochs"):
        train(load_config(recipe, [f"output={run}", f"model.init={init}", "train.epochs=2"]), resume=True)
    train(load_config(recipe, [f"output={run}", f"model.init={init}"]), resume=True)


def test_init_skeleton_needs_init_and_is_passed_from_the_command_line(recipe):
    with pytest.raises(ValueError, match="init_skeleton names the skeleton of the weights in init"):
        load_config(recipe, ["model.init_skeleton=aic14"])
    from unionpose.commands.train import init_overrides

    config = load_config(recipe, init_overrides(Path("weights: odd.pth"), "aic14"))
    assert config.model.init == str(Path("weights: odd.pth").resolve()) and config.model.init_skeleton == "aic14"
    with pytest.raises(ValueError, match="freeze_backbone_epochs \\(3\\) is more than the epochs \\(1\\)"):
        load_config(recipe, ["train.freeze_backbone_epochs=3"])


def backbone_of(path: Path) -> dict[str, torch.Tensor]:
    return {key: value for key, value in load_file(path).items() if key.startswith("backbone.")}


def test_freeze_backbone_epochs_keeps_the_backbone_bit_identical_then_trains_it(recipe, tmp_path):
    start = save_backbone_file(tmp_path / "start.safetensors", trained_like("t", 1, (32, 32)))
    expected = read_backbone_file(start).tensors
    run = tmp_path / "frozen"
    train(load_config(recipe, [f"output={run}", f"model.init={start}", "train.epochs=2",
                               "train.freeze_backbone_epochs=1", "train.checkpoint_iters=1"]))
    checkpoints = sorted((run / "checkpoints").iterdir())
    assert len(checkpoints) == 6                           # 3 steps per epoch, one checkpoint each
    for directory in checkpoints:
        progress = load_checkpoint(directory).progress
        backbone = backbone_of(directory / "model.safetensors")
        frozen = progress.step <= 3                        # the first epoch's steps
        same = [torch.equal(backbone[key], expected[key]) for key in expected]
        assert all(same) if frozen else not all(same), (progress, sum(same))
        head = load_file(directory / "model.safetensors")["head.cls_x.weight"]
        assert not torch.equal(head, torch.zeros_like(head))


@pytest.mark.slow
def test_resume_in_a_frozen_and_in_an_unfrozen_epoch_matches_the_uninterrupted_run(recipe, tmp_path):
    start = save_backbone_file(tmp_path / "start.safetensors", trained_like("t", 1, (32, 32)))
    settings = [f"model.init={start}", "train.epochs=2", "train.freeze_backbone_epochs=1",
                "train.checkpoint_iters=1"]
    reference = tmp_path / "reference"
    train(load_config(recipe, [f"output={reference}", *settings]))
    for step in (1, 4):                                    # mid epoch 1 (frozen) and mid epoch 2 (trained)
        folder = reference / "checkpoints" / f"step_{step:08d}"
        assert load_checkpoint(folder).progress.batch_in_epoch == 1
        resumed = tmp_path / f"resumed_{step}"
        train(load_config(recipe, [f"output={resumed}", *settings]), resume=folder)
        expected, got = load_file(reference / "final.safetensors"), load_file(resumed / "final.safetensors")
        different = [key for key in expected if not torch.equal(expected[key], got[key])]
        assert not different, f"resumed at step {step}: {len(different)} tensors differ, e.g. {different[:3]}"
        last = latest_checkpoint(reference).name          # optimiser moments (started at the release) and RNG
        expected = load_file(reference / "checkpoints" / last / "state.safetensors")
        got = load_file(resumed / "checkpoints" / last / "state.safetensors")
        assert expected.keys() == got.keys() and all(torch.equal(expected[key], got[key]) for key in expected)

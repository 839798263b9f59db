"""Checkpoints: kill -9 mid-epoch and resume ends bit-identical to an uninterrupted run; damaged checkpoints are
clear errors, never a silent restart; writes are atomic and old checkpoints are pruned."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from unionpose.distill import GroundTruthObjective
from unionpose.engine import load_config, train
from unionpose.synthetic import generate
from unionpose.engine.checkpoint import (
    Progress, latest_checkpoint, load_checkpoint, restore_checkpoint, save_checkpoint,
)
from unionpose.engine.ema import ModelEMA
from unionpose.engine.logging import MetricsLog
from unionpose.engine.trainer import build_optimizer
from unionpose.models import RTMPose
from unionpose.skeletons import get_skeleton

# One intra-op thread: steadier timing on a loaded 2-core machine, and the same arithmetic in every process.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """COCO (half of it each epoch) + MPII into the 21-point union, full augmentation, EMA, validation every epoch:
    40 crops per epoch, batches of 6 -> 6 steps per epoch, 18 in all; mid-epoch checkpoints every 4 steps."""
    folder = tmp_path_factory.mktemp("resume")
    generate(folder / "synthetic", num_train=24, num_val=8, seed=0)
    data = "synthetic"
    config = {
        "skeleton": {"union": ["coco17", "mpii16"]},
        "model": {"size": "t", "input": [64, 64]},
        "data": {
            "train": [
                {"name": "coco", "format": "coco", "annotations": f"{data}/coco17.json", "images": f"{data}/images",
                 "ratio": 0.5},
                {"name": "mpii", "format": "mpii", "annotations": f"{data}/mpii16.json", "images": f"{data}/images"},
            ],
            "val": [{"name": "all21", "format": "coco", "skeleton": "coco_mpii21",
                     "annotations": f"{data}/full21_val.json", "images": f"{data}/images"}],
            "mild_last_epochs": 1,
        },
        "train": {"epochs": 3, "batch_size": 6, "warmup_iters": 5, "workers": 0, "val_interval": 1,
                  "log_interval": 1, "checkpoint_interval": 0, "checkpoint_iters": 4, "keep_checkpoints": 5,
                  "device": "cpu"},
        "output": "run",
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def unionpose_train(recipe: Path, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unionpose", "train", str(recipe), *arguments],
                            cwd=recipe.parent, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    return output


def train_lines(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "images_per_s")} for r in records]


@pytest.mark.slow
def test_kill_mid_epoch_and_resume_is_bit_exact(recipe):
    folder = recipe.parent
    # The reference runs uninterrupted without loader workers; the victim uses two workers (same crops: they
    # depend on (seed, epoch, position) only) and is killed right after its checkpoint at step 8 (epoch 2, batch 2).
    reference = unionpose_train(recipe, "output=reference")
    victim = unionpose_train(recipe, "output=victim", "train.workers=2")
    target = folder / "victim" / "checkpoints" / "step_00000008"
    deadline = time.monotonic() + 240
    while not target.is_dir() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    assert not (folder / "victim" / "final.safetensors").exists(), "the run finished before it could be killed"
    resumed_from = load_checkpoint(latest_checkpoint(folder / "victim"))
    assert resumed_from.progress.batch_in_epoch > 0, "the kill must land mid-epoch"

    finish(unionpose_train(recipe, "output=victim", "train.workers=2", "--resume"))
    finish(reference)

    last = latest_checkpoint(folder / "reference").relative_to(folder / "reference")
    assert latest_checkpoint(folder / "victim").relative_to(folder / "victim") == last
    for name in ("final.safetensors", "best.safetensors", last / "model.safetensors", last / "ema.safetensors",
                 last / "state.safetensors"):
        expected, got = load_file(folder / "reference" / name), load_file(folder / "victim" / name)
        assert expected.keys() == got.keys()
        different = [key for key in expected if not torch.equal(expected[key], got[key])]
        assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:3]}"
    # the metrics file reads as one run: the lines logged after step 8 by the killed run were dropped
    assert train_lines(folder / "victim") == train_lines(folder / "reference")


def test_resume_refuses_a_changed_recipe(recipe):
    short = ["train.epochs=1", "data.train.0.ratio=0.2", "data.train.1.ratio=0.2", "data.val=[]",
             f"output={recipe.parent / 'short'}"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_config(recipe, short))                  # 11 people: one step
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match=r"cannot resume .*train\.lr: 0\.004 -> 0\.001"):
        train(load_config(recipe, [*short, "train.lr=1e-3"]), resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(load_config(recipe, short))


def tiny_state(seed: int = 0):
    torch.manual_seed(seed)
    model = RTMPose("t", 21, (32, 32))
    objective = GroundTruthObjective()
    optimizer = build_optimizer([model, objective], lr=1e-3, weight_decay=0.0)
    ema = ModelEMA(model)
    simcc_x, simcc_y = model(torch.randn(2, 3, 32, 32))
    (simcc_x.sum() + simcc_y.sum()).backward()
    optimizer.step()
    ema.update(model)
    return model, objective, optimizer, ema, torch.amp.GradScaler("cpu", enabled=False)


def write_checkpoint(run: Path, step: int = 7) -> Path:
    model, objective, optimizer, ema, scaler = tiny_state()
    return save_checkpoint(run, model=model, skeleton=get_skeleton("coco_mpii21"), codec_sigma=(1.0, 1.0),
                           optimizer=optimizer, objective=objective, ema=ema, scaler=scaler,
                           progress=Progress(step=step, epoch=1, batch_in_epoch=3, best_metric=0.5, best_epoch=1))


def test_checkpoint_round_trip_restores_everything(tmp_path):
    original_model, _, original_optimizer, original_ema, _ = tiny_state()
    directory = write_checkpoint(tmp_path / "run")          # the same state as `original_*`
    assert directory.name == "step_00000007" and latest_checkpoint(tmp_path / "run") == directory
    expected_random = torch.rand(3)                  # the next draw after the checkpoint was taken...
    torch.manual_seed(123)
    model, objective, optimizer, ema, scaler = tiny_state(seed=1)
    progress = restore_checkpoint(load_checkpoint(directory), model=model, skeleton=get_skeleton("coco_mpii21"),
                                  optimizer=optimizer, objective=objective, ema=ema, scaler=scaler)
    assert progress == Progress(step=7, epoch=1, batch_in_epoch=3, best_metric=0.5, best_epoch=1)
    assert torch.equal(torch.rand(3), expected_random)   # ...is drawn again after restoring the RNG state
    for restored, original in ((model, original_model), (ema.module, original_ema.module)):
        assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), restored.state_dict().values()))
    assert ema.updates == original_ema.updates == 1
    expected, got = original_optimizer.state_dict(), optimizer.state_dict()
    assert expected["param_groups"] == got["param_groups"] and expected["state"].keys() == got["state"].keys()
    for index, entries in expected["state"].items():
        assert all(torch.equal(value, got["state"][index][name]) for name, value in entries.items())


def test_damaged_checkpoints_are_clear_errors(tmp_path):
    directory = write_checkpoint(tmp_path / "run")
    state = directory / "state.safetensors"
    intact = state.read_bytes()
    state.write_bytes(intact[: len(intact) // 2])
    with pytest.raises(ValueError, match=r"state\.safetensors: corrupted or truncated"):
        load_checkpoint(directory)
    state.write_bytes(intact)
    model_file = directory / "model.safetensors"
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.safetensors: corrupted or truncated"):
        load_checkpoint(directory)
    model_file.unlink()
    with pytest.raises(ValueError, match=r"model\.safetensors: missing from the checkpoint"):
        load_checkpoint(directory)
    (directory / "state.json").write_text('{"format": "unionpose-training-state", "vers')
    with pytest.raises(ValueError, match=r"state\.json: unreadable \(truncated or corrupted\?\)"):
        load_checkpoint(directory)
    (directory / "state.json").unlink()
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(directory)


def test_resuming_a_damaged_run_fails_instead_of_restarting(tmp_path):
    run = tmp_path / "run"
    directory = write_checkpoint(run)
    (directory / "state.safetensors").write_bytes(b"\0" * 100)
    recipe = {"skeleton": "coco_mpii21", "data": {"train": [
        {"name": "none", "format": "coco", "annotations": "absent.json", "images": "absent"}]}, "output": str(run)}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ValueError, match="corrupted or truncated"):
        train(load_config(path), resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(load_config(path))
    with pytest.raises(ValueError, match="nothing to resume"):
        train(load_config(path, [f"output={tmp_path / 'empty'}"]), resume=True)


def test_incomplete_writes_are_ignored_and_old_checkpoints_pruned(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2, 3):
        write_checkpoint(run, step=step)
    leftover = run / "checkpoints" / ".incomplete-step_00000009-killed"
    leftover.mkdir()
    assert latest_checkpoint(run).name == "step_00000003"
    write_checkpoint(run, step=4)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step_00000003", "step_00000004"]       # keep=2 by default; the leftover is cleaned up


def test_resumed_metrics_drop_later_and_torn_lines(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"kind": "train", "step": 4}\n{"kind": "val", "step": 6}\n{"kind": "tr')
    log = MetricsLog(tmp_path, resume_step=5, tensorboard=False)
    log.write("train", 6, 2, {"loss": 0.5})
    log.close()
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 6]


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, capsys):
    """Finding 6 of issue 14: the newest checkpoint damaged, `--resume` continues from the previous intact one, says
    which it skipped and why, and sets the damaged one aside; the resumed run ends where an intact one would."""
    from reliability_support import synthetic_data, tiny_recipe

    recipe = tiny_recipe(tmp_path / "recipe.yaml", synthetic_data(tmp_path / "data"), tmp_path / "run", epochs=2,
                         keep_checkpoints=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(load_config(recipe))                                  # checkpoints at steps 3 and 6
        newest = latest_checkpoint(tmp_path / "run")
        assert newest.name == "step_00000006"
        state = newest / "state.safetensors"
        state.write_bytes(state.read_bytes()[:100])
        capsys.readouterr()
        result = train(load_config(recipe), resume=True)
    finally:
        torch.set_num_threads(threads)
    error = capsys.readouterr().err
    assert f"skipped damaged checkpoint {newest} (moved to damaged-step_00000006)" in error
    assert "state.safetensors: corrupted or truncated" in error
    assert f"resuming from {newest.with_name('step_00000003')}, the newest intact checkpoint" in error
    assert result.steps == 6 and latest_checkpoint(tmp_path / "run").name == "step_00000006"
    assert (tmp_path / "run" / "checkpoints" / "damaged-step_00000006").is_dir()     # kept for a look, not deleted

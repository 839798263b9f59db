"""torchrun on the CPU (Gloo): 2 processes with half the batch each take the step 1 process takes with the whole
batch, only rank 0 writes, and repeated launches shut down cleanly.

The launch test runs 3 launches to stay fast; 20 in a row were checked by hand, all exiting 0 (~6.6 s each, 2 cores):
    for i in $(seq 20); do torchrun --standalone --nproc_per_node=2 -m unionpose train RECIPE output=/tmp/l$i \
        data.train.0.ratio=0.25 || echo FAILED; done
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from unionpose.data.dataset import EpochBatchSampler
from unionpose.synthetic import generate

# torchrun sets one thread per process itself; the single process gets the same, for a like-for-like comparison.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
LAUNCHES = 3        # ~6 s each on 2 cores; 20 in a row were run by hand (`tests/test_ddp.py` docstring)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    """35 synthetic COCO people, batches of 8 -> 4 steps. BatchNorm is frozen: with batch statistics each process
    would normalise its own half batch, which is a different computation (SyncBN needs NCCL). Gradient clipping is
    on and active in the first step, so a wrongly scaled gradient (mean instead of sum over processes) shows up even
    through AdamW's scale invariance."""
    folder = tmp_path_factory.mktemp("ddp")
    generate(folder / "synthetic", num_train=24, num_val=8, seed=0)
    config = {
        "skeleton": "coco17",
        "model": {"size": "t", "input": [64, 64]},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": "synthetic/coco17.json",
                            "images": "synthetic/images"}]},
        "train": {"epochs": 1, "batch_size": 8, "warmup_iters": 2, "workers": 0, "log_interval": 1,
                  "freeze_bn": True, "grad_clip": 10.0, "ema": False, "device": "cpu"},
        "output": "run",
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def launch(recipe: Path, processes: int, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "unionpose", "train", str(recipe), *overrides]
    if processes > 1:
        command[1:3] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m",
                        "unionpose"]
    result = subprocess.run(command, cwd=recipe.parent, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sampler_shards_each_global_batch_between_processes():
    order = np.random.default_rng(0).permutation(50)
    single = EpochBatchSampler(lambda epoch: order, 8)
    ranks = [EpochBatchSampler(lambda epoch: order, 8, rank=r, world_size=2) for r in (0, 1)]
    assert single.batches_per_epoch == 6 and len(single) == 6
    for whole, half0, half1 in zip(single, *ranks):
        assert whole == half0 + half1
    single.set_epoch(4, start_batch=5)
    assert len(single) == 1 and list(single) == [[(4, p, int(order[p])) for p in range(40, 48)]]
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        EpochBatchSampler(lambda epoch: order, 9, rank=0, world_size=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        EpochBatchSampler(lambda epoch: order[:5], 8)


@pytest.mark.slow
def test_two_gloo_processes_take_the_step_of_one(recipe):
    launch(recipe, 1, "output=single")
    result = launch(recipe, 2, "output=double")
    single, double = recipe.parent / "single", recipe.parent / "double"
    assert result.stdout.count('"run_dir"') == 1          # only rank 0 reports ...
    assert len(losses(double)) == 4                        # ... and logs, once per step
    # the logged loss is the global batch's: summed over the two halves
    np.testing.assert_allclose(losses(double), losses(single), rtol=1e-5)
    expected, got = load_file(single / "final.safetensors"), load_file(double / "final.safetensors")
    # Not bit-exact: the all-reduce adds the two halves' gradients in another order than one backward pass does.
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-5, msg=key)
    checkpoint = load_file(double / "checkpoints" / "step_00000004" / "model.safetensors")
    assert all(torch.equal(checkpoint[key], got[key]) for key in got)     # rank 0 wrote both


@pytest.mark.slow
def test_consecutive_launches_shut_down_cleanly(recipe):
    """A tiny 2-process run (one step: a quarter of the data) launched again and again must exit 0 every time:
    destroying the process group while DDP still holds it makes some launches abort at exit."""
    for attempt in range(LAUNCHES):
        result = launch(recipe, 2, f"output=launch{attempt}", "data.train.0.ratio=0.25")
        assert "abort" not in result.stderr.lower() and "terminate called" not in result.stderr, result.stderr[-2000:]
        assert (recipe.parent / f"launch{attempt}" / "final.safetensors").is_file()


@pytest.mark.slow
def test_two_gloo_processes_freeze_and_release_the_backbone_as_one(recipe):
    """train.freeze_backbone_epochs under DDP: the trainer wraps the model again when the backbone is released, so
    the second epoch's backbone gradients are all-reduced (a stale wrapper would leave the ranks apart)."""
    settings = ["train.epochs=2", "train.freeze_backbone_epochs=1", "train.checkpoint_interval=1",
                "train.keep_checkpoints=4"]
    launch(recipe, 1, "output=frozen_single", *settings)
    launch(recipe, 2, "output=frozen_double", *settings)
    single, double = recipe.parent / "frozen_single", recipe.parent / "frozen_double"
    first = load_file(double / "checkpoints" / "step_00000004" / "model.safetensors")     # end of epoch 1
    final, expected = load_file(double / "final.safetensors"), load_file(single / "final.safetensors")
    backbone = [key for key in final if key.startswith("backbone.") and key.endswith(".conv.weight")]
    assert not any(torch.equal(first[key], final[key]) for key in backbone)      # released in epoch 2
    for key in expected:
        torch.testing.assert_close(final[key], expected[key], atol=1e-5, rtol=1e-5, msg=key)

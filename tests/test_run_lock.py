"""Finding 2 of issue 14: a run folder has one owner. A second `unionpose train` on a live run's folder, or a resume
of a live run, is refused naming the owner; the lock of a run that died is taken over with a message."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reliability_support import synthetic_data, tiny_recipe
from unionpose.cli import main
from unionpose.engine.run_lock import RUN_LOCK, RunLock, RunLockedError

HOLD = ("import sys, time; from unionpose.engine.run_lock import RunLock; lock = RunLock(sys.argv[1]); "
        "lock.acquire(); print('locked', flush=True); time.sleep(120)")


@pytest.fixture
def holder(tmp_path):
    """Another process that owns `tmp_path / 'run'` as a training run would, until the test kills it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "run")], stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


def test_a_second_run_and_a_resume_of_a_live_run_are_refused(holder, tmp_path, capsys):
    data = synthetic_data(tmp_path / "data")
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run")
    assert main(["train", str(recipe)]) == 1
    assert main(["train", str(recipe), "--resume"]) == 1
    error = capsys.readouterr().err
    assert error.count(f"in use by process {holder.pid}") == 2 and str(tmp_path / "run") in error
    assert not (tmp_path / "run" / "metrics.jsonl").exists()        # the refused runs wrote nothing


def test_the_lock_of_a_dead_run_is_taken_over(holder, tmp_path, capsys):
    holder.send_signal(signal.SIGKILL)           # killed: its lock file stays, its flock goes with it
    holder.wait()
    assert json.loads((tmp_path / "run" / RUN_LOCK).read_text())["pid"] == holder.pid
    with RunLock(tmp_path / "run") as lock:
        assert lock.taken_over["pid"] == holder.pid
        with pytest.raises(RunLockedError, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    assert f"took over the lock of process {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / "run" / RUN_LOCK).exists()               # released: nothing left behind


def test_a_finished_run_leaves_no_lock(tmp_path, capsys):
    data = synthetic_data(tmp_path / "data")
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run")
    assert main(["train", str(recipe)]) == 0, capsys.readouterr().err
    assert not (Path(tmp_path / "run") / RUN_LOCK).exists()

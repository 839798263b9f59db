"""Finding 4 of issue 14: every user-facing error is one line without a traceback (`--debug` shows it): config values
that cannot be meant, errors from loader workers, a diverged run, file clashes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reliability_support import synthetic_data, tiny_recipe, undecodable_png
from unionpose.cli import main
from unionpose.engine import load_config


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthetic_data(tmp_path_factory.mktemp("data"))


def one_line_error(capsys, *words: str) -> str:
    error = capsys.readouterr().err
    lines = [line for line in error.splitlines() if line.strip()]
    assert "Traceback" not in error and lines[-1].startswith("unionpose "), error
    for word in words:
        assert word in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize("override, words", [
    ("train.lr=.inf", ("train.lr", "finite number")),
    ("train.lr=.nan", ("train.lr", "finite number")),
    ("data.augment.rotation_factor=-.inf", ("data.augment.rotation_factor", "finite number")),
    ("train.epochs=true", ("train.epochs", "expected a number, got the boolean 'true'")),
    ("train.batch_size=false", ("train.batch_size", "boolean")),
    ("model.input=[true, 64]", ("model.input", "boolean")),
    ("train={epochs: 1}", ("replaces the whole section train", "train.name=value")),
    ("data={train: []}", ("replaces the whole section data",)),
])
def test_config_values_that_cannot_be_meant_are_refused(data, tmp_path, capsys, override, words):
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run")
    assert main(["train", str(recipe), override]) == 1
    one_line_error(capsys, str(recipe) if "section" not in words[0] else "override", *words)
    assert not (tmp_path / "run").exists()


def test_booleans_stay_booleans(data, tmp_path):
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run")
    config = load_config(recipe, ["train.ema=true", "data.augment.enabled=false", "train.grad_clip=2"])
    assert config.train.ema is True and config.data.augment.enabled is False and config.train.grad_clip == 2.0


def test_an_image_failing_in_a_loader_worker_is_one_line(data, tmp_path, capsys):
    """The image passes the check before the run (sound header) and fails to decode in a worker process."""
    coco = json.loads((data / "coco17.json").read_text())
    images = tmp_path / "images"
    images.mkdir()
    for record in coco["images"]:
        (images / record["file_name"]).write_bytes((data / "images" / record["file_name"]).read_bytes())
    first = coco["images"][0]
    (images / first["file_name"]).write_bytes(undecodable_png(first["width"], first["height"]))
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run", coco={"images": str(images)},
                         workers=2, epochs=3)
    assert main(["train", str(recipe)]) == 1
    one_line_error(capsys, str(images / first["file_name"]), "field 'image'", "cannot decode")
    with pytest.raises(Exception, match="Caught DataError in DataLoader worker process"):     # --debug: as it came
        main(["train", str(recipe), f"output={tmp_path / 'debug'}", "--debug"])


def test_debug_shows_the_traceback(tmp_path):
    command = [sys.executable, "-m", "unionpose", "score", "--gt", str(tmp_path / "absent.json"), "--results",
               str(tmp_path / "absent.json")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    plain = subprocess.run(command, capture_output=True, text=True, env=env)
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr and len(plain.stderr.splitlines()) == 1
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_a_diverged_run_names_the_step_the_terms_and_the_last_good_checkpoint(data, tmp_path, capsys):
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run", lr=1e30, checkpoint_iters=1)
    assert main(["train", str(recipe)]) == 1
    line = one_line_error(capsys, "training diverged at step", "the loss is not finite (loss ", "lower train.lr")
    assert "last good checkpoint is" in line and str(tmp_path / "run" / "checkpoints" / "step_") in line


def test_file_clashes_are_one_line(tmp_path, capsys):
    folder = tmp_path / "folder.json"
    folder.mkdir()
    assert main(["score", "--gt", str(folder), "--results", str(folder)]) == 1
    one_line_error(capsys, str(folder))
    existing = tmp_path / "union.yaml"
    existing.write_text("mine")
    assert main(["skeleton", "union", "coco17", "mpii16", "--out", str(existing)]) == 1
    one_line_error(capsys, str(existing), "already exists")
    with pytest.raises(SystemExit) as exit_code:
        main(["predict", "--model"])
    assert exit_code.value.code == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and error.startswith("unionpose predict: error:")

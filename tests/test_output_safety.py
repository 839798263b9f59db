"""Finding 1 of issue 14: no command destroys the user's files. An output is never one of the inputs; an existing
output file or a used output folder is refused unless --overwrite; outputs of several sources keep distinct names."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, require
from reliability_support import digest, model_file
from unionpose.cli import main

COCO_IMAGE = FIXTURES / "coco" / "images" / "000000000785.jpg"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return model_file(tmp_path_factory.mktemp("model") / "m.safetensors")


def test_export_never_replaces_its_model(model, tmp_path, capsys):
    own = shutil.copy(model, tmp_path / "m.safetensors")
    before = digest(own)
    assert main(["export", "--model", str(own), "--out", str(own), "--no-check"]) == 1
    assert main(["export", "--model", str(own), "--out", str(own), "--no-check", "--overwrite"]) == 1
    assert digest(own) == before                     # it was replaced by ONNX bytes, exit 0
    error = capsys.readouterr().err
    assert error.count("is an input of this command") == 2 and str(own) in error


def test_export_and_convert_refuse_an_existing_file_unless_overwrite(model, tmp_path, capsys):
    existing = tmp_path / "m.onnx"
    existing.write_text("the user's file")
    assert main(["export", "--model", str(model), "--out", str(existing), "--no-check"]) == 1
    assert existing.read_text() == "the user's file"
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", "--model", str(model), "--out", str(existing), "--no-check", "--overwrite"]) == 0
    assert existing.read_bytes().startswith(b"\x08")           # an ONNX protobuf now

    target = tmp_path / "converted.safetensors"
    target.write_text("keep me")
    assert main(["convert", str(model), "--out", str(target)]) == 1
    assert target.read_text() == "keep me" and "already exists" in capsys.readouterr().err
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert main(["export", "--model", str(model), "--out", str(folder), "--no-check"]) == 1
    assert "is a folder" in capsys.readouterr().err


def test_predict_refuses_a_used_folder_and_replaces_only_its_own_outputs(model, tmp_path, capsys):
    image = require(COCO_IMAGE)
    out = tmp_path / "out"
    (out / "visualisation").mkdir(parents=True)
    (out / "visualisation" / "from_an_old_run.jpg").write_bytes(b"old")
    (out / "notes.txt").write_text("the user's notes")
    assert main(["predict", str(image), "--model", str(model), "--out", str(out), "--quiet"]) == 1
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "visualisation" / "from_an_old_run.jpg").exists()
    assert main(["predict", str(image), "--model", str(model), "--out", str(out), "--quiet", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "visualisation").iterdir()) == [image.name]     # old outputs gone
    assert (out / "notes.txt").read_text() == "the user's notes"                         # the rest untouched


def test_predict_keeps_one_output_per_input_of_the_same_name(model, tmp_path):
    image = require(COCO_IMAGE)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(image, tmp_path / folder / "img.jpg")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "a" / "img.jpg"), str(tmp_path / "b" / "img.jpg"), "--model", str(model),
                 "--out", str(out), "--formats", "draw,openpose,jsonl", "--quiet"]) == 0
    drawings = sorted(p.relative_to(out / "visualisation").as_posix() for p in (out / "visualisation").rglob("*.jpg"))
    assert drawings == ["a/img.jpg", "b/img.jpg"]
    poses = sorted(p.relative_to(out / "openpose").as_posix() for p in (out / "openpose").rglob("*.json"))
    assert poses == ["a/img_keypoints.json", "b/img_keypoints.json"]
    names = [json.loads(line)["name"] for line in (out / "predictions.jsonl").read_text().splitlines()[1:]]
    assert names == ["a/img.jpg", "b/img.jpg"]


def test_other_outputs_refuse_existing_files(tmp_path, capsys):
    drawing = tmp_path / "drawing.png"
    drawing.write_bytes(b"precious")
    assert main(["skeleton", "show", "coco17", "--draw", str(drawing)]) == 1
    assert drawing.read_bytes() == b"precious" and "already exists" in capsys.readouterr().err
    assert main(["skeleton", "show", "coco17", "--draw", str(drawing), "--overwrite"]) == 0
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "synthetic" / "mine.txt").write_text("x")
    assert main(["synth", "--out", str(tmp_path / "synthetic"), "--train", "2", "--val", "1"]) == 1
    assert "not empty" in capsys.readouterr().err

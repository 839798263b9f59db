"""Bad input: every case raises a `DataError` naming the file, the record and the field, or is skipped and reported."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, REPO, require
from unionpose.cli import main
from unionpose.core.errors import DataError
from unionpose.core.images import load_image, verify_image
from unionpose.data.config import load_data_config
from unionpose.data.readers import read_coco, read_detections, read_image_table, read_mpii
from unionpose.data.sources import DatasetSource, read_source


def coco_copy(tmp_path: Path, name: str = "coco/person_keypoints.json") -> tuple[Path, dict]:
    """A writable copy of a fixture's JSON, to alter, and the path to write it to."""
    return tmp_path / Path(name).name, json.loads(require(FIXTURES / name).read_text())


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def expect_error(call, file: Path, record: str | None, field: str | None, *words: str) -> DataError:
    with pytest.raises(DataError) as caught:
        call()
    error = caught.value
    message = str(error)
    assert error.file == str(file) and str(file) in message
    if record is not None:
        assert error.record is not None and record in error.record and record in message
    assert error.field == field
    if field is not None:
        assert f"field '{field}'" in message
    for word in words:
        assert word in message, message
    return error


# --- COCO-family files ----------------------------------------------------------------------------------------------
def test_missing_and_malformed_json(tmp_path):
    missing = tmp_path / "nope.json"
    expect_error(lambda: read_coco(missing, tmp_path), missing, None, None, "not found")
    broken = tmp_path / "broken.json"
    text = require(FIXTURES / "coco/person_keypoints.json").read_text()[:5000]
    broken.write_text(text)
    expect_error(lambda: read_coco(broken, tmp_path), broken, f"line {text.count(chr(10)) + 1} column", None,
                 "not valid JSON")
    wrong = write(tmp_path / "list.json", [1, 2])
    expect_error(lambda: read_coco(wrong, tmp_path), wrong, None, None, "COCO-style object")
    no_images = write(tmp_path / "partial.json", {"annotations": []})
    expect_error(lambda: read_coco(no_images, tmp_path), no_images, None, "images")


@pytest.mark.parametrize("alter, field, words", [
    (lambda a: a.update(keypoints=a["keypoints"][:-3]), "keypoints", ("expected a list of 51 numbers", "48 values")),
    (lambda a: a["keypoints"].__setitem__(6, float("nan")), "keypoints", ("keypoint 2 (right_eye)", "not finite")),
    (lambda a: a["keypoints"].__setitem__(0, float("inf")), "keypoints", ("keypoint 0 (nose)", "not finite")),
    (lambda a: a["keypoints"].__setitem__(1, None), "keypoints", ("keypoint 0 (nose)", "not finite")),
    (lambda a: a["keypoints"].__setitem__(2, 3), "keypoints", ("keypoint 0 (nose)", "visibility 3.0")),
    (lambda a: a["keypoints"].__setitem__(5, -1), "keypoints", ("keypoint 1 (left_eye)", "visibility -1.0")),
    (lambda a: a["keypoints"].__setitem__(3, "x"), "keypoints", ("list of 51 numbers",)),
    (lambda a: a["bbox"].__setitem__(2, -5.0), "bbox", ("w, h > 0",)),
    (lambda a: a["bbox"].__setitem__(3, 0), "bbox", ("w, h > 0",)),
    (lambda a: a["bbox"].__setitem__(0, float("nan")), "bbox", ("finite",)),
    (lambda a: a.update(bbox=[1, 2, 3]), "bbox", ("[x, y, w, h]",)),
    (lambda a: a.pop("keypoints"), "keypoints", ("got None",)),
    (lambda a: a.update(iscrowd=2), "iscrowd", ("expected 0 or 1",)),
    (lambda a: a.update(image_id=12345), "image_id", ("no image with id 12345",)),
    (lambda a: a.update(id="seven"), "id", ("integer annotation id",)),
])
def test_bad_annotation_fields(tmp_path, alter, field, words):
    path, data = coco_copy(tmp_path)
    annotation = data["annotations"][3]
    alter(annotation)
    write(path, data)     # json writes NaN / Infinity literals, which JSON readers (and ours) accept
    expect_error(lambda: read_coco(path, tmp_path), path, "annotations[3]", field, *words)


def test_record_names_the_ids(tmp_path):
    path, data = coco_copy(tmp_path)
    data["annotations"][0]["bbox"][2] = -1
    write(path, data)
    error = expect_error(lambda: read_coco(path, tmp_path), path, "annotation id 442619", "bbox")
    assert "image id 785" in error.record


def test_duplicate_ids(tmp_path):
    path, data = coco_copy(tmp_path)
    data["annotations"][5]["id"] = data["annotations"][2]["id"]
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path), path, "annotations[5]", "id", "duplicate annotation id",
                 "annotations[2]")
    path, data = coco_copy(tmp_path)
    data["images"][2]["id"] = data["images"][0]["id"]
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path), path, "images[2]", "id", "duplicate image id 785")
    # also under on_error="skip": which image an annotation belongs to would be a guess
    expect_error(lambda: read_coco(path, tmp_path, on_error="skip"), path, "images[2]", "id")


def test_duplicate_annotation_ids_across_posetrack_files(tmp_path):
    folder = tmp_path / "val"
    shutil.copytree(require(FIXTURES / "posetrack18/annotations/val"), folder)
    first = json.loads((folder / "003418_mpii_test.json").read_text())
    second_path = folder / "009473_mpii_test.json"
    second = json.loads(second_path.read_text())
    second["annotations"][0]["id"] = first["annotations"][0]["id"]
    write(second_path, second)
    expect_error(lambda: read_coco(folder, tmp_path, "posetrack18"), second_path, "annotations[0]", "id",
                 "003418_mpii_test.json annotations[0]")
    second["images"][0]["id"] = first["images"][0]["id"]
    write(second_path, second)
    expect_error(lambda: read_coco(folder, tmp_path, "posetrack18", on_error="skip"), second_path, "images[0]", "id",
                 "duplicate image id", "first in 003418_mpii_test.json")


@pytest.mark.parametrize("key, value", [("height", 0), ("width", -3), ("height", 425.5), ("file_name", ""),
                                        ("id", None)])
def test_bad_image_records(tmp_path, key, value):
    path, data = coco_copy(tmp_path)
    data["images"][1][key] = value
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path), path, "images[1]", key)


def test_wholebody_part_errors(tmp_path):
    path, data = coco_copy(tmp_path, "coco/coco_wholebody.json")
    data["annotations"][0]["lefthand_kpts"][5] = 7
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path, "coco_wholebody"), path, "annotation id 442619", "lefthand_kpts",
                 "keypoint 1 (left_thumb_cmc)", "visibility 7.0", "score in [0, 1]")
    path, data = coco_copy(tmp_path, "coco/coco_wholebody.json")
    del data["annotations"][1]["foot_valid"]
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path, "coco_wholebody"), path, "annotations[1]", "foot_valid",
                 "true or false")
    path, data = coco_copy(tmp_path, "coco/coco_wholebody.json")
    data["annotations"][2]["face_kpts"] = data["annotations"][2]["face_kpts"][:-6]
    write(path, data)
    expect_error(lambda: read_coco(path, tmp_path, "coco_wholebody"), path, "annotations[2]", "face_kpts", "204")


def test_wrong_format_for_the_file():
    # An AIC file read as COCO: its category names 14 other points.
    path = require(FIXTURES / "aic/test_aic.json")
    expect_error(lambda: read_coco(path, FIXTURES / "aic/images", "coco"), path, "categories[0]", "keypoints",
                 "coco17")
    # Halpe's 136 points read as COCO-17: the category names nothing, the keypoint count is wrong.
    halpe = FIXTURES / "coco/halpe136.json"
    expect_error(lambda: read_coco(halpe, FIXTURES, "coco"), halpe, "annotations[0]", "keypoints", "408 values")


def test_skip_counts_and_reports(tmp_path):
    path, data = coco_copy(tmp_path)
    data["annotations"][1]["keypoints"][2] = 5
    data["annotations"][4]["bbox"][3] = -2
    data["images"][3]["height"] = "tall"                      # image 197388: its annotations are skipped
    on_bad_image = sum(a["image_id"] == data["images"][3]["id"] for a in data["annotations"])
    write(path, data)
    instances, report = read_coco(path, tmp_path, on_error="skip")
    assert report.read == 14 and report.read == report.kept + sum(report.skipped.values())
    assert report.skipped["invalid"] == 2 + on_bad_image
    assert len(report.problems) == report.skipped["invalid"] and len(instances) == report.kept
    assert any("annotations[1]" in p and "field 'keypoints'" in p for p in report.problems)
    assert any("annotations[4]" in p and "field 'bbox'" in p for p in report.problems)
    assert any("its image record is invalid" in p and "field 'height'" in p for p in report.problems)
    assert "invalid" in report.summary()
    with pytest.raises(DataError, match=r"images\[3\]"):     # images are checked before the annotations
        read_coco(path, tmp_path)
    data["images"][3]["height"] = 392
    write(path, data)
    with pytest.raises(DataError, match=r"annotations\[1\]"):  # the first bad record in file order, not bbox of [4]
        read_coco(path, tmp_path)


# --- MPII -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alter, field, words", [
    (lambda r: r.update(joints=r["joints"][:15]), "joints", ("shape [16, 2]", "shape [15, 2]")),
    (lambda r: r["joints"][3].__setitem__(0, float("nan")), "joints", ("finite",)),
    (lambda r: r.update(joints_vis=[1] * 17), "joints_vis", ("shape [16]",)),
    (lambda r: r["joints_vis"].__setitem__(4, 3), "joints_vis", ("joint 4 (left_knee)", "visibility 3.0")),
    (lambda r: r.update(scale=-1.0), "scale", ("positive",)),
    (lambda r: r.update(scale=float("inf")), "scale", ("finite",)),
    (lambda r: r.update(center=[1.0]), "center", ("shape [2]",)),
    (lambda r: r.pop("image"), "image", ("image file name",)),
    (lambda r: r.update(head_box=[10, 10, 5, 20]), "head_box", ("x1 < x2",)),
])
def test_bad_mpii_records(tmp_path, alter, field, words):
    records = json.loads(require(FIXTURES / "mpii/mpii_annotations.json").read_text())
    alter(records[2])
    path = write(tmp_path / "mpii.json", records)
    expect_error(lambda: read_mpii(path, tmp_path), path, "record 2", field, *words)
    instances, report = read_mpii(path, tmp_path, on_error="skip")
    assert (report.kept, dict(report.skipped)) == (4, {"invalid": 1}) and "record 2" in report.problems[0]


def test_mpii_not_a_list(tmp_path):
    path = write(tmp_path / "mpii.json", {"image": "a.jpg"})
    expect_error(lambda: read_mpii(path, tmp_path), path, None, None, "JSON list")


# --- detections -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("alter, field", [
    (lambda d: d.update(bbox=[1, 2, -3, 4]), "bbox"),
    (lambda d: d.update(bbox=[1, 2, float("nan"), 4]), "bbox"),
    (lambda d: d.pop("score"), "score"),
    (lambda d: d.update(image_id="785"), "image_id"),
    (lambda d: d.update(image_id=999), "image_id"),
])
def test_bad_detections(tmp_path, alter, field):
    raw = json.loads(require(FIXTURES / "coco/person_detections.json").read_text())
    alter(raw[7])
    path = write(tmp_path / "dets.json", raw)
    table = read_image_table(FIXTURES / "coco/person_keypoints.json", FIXTURES / "coco/images")
    expect_error(lambda: read_detections(path, table), path, "detections[7]", field)
    _, report = read_detections(path, table, on_error="skip")
    assert report.skipped == {"invalid": 1} and report.kept == 117


# --- images -----------------------------------------------------------------------------------------------------------
def image_copy(tmp_path: Path) -> Path:
    target = tmp_path / "000000000785.jpg"
    shutil.copy(require(FIXTURES / "coco/images/000000000785.jpg"), target)
    return target


@pytest.mark.parametrize("check", [load_image, verify_image], ids=["load", "verify"])
def test_image_errors(tmp_path, check):
    missing = tmp_path / "missing.jpg"
    expect_error(lambda: check(missing, record="image id 1"), missing, "image id 1", "image", "not found")
    image = image_copy(tmp_path)
    expect_error(lambda: check(image, (640, 425), record="image id 785"), image, "image id 785", "height/width",
                 "640x425", "425x640", "swapped")
    expect_error(lambda: check(image, (400, 640), record="image id 785"), image, "image id 785", "height/width")
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])             # cut short: OpenCV alone would return a partial picture
    expect_error(lambda: check(image, record="image id 785"), image, "image id 785", "image", "truncated JPEG")
    image.write_bytes(b"")
    expect_error(lambda: check(image), image, None, "image", "empty")


def test_undecodable_and_truncated_png(tmp_path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image at all" * 10)
    expect_error(lambda: load_image(garbage, record="image id 3"), garbage, "image id 3", "image", "cannot decode")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200) + b"\xff\xd9")    # markers right, content not a JPEG
    expect_error(lambda: load_image(broken), broken, None, "image", "cannot decode")
    import cv2

    png = tmp_path / "cut.png"
    cv2.imwrite(str(png), np.full((20, 20, 3), 128, np.uint8))
    png.write_bytes(png.read_bytes()[:-20])
    expect_error(lambda: load_image(png), png, None, "image", "truncated PNG")


def test_verify_images_pass_of_read_source(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted(require(FIXTURES / "coco/images").glob("*.jpg")):
        shutil.copy(source, images / source.name)
    data = (images / "000000040083.jpg").read_bytes()
    (images / "000000040083.jpg").write_bytes(data[:1000])       # truncated
    (images / "000000196141.jpg").unlink()                       # missing
    spec = DatasetSource(name="coco", format="coco", annotations=FIXTURES / "coco/person_keypoints.json",
                         images=images)
    instances, report = read_source(spec)                        # annotations only: nothing looked at yet
    assert report.kept == 12
    with pytest.raises(DataError, match="truncated JPEG|not found"):
        read_source(spec, verify_images=True)
    instances, report = read_source(spec.model_copy(update={"on_error": "skip"}), verify_images=True)
    lost = report.skipped["bad_image"]
    assert lost > 0 and report.kept == 12 - lost == len(instances)
    assert all("000000040083.jpg" in p or "000000196141.jpg" in p for p in report.problems)
    assert any("truncated JPEG" in p for p in report.problems) and any("not found" in p for p in report.problems)


# --- configs ----------------------------------------------------------------------------------------------------------
def test_config_errors_name_the_file_and_key(tmp_path, capsys):
    config = tmp_path / "recipe.yaml"
    config.write_text("data:\n  train:\n    - {name: a, format: coco, annotations: a.json, images: img, colour: red}\n")
    expect_error(lambda: load_data_config(config), config, None, "data.train[0].colour", "Extra inputs")
    config.write_text("data:\n  train:\n    - {name: a, format: cocoa, annotations: a.json, images: img}\n")
    expect_error(lambda: load_data_config(config), config, None, "data.train[0].format", "'coco'")
    config.write_text("data:\n  train:\n    - {name: a, format: coco, annotations: a.json, images: i, ratio: 0}\n")
    expect_error(lambda: load_data_config(config), config, None, "data.train[0].ratio", "greater than 0")
    config.write_text("skeleton: [coco17\n")
    expect_error(lambda: load_data_config(config), config, None, None, "not valid YAML")
    config.write_text("model: {size: s}\n")
    expect_error(lambda: load_data_config(config), config, None, "data")
    # and the command line shows the message without a traceback
    config.write_text("data:\n  train:\n    - {name: a, format: coco, annotations: missing.json, images: img}\n")
    assert main(["data", "stats", str(config)]) == 1
    err = capsys.readouterr().err
    assert "missing.json" in err and "not found" in err and "Traceback" not in err


def test_configs_in_the_repository_load():
    config = load_data_config(REPO / "configs/data/coco_mini_mpii_fixture.yaml")
    assert [s.name for s in config.data.train] == ["coco", "mpii"]

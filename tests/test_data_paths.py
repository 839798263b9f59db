"""Finding 5 of issue 14: file names in data files stay inside the dataset's image folder unless the config allows
otherwise; a command that could process nothing exits non-zero and says how many inputs it skipped and why."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import FIXTURES, require
from reliability_support import model_file
from unionpose.cli import main
from unionpose.core.errors import DataError
from unionpose.data.readers import read_coco, read_mpii
from unionpose.data.sources import DatasetSource, read_source


@pytest.fixture
def outside(tmp_path):
    """A real image outside the images folder, and a COCO file whose record 1 names it by `..` and record 2 by
    its absolute path."""
    images = tmp_path / "images"
    shutil.copytree(require(FIXTURES / "coco/images"), images)
    secret = tmp_path / "secret.jpg"
    shutil.move(images / "000000040083.jpg", secret)
    data = json.loads((FIXTURES / "coco/person_keypoints.json").read_text())
    return images, secret, data


@pytest.mark.parametrize("index, name", [(1, "../secret.jpg"), (1, "{secret}"), (1, "./../secret.jpg")])
def test_coco_file_names_leading_outside_the_images_folder_are_refused(outside, tmp_path, index, name):
    images, secret, data = outside
    data["images"][index]["file_name"] = name.format(secret=secret)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"images\[{index}\] \(image id \d+\): field 'file_name': .* leads outside "
                                        "the images folder"):
        read_coco(path, images)
    with pytest.raises(DataError, match="leads outside"):     # also under on_error: skip nothing is opened there
        read_source(DatasetSource(name="c", format="coco", annotations=path, images=images), verify_images=True)
    source = DatasetSource(name="c", format="coco", annotations=path, images=images, allow_outside_images=True)
    instances, _ = read_source(source, verify_images=True)
    assert any(instance.image.endswith("secret.jpg") for instance in instances)


def test_mpii_image_names_are_confined_too(tmp_path):
    records = json.loads(require(FIXTURES / "mpii/mpii_annotations.json").read_text())
    records[3]["image"] = "../../etc/passwd"
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"record 3 \(image \.\./\.\./etc/passwd\): field 'image': .* leads outside"):
        read_mpii(path, FIXTURES / "mpii/images")
    instances, report = read_mpii(path, FIXTURES / "mpii/images", on_error="skip")
    assert report.skipped == {"invalid": 1} and len(instances) == 4


def test_data_stats_does_not_describe_a_file_outside(outside, tmp_path, capsys):
    images, secret, data = outside
    data["images"][1]["file_name"] = "../secret.jpg"
    (tmp_path / "ann.json").write_text(json.dumps(data))
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": [{"name": "c", "format": "coco", "annotations": "ann.json",
                                                          "images": "images"}]}}))
    assert main(["data", "stats", str(config), "--verify-images"]) == 1
    error = capsys.readouterr().err
    assert "leads outside" in error and "the image file is" not in error     # no size of the file it found


def test_predict_fails_when_nothing_could_be_processed(tmp_path, capsys):
    model = model_file(tmp_path / "m.safetensors")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"")
    (tmp_path / "in" / "b.png").write_bytes(b"not a png")
    assert main(["predict", str(tmp_path / "in"), "--model", str(model), "--out", str(tmp_path / "out"),
                 "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "skipped a.jpg:" in captured.out and "skipped b.png:" in captured.out
    assert f"nothing was processed from {tmp_path / 'in'}: 2 input(s) skipped; first: a.jpg:" in captured.err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["frames"] == 0

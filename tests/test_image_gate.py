"""Finding 3 of issue 14: one image gate for every path. The size comes from the header and an image over the pixel
limit is refused before anything is decoded, with the same message everywhere; the limit is configurable; training
checks its images before the first step, and `on_error: skip` skips and counts bad images, in loader workers too."""
from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest
import yaml

from reliability_support import png_claiming, synthetic_data, tiny_recipe, undecodable_png
from unionpose.cli import main
from unionpose.core.errors import DataError
from unionpose.core.images import MAX_PIXELS, load_image, read_image, verify_image
from unionpose.data.sources import DatasetSource, read_source
from unionpose.engine import load_config, train


@pytest.mark.parametrize("width, height", [(20000, 20000), (60000, 60000)])
def test_huge_headers_are_refused_before_decoding_by_every_reader(tmp_path, width, height):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming(width, height))
    for read in (verify_image, load_image, read_image):
        with pytest.raises(DataError, match=rf"huge\.png: field 'image': {width}x{height} is \d+ megapixels, over "
                                            "the limit of 268"):
            read(path)


@pytest.mark.parametrize("extension", [".jpg", ".png", ".bmp", ".webp", ".tif"])
def test_sizes_come_from_the_header_of_every_format(tmp_path, extension):
    path = tmp_path / f"image{extension}"
    cv2.imwrite(str(path), np.zeros((37, 53, 3), np.uint8))
    assert verify_image(path) == (37, 53)
    with pytest.raises(DataError, match="53x37 is 0 megapixels, over the limit of 0"):
        verify_image(path, max_pixels=37 * 53 - 1)


def test_bigtiff_and_unknown_formats(tmp_path):
    big = tmp_path / "big.tif"        # a BigTIFF directory: ImageWidth 70000, ImageLength 50000 as LONG values
    entries = [struct.pack("<HHQQ", 256, 4, 1, 70000), struct.pack("<HHQQ", 257, 4, 1, 50000)]
    big.write_bytes(b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) + b"".join(entries))
    with pytest.raises(DataError, match="70000x50000 is 3500 megapixels"):
        verify_image(big)
    odd = tmp_path / "odd.gif"
    odd.write_bytes(b"GIF89a" + bytes(100))
    with pytest.raises(DataError, match="cannot decode the image: not a JPEG, PNG, BMP, WebP or TIFF file"):
        load_image(odd)


def _dataset_with(tmp_path, bad: bytes, **entry) -> DatasetSource:
    data = synthetic_data(tmp_path / "data")
    coco = json.loads((data / "coco17.json").read_text())
    (data / "images" / coco["images"][0]["file_name"]).write_bytes(bad)
    return DatasetSource(name="coco", format="coco", annotations=data / "coco17.json", images=data / "images",
                         **entry)


def test_verify_images_applies_the_limit_and_skips_under_on_error_skip(tmp_path, capsys):
    source = _dataset_with(tmp_path, png_claiming(60000, 60000), on_error="skip")
    instances, report = read_source(source, verify_images=True)
    assert report.skipped["bad_image"] >= 1 and "megapixels" in report.problems[0]
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": [json.loads(source.model_dump_json())]}}))
    assert main(["data", "stats", str(config), "--verify-images"]) == 0
    assert "bad_image" in capsys.readouterr().out
    # the limit is a dataset key and a command-line flag: the 320x256 synthetic images are over 50000 pixels
    clean = _dataset_with(tmp_path / "clean", (tmp_path / "data" / "images" / "train_000001.jpg").read_bytes())
    with pytest.raises(DataError, match="320x256 is 0 megapixels, over the limit of 0"):
        read_source(clean.model_copy(update={"max_image_pixels": 50_000}), verify_images=True)
    assert main(["data", "stats", str(config), "--verify-images", "--max-image-pixels", "50000"]) == 0
    assert "320x256 is 0 megapixels, over the limit of 0" in capsys.readouterr().out
    assert MAX_PIXELS == 1 << 28


def test_training_checks_its_images_before_the_first_step(tmp_path):
    recipe = tiny_recipe(tmp_path / "recipe.yaml", synthetic_data(tmp_path / "data"), tmp_path / "run")
    coco = json.loads((tmp_path / "data" / "coco17.json").read_text())
    bad = tmp_path / "data" / "images" / coco["images"][-1]["file_name"]
    bad.write_bytes(bad.read_bytes()[:500])                      # truncated
    with pytest.raises(DataError, match=rf"{bad.name}: image id \d+: field 'image': truncated JPEG"):
        train(load_config(recipe))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()     # stopped before the log opened, not in an epoch
    skipped = train(load_config(recipe, ["data.train.0.on_error=skip", f"output={tmp_path / 'skip'}"]))
    assert skipped.steps == 2                                     # the truncated image's people were left out


def test_on_error_skip_skips_images_failing_mid_run_in_loader_workers(tmp_path, capsys):
    """An image whose header is sound but whose pixels do not decode passes the check before the run and fails in
    a loader worker; under on_error: skip another person of the dataset takes its place and it is counted."""
    data = synthetic_data(tmp_path / "data")
    coco = json.loads((data / "coco17.json").read_text())
    first = coco["images"][0]
    bad = data / "images" / first["file_name"]
    bad.write_bytes(undecodable_png(first["width"], first["height"]))
    recipe = tiny_recipe(tmp_path / "recipe.yaml", data, tmp_path / "run", coco={"on_error": "skip"}, workers=2)
    assert main(["train", str(recipe)]) == 0
    captured = capsys.readouterr()
    people_there = sum(i.image == str(bad) for i in read_source(DatasetSource(
        name="coco", format="coco", annotations=data / "coco17.json", images=data / "images"))[0])
    assert 0 < json.loads(captured.out)["skipped_images"] <= people_there     # those of its people drawn this epoch
    assert f"skipped (on_error: skip): {bad}" in captured.err and "cannot decode" in captured.err

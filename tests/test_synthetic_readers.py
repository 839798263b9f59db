"""`unionpose synth` output read back with the real readers: counts, values, the mixture, and GT on the figures."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from unionpose.cli import main
from unionpose.core.draw import draw_pose
from unionpose.core.images import load_image
from unionpose.data.config import load_data_config
from unionpose.data.instance import remap_instances
from unionpose.data.mixture import UnionMixture
from unionpose.data.readers import read_coco, read_mpii
from unionpose.skeletons import get_skeleton, keypoint_mapping

UNION = get_skeleton("coco_mpii21")
COCO = get_skeleton("coco17")
MPII = get_skeleton("mpii16")
IMAGE_HW = (256, 320)
RING_RADIUS = 6         # pixels around a keypoint taken as its local background
COLOR_STEP = 20         # a keypoint is "on something" when its colour is this far (BGR distance) from that ring
SHIFT = 15              # the same check with every keypoint moved this far must fail far more often


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_readers") / "data"
    assert main(["synth", "--out", str(out), "--train", "8", "--val", "4", "--seed", "3"]) == 0
    return out


def _load(path: Path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("name, skeleton", [("coco17.json", COCO), ("coco17_val.json", COCO),
                                            ("full21_val.json", UNION)])
def test_coco_files_read_back_exactly(synth: Path, name: str, skeleton) -> None:
    data = _load(synth / name)
    instances, report = read_coco(synth / name, synth / "images", "coco", skeleton)
    assert len(instances) == len(data["annotations"]) > 0
    assert (report.read, report.kept) == (len(data["annotations"]), len(instances))
    files = {image["id"]: image["file_name"] for image in data["images"]}
    for instance, annotation in zip(instances, data["annotations"]):
        flat = np.array(annotation["keypoints"], dtype=np.float32).reshape(skeleton.num_keypoints, 3)
        assert instance.ann_id == annotation["id"] and instance.image_size == IMAGE_HW
        assert Path(instance.image) == synth / "images" / files[annotation["image_id"]]
        assert np.allclose(instance.keypoints, flat[:, :2]) and np.array_equal(instance.visible, flat[:, 2])
        assert instance.annotated.all()                 # the synthetic data labels every point of its skeleton
        x, y, w, h = annotation["bbox"]               # the reader clips the far edge to the last pixel (W-1, H-1)
        clipped = [x, y, min(x + w, IMAGE_HW[1] - 1) - x, min(y + h, IMAGE_HW[0] - 1) - y]
        assert np.allclose(instance.box, clipped, atol=1e-3)
    for path in {instance.image for instance in instances}:
        assert load_image(path, IMAGE_HW).shape == (*IMAGE_HW, 3)


@pytest.mark.parametrize("name", ["mpii16.json", "mpii16_val.json"])
def test_mpii_files_read_back_exactly(synth: Path, name: str) -> None:
    records = _load(synth / name)
    instances, report = read_mpii(synth / name, synth / "images")
    assert len(instances) == len(records) > 0 and report.kept == len(records)
    for instance, record in zip(instances, records):
        labelled = np.array(record["joints_vis"]) > 0
        assert np.array_equal(instance.visible > 0, labelled)
        assert np.allclose(instance.keypoints[labelled], np.array(record["joints"])[labelled])
        assert np.allclose(instance.head_box, record["head_box"])
        x, y, w, h = instance.box                       # the reader's box (from centre and scale) holds the person
        points = instance.keypoints[labelled]
        assert np.all((points >= [x, y]) & (points <= [x + w, y + h]))
        x1, y1, x2, y2 = instance.head_box
        assert x2 > x1 and y2 > y1 and (x2 - x1) < w


def test_the_three_validation_files_are_one_set_of_people(synth: Path) -> None:
    """Read by different readers and mapped into the union skeleton, the COCO and MPII validation people are the
    full-21 people on their own points."""
    full, _ = read_coco(synth / "full21_val.json", synth / "images", "coco", UNION)
    coco, _ = read_coco(synth / "coco17_val.json", synth / "images", "coco", COCO)
    mpii, _ = read_mpii(synth / "mpii16_val.json", synth / "images")
    assert len(full) == len(coco) == len(mpii)
    for part, skeleton in ((coco, COCO), (mpii, MPII)):
        mapping = keypoint_mapping(skeleton, UNION)
        for mapped, whole in zip(remap_instances(part, mapping), full):
            assert mapped.image == whole.image
            labelled = mapping.mask & (whole.visible > 0)
            assert np.array_equal(mapped.annotated, mapping.mask)
            assert np.array_equal(mapped.visible[labelled] > 0, whole.visible[labelled] > 0)
            assert np.allclose(mapped.keypoints[labelled], whole.keypoints[labelled], atol=0.01)


def test_a_recipe_on_the_synthetic_data_mixes_into_21_points(synth: Path, tmp_path: Path) -> None:
    config = tmp_path / "synth.yaml"
    config.write_text(
        "skeleton: {union: [coco17, mpii16]}\n"
        "data:\n"
        f"  train:\n"
        f"    - {{name: coco, format: coco, annotations: {synth / 'coco17.json'}, images: {synth / 'images'}}}\n"
        f"    - {{name: mpii, format: mpii, annotations: {synth / 'mpii16.json'}, images: {synth / 'images'}}}\n"
    )
    mixture = UnionMixture(load_data_config(config).data.train, UNION)
    coco, mpii = mixture.datasets
    assert (coco.stop - coco.start, mpii.stop - mpii.start) == (len(_load(synth / "coco17.json")["annotations"]),
                                                                len(_load(synth / "mpii16.json")))
    coco_annotated, _ = mixture.keypoint_counts(coco)
    mpii_annotated, _ = mixture.keypoint_counts(mpii)
    assert np.flatnonzero(coco_annotated).tolist() == list(range(17))
    assert np.flatnonzero(mpii_annotated).tolist() == list(range(5, 21))
    assert main(["data", "show", str(config), "--out", str(tmp_path / "show"), "--count", "2"]) == 0
    assert len(list((tmp_path / "show").glob("*.png"))) == 3


def _on_something(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per point: does the 3x3 median colour at the point differ from the median colour of a ring around it?
    NaN where the ring leaves the image."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    height, width = image.shape[:2]
    result = np.full(len(points), np.nan)
    for n, (x, y) in enumerate(points):
        around = np.round([x, y] + ring).astype(int)
        if around.min() < 0 or around[:, 0].max() >= width or around[:, 1].max() >= height:
            continue
        xi, yi = round(x), round(y)
        centre = np.median(image[yi - 1:yi + 2, xi - 1:xi + 2].reshape(-1, 3), axis=0)
        background = np.median(image[around[:, 1], around[:, 0]], axis=0)
        result[n] = float(np.linalg.norm(centre - background) > COLOR_STEP)
    return result


def test_full21_ground_truth_lands_on_the_figures(synth: Path, tmp_path: Path) -> None:
    """Visible GT points sit on the drawn figures: their colour stands out from the local background far more often
    than at the same points moved by 15 pixels in any direction (which a wrong offset, scale or flip would do)."""
    people, _ = read_coco(synth / "full21_val.json", synth / "images", "coco", UNION)
    scores: dict[tuple[int, int], list[float]] = {}
    for image_path in sorted({p.image for p in people}):
        raw = load_image(image_path, IMAGE_HW)
        image = raw.astype(np.float64)
        drawing = raw.copy()
        for person in (p for p in people if p.image == image_path):
            seen = person.visible == 2          # visible == 1 points are covered: their pixel shows the occluder
            draw_pose(drawing, person.keypoints, UNION, (person.visible > 0).astype(np.float32), 0.5)
            for shift in ((0, 0), (SHIFT, 0), (-SHIFT, 0), (0, SHIFT), (0, -SHIFT)):
                scores.setdefault(shift, []).extend(_on_something(image, person.keypoints[seen] + shift))
        assert cv2.imwrite(str(tmp_path / Path(image_path).with_suffix(".png").name), drawing)
    rates = {shift: np.nanmean(values) for shift, values in scores.items()}
    assert np.count_nonzero(~np.isnan(scores[(0, 0)])) >= 60
    assert rates[(0, 0)] >= 0.7, rates
    for shift, rate in rates.items():
        if shift != (0, 0):
            assert rates[(0, 0)] - rate >= 0.25, rates

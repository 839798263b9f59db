"""`unionpose predict` and the Predictor: every source and output format on real fixtures, box sources, bad input."""
from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import DATA, FIXTURES, require
from unionpose.cli import main
from unionpose.core.errors import DataError
from unionpose.core.images import read_image
from unionpose.infer.detector import OnnxPersonDetector, letterbox
from unionpose.infer.oks import oks_nms
from unionpose.infer.predictor import Predictor
from unionpose.infer.sources import open_source
from unionpose.infer.writers import openpose_groups
from unionpose.skeletons import get_skeleton

COCO_IMAGES = FIXTURES / "coco" / "images"
VIDEOS = DATA / "videos"




def _predict(*args) -> int:
    return main(["predict", *map(str, args), "--quiet"])


def _check_outputs(out, frames: int, video: bool) -> dict:
    """Every format is there, names the keypoints, and agrees with the others on the people found."""
    names = list(get_skeleton("coco17").names)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == frames and summary["keypoint_names"] == names
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["skeleton"]["names"] == names and len(lines) == frames + 1
    people = [person for line in lines[1:] for person in json.loads(line)["people"]]
    assert len(people) == summary["people"]
    for person in people:
        assert np.asarray(person["keypoints"]).shape == (17, 2) and len(person["keypoint_scores"]) == 17
    coco = json.loads((out / "predictions.coco.json").read_text())
    assert len(coco) == summary["people"] and all(len(r["keypoints"]) == 51 for r in coco)
    assert json.loads((out / "skeleton.json").read_text())["names"] == names
    arrays = np.load(out / "predictions.npz")
    assert list(arrays["keypoint_names"]) == names and len(arrays["frame_names"]) == frames
    assert arrays["keypoints"].shape == (summary["people"], 17, 2) and arrays["frame"].shape == (summary["people"],)
    openpose = sorted((out / "openpose").glob("*_keypoints.json"))
    assert len(openpose) == frames
    document = json.loads(openpose[0].read_text())
    assert document["keypoint_names"]["pose_keypoints_2d"] == names
    assert all(len(p["pose_keypoints_2d"]) == 51 for p in document["people"])
    if video:
        capture = cv2.VideoCapture(str(out / "visualisation.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == frames
        # one full-frame box per frame: the random model's keypoints are not confident, so box IoU keeps the id
        assert all(person["track_id"] == 0 for person in people)
    else:
        assert len(list((out / "visualisation").glob("*.jpg"))) == frames
    return summary


def test_predict_fixture_images_with_detection_boxes(model_file, tmp_path):
    detections = require(FIXTURES / "coco" / "person_detections.json")
    assert _predict(COCO_IMAGES, "--model", model_file, "--boxes", detections, "--formats", "all",
                    "--out", tmp_path, "--flip-test") == 0
    summary = _check_outputs(tmp_path, frames=4, video=False)
    confident = [d for d in json.loads(detections.read_text()) if d["score"] >= 0.3]
    # a random model scores no keypoint above 0.2, so OKS-NMS has nothing to merge: one person per kept box
    assert summary["people"] == len(confident)
    coco = json.loads((tmp_path / "predictions.coco.json").read_text())
    assert {r["image_id"] for r in coco} == {d["image_id"] for d in confident}


def test_predict_ground_truth_boxes_with_the_onnx_backend(onnx_file, tmp_path):
    ground_truth = require(FIXTURES / "coco" / "person_keypoints.json")
    assert _predict(COCO_IMAGES / "*.jpg", "--model", onnx_file, "--boxes", ground_truth, "--formats", "coco,jsonl",
                    "--out", tmp_path) == 0
    people = json.loads((tmp_path / "predictions.coco.json").read_text())
    annotations = json.loads(ground_truth.read_text())["annotations"]
    assert len(people) == sum(1 for a in annotations if not a["iscrowd"])


@pytest.mark.parametrize("video, frames", [("basketball_10s.mp4", 3), ("street_5frames.mp4", 5),
                                          ("football_frames/000001_mpiinew_test.mp4", 2)])
def test_predict_videos_write_every_format(onnx_file, tmp_path, video, frames):
    path = require(VIDEOS / video)
    assert _predict(path, "--model", onnx_file, "--formats", "all", "--out", tmp_path, "--max-frames", frames,
                    "--smooth") == 0
    _check_outputs(tmp_path, frames, video=True)


def test_predict_frame_folder(onnx_file, tmp_path):
    folder = require(VIDEOS / "football_frames")
    assert _predict(folder, "--model", onnx_file, "--formats", "all", "--out", tmp_path) == 0
    summary = _check_outputs(tmp_path, frames=5, video=False)
    assert summary["people"] == 5          # one full-frame box per image


def test_onnx_and_pytorch_predictors_agree(model_file, onnx_file):
    image = cv2.imread(str(require(COCO_IMAGES / "000000040083.jpg")))
    boxes = np.array([[100, 50, 120, 300], [300, 80, 100, 250]])
    torch_poses = Predictor.from_file(model_file, flip_test=True)(image, boxes)
    onnx_poses = Predictor.from_file(onnx_file, flip_test=True)(image, boxes)
    np.testing.assert_allclose(onnx_poses.keypoints, torch_poses.keypoints, atol=1e-3)
    np.testing.assert_allclose(onnx_poses.keypoint_scores, torch_poses.keypoint_scores, rtol=1e-3, atol=1e-12)


def _detector_graph(path, layout_size=(64, 64)):
    """An ONNX graph in the end-to-end detector layout: dets (1, 3, 5) and labels (1, 3), fixed answers."""
    boxes = helper.make_tensor("boxes", TensorProto.FLOAT, [1, 3, 4], [10, 10, 30, 50, 0, 0, 20, 20, 5, 5, 60, 60])
    scores = helper.make_tensor("scores", TensorProto.FLOAT, [1, 3, 1], [0.9, 0.1, 0.95])
    labels = helper.make_tensor("labels_value", TensorProto.INT64, [1, 3], [0, 0, 1])
    nodes = [
        helper.make_node("Constant", [], ["boxes"], value=boxes),
        helper.make_node("Constant", [], ["scores_value"], value=scores),
        helper.make_node("Constant", [], ["labels"], value=labels),
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=1),   # (1, 1, 1, 1)
        helper.make_node("Squeeze", ["mean", "axis"], ["mean_1"]),                           # (1, 1, 1)
        helper.make_node("Mul", ["mean_1", "zero"], ["nothing"]),
        helper.make_node("Add", ["scores_value", "nothing"], ["scores_out"]),
        helper.make_node("Concat", ["boxes", "scores_out"], ["dets"], axis=2),
    ]
    graph = helper.make_graph(
        nodes, "detector", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, *layout_size])],
        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, 3, 5]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 3])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
                     helper.make_tensor("axis", TensorProto.INT64, [1], [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("layout", ["yolox", "rtmdet"])
def test_onnx_detector_adapter_reads_the_export_layout(tmp_path, layout):
    detector = OnnxPersonDetector(_detector_graph(tmp_path / "detector.onnx"), layout, score_threshold=0.3)
    image = np.full((256, 128, 3), 255, np.uint8)            # ratio min(64/256, 64/128) = 0.25
    boxes, scores = detector(image)
    # box 1 scores under the threshold, box 2 is not a person; box 0 is scaled back by 1 / 0.25
    np.testing.assert_allclose(boxes, [[40, 40, 80, 160]])
    np.testing.assert_allclose(scores, [0.9], rtol=1e-6)


def test_letterbox_keeps_the_aspect_ratio_and_pads_with_114():
    image = np.full((100, 50, 3), 200, np.uint8)
    tensor, ratio = letterbox(image, (64, 64), "yolox")
    assert tensor.shape == (1, 3, 64, 64) and ratio == pytest.approx(0.64)
    assert (tensor[0, :, :64, :32] == 200).all() and (tensor[0, :, :, 33:] == 114).all()
    normalised, _ = letterbox(image, (64, 64), "rtmdet")
    np.testing.assert_allclose(normalised[0, :, 0, 0], (200 - np.array([103.53, 116.28, 123.675])) /
                               np.array([57.375, 57.12, 58.395]), rtol=1e-6)


def test_predictor_uses_the_detector_and_merges_duplicates_with_oks_nms(onnx_file, tmp_path):
    detector = OnnxPersonDetector(_detector_graph(tmp_path / "detector.onnx"), "yolox")
    predictor = Predictor.from_file(onnx_file, detector=detector)
    poses = predictor(np.full((256, 128, 3), 90, np.uint8))
    np.testing.assert_allclose(poses.boxes, [[40, 40, 80, 160]])
    # OKS-NMS on its own: two near-identical confident people and a distinct one -> two remain, best first
    sigmas = np.asarray(get_skeleton("coco17").sigmas)
    base = np.random.default_rng(0).uniform(0, 100, (17, 2))
    keypoints = np.stack([base, base + 0.5, base + 60])
    keep = oks_nms(keypoints, np.full((3, 17), 0.9), np.array([0.8, 0.9, 0.7]), np.full(3, 100.0 * 100.0), sigmas)
    assert keep.tolist() == [1, 2]


def test_predict_video_with_an_onnx_detector(onnx_file, tmp_path):
    video = require(VIDEOS / "street_5frames.mp4")
    detector = _detector_graph(tmp_path / "detector.onnx")
    assert _predict(video, "--model", onnx_file, "--detector", detector, "--detector-layout", "yolox",
                    "--detect-every", "2", "--formats", "jsonl", "--out", tmp_path / "out") == 0
    frames = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()[1:]]
    ratio = 64 / 960                                                   # the 960x540 frame letterboxed into 64x64
    # The detector's box reaches below the frame; it is clipped to the last pixel row, 539 (docs/conventions.md:
    # one clipping rule for readers, box files and detectors; before issue 14 this test expected the edge at 540).
    for frame in frames:
        (person,) = frame["people"]
        np.testing.assert_allclose(person["box"], [10 / ratio, 10 / ratio, 20 / ratio, 539 - 10 / ratio], atol=0.01)


def _exif_rotated_jpeg(path):
    """A 40x80 JPEG, left half white, with an EXIF orientation tag 6 ('rotate 90 clockwise to display')."""
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, :40] = 255
    data = cv2.imencode(".jpg", image)[1].tobytes()
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    exif = b"Exif\x00\x00" + tiff + struct.pack(">I", 0)
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:])
    return path


def test_odd_images_are_converted_or_refused_clearly(tmp_path):
    gray = np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 20
    cv2.imwrite(str(tmp_path / "gray16.png"), gray)
    rgba = np.dstack([np.full((48, 64, 3), 7, np.uint8), np.zeros((48, 64), np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    for name in ("gray16.png", "rgba.png"):
        image = read_image(tmp_path / name)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    assert read_image(tmp_path / "gray16.png")[0, -1, 0] == (63 * 20) >> 8

    rotated = _exif_rotated_jpeg(tmp_path / "exif.jpg")
    assert read_image(rotated).shape == (80, 40, 3)                       # displayed upright, as a viewer does
    assert read_image(rotated, apply_exif=False).shape == (40, 80, 3)     # stored pixels, as annotations use

    huge = tmp_path / "huge.png"   # a header claiming 100000 x 100000 pixels: refused before decoding
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + b"\0" * 4 + b"\0" * 4 + b"IEND\xaeB`\x82")
    with pytest.raises(DataError, match="huge.png.*megapixels"):
        read_image(huge)


def test_a_bad_image_in_a_folder_is_skipped_and_reported(model_file, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    good = cv2.imread(str(require(COCO_IMAGES / "000000000785.jpg")))
    cv2.imwrite(str(folder / "a.jpg"), good)
    (folder / "b.jpg").write_bytes((folder / "a.jpg").read_bytes()[:5000])     # truncated
    (folder / "c.png").write_bytes(b"")                                         # empty
    source = open_source(str(folder))
    assert [frame.name for frame in source] == ["a.jpg"]
    reasons = dict(source.skipped)
    assert "truncated JPEG" in reasons["b.jpg"] and "empty" in reasons["c.png"]
    assert _predict(folder, "--model", model_file, "--out", tmp_path / "out") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] == 1 and len(summary["skipped"]) == 2


def test_bad_sources_and_models_are_clear_errors(model_file, tmp_path, capsys):
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 100)
    assert _predict(tmp_path / "broken.mp4", "--model", model_file, "--out", tmp_path) == 1
    assert "cannot open video" in capsys.readouterr().err
    assert _predict(tmp_path / "missing.jpg", "--model", model_file, "--out", tmp_path) == 1
    assert "source not found" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"garbage")
    assert _predict(COCO_IMAGES, "--model", tmp_path / "broken.onnx", "--out", tmp_path) == 1
    assert "broken.onnx: not a loadable ONNX model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="webcam:N"):
        open_source("webcam:front")
    with pytest.raises(ValueError, match="cannot open webcam 9"):
        open_source("webcam:9")


def test_openpose_groups_follow_the_skeleton_parts():
    groups = openpose_groups(get_skeleton("coco_wholebody133"))
    assert len(groups["pose_keypoints_2d"]) == 23          # body + feet
    assert len(groups["face_keypoints_2d"]) == 68
    assert groups["hand_left_keypoints_2d"] == list(range(91, 112))
    assert groups["hand_right_keypoints_2d"] == list(range(112, 133))
    assert list(openpose_groups(get_skeleton("coco17"))) == ["pose_keypoints_2d"]


class _CountingBackend:
    """A pose backend that records how many crops each model call got."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.decoded = backend.decoded
        self.calls: list[int] = []

    def __call__(self, crops: np.ndarray):
        self.calls.append(len(crops))
        return self.backend(crops)


def test_predict_many_shares_model_calls_and_gives_what_single_calls_give(onnx_file):
    images = [cv2.imread(str(require(COCO_IMAGES / name))) for name in ("000000000785.jpg", "000000040083.jpg")]
    boxes = [np.array([[100, 50, 120, 300], [300, 80, 100, 250]]), None]
    predictor = Predictor.from_file(onnx_file)
    counting = predictor.runner.backend = _CountingBackend(predictor.runner.backend)
    together = predictor.predict_many([(image, box, None) for image, box in zip(images, boxes)])
    assert counting.calls == [3]               # two boxes and one full-frame box: one model call
    for poses, image, box in zip(together, images, boxes):
        alone = predictor(image, box)
        np.testing.assert_allclose(poses.keypoints, alone.keypoints, atol=1e-3)
        np.testing.assert_allclose(poses.boxes, alone.boxes)

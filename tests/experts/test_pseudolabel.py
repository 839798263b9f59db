"""`unionpose pseudolabel` on real photos and video: the WholeBody round trip, counts, workers, resume after a kill."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from conftest import DATA, FIXTURES, require
from onnx import TensorProto, helper

from unionpose.apps.pseudolabel import PseudoLabelConfig, load_pseudolabels, progress_path, pseudolabel
from unionpose.cli import main
from unionpose.core.images import load_image
from unionpose.data.readers import read_coco
from unionpose.data.readers.box_file import BoxFile
from unionpose.teachers.mediapipe_experts import HolisticExpert

pytest.importorskip("mediapipe")
pytestmark = pytest.mark.experts


COCO = FIXTURES / "coco"


def test_ground_truth_boxes_round_trip_through_the_wholebody_reader(tmp_path):
    out = tmp_path / "labels.json"
    summary = pseudolabel(PseudoLabelConfig(source=str(require(COCO / "images")), out=out,
                                            boxes=COCO / "person_keypoints.json", progress=False))
    assert summary["images"] == summary["labelled"] == 4 and summary["unreadable"] == 0
    instances, report = read_coco(out, summary["images_root"], format="coco_wholebody")
    assert len(instances) == summary["people"] >= 10 and not report.skipped
    truth, _ = read_coco(COCO / "person_keypoints.json", COCO / "images")
    data = json.loads(out.read_text())
    assert data["info"]["mediapipe_version"] == "0.10.21"
    assert {a["expert"] for a in data["annotations"]} == {"mediapipe_holistic 0.10.21"}
    boxes = BoxFile(COCO / "person_keypoints.json")
    with HolisticExpert() as expert:
        for instance in instances:
            # every person is one of the ground-truth boxes, and its points are the expert's, rounded to 0.01 px
            match = [t for t in truth if Path(t.image).resolve() == Path(instance.image).resolve() and np.allclose(t.box, instance.box, atol=0.01)]
            assert len(match) == 1
            # the very box the run used (float64: Holistic can move a point by ~1 px for a 1e-5 px shift of the crop)
            candidates = boxes.lookup(os.path.basename(instance.image))[0]
            box = candidates[np.abs(candidates - instance.box).sum(axis=1).argmin()]
            keypoints, confidence = expert.predict_people(load_image(instance.image), box[None])
            shown = instance.visible > 0
            assert ((confidence[0] >= 0.3) == shown).all()
            np.testing.assert_allclose(instance.keypoints[shown], keypoints[0][shown], atol=0.006)
            both = shown[:17] & (match[0].visible > 0)
            error = np.linalg.norm(instance.keypoints[:17][both] - match[0].keypoints[both], axis=1).mean()
            assert error / np.sqrt(match[0].box[2] * match[0].box[3]) < 0.2
    loaded = load_pseudolabels(out)
    assert all(not p.annotated[[18, 21]].any() and p.confidence[:17].min() > 0 for p in loaded)


def _mixed_folder(root):
    """Real photos, one truncated JPEG and one empty scene."""
    folder = root / "images"
    folder.mkdir()
    for name in sorted(os.listdir(require(COCO / "images"))):
        shutil.copy(COCO / "images" / name, folder / name)
    for name in ("000000030752.jpg", "000000463557.jpg", "000000535506.jpg"):
        shutil.copy(require(DATA / "coco_train_mini" / "images" / name), folder / name)
    (folder / "broken.jpg").write_bytes((COCO / "images" / "000000000785.jpg").read_bytes()[:5000])
    cv2.imwrite(str(folder / "empty_wall.png"), np.full((240, 320, 3), 128, np.uint8))
    return folder


def _records(path):
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


@pytest.mark.slow
def test_a_killed_run_resumes_and_equals_an_uninterrupted_parallel_run(tmp_path):
    folder = _mixed_folder(tmp_path)
    whole = tmp_path / "whole" / "labels.json"
    assert main(["pseudolabel", str(folder), "--out", str(whole), "--workers", "2", "--quiet"]) == 0
    counts = json.loads(whole.read_text())["info"]["counts"]
    assert counts["images"] == 9 and counts["unreadable"] == 1 and counts["nobody"] >= 1   # truncated JPEG; the wall
    assert counts["people"] == counts["labelled"] >= 5              # the whole frame is one person

    out = tmp_path / "resumed" / "labels.json"
    command = [sys.executable, "-m", "unionpose", "pseudolabel", str(folder), "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while _records(progress_path(out)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = _records(progress_path(out))
    assert 2 <= finished < 9 and not out.exists(), "the run should have been stopped half-way"

    assert main(["pseudolabel", str(folder), "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text()) == json.loads(whole.read_text())
    lines = progress_path(out).read_text().splitlines()
    names = [json.loads(line)["file_name"] for line in lines[1:]]
    assert len(names) == len(set(names)) == 9            # nothing labelled twice
    assert read_coco(out, folder, format="coco_wholebody")[0]


def test_unreadable_and_empty_images_are_counted_never_labelled(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(require(COCO / "images" / "000000040083.jpg"), folder / "a.jpg")
    (folder / "b.jpg").write_bytes((COCO / "images" / "000000040083.jpg").read_bytes()[:3000])
    cv2.imwrite(str(folder / "c.png"), np.full((200, 200, 3), 90, np.uint8))
    out = tmp_path / "labels.json"
    assert main(["pseudolabel", str(folder), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "unreadable b.jpg:" in printed and "truncated JPEG" in printed
    data = json.loads(out.read_text())
    assert [image["file_name"] for image in data["images"]] == ["a.jpg"]
    assert data["info"]["counts"]["unreadable"] == 1 and data["info"]["counts"]["nobody"] == 1
    # a rerun with other settings is refused, naming the progress file and the setting
    assert main(["pseudolabel", str(folder), "--out", str(out), "--stride", "2", "--quiet"]) == 1
    assert "settings.stride" in capsys.readouterr().err


def test_video_frames_are_written_beside_the_labels_and_load(tmp_path):
    video = require(DATA / "videos" / "basketball_10s.mp4")
    out = tmp_path / "labels.json"
    assert main(["pseudolabel", str(video), "--out", str(out), "--stride", "100", "--quiet"]) == 0
    frames = tmp_path / "labels_frames"
    assert sorted(p.name for p in frames.iterdir()) == ["frame_000000.jpg", "frame_000100.jpg", "frame_000200.jpg"]
    data = json.loads(out.read_text())
    assert data["info"]["images_root"] == str(frames) and data["info"]["counts"]["images"] == 3
    counts = data["info"]["counts"]
    assert counts["labelled"] + counts["nobody"] == 3        # small players in a whole frame: some go unseen
    instances, _ = read_coco(out, frames, format="coco_wholebody")
    assert len(instances) == counts["people"] >= 1
    assert all(p.image_size == (240, 426) for p in instances)


def _constant_detector(path, box, size=640):
    """An ONNX detector in the end-to-end export layout that always finds one person at `box` (x1, y1, x2, y2)."""
    dets = helper.make_tensor("dets_value", TensorProto.FLOAT, [1, 1, 5], [*box, 0.9])
    nodes = [
        helper.make_node("Constant", [], ["dets_value"], value=dets),
        helper.make_node("Constant", [], ["labels"], value=helper.make_tensor("l", TensorProto.INT64, [1, 1], [0])),
        helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1, 2, 3], keepdims=0),    # uses the input
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["dets_value", "nothing"], ["dets"]),
    ]
    graph = helper.make_graph(
        nodes, "detector", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, 1, 5]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 1])],
        initializer=[helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_boxes_from_an_onnx_detector(tmp_path):
    """The skier's ground-truth box, answered by a detector: the same person as with the box file."""
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(require(COCO / "images" / "000000000785.jpg"), folder / "000000000785.jpg")   # 640 wide: ratio 1
    x, y, w, h = 280.79, 44.73, 218.7, 346.68
    detector = _constant_detector(tmp_path / "detector.onnx", [x, y, x + w, y + h])
    out = tmp_path / "labels.json"
    assert main(["pseudolabel", str(folder), "--out", str(out), "--detector", str(detector),
                 "--detector-layout", "yolox", "--quiet"]) == 0
    (annotation,) = json.loads(out.read_text())["annotations"]
    np.testing.assert_allclose(annotation["bbox"], [x, y, w, h], atol=0.01)
    with HolisticExpert() as expert:
        keypoints, _ = expert.predict_people(load_image(folder / "000000000785.jpg"), np.array([[x, y, w, h]]))
    written = np.asarray(annotation["keypoints"]).reshape(17, 3)
    # the detector's float32 box differs by ~1e-5 px, which can move a Holistic point by ~1 px
    assert np.abs(written[:, :2] - keypoints[0][:17]).max() < 0.01 * h

"""Video: frame sources and broken streams, tracking ids, One-Euro smoothing, detector every N frames."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from conftest import DATA, require
from unionpose.cli import main
from unionpose.core.model_description import ModelInfo
from unionpose.infer.predictor import Predictor
from unionpose.infer.smoothing import OneEuroFilter, TrackSmoother
from unionpose.infer.sources import Frame, check_frame, open_source
from unionpose.infer.stream import predict_stream
from unionpose.infer.topdown import TopDownRunner
from unionpose.infer.torch_backend import TorchBackend
from unionpose.infer.tracking import PoseTracker
from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton

VIDEOS = DATA / "videos"
SIGMAS = np.asarray(get_skeleton("coco17").sigmas)




def test_video_source_streams_frames_with_times():
    source = open_source(str(require(VIDEOS / "basketball_10s.mp4")), max_frames=4)
    frames = list(source)
    assert len(source) == 4 and [f.index for f in frames] == [0, 1, 2, 3]
    assert frames[0].image.shape == (240, 426, 3) and frames[0].image.dtype == np.uint8
    assert frames[3].time == pytest.approx(3 / 29.97, rel=1e-3) and frames[1].name == "frame_000001"
    assert open_source(str(require(VIDEOS / "street_5frames.mp4"))).declared_frames == 5


def _damaged_video(folder, frames=30):
    """A 30-frame noise clip (large frames, so the damage hits several) with a sixth of its frame data wiped."""
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    data = bytearray((folder / "clip.mp4").read_bytes())
    start, end = data.find(b"mdat"), data.find(b"moov")
    middle = start + (end - start) // 2
    data[middle:middle + (end - start) // 6] = bytes((end - start) // 6)
    (folder / "broken.mp4").write_bytes(bytes(data))
    return folder / "broken.mp4"


def test_corrupt_frames_are_skipped_and_the_video_goes_on(tmp_path):
    source = open_source(str(_damaged_video(tmp_path)))
    frames = [frame.index for frame in source]
    assert source.skipped, "the wiped frames should be reported"
    lost = sum(int(name.split()[-1].split("-")[1]) - int(name.split()[-1].split("-")[0]) + 1
               if name.startswith("frames") else 1 for name, _ in source.skipped)
    assert len(frames) + lost == 30 and frames[-1] == 29                       # decoding resumed after the damage


def test_check_frame_names_the_problem():
    assert check_frame(None) == "empty frame"
    assert check_frame(np.zeros((0, 0, 3), np.uint8)) == "empty frame"
    assert "expected (H, W, 3) uint8" in check_frame(np.zeros((4, 4), np.uint8))
    assert check_frame(np.zeros((4, 4, 3), np.uint8)) is None


def _person(offset, rng=None):
    base = np.stack([np.linspace(0, 40, 17), np.linspace(0, 120, 17)], axis=1) + offset
    return base + (rng.normal(0, 1, base.shape) if rng is not None else 0)


def test_tracker_keeps_ids_through_motion_and_reordering():
    tracker = PoseTracker(SIGMAS)
    rng = np.random.default_rng(0)
    scores = np.full((2, 17), 0.9)
    ids_seen = []
    for t in range(10):
        people = np.stack([_person([10 + 3 * t, 10], rng), _person([200 - 3 * t, 30], rng)])
        boxes = np.array([[10 + 3 * t, 10, 40, 120], [200 - 3 * t, 30, 40, 120]], dtype=float)
        order = [1, 0] if t % 2 else [0, 1]                   # the detector lists people in any order
        ids = tracker.update(boxes[order], people[order], scores[order])
        ids_seen.append(dict(zip(order, ids.tolist())))
    assert all(seen == ids_seen[0] for seen in ids_seen) and sorted(ids_seen[0].values()) == [0, 1]
    # a newcomer far away gets a fresh id; a track unseen for longer than max_age is forgotten
    ids = tracker.update(np.array([[500, 500, 40, 120]]), _person([500, 500])[None], scores[:1])
    assert ids.tolist() == [2]
    iou_tracker = PoseTracker(SIGMAS, metric="iou", max_age=0)
    assert iou_tracker.update(np.array([[0, 0, 10, 10]]), _person([0, 0])[None], scores[:1]).tolist() == [0]
    iou_tracker.update(np.zeros((0, 4)), np.zeros((0, 17, 2)), np.zeros((0, 17)))
    assert iou_tracker.update(np.array([[0, 0, 10, 10]]), _person([0, 0])[None], scores[:1]).tolist() == [1]


def test_one_euro_filter_steadies_a_still_point_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    still = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    noisy = 100 + rng.normal(0, 2, 120)
    smoothed = np.array([still(np.array([v]), t / 30)[0] for t, v in enumerate(noisy)])
    assert smoothed[30:].std() < 0.5 * noisy[30:].std()
    moving = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    positions = np.array([moving(np.array([10.0 * t]), t / 30)[0] for t in range(60)])
    assert abs(positions[-1] - 590) < 10                    # a 300 px/s walk is followed within a few pixels
    smoother = TrackSmoother()
    first = smoother(np.array([3]), np.ones((1, 17, 2)), 0.0)
    assert np.array_equal(first, np.ones((1, 17, 2))) and list(smoother.filters) == [3]
    smoother(np.array([4]), np.ones((1, 17, 2)), 0.1)
    assert list(smoother.filters) == [4]                     # the filter of a vanished track is dropped


class _ConfidentModel(nn.Module):
    """Always 'sees' a person spread over the middle of the crop, score 1: poses a box can follow."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        simcc_x, simcc_y = torch.zeros(len(x), 17, 192), torch.zeros(len(x), 17, 256)
        simcc_x[:, torch.arange(17), torch.linspace(60, 130, 17).long()] = 1.0
        simcc_y[:, torch.arange(17), torch.linspace(40, 210, 17).long()] = 1.0
        return simcc_x, simcc_y


def test_detector_runs_every_n_frames_and_boxes_follow_the_poses_between():
    info = ModelInfo(get_skeleton("coco17"), "fake", (128, 96), 2.0, (3.5, 4.0), (0, 0, 0), (1, 1, 1))
    calls = []

    def detector(image):
        calls.append(1)
        return np.array([[20.0, 10.0, 60.0, 100.0]]), np.array([0.8])

    predictor = Predictor(TopDownRunner(TorchBackend(_ConfidentModel()), info), detector)
    frames = [Frame(i, f"frame_{i:06d}", np.zeros((120, 160, 3), np.uint8), i / 30) for i in range(7)]
    results = list(predict_stream(predictor, frames, detect_every=3, tracker=PoseTracker(SIGMAS),
                                  smoother=TrackSmoother()))
    assert len(calls) == 3                                            # frames 0, 3 and 6
    assert np.allclose(results[0][1].boxes, [[20, 10, 60, 100]])
    assert not np.allclose(results[1][1].boxes, results[0][1].boxes)  # frame 1 used the pose's own box
    assert all(poses.track_ids.tolist() == [0] for _, poses in results)
    with pytest.raises(ValueError, match="needs a tracker"):
        next(predict_stream(predictor, frames, smoother=TrackSmoother()))


def test_predict_cli_on_a_damaged_video_reports_skipped_frames(tmp_path):
    video = _damaged_video(tmp_path)
    torch.manual_seed(0)
    model = save_model_file(tmp_path / "t.safetensors", RTMPose("t", 17, (128, 96)), get_skeleton("coco17"))
    assert main(["predict", str(video), "--model", str(model), "--out", str(tmp_path / "out"),
                 "--formats", "jsonl,npz", "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["skipped"] and 0 < summary["frames"] < 30

"""Prediction outputs, one frame at a time: drawn images or video, COCO results, OpenPose JSON, JSONL and NumPy.

Every output states the keypoint names and order: JSONL in its first line, OpenPose JSON and .npz in their own
fields, and the COCO results list (whose format has no room for it) through `skeleton.json` written beside it.
Per-frame files mirror the frame's name, its path relative to the source (`a/img.jpg` -> `visualisation/a/img.jpg`),
so two inputs called `img.jpg` keep two outputs; every file is written atomically (`core.atomic`), and a stream's
files (JSONL, video) appear complete when the writer closes, or not at all when the run failed.
"""
from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

import cv2
import numpy as np

from unionpose.core.atomic import atomic_path, write_image_atomic, write_text_atomic
from unionpose.core.draw import draw_pose
from unionpose.core.output_paths import OutputFolder
from unionpose.infer.poses import Poses
from unionpose.infer.sources import Frame
from unionpose.skeletons import Skeleton

FORMATS = ("draw", "coco", "openpose", "jsonl", "npz")
# Every name the writers (and the run's summary.json) may create in the output folder.
OUTPUT_NAMES = ("visualisation", "visualisation.mp4", "predictions.coco.json", "skeleton.json", "openpose",
                "predictions.jsonl", "predictions.npz", "summary.json")
BOX_COLOR = (200, 200, 200)
OPENPOSE_GROUPS = {"face": "face_keypoints_2d", "left_hand": "hand_left_keypoints_2d",
                   "right_hand": "hand_right_keypoints_2d"}


def draw_poses(image: np.ndarray, poses: Poses, skeleton: Skeleton, threshold: float = 0.3) -> np.ndarray:
    """Draw every person of `poses` in place (BGR image): box, track id or score, and the skeleton."""
    thickness = max(1, max(image.shape[:2]) // 400)
    for n in range(len(poses)):
        x, y, w, h = (int(round(v)) for v in poses.boxes[n])
        cv2.rectangle(image, (x, y), (x + w, y + h), BOX_COLOR, thickness)
        label = f"id {poses.track_ids[n]}" if poses.track_ids[n] >= 0 else f"{poses.scores[n]:.2f}"
        cv2.putText(image, label, (x + 2, y + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, BOX_COLOR, 1, cv2.LINE_AA)
        draw_pose(image, poses.keypoints[n], skeleton, poses.keypoint_scores[n], threshold)
    return image


def image_id(frame: Frame) -> int:
    """COCO image id of a frame: the number a COCO file name spells (000000000785.jpg -> 785), else its index."""
    stem = Path(frame.name).stem
    return int(stem) if stem.isdigit() else frame.index


def _flat(keypoints: np.ndarray, scores: np.ndarray) -> list[float]:
    """(K, 2) and (K,) -> [x0, y0, s0, x1, ...] rounded to what pixels and scores need."""
    triplets = np.concatenate([keypoints, scores[:, None]], axis=1).astype(np.float64)
    return [round(float(v), 3) for v in triplets.reshape(-1)]


def _depth(poses: Poses, n: int) -> dict[str, list[float]]:
    """{"depth": [z per keypoint]} for a 3D model's person (root-relative, the model's unit), else nothing."""
    if poses.depth is None:
        return {}
    return {"depth": [round(float(v), 4) for v in poses.depth[n]]}


def coco_records(image: int, poses: Poses) -> list[dict]:
    """The COCO keypoint results of one image's people; public for callers that keep results in memory (a server).
    A 3D model's people also carry `depth`, one root-relative value per keypoint."""
    records = []
    for n in range(len(poses)):
        record = {"image_id": image, "category_id": 1,
                  "keypoints": _flat(poses.keypoints[n], poses.keypoint_scores[n]),
                  "score": round(float(poses.scores[n]), 5), **_depth(poses, n)}
        if poses.track_ids[n] >= 0:
            record["track_id"] = int(poses.track_ids[n])
        records.append(record)
    return records


class StreamFile:
    """A file written piece by piece under a temporary name, renamed into place by `close(keep=True)`."""

    def __init__(self, path: Path, suffix: str = ".tmp") -> None:
        self.context: AbstractContextManager[Path] = atomic_path(path, suffix)
        self.temporary = self.context.__enter__()

    def close(self, keep: bool) -> None:
        if keep:
            self.context.__exit__(None, None, None)
        else:
            self.context.__exit__(RuntimeError, RuntimeError("run failed"), None)


class CocoResultsWriter:
    """A COCO keypoint results list (image_id, category_id, keypoints, score, plus track_id when tracked)."""

    def __init__(self, path: Path, skeleton: Skeleton) -> None:
        self.path = path
        self.results: list[dict] = []
        write_text_atomic(path.with_name("skeleton.json"), json.dumps(skeleton.to_dict(), indent=1))

    def write(self, frame: Frame, poses: Poses) -> None:
        self.results.extend(coco_records(image_id(frame), poses))

    def close(self, keep: bool = True) -> None:
        if keep:
            write_text_atomic(self.path, json.dumps(self.results, separators=(",", ":")))


def openpose_groups(skeleton: Skeleton) -> dict[str, list[int]]:
    """OpenPose's arrays -> our keypoint indices: face and hands from the skeleton's parts, the rest is 'pose'."""
    groups = {OPENPOSE_GROUPS[part]: list(members) for part, members in skeleton.part_groups
              if part in OPENPOSE_GROUPS}
    grouped = {index for members in groups.values() for index in members}
    return {"pose_keypoints_2d": [k for k in range(skeleton.num_keypoints) if k not in grouped], **groups}


def openpose_document(poses: Poses, skeleton: Skeleton) -> dict:
    """One frame's OpenPose JSON: each person's groups as flat x, y, c arrays, with the names of each group."""
    groups = openpose_groups(skeleton)
    people = []
    for n in range(len(poses)):
        person = {"person_id": [int(poses.track_ids[n])]}
        for group, members in groups.items():
            person[group] = _flat(poses.keypoints[n][members], poses.keypoint_scores[n][members])
        people.append(person)
    names = {group: [skeleton.names[k] for k in members] for group, members in groups.items()}
    return {"version": 1.3, "keypoint_names": names, "people": people}


class OpenPoseWriter:
    """One OpenPose-style `<frame>_keypoints.json` per frame in a folder (people with flat x, y, c arrays)."""

    def __init__(self, folder: Path, skeleton: Skeleton, names: OutputFolder) -> None:
        self.folder = folder
        self.names = names
        self.skeleton = skeleton
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Frame, poses: Poses) -> None:
        document = openpose_document(poses, self.skeleton)
        relative = Path(frame.name).with_name(f"{Path(frame.name).stem}_keypoints.json")
        write_text_atomic(self.names.claim(self.folder.name / relative), json.dumps(document))

    def close(self, keep: bool = True) -> None:
        pass


class JsonlWriter:
    """One JSON line per frame, after a first line describing the skeleton (names in order) and the run."""

    def __init__(self, path: Path, skeleton: Skeleton, header: dict) -> None:
        self.stream = StreamFile(path)
        self.file = self.stream.temporary.open("w")
        self.file.write(json.dumps({"skeleton": skeleton.to_dict(), **header}) + "\n")

    def write(self, frame: Frame, poses: Poses) -> None:
        people = [{"track_id": int(poses.track_ids[n]), "score": round(float(poses.scores[n]), 5),
                   "box": [round(float(v), 2) for v in poses.boxes[n]],
                   "keypoints": np.round(poses.keypoints[n].astype(np.float64), 3).tolist(),
                   "keypoint_scores": np.round(poses.keypoint_scores[n].astype(np.float64), 5).tolist(),
                   **_depth(poses, n)}
                  for n in range(len(poses))]
        record = {"frame": frame.index, "name": frame.name, "time": round(frame.time, 4), "people": people}
        self.file.write(json.dumps(record) + "\n")

    def close(self, keep: bool = True) -> None:
        self.file.close()
        self.stream.close(keep)


class NpzWriter:
    """A NumPy .npz of all people of all frames as flat arrays, `frame` giving each person's frame index; a 3D
    model's run adds `depth` (people, K), root-relative in the model's unit.

    The arrays grow with the number of people (a few hundred bytes each), never with the images.
    """

    def __init__(self, path: Path, skeleton: Skeleton) -> None:
        self.path = path
        self.skeleton = skeleton
        self.rows: list[Poses] = []
        self.frames: list[int] = []
        self.frame_names: list[str] = []

    def write(self, frame: Frame, poses: Poses) -> None:
        self.rows.append(poses)
        self.frames.extend([frame.index] * len(poses))
        self.frame_names.append(frame.name)

    def close(self, keep: bool = True) -> None:
        if not keep:
            return

        def stacked(field: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            arrays = [getattr(p, field) for p in self.rows]
            return np.concatenate(arrays).astype(dtype) if arrays else np.zeros((0, *shape), dtype)

        num_keypoints = self.skeleton.num_keypoints
        depth = {}
        if any(p.depth is not None for p in self.rows):
            depth["depth"] = stacked("depth", (num_keypoints,), np.float32)
        with atomic_path(self.path) as temporary, temporary.open("wb") as file:
            np.savez_compressed(
                file, keypoint_names=np.array(self.skeleton.names), frame_names=np.array(self.frame_names),
            frame=np.asarray(self.frames, dtype=np.int64),
            keypoints=stacked("keypoints", (num_keypoints, 2), np.float32),
            keypoint_scores=stacked("keypoint_scores", (num_keypoints,), np.float32),
                boxes=stacked("boxes", (4,), np.float32), scores=stacked("scores", (), np.float32),
                track_ids=stacked("track_ids", (), np.int64), **depth)


class DrawingWriter:
    """Frames with the poses drawn: one image per frame in a folder, or one video file (`fps` given)."""

    def __init__(self, target: Path, skeleton: Skeleton, names: OutputFolder, threshold: float = 0.3,
                 fps: float | None = None) -> None:
        self.target = target
        self.skeleton = skeleton
        self.names = names
        self.threshold = threshold
        self.fps = fps
        self.video: cv2.VideoWriter | None = None
        self.stream: StreamFile | None = None
        self.size: tuple[int, int] | None = None
        if fps is None:
            target.mkdir(parents=True, exist_ok=True)

    def write(self, frame: Frame, poses: Poses) -> None:
        image = draw_poses(frame.image.copy(), poses, self.skeleton, self.threshold)
        if self.fps is None:
            write_image_atomic(self.names.claim(self.target.name / Path(frame.name).with_suffix(".jpg")), image)
            return
        if self.video is None:
            height, width = image.shape[:2]
            self.stream = StreamFile(self.target, suffix=self.target.suffix)
            self.video = cv2.VideoWriter(str(self.stream.temporary), cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                         (width, height))
            if not self.video.isOpened():
                raise ValueError(f"cannot write video {self.target} (OpenCV has no mp4v encoder here?)")
            self.size = (width, height)
        if image.shape[1::-1] != self.size:   # a stream may change size; a video cannot
            image = cv2.resize(image, self.size)
        self.video.write(image)

    def close(self, keep: bool = True) -> None:
        if self.video is not None:
            self.video.release()
            self.stream.close(keep)


def open_writers(folder: Path, formats: list[str], skeleton: Skeleton, header: dict, video_fps: float | None = None,
                 threshold: float = 0.3, names: OutputFolder | None = None) -> list:
    """The writers for `formats` (a subset of FORMATS), all under `folder` with fixed names:
    visualisation/ or visualisation.mp4, predictions.coco.json (+ skeleton.json), openpose/, predictions.jsonl,
    predictions.npz. `names` hands out the per-frame file names (by default: any name once)."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown output format(s) {unknown}; known: {', '.join(FORMATS)}")
    folder.mkdir(parents=True, exist_ok=True)
    names = names or OutputFolder(folder)
    writers = []
    for name in formats:
        if name == "draw":
            target = folder / ("visualisation.mp4" if video_fps else "visualisation")
            writers.append(DrawingWriter(target, skeleton, names, threshold, video_fps))
        elif name == "coco":
            writers.append(CocoResultsWriter(folder / "predictions.coco.json", skeleton))
        elif name == "openpose":
            writers.append(OpenPoseWriter(folder / "openpose", skeleton, names))
        elif name == "jsonl":
            writers.append(JsonlWriter(folder / "predictions.jsonl", skeleton, header))
        else:
            writers.append(NpzWriter(folder / "predictions.npz", skeleton))
    return writers

"""Pseudo-labelling: part experts over image folders or video frames -> COCO-WholeBody labels, resumable and parallel.

Each finished image is appended as one JSON line to a progress file beside the output (`labels.json.progress.jsonl`,
flushed and fsynced line by line), so an interrupted run resumes where it stopped and a rerun after adding images
labels only the new ones. The labels file is assembled from the progress file, sorted by file name, and written
atomically, so an interrupted and an uninterrupted run give the same file.

Output: a COCO-WholeBody file (`keypoints`, `foot_kpts`, `face_kpts`, `lefthand_kpts`, `righthand_kpts`, `*_valid`,
`*_box`) that `read_coco(..., format="coco_wholebody")` loads, plus per annotation `keypoint_confidence` (133 values
in WholeBody order, null where the expert gives no such point) and `expert`. A point is written visible (v = 2) when
its confidence reaches `min_confidence`, else with v = 0 and its coordinates kept; a point the expert cannot give
(the small toes, a hand or face not found) is [0, 0, 0], the format's "not labelled", with a null confidence.
Unreadable images and images where nobody is found are counted and reported, never written as labels.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unionpose.core.atomic import atomic_path
from unionpose.core.errors import DataError
from unionpose.core.images import read_image
from unionpose.data.instance import Instance
from unionpose.data.readers import read_coco
from unionpose.data.readers.box_file import BoxFile
from unionpose.data.readers.coco import WHOLEBODY_PARTS
from unionpose.infer.boxes import full_frame_box
from unionpose.infer.detector import OnnxPersonDetector
from unionpose.infer.sources import ImageSource, VideoSource, open_source
from unionpose.skeletons import get_skeleton
from unionpose.teachers.mediapipe_experts import (
    BOX_PADDING,
    EXPERT_NAME,
    MEDIAPIPE_VERSION,
    HolisticExpert,
    import_mediapipe,
)

EXPERTS = ("mediapipe",)
PROGRESS_FORMAT = "unionpose-pseudolabel-progress"
PROGRESS_VERSION = 1
JPEG_QUALITY = 95
FULL_FRAME_PADDING = 1.0      # a whole frame is the crop as it is
BOX_MARGIN = 0.1              # a box made from the points (full-frame mode) grows by this much on each side
LABELLED, NOBODY, NO_BOXES, UNREADABLE = "labelled", "nobody", "no_boxes", "unreadable"


@dataclass(frozen=True)
class PseudoLabelConfig:
    """One pseudo-labelling run. Boxes come from `boxes` (a COCO ground-truth file or detection results), an ONNX
    `detector`, or else the whole frame is one person (Holistic finds one person per crop)."""

    source: str                         # an image, a folder, a glob or a video file
    out: Path                           # the labels file (.json)
    experts: str = "mediapipe"
    boxes: Path | None = None
    boxes_images: Path | None = None    # the image table that pairs detection image ids with file names
    box_threshold: float = 0.3
    detector: Path | None = None
    detector_layout: str = "rtmdet"
    stride: int = 1                     # label every stride-th image or video frame
    min_confidence: float = 0.3
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.experts not in EXPERTS:
            raise ValueError(f"unknown experts {self.experts!r}; known: {', '.join(EXPERTS)}")
        if self.stride < 1 or self.workers < 1:
            raise ValueError(f"stride and workers must be at least 1, got {self.stride} and {self.workers}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.boxes is not None and self.detector is not None:
            raise ValueError("give person boxes from a file (--boxes) or a detector (--detector), not both")

    def settings(self) -> dict:
        """What the labels depend on: a resumed run must have the same."""
        fields = asdict(self)
        for key in ("out", "workers", "progress"):
            del fields[key]
        fields["source"] = str(Path(self.source).resolve()) if Path(self.source).exists() else self.source
        for key in ("boxes", "boxes_images", "detector"):
            fields[key] = None if fields[key] is None else str(Path(fields[key]).resolve())
        fields["expert"] = f"{EXPERT_NAME} mediapipe=={MEDIAPIPE_VERSION}"
        return fields


@dataclass(frozen=True)
class Task:
    """One image to label: its name in the labels file, where it is, and its person boxes (None: find them)."""

    file_name: str
    path: str
    boxes: list | None = None


def progress_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".progress.jsonl")


def frames_folder(out: str | Path) -> Path:
    """Where the frames of a video source are written as JPEG: beside the labels, named after them."""
    out = Path(out)
    return out.with_name(f"{out.stem}_frames")


# --- one annotation -------------------------------------------------------------------------------------------------
def _tight_box(points: np.ndarray) -> list[float]:
    if not len(points):
        return [0.0, 0.0, 0.0, 0.0]
    low, high = points.min(axis=0), points.max(axis=0)
    return [round(float(v), 2) for v in (low[0], low[1], high[0] - low[0], high[1] - low[1])]


def wholebody_annotation(keypoints: np.ndarray, confidence: np.ndarray, box: np.ndarray | None,
                         image_size: tuple[int, int], min_confidence: float) -> dict | None:
    """One person's expert points (133, 2) in image pixels (NaN: not given) -> a COCO-WholeBody annotation without
    ids; None when no point reaches `min_confidence`. Without a `box` the person box is the visible points' extent,
    grown by BOX_MARGIN per side and clipped to the image."""
    given = np.isfinite(keypoints).all(axis=1)
    visible = given & (confidence >= min_confidence)
    if not visible.any():
        return None
    height, width = image_size
    if box is None:
        low, high = keypoints[visible].min(axis=0), keypoints[visible].max(axis=0)
        margin = BOX_MARGIN * (high - low)
        low = np.maximum(low - margin, 0.0)
        high = np.minimum(high + margin, (width, height))
        box = np.concatenate([low, high - low])
    box = [round(float(v), 2) for v in np.asarray(box, dtype=np.float64).reshape(4)]
    values = np.zeros((len(keypoints), 3))
    values[given, :2] = np.round(keypoints[given].astype(np.float64), 2)
    values[visible, 2] = 2
    annotation: dict = {"category_id": 1, "iscrowd": 0, "bbox": box, "area": round(box[2] * box[3], 2),
                        "num_keypoints": int(visible[:17].sum())}
    start = 0
    for field, flag, count in WHOLEBODY_PARTS:
        part = slice(start, start + count)
        annotation[field] = values[part].reshape(-1).tolist()
        if flag is not None:
            annotation[flag] = bool(given[part].any())
            if field != "foot_kpts":
                shown = visible[part] if visible[part].any() else given[part]
                annotation[field.replace("_kpts", "_box")] = _tight_box(keypoints[part][shown])
        start += count
    annotation["keypoint_confidence"] = [round(float(c), 4) if g else None for c, g in zip(confidence, given)]
    annotation["expert"] = f"{EXPERT_NAME} {MEDIAPIPE_VERSION}"
    return annotation


# --- the worker ------------------------------------------------------------------------------------------------------
class Labeller:
    """Labels one image at a time: decode, find the people, run the expert, write annotations (one per process)."""

    def __init__(self, config: PseudoLabelConfig) -> None:
        self.expert = HolisticExpert()
        self.detector = (OnnxPersonDetector(config.detector, config.detector_layout, config.box_threshold)
                         if config.detector else None)
        self.min_confidence = config.min_confidence

    def __call__(self, task: Task) -> dict:
        record: dict = {"file_name": task.file_name}
        try:
            image = read_image(task.path, apply_exif=False)      # stored pixels, as annotation readers decode
        except DataError as error:
            return {**record, "status": UNREADABLE, "reason": str(error)}
        height, width = image.shape[:2]
        record.update(height=height, width=width)
        padding = BOX_PADDING
        if task.boxes is not None:
            boxes = np.asarray(task.boxes, dtype=np.float64).reshape(-1, 4)
        elif self.detector is not None:
            boxes = self.detector(image)[0]
        else:
            boxes, padding = full_frame_box(image)[0], FULL_FRAME_PADDING
        if not len(boxes):
            return {**record, "status": NO_BOXES, "annotations": []}
        keypoints, confidence = self.expert.predict_people(image, boxes, padding)
        given_box = task.boxes is not None or self.detector is not None
        annotations = [wholebody_annotation(points, scores, box if given_box else None, (height, width),
                                            self.min_confidence)
                       for points, scores, box in zip(keypoints, confidence, boxes)]
        annotations = [a for a in annotations if a is not None]
        return {**record, "status": LABELLED if annotations else NOBODY, "annotations": annotations}


_WORKER: Labeller | None = None


def _start_worker(config: PseudoLabelConfig) -> None:
    global _WORKER
    _WORKER = Labeller(config)


def _label_in_worker(task: Task) -> dict:
    return _WORKER(task)


# --- the progress file -----------------------------------------------------------------------------------------------
def read_progress(path: Path, header: dict) -> dict[str, dict]:
    """Finished records by file name. A torn last line (the run was killed while writing it) is cut off; a header
    with other settings is refused, naming the first field that differs."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = data.rfind(b"\n") + 1
    if complete < len(data):               # a torn last line: drop it so that appending starts on a fresh line
        with path.open("r+b") as file:
            file.truncate(complete)
        lines = data[:complete].split(b"\n")
    lines = [line for line in lines if line.strip()]
    if not lines:
        return {}
    try:
        found = json.loads(lines[0]).get("header", {})
    except (json.JSONDecodeError, AttributeError):
        found = {}
    if found.get("format") != PROGRESS_FORMAT:
        raise DataError(path, "line 1", "header", f"not a {PROGRESS_FORMAT} file; delete it or choose another --out")
    for key in sorted(set(header["settings"]) | set(found.get("settings", {}))):
        ours, theirs = header["settings"].get(key), found.get("settings", {}).get(key)
        if ours != theirs:
            raise DataError(path, "line 1", f"settings.{key}",
                            f"this run has {ours!r} but the unfinished run had {theirs!r}; rerun with the same "
                            "settings to resume, or delete the progress file to start over")
    done: dict[str, dict] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, f"line {number}", None, f"not valid JSON ({error})") from None
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str) \
                or record.get("status") not in (LABELLED, NOBODY, NO_BOXES, UNREADABLE):
            raise DataError(path, f"line {number}", "file_name/status", "expected a finished-image record")
        done[record["file_name"]] = record
    return done


def _append(file, record: dict) -> None:
    """One whole line, flushed to disk before the next image is reported done."""
    file.write(json.dumps(record, separators=(",", ":")) + "\n")
    file.flush()
    os.fsync(file.fileno())


# --- the source ------------------------------------------------------------------------------------------------------
def _image_tasks(source: ImageSource, config: PseudoLabelConfig, done: dict, boxes: BoxFile | None
                 ) -> tuple[Path, list[str], list[Task]]:
    paths = source.paths[::config.stride]
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    names = [p.resolve().relative_to(root).as_posix() for p in paths]
    tasks = [Task(name, str(path), None if boxes is None else boxes.lookup(name)[0].tolist())
             for name, path in zip(names, paths) if name not in done]
    return root, names, tasks


def _video_tasks(source: VideoSource, config: PseudoLabelConfig, done: dict, folder: Path,
                 names: list[str]) -> Iterator[Task]:
    """Every stride-th frame, written as JPEG (atomically) unless an earlier run already labelled it."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in source:
        if frame.index % config.stride:
            continue
        name = f"{frame.name}.jpg"
        names.append(name)
        if name in done:
            continue
        path = folder / name
        ok, encoded = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"cannot encode frame {frame.index} of {config.source} as JPEG")
        _write_atomically(path, encoded.tobytes())
        yield Task(name, str(path))


def _write_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


# --- the run ---------------------------------------------------------------------------------------------------------
def pseudolabel(config: PseudoLabelConfig) -> dict:
    """Label every (stride-th) image or frame of `config.source` with the experts; write `config.out`.

    Returns a summary: counts (images, labelled, people, nobody, no_boxes, unreadable, resumed), the unreadable images
    with their reasons, the images root the file names are relative to, and throughput of this run.
    """
    import_mediapipe()                      # fail before any work when the extra is missing
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = open_source(config.source, apply_exif=False)
    if config.boxes is not None and source.kind != "images":
        raise ValueError("--boxes pairs boxes with image file names; for a video use --detector or the full frame")
    boxes = BoxFile(config.boxes, config.boxes_images, config.box_threshold) if config.boxes else None
    header = {"format": PROGRESS_FORMAT, "version": PROGRESS_VERSION, "settings": config.settings()}
    progress_file = progress_path(out)
    done = read_progress(progress_file, header)
    names: list[str] = []
    if source.kind == "images":
        root, names, task_list = _image_tasks(source, config, done, boxes)
        tasks: Iterator[Task] = iter(task_list)
        total, initial = len(names), len(names) - len(task_list)
    else:
        root = frames_folder(out)
        tasks = _video_tasks(source, config, done, root, names)     # fills `names` as it reads the video
        total, initial = (-(-len(source) // config.stride) if len(source) else None), len(done)

    start, new = time.perf_counter(), 0
    with progress_file.open("a") as file:
        if file.tell() == 0:
            _append(file, {"header": header})
        for record in _run(tasks, config, total, initial):
            _append(file, record)
            done[record["file_name"]] = record
            new += 1
    seconds = time.perf_counter() - start
    records = [done[name] for name in sorted(set(names)) if name in done]
    skipped_frames = [{"name": name, "reason": reason} for name, reason in source.skipped]
    labels = assemble_labels(records, config, root, skipped_frames)
    _write_atomically(out, json.dumps(labels, separators=(",", ":")).encode())
    counts = labels["info"]["counts"]
    return {
        **counts, "resumed": len(names) - new, "images_root": str(root), "out": str(out),
        "unreadable_images": [{"name": r["file_name"], "reason": r["reason"]} for r in records
                              if r["status"] == UNREADABLE] + skipped_frames,
        "seconds": round(seconds, 3),
        "images_per_second": round(new / seconds, 3) if seconds > 0 else None,
    }


def _run(tasks: Iterator[Task], config: PseudoLabelConfig, total: int | None, initial: int) -> Iterator[dict]:
    """Records as images finish, in this process or in `config.workers` worker processes (any order)."""
    bar = tqdm(total=total, initial=initial, unit="image", disable=not config.progress, desc="pseudo-labels")
    try:
        if config.workers == 1:
            labeller = Labeller(config)
            try:
                for task in tasks:
                    yield labeller(task)
                    bar.update(1)
            finally:
                labeller.expert.close()
            return
        # spawn, never fork: a process forked after MediaPipe ran aborts when it starts its own graph. A bounded
        # number of images is in flight, so video frames are written as they are labelled, not all up front.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(config.workers, context, _start_worker, (config,)) as pool:
            pending: set = set()
            for task in tasks:
                pending.add(pool.submit(_label_in_worker, task))
                if len(pending) >= 2 * config.workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield future.result()
                        bar.update(1)
            for future in as_completed(pending):
                yield future.result()
                bar.update(1)
    finally:
        bar.close()


def assemble_labels(records: list[dict], config: PseudoLabelConfig, root: Path,
                    skipped_frames: list[dict] | None = None) -> dict:
    """The COCO-WholeBody file from finished records in file-name order: only labelled images are listed."""
    images, annotations = [], []
    for record in records:
        if record["status"] != LABELLED:
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": record["file_name"], "height": record["height"],
                       "width": record["width"]})
        for annotation in record["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
    statuses = [record["status"] for record in records]
    body_names = list(get_skeleton("coco17").names)
    return {
        "info": {
            "description": "UnionPose pseudo-labels (COCO-WholeBody format)",
            "expert": EXPERT_NAME,
            "mediapipe_version": MEDIAPIPE_VERSION,
            "images_root": str(root),
            "settings": config.settings(),
            "keypoint_confidence": "per annotation, 133 values in COCO-WholeBody order (body 17, feet 6, face 68, "
                                   "left hand 21, right hand 21): body and feet = pose visibility, a hand = the "
                                   "pose visibility of its wrist, the face = that of the nose; null = not given",
            "approximations": "big toe = MediaPipe foot_index (the front of the foot); small toes not given",
            "counts": {"images": len(records) + len(skipped_frames or []), "labelled": len(images),
                       "people": len(annotations), "nobody": statuses.count(NOBODY),
                       "no_boxes": statuses.count(NO_BOXES),
                       "unreadable": statuses.count(UNREADABLE) + len(skipped_frames or [])},
        },
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": body_names}],
    }


def load_pseudolabels(path: str | Path, images: str | Path | None = None, dataset: str = "pseudolabels"
                      ) -> list[Instance]:
    """Pseudo-labels as instances in coco_wholebody133, read by the COCO-WholeBody reader: with the expert's
    `confidence`, and `annotated` False where the expert gives no such point. `images` defaults to the file's
    recorded images root."""
    instances, _ = read_coco(path, images, format="coco_wholebody", dataset=dataset)
    for instance in instances:
        if instance.confidence is None:
            raise DataError(path, f"annotation id {instance.ann_id}", "keypoint_confidence",
                            f"expected {instance.num_keypoints} values (number or null)")
    return instances

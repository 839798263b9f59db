"""The DOPE claim on this CPU: per-person latency of the part experts vs the distilled student, and their agreement.

    .venv-experts/bin/python benchmarks/experts_vs_student.py \
        --model runs/dope/dope_wholebody_mini/final.safetensors --out experts_vs_student.json

Held-out frames: every --every-th frame of --video starting at --offset (defaults 10 and 5: frames 5, 15, 25, ...);
the recipe (configs/dope/dope_wholebody_mini.yaml) trains on the video's even frames, so these are never seen.
On each frame the person is found as `pseudolabel` finds one without a detector (Holistic on the whole frame, the
box = the extent of its confident points); then both sides get that same box with the same 1.25 padding, each
cropped at its own input size (Holistic 512x384, the student its model's), one person per call. The video's people
are small (Holistic finds no face or hands there), so held-out photos with person boxes are added (default: the 4
COCO val2017 photos of the fixture, 14 boxes, never trained on), scored separately and together:

- the expert ensemble: `HolisticExpert.predict_people` (crop, Holistic pose + face + hands, map to WholeBody-133; it
  includes the blank frame that clears Holistic's state between people, ~17 ms, which labelling pays too);
- the student: `TopDownRunner.predict` (crop, network, SimCC decode) with the PyTorch model and with its ONNX export
  (ONNXRuntime, CPU), the unionpose.infer backends.

Latency: median (and mean) per person over --repeat timed passes after one warm-up pass, in one process, on the
same frames. Agreement: PCK@0.1 of the box's longer side, the expert's points (confidence >= --min-confidence) as
reference, per part (body, feet, face, left hand, right hand) and pooled, for the PyTorch and the ONNX student.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unionpose.apps.pseudolabel import FULL_FRAME_PADDING, wholebody_annotation
from unionpose.core.images import read_image
from unionpose.data.readers.box_file import BoxFile
from unionpose.eval.pck import correct_keypoints, rate
from unionpose.export.onnx import export_onnx
from unionpose.infer.backends import OnnxBackend, load_pose_model
from unionpose.infer.boxes import full_frame_box
from unionpose.infer.sources import VideoSource
from unionpose.infer.topdown import TopDownRunner
from unionpose.models.model_file import load_model_file
from unionpose.teachers.mediapipe_experts import CROP_SIZE, MEDIAPIPE_VERSION, HolisticExpert

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIDEO = DATA / "videos" / "basketball_10s.mp4"
PHOTOS = DATA / "fixtures" / "coco"          # 4 COCO val2017 photos: never trained on, people close enough for hands
PCK_THRESHOLD = 0.1


def held_out_people(video: Path, every: int, offset: int, expert: HolisticExpert, min_confidence: float
                    ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame index, BGR frame, person box xywh) for each held-out frame where Holistic finds someone."""
    people = []
    for frame in VideoSource(str(video)):
        if frame.index % every != offset:
            continue
        box, _ = full_frame_box(frame.image)
        points, scores = expert.predict_people(frame.image, box, FULL_FRAME_PADDING)
        annotation = wholebody_annotation(points[0], scores[0], None, frame.image.shape[:2], min_confidence)
        if annotation is not None:
            people.append((frame.index, frame.image, np.asarray(annotation["bbox"], dtype=np.float64)))
    return people


def held_out_photos(folder: Path, boxes: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, BGR image, person box xywh) for every ground-truth box of every photo in `folder`."""
    box_file = BoxFile(boxes)
    people = []
    for path in sorted(folder.glob("*.jpg")):
        image = read_image(path, apply_exif=False)
        people += [(path.name, image, box) for box in box_file.lookup(path.name)[0]]
    return people


def timed(predict, people: list, repeat: int) -> tuple[list, dict]:
    """Outputs of `predict(image, box)` per person (from the last pass), and its per-person latency."""
    times: list[float] = []
    outputs: list = []
    for attempt in range(repeat + 1):
        outputs = []
        for _, image, box in people:
            start = time.perf_counter()
            outputs.append(predict(image, box[None]))
            if attempt:                                   # the first pass warms up
                times.append(time.perf_counter() - start)
    return outputs, {"calls": len(times), "median_ms": round(1000 * statistics.median(times), 2),
                     "mean_ms": round(1000 * statistics.mean(times), 2)}


def agreement(student: list, expert: list, people: list, parts: dict, min_confidence: float) -> dict:
    """PCK@0.1 (box longer side) of the student against the expert's confident points, per part and pooled."""
    predicted = np.concatenate([keypoints for keypoints, _ in student])
    reference = np.concatenate([keypoints for keypoints, _ in expert])
    confidence = np.concatenate([scores for _, scores in expert])
    shown = (confidence >= min_confidence) & np.isfinite(reference).all(axis=-1)
    reference = np.where(shown[..., None], reference, 0.0)
    scale = np.array([box[2:].max() for _, _, box in people])
    hits, annotated = correct_keypoints(predicted, reference, shown.astype(np.int8), scale, PCK_THRESHOLD)
    result = {"all": rate(hits, annotated), "points": int(annotated.sum())}
    for part, indices in parts.items():
        index = list(indices)
        result[part] = rate(hits[:, index], annotated[:, index])
        result[f"{part}_points"] = int(annotated[:, index].sum())
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the student's model file (.safetensors)")
    parser.add_argument("--onnx", type=Path, help="its ONNX export (default: exported here to a temporary file)")
    parser.add_argument("--video", type=Path, default=VIDEO, help="the footage (default: basketball_10s.mp4)")
    parser.add_argument("--every", type=int, default=10, help="take every N-th frame (10)")
    parser.add_argument("--offset", type=int, default=5,
                        help="starting at this frame (5; odd, so none of the recipe's even training frames)")
    parser.add_argument("--photos", type=Path, default=PHOTOS / "images",
                        help="held-out photos too (default: the COCO val fixture; '' for none)")
    parser.add_argument("--boxes", type=Path, default=PHOTOS / "person_keypoints.json",
                        help="their person boxes: COCO ground truth or detections")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the held-out people (3)")
    parser.add_argument("--min-confidence", type=float, default=0.3, help="expert points used as reference (0.3)")
    parser.add_argument("--out", type=Path, default=Path("experts_vs_student.json"))
    args = parser.parse_args()
    if not 0 <= args.offset < args.every:
        parser.error(f"--offset must be in [0, --every), got {args.offset} and {args.every}")

    backend, info = load_pose_model(args.model)
    with HolisticExpert() as expert, tempfile.TemporaryDirectory() as folder:
        people = held_out_people(args.video, args.every, args.offset, expert, args.min_confidence)
        photos = held_out_photos(args.photos, args.boxes) if str(args.photos) not in ("", ".") else []
        if not people and not photos:
            raise SystemExit(f"Holistic found nobody in the held-out frames of {args.video}, and no photos given")
        onnx_path = args.onnx or export_onnx(load_model_file(args.model)[0], info, Path(folder) / "student.onnx")
        torch_runner = TopDownRunner(backend, info, batch_size=1)
        onnx_runner = TopDownRunner(OnnxBackend(onnx_path), info, batch_size=1)
        everyone = people + photos
        expert_out, expert_time = timed(expert.predict_people, everyone, args.repeat)
        torch_out, torch_time = timed(torch_runner.predict, everyone, args.repeat)
        onnx_out, onnx_time = timed(onnx_runner.predict, everyone, args.repeat)

    parts = info.skeleton.parts
    result = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "mediapipe": MEDIAPIPE_VERSION,
        "student": {"model": str(args.model), "size": info.model_size, "input_hw": list(info.input_size),
                    "keypoints": info.skeleton.num_keypoints},
        "held_out": {"video": str(args.video), "frames": [index for index, _, _ in people],
                     "rule": f"frame index % {args.every} == {args.offset}", "video_people": len(people),
                     "photos": str(args.photos) if photos else None, "photo_people": len(photos)},
        "latency_per_person_ms": {"expert_holistic": {**expert_time, "crop_hw": list(CROP_SIZE)},
                                  "student_pytorch": torch_time, "student_onnx": onnx_time},
        "speedup_median": {"pytorch": round(expert_time["median_ms"] / torch_time["median_ms"], 2),
                           "onnx": round(expert_time["median_ms"] / onnx_time["median_ms"], 2)},
        f"agreement_pck@{PCK_THRESHOLD}": {
            "reference": f"expert points with confidence >= {args.min_confidence}; normaliser: box longer side",
            **{f"{backend}_{subset}": agreement(student[start:stop], expert_out[start:stop], everyone[start:stop],
                                                parts, args.min_confidence)
               for backend, student in (("pytorch", torch_out), ("onnx", onnx_out))
               for subset, start, stop in (("video", 0, len(people)), ("photos", len(people), len(everyone)),
                                           ("all", 0, len(everyone))) if stop > start}},
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

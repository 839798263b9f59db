"""MediaPipe expert speed on this CPU: per-person Holistic latency and pseudo-labelling throughput (expert env).

    .venv-experts/bin/python benchmarks/experts.py --out experts.json

Latency: every person of the COCO fixture (ground-truth boxes), `HolisticExpert.predict_people` on one box at a
time (crop 512x384, the blank frame that clears Holistic's state included), median and mean over --repeat passes
after one warm-up pass. Throughput: `pseudolabel` on the 80 COCO train photos with their ground-truth boxes
(172 boxes), from scratch, for each worker count; worker start-up included, as a user sees it.
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

import cv2

from unionpose.apps.pseudolabel import PseudoLabelConfig, pseudolabel
from unionpose.data.readers import read_coco
from unionpose.teachers.mediapipe_experts import CROP_SIZE, MEDIAPIPE_VERSION, HolisticExpert

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIXTURE = DATA / "fixtures" / "coco"
TRAIN_MINI = DATA / "coco_train_mini"


def person_latency(repeat: int) -> dict:
    people, _ = read_coco(FIXTURE / "coco_wholebody.json", FIXTURE / "images", format="coco_wholebody")
    images = {p.image: cv2.imread(p.image) for p in people}
    times: list[float] = []
    found = 0
    with HolisticExpert() as expert:
        for attempt in range(repeat + 1):
            for person in people:
                start = time.perf_counter()
                _, confidence = expert.predict_people(images[person.image], person.box[None])
                if attempt:                                       # the first pass warms up
                    times.append(time.perf_counter() - start)
                    found += bool(confidence.any())
    return {"people": len(people), "calls": len(times), "found_fraction": round(found / len(times), 3),
            "median_ms": round(1000 * statistics.median(times), 1),
            "mean_ms": round(1000 * statistics.mean(times), 1), "crop_hw": list(CROP_SIZE)}


def throughput(workers: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        config = PseudoLabelConfig(source=str(TRAIN_MINI / "images"), out=Path(folder) / "labels.json",
                                   boxes=TRAIN_MINI / "person_keypoints_train2017.json", workers=workers,
                                   progress=False)
        start = time.perf_counter()
        summary = pseudolabel(config)
        seconds = time.perf_counter() - start
    return {"workers": workers, "images": summary["images"], "people": summary["people"],
            "images_where_nobody_was_found": summary["nobody"], "seconds": round(seconds, 2),
            "images_per_second": round(summary["images"] / seconds, 2),
            "people_per_second": round(summary["people"] / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("experts.json"))
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the fixture people (3)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput runs (1,2)")
    args = parser.parse_args()
    result = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "mediapipe": MEDIAPIPE_VERSION,
        "holistic_per_person": person_latency(args.repeat),
        "pseudolabel": [throughput(int(w)) for w in args.workers.split(",")],
    }
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""How close `unionpose annotate` puts the points a dataset does not label, on synthetic people whose truth is known.

    python benchmarks/annotate_accuracy.py --out annotate_accuracy.json [--work runs/annotate_accuracy] [--train 400]

Synthetic people of the demo preset (seed 21, `--train` training images: the first half labelled as COCO-17, the
second half as MPII-16, and every one with all 21 points in full21.json) are completed by the shipped demo teachers:
the COCO-like file's pelvis, thorax, upper neck and head top by the MPII-like teacher, the MPII-like file's face by
the COCO-like teacher. Each filled point is compared with the truth (where the truth is visible): pixel error,
per-point OKS (the point's sigma, the person's area) and the share with OKS >= 0.5, per keypoint and overall, for the
points written visible and for those written below --min-confidence. For scale: each dataset's own teacher on the
points that dataset labels (which `annotate` keeps, and audits). Prints one JSON object, also to --out.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import yaml

from unionpose.apps.annotate import AnnotateConfig, annotate, parse_sources
from unionpose.apps.demo_weights import shipped_weights, weight_paths
from unionpose.apps.labelling import progress_path
from unionpose.data.config import load_data_config
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import PRESETS, generate
from reporting import emit

SEED = 21
UNION = get_skeleton("coco17+mpii16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON result")
    parser.add_argument("--work", type=Path, default=Path("runs/annotate_accuracy"), help="data and outputs")
    parser.add_argument("--train", type=int, default=400, help="synthetic training images (default 400)")
    parser.add_argument("--min-confidence", type=float, default=0.3)
    parser.add_argument("--flip-test", action="store_true")
    args = parser.parse_args()

    synth = args.work / "synth"
    if not (synth / "full21.json").is_file():
        generate(synth, num_train=args.train, num_val=2, seed=SEED, params=PRESETS["demo"])
    data = args.work / "data.yaml"
    data.write_text(yaml.safe_dump({"skeleton": {"union": ["coco17", "mpii16"]}, "data": {"train": [
        {"name": "coco", "format": "coco", "annotations": str((synth / "coco17.json").resolve()),
         "images": str((synth / "images").resolve())},
        {"name": "mpii", "format": "mpii", "annotations": str((synth / "mpii16.json").resolve()),
         "images": str((synth / "images").resolve())}]}}))
    weights = weight_paths(shipped_weights())
    recipe = load_data_config(data)
    out = args.work / ("annotated_flip" if args.flip_test else "annotated")
    config = AnnotateConfig(
        datasets=tuple(recipe.data.train), skeleton=recipe.build_skeleton(), out=out, progress=False,
        sources=parse_sources([f"coco={weights['teacher_coco']}", f"mpii={weights['teacher_mpii']}"]),
        min_confidence=args.min_confidence, flip_test=args.flip_test)
    start = time.perf_counter()
    summary = annotate(config)
    seconds = time.perf_counter() - start
    truth = json.loads((synth / "full21.json").read_text())
    result = {"images": summary["images"], "seconds": round(seconds, 2), "flip_test": args.flip_test,
              "min_confidence": args.min_confidence, "platform": platform.platform(), "datasets": {}}
    lines = progress_path(out / "annotate.json").read_text().splitlines()[1:]     # after the header
    records = [json.loads(line) for line in lines if line.strip()]
    for name, teacher in (("coco", "coco"), ("mpii", "mpii")):
        completed = json.loads((out / f"{name}.json").read_text())
        result["datasets"][name] = {
            "filled": _filled_accuracy(completed, truth),
            "teacher_on_labelled_points": _teacher_accuracy(completed, truth, records, teacher),
            "counts": {k: v for k, v in summary["datasets"][name].items() if k not in ("unreadable_images", "out")}}
    emit(result, args.out)


def _matched(completed: dict, truth: dict) -> list[tuple[dict, dict]]:
    """Each completed person with its full-truth person: same image, ground-truth points closest."""
    names = {image["id"]: image["file_name"] for image in completed["images"]}
    by_image: dict[str, list[dict]] = {}
    truth_names = {image["id"]: image["file_name"] for image in truth["images"]}
    for person in truth["annotations"]:
        by_image.setdefault(truth_names[person["image_id"]], []).append(person)
    pairs = []
    for annotation in completed["annotations"]:
        points = np.array(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
        labelled = np.array([s == "gt" for s in annotation["keypoint_source"]]) & (points[:, 2] > 0)
        candidates = by_image.get(names[annotation["image_id"]], [])
        if not candidates or not labelled.any():
            continue
        distance = [np.abs(np.array(c["keypoints"]).reshape(-1, 3)[labelled, :2] - points[labelled, :2]).max()
                    for c in candidates]
        if min(distance) < 1.0:
            pairs.append((annotation, candidates[int(np.argmin(distance))]))
    return pairs


def _scores(rows: list[tuple[int, float, float]]) -> dict:
    if not rows:
        return {"points": 0}
    array = np.array(rows, dtype=np.float64)
    return {"points": len(array), "mean_error_px": round(float(array[:, 1].mean()), 2),
            "median_error_px": round(float(np.median(array[:, 1])), 2), "mean_oks": round(float(array[:, 2].mean()), 3),
            "oks_at_least_0.5": round(float((array[:, 2] >= 0.5).mean()), 3)}


def _similarity(found: np.ndarray, real: np.ndarray, k: int, area: float) -> tuple[float, float]:
    squared = float(((found - real) ** 2).sum())
    return np.sqrt(squared), float(np.exp(-squared / (2 * area * (2 * UNION.sigmas[k]) ** 2)))


def _filled_accuracy(completed: dict, truth: dict) -> dict:
    shown, hidden, per_point = [], [], {}
    for annotation, person in _matched(completed, truth):
        points = np.array(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)
        real = np.array(person["keypoints"], dtype=np.float64).reshape(-1, 3)
        for k, source in enumerate(annotation["keypoint_source"]):
            if source in (None, "gt") or real[k, 2] <= 0:
                continue
            row = (k, *_similarity(points[k, :2], real[k, :2], k, person["area"]))
            (shown if points[k, 2] > 0 else hidden).append(row)
            if points[k, 2] > 0:
                per_point.setdefault(UNION.names[k], []).append(row)
    return {"written_visible": _scores(shown), "written_below_min_confidence": _scores(hidden),
            "per_keypoint": {name: _scores(rows) for name, rows in per_point.items()}}


def _teacher_accuracy(completed: dict, truth: dict, records: dict, teacher: str) -> dict:
    """The teacher that labels this dataset's own skeleton, scored on the points the dataset labels, at the same
    confidence threshold: how good the sources are where there is ground truth to compare."""
    predictions = {}
    for record in records:
        for person in record.get("people", []):
            predictions[(record["file_name"].split("/", 1)[0], person["ann_id"])] = person
    dataset = completed["info"]["unionpose_annotate"]
    name = "coco" if dataset["source_format"] == "coco" else "mpii"
    rows = []
    for annotation, person in _matched(completed, truth):
        ann_id = annotation["id"] if name == "coco" else annotation["id"] - 1
        found = predictions.get((name, ann_id))
        if found is None:
            continue
        points = np.array([np.nan if v is None else v for v in found["keypoints"][teacher]]).reshape(-1, 2)
        confidence = np.array([0.0 if v is None else v for v in found["confidence"][teacher]])
        real = np.array(person["keypoints"], dtype=np.float64).reshape(-1, 3)
        for k, source in enumerate(annotation["keypoint_source"]):
            if source == "gt" and real[k, 2] > 0 and confidence[k] >= dataset["min_confidence"]:
                rows.append((k, *_similarity(points[k], real[k, :2], k, person["area"])))
    return _scores(rows)


if __name__ == "__main__":
    main()

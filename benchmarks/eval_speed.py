"""Time `coco_keypoint_ap` against pycocotools and faster-coco-eval called directly, on a large synthetic set.

    python benchmarks/eval_speed.py --people 20000 --out eval_speed.json

The three paths score the same people and predictions with COCO's sigmas; their runs are interleaved (pycocotools,
faster-coco-eval, ours, then again, --repeat times), each on fresh copies of the inputs made outside the timer, and
the medians are compared, so that a loaded machine slows all three alike. Prints one JSON object (also written to
--out): sizes, median seconds of each path, `speedup_vs_pycocotools` (pycocotools / ours; goal >= 1.8),
`ratio_to_faster_coco_eval` (ours / faster-coco-eval alone: our overhead for validation, copies and the per-person
and per-keypoint details; goal <= 1.1), the time of our results validation alone, and the largest difference of the
ten numbers between the paths.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
from faster_coco_eval import COCO as FasterCOCO
from faster_coco_eval import COCOeval_faster
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from unionpose.eval import STAT_NAMES, build_ground_truth, coco_keypoint_ap, validate_results
from unionpose.skeletons import get_skeleton
from reporting import emit


def synthetic_set(people: int, per_image: int, seed: int) -> tuple[dict, list[dict]]:
    """GT people (random boxes, 17 points inside, ~15 % unlabelled) and predictions: noisy copies + false positives."""
    skeleton = get_skeleton("coco17")
    rng = np.random.default_rng(seed)
    k = skeleton.num_keypoints
    image_ids = np.repeat(np.arange(1, people // per_image + 2), per_image)[:people]
    size = rng.uniform(20, 300, size=(people, 2))
    corner = rng.uniform(0, 600, size=(people, 2))
    boxes = np.concatenate([corner, size], axis=1)
    keypoints = corner[:, None] + rng.uniform(0, 1, size=(people, k, 2)) * size[:, None]
    visible = rng.choice([0, 1, 2], p=[0.15, 0.15, 0.7], size=(people, k))
    areas = 0.55 * size.prod(axis=1)
    gt = build_ground_truth(image_ids, boxes, keypoints, visible, areas, skeleton)

    noise = rng.normal(0, 1, size=(people, k, 2)) * 0.04 * size.max(axis=1)[:, None, None]
    predicted = keypoints + noise
    extra = people // 10  # false positives: shuffled poses in other images
    fake_images = rng.choice(image_ids, size=extra)
    fakes = keypoints[rng.permutation(people)[:extra]] + rng.normal(0, 30, size=(extra, k, 2))
    points = np.concatenate([predicted, fakes])
    scores = rng.uniform(0.05, 1.0, size=(len(points), k, 1))
    flat = np.concatenate([points, scores], axis=-1).reshape(len(points), -1)
    person_scores = rng.uniform(0.1, 1.0, size=len(points))
    results = [{"image_id": int(i), "category_id": 1, "keypoints": row.tolist(), "score": float(s)}
               for i, row, s in zip(np.concatenate([image_ids, fake_images]), flat, person_scores)]
    return gt, results


def pycocotools_direct(gt: dict, results: list[dict], sigmas: np.ndarray) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def faster_coco_eval_direct(gt: dict, results: list[dict], sigmas: np.ndarray) -> np.ndarray:
    coco_gt = FasterCOCO(gt)
    evaluator = COCOeval_faster(coco_gt, coco_gt.loadRes(results), iouType="keypoints", kpt_oks_sigmas=sigmas,
                                print_function=lambda *args, **kwargs: None)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats)


def interleaved_times(paths: dict[str, Callable], repeat: int, fresh_inputs: Callable) -> tuple[dict, dict]:
    """Wall times of each path, `repeat` rounds of one run of each in turn, every run on fresh input copies made
    outside the timer; and each path's last output."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    outputs = {}
    for _ in range(repeat):
        for name, function in paths.items():
            inputs = fresh_inputs()
            start = time.perf_counter()
            outputs[name] = function(*inputs)
            times[name].append(time.perf_counter() - start)
    return times, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--per-image", type=int, default=4, help="people per image")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    sigmas = np.array(get_skeleton("coco17").sigmas)
    gt, results = synthetic_set(args.people, args.per_image, args.seed)

    def fresh() -> tuple[dict, list[dict], np.ndarray]:
        return copy.deepcopy(gt), copy.deepcopy(results), sigmas  # pycocotools writes into its inputs

    def ours(g: dict, r: list[dict], s: np.ndarray) -> np.ndarray:
        result = coco_keypoint_ap(g, r, s)
        return np.array([result[name] for name in STAT_NAMES])

    times, stats = interleaved_times({"pycocotools": pycocotools_direct, "faster_coco_eval": faster_coco_eval_direct,
                                      "unionpose": ours}, args.repeat, fresh)
    image_ids = [image["id"] for image in gt["images"]]
    validation, _ = interleaved_times({"validation": lambda r: validate_results(r, 17, image_ids, [1])},
                                      args.repeat, lambda: (results,))
    median = {name: float(np.median(values)) for name, values in {**times, **validation}.items()}
    report = {
        "people": args.people,
        "images": len(gt["images"]),
        "results": len(results),
        "repeat": args.repeat,
        "pycocotools_s": round(median["pycocotools"], 3),
        "faster_coco_eval_s": round(median["faster_coco_eval"], 3),
        "unionpose_s": round(median["unionpose"], 3),
        "speedup_vs_pycocotools": round(median["pycocotools"] / median["unionpose"], 3),
        "ratio_to_faster_coco_eval": round(median["unionpose"] / median["faster_coco_eval"], 3),
        "results_validation_s": round(median["validation"], 3),
        "max_abs_stat_difference": {
            "unionpose_vs_pycocotools": float(np.abs(stats["unionpose"] - stats["pycocotools"]).max()),
            "faster_coco_eval_vs_pycocotools": float(np.abs(stats["faster_coco_eval"] - stats["pycocotools"]).max()),
        },
        "stats": {name: round(float(v), 6) for name, v in zip(STAT_NAMES, stats["unionpose"])},
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()

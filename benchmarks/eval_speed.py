"""Time `coco_keypoint_ap` against pycocotools called directly on a large synthetic set; check the numbers agree.

    python benchmarks/eval_speed.py --people 20000 --out eval_speed.json

Prints one JSON object (also written to --out): sizes, seconds for each path (best of --repeat), their ratio (our
overhead: validation, copies, per-person and per-keypoint details) and the largest difference of the ten numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import platform
import time
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from unionpose.eval import STAT_NAMES, build_ground_truth, coco_keypoint_ap, validate_results
from unionpose.skeletons import get_skeleton


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


def best_time(function, repeat: int, fresh_inputs) -> tuple[float, object]:
    """Best wall time of `repeat` runs, each on fresh input copies made outside the timer."""
    times, output = [], None
    for _ in range(repeat):
        inputs = fresh_inputs()
        start = time.perf_counter()
        output = function(*inputs)
        times.append(time.perf_counter() - start)
    return min(times), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--per-image", type=int, default=4, help="people per image")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    sigmas = np.array(get_skeleton("coco17").sigmas)
    gt, results = synthetic_set(args.people, args.per_image, args.seed)

    def fresh():
        return copy.deepcopy(gt), copy.deepcopy(results), sigmas  # pycocotools writes into its inputs

    direct_s, direct_stats = best_time(pycocotools_direct, args.repeat, fresh)
    ours_s, ours = best_time(lambda g, r, s: coco_keypoint_ap(g, r, s), args.repeat, fresh)
    image_ids = [image["id"] for image in gt["images"]]
    validation_s, _ = best_time(lambda r: validate_results(r, 17, image_ids, [1]), args.repeat, lambda: (results,))
    ours_stats = np.array([ours[name] for name in STAT_NAMES])
    report = {
        "people": args.people,
        "images": len(gt["images"]),
        "results": len(results),
        "pycocotools_s": round(direct_s, 3),
        "unionpose_s": round(ours_s, 3),
        "ratio": round(ours_s / direct_s, 3),
        "results_validation_s": round(validation_s, 3),
        "max_abs_stat_difference": float(np.abs(ours_stats - direct_stats).max()),
        "stats": {name: round(float(v), 6) for name, v in zip(STAT_NAMES, ours_stats)},
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}",
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

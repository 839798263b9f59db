"""Does distillation help the demo's unified student? The pair unified / unified + distillation over several seeds.

    python benchmarks/demo_seeds.py --seeds 21 22 23 --out demo_seeds.json [--work runs/demo_seeds]

The demo's data (data seed 21) and shipped teachers and backbone are fixed; each training seed changes the new
head's initialisation, the order of the crops and their augmentation. Both students are trained exactly as
`unionpose demo` trains them and scored with the same protocol (flip test, ground-truth boxes). Reported: each
headline number's mean and sample standard deviation per model, the difference of the means, whether it is larger
than the spread (|difference| > the larger of the two standard deviations), and per keypoint of the 21-point set
the mean change distillation brings. Prints one JSON object, also written to --out.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


from unionpose.apps.demo import evaluate_models, make_data, train_student
from unionpose.apps.demo_setup import DEFAULT_SCALE, QUICK_SCALE, STUDENTS
from unionpose.apps.demo_tables import headline_percent
from unionpose.apps.demo_weights import shipped_weights, weight_paths
from reporting import emit, summarise

DATA_SEED = 21
PAIR = ("unified", "unified_kd")
NUMBERS = {"mpii_pckh": "mpii", "coco_ap": "coco", "all21_ap": "all21"}      # headline number -> validation set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23])
    parser.add_argument("--work", type=Path, default=Path("runs/demo_seeds"), help="run folders (reused if present)")
    parser.add_argument("--weights", type=Path, help="teachers and backbone (default: the shipped ones)")
    parser.add_argument("--quick", action="store_true", help="the demo's --quick scale (a smoke test)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    scale = QUICK_SCALE if args.quick else DEFAULT_SCALE
    weights = weight_paths(args.weights or shipped_weights())
    stages = {stage.name: stage for stage in STUDENTS}

    data_dir = args.work / "data"
    if not (data_dir / "synth_meta.json").is_file():
        make_data(data_dir, scale, DATA_SEED)
    metrics: dict[str, list[dict]] = {name: [] for name in PAIR}
    seconds: dict[str, list[float]] = {name: [] for name in PAIR}
    for seed in args.seeds:
        out = args.work / f"seed{seed}"
        models = {}
        for name in PAIR:
            if not (out / "runs" / name / "final.safetensors").is_file():     # a finished run is reused, not timed
                started = time.perf_counter()
                train_student(stages[name], out, data_dir, scale, seed, weights, force=False)
                seconds[name].append(time.perf_counter() - started)
            models[name] = out / "runs" / name / "final.safetensors"
        scores = evaluate_models(models, data_dir, out / "evaluation")
        for name in PAIR:
            metrics[name].append(scores[name])

    result: dict = {"benchmark": "demo_seeds", "seeds": args.seeds, "data_seed": DATA_SEED, "scale": scale.description,
                    "train_seconds": {name: summarise(v) if v else None for name, v in seconds.items()}, "numbers": {},
                    "per_keypoint_change": {}}
    for number, dataset in NUMBERS.items():
        per_model = {name: summarise([headline_percent(m[dataset]) for m in metrics[name]]) for name in PAIR}
        difference = per_model["unified_kd"]["mean"] - per_model["unified"]["mean"]
        spread = max(per_model["unified"]["std"], per_model["unified_kd"]["std"])
        result["numbers"][number] = {**per_model, "difference": difference, "spread": spread,
                                     "larger_than_spread": abs(difference) > spread}
    names = metrics["unified"][0]["all21"]["per_keypoint"]["name"]
    for index, point in enumerate(names):
        change = [kd["all21"]["per_keypoint"]["mean KS"][index] - plain["all21"]["per_keypoint"]["mean KS"][index]
                  for plain, kd in zip(metrics["unified"], metrics["unified_kd"])]
        result["per_keypoint_change"][point] = summarise(change)
    emit(result, args.out)


if __name__ == "__main__":
    main()

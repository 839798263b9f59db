"""Per-worker speed of the training data pipeline (read + crop + augment + encode) and of the synthetic generator.

    python benchmarks/data_pipeline.py --out data_pipeline.json

Crops come from the fixture recipe (80 COCO train images + the MPII fixture, mixed into the 21-point union) through
the training `TopDownDataset`, one thread (cv2.setNumThreads(1)): that is what one DataLoader worker delivers. The
same people are also cropped the bare way, cv2.imread + one cv2.warpAffine to the input size, in the same run, so the
ratio between the two says what validation, augmentation and SimCC encoding cost on top of decoding. The synthetic
generator is timed writing a data set (render + JPEG + annotation files) with 1 and 2 worker processes.
Prints one JSON object (also written to --out).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from unionpose.core.images import load_image
from unionpose.core.simcc import SimCCCodec
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix
from unionpose.data.augment import AugmentConfig, TopDownAugmenter
from unionpose.data.config import load_data_config
from unionpose.data.dataset import TopDownDataset, half_body_split
from unionpose.data.mixture import UnionMixture
from reporting import emit

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs/data/coco_mini_mpii_fixture.yaml"


def training_dataset(mixture: UnionMixture, input_size_hw: tuple[int, int], seed: int) -> TopDownDataset:
    """The dataset the trainer builds: RTMPose augmentation with half body, SimCC targets at split ratio 2."""
    skeleton = mixture.skeleton
    upper, lower = half_body_split(skeleton)
    augmenter = TopDownAugmenter(AugmentConfig(), input_size_hw, skeleton.flip_indices, upper, lower)
    return TopDownDataset(mixture, augmenter, SimCCCodec(input_size_hw), seed=seed,
                          dataset_names=[entry.source.name for entry in mixture.datasets])


def time_per_dataset(mixture: UnionMixture, passes: int, one_crop) -> dict[str, np.ndarray]:
    """Per dataset, (wall, CPU) seconds spent calling `one_crop(pass, index)` on every instance, `passes` times."""
    seconds = {entry.source.name: np.zeros(2) for entry in mixture.datasets}
    for epoch in range(passes):
        for index, instance in enumerate(mixture.instances):
            wall, cpu = time.perf_counter(), time.process_time()
            one_crop(epoch, index)
            seconds[instance.dataset] += (time.perf_counter() - wall, time.process_time() - cpu)
    return seconds


def rates(count: float, seconds: np.ndarray, unit: str) -> dict[str, float]:
    """`count` per wall second and per CPU second: on a shared machine the second is what one free core gives."""
    return {f"{unit}_per_s": round(count / seconds[0], 1), f"{unit}_per_cpu_s": round(count / seconds[1], 1)}


def crop_rates(mixture: UnionMixture, passes: int, input_size_hw: tuple[int, int], seed: int) -> dict:
    dataset = training_dataset(mixture, input_size_hw, seed)
    output_wh = (input_size_hw[1], input_size_hw[0])
    aspect = output_wh[0] / output_wh[1]
    matrices = [get_warp_matrix(*box_to_center_scale(i.box, aspect), 0.0, output_wh) for i in mixture.instances]

    def bare(epoch: int, index: int) -> None:
        image = cv2.imread(mixture[index].image, cv2.IMREAD_COLOR)
        cv2.warpAffine(image, matrices[index], output_wh, flags=cv2.INTER_LINEAR)

    def decode(epoch: int, index: int) -> None:
        instance = mixture[index]
        load_image(instance.image, instance.image_size)

    def pipeline(epoch: int, index: int) -> None:
        dataset[(epoch, index, index)]

    pipeline(0, 0)                                          # warm up: first calls allocate tables and caches
    timings = {"pipeline": time_per_dataset(mixture, passes, pipeline),
               "bare_decode_warp": time_per_dataset(mixture, passes, bare),
               "checked_decode_only": time_per_dataset(mixture, passes, decode)}
    counts = {entry.source.name: (entry.stop - entry.start) * passes for entry in mixture.datasets}
    totals = {kind: sum(seconds.values()) for kind, seconds in timings.items()}
    report = {kind: rates(sum(counts.values()), totals[kind], "crops") for kind in timings}
    wall, cpu = totals["bare_decode_warp"] / totals["pipeline"]
    report["pipeline_speed_vs_bare"] = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
    report["per_dataset"] = {name: {"crops": counts[name], **{kind: rates(counts[name], timings[kind][name], "crops")
                                                              for kind in timings}}
                             for name in counts}
    return report


# Run in a fresh interpreter whose main module is this code, as under `unionpose synth`: spawned workers re-import
# the main module, and this benchmark's (torch, the dataset) would bill them seconds that the command never pays.
# Prints the wall and CPU seconds of `generate`, its workers' CPU (start-up included) counted in.
GENERATE_TIMER = """
import resource, sys, time, cv2
from unionpose.synthetic import generate

def cpu_seconds():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)

cv2.setNumThreads(1)
out, train, val, seed, workers = sys.argv[1], *map(int, sys.argv[2:])
wall, cpu = time.perf_counter(), cpu_seconds()
generate(out, train, val, seed, workers=workers)
print(time.perf_counter() - wall, cpu_seconds() - cpu)
"""


def synthetic_rates(images: int, workers: tuple[int, ...], seed: int) -> dict:
    """Images written by `generate` (render, JPEG, annotation files; worker start-up included) per wall second and
    per CPU second of all its processes, per worker count; 80 % train, 20 % validation."""
    num_val = max(1, images // 5)
    report = {}
    for count in workers:
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-c", GENERATE_TIMER, str(Path(folder) / "synth"), str(images - num_val),
                       str(num_val), str(seed), str(count)]
            seconds = np.array(subprocess.run(command, check=True, capture_output=True, text=True).stdout.split(),
                               dtype=np.float64)
            report[f"workers_{count}"] = rates(images, seconds, "images")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="data recipe (its train split is used)")
    parser.add_argument("--passes", type=int, default=3, help="times over every person (each pass a new augmentation)")
    parser.add_argument("--input", type=int, nargs=2, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--synth-images", type=int, default=320, help="images per synthetic generator run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    config = load_data_config(args.config)
    mixture = UnionMixture(config.data.train, config.skeleton)
    crops = crop_rates(mixture, args.passes, tuple(args.input), args.seed)
    synthetic = synthetic_rates(args.synth_images, (1, 2), args.seed)
    report = {
        "config": str(args.config),
        "instances": {entry.source.name: entry.stop - entry.start for entry in mixture.datasets},
        "passes": args.passes,
        "input_hw": list(args.input),
        "threads_per_worker": 1,
        **crops,
        "synthetic_images": args.synth_images,
        "synthetic": synthetic,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),     # other work on the machine slows every number
        "machine": f"{platform.processor() or platform.machine()}, python {platform.python_version()}, "
                   f"opencv {cv2.__version__}",
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()

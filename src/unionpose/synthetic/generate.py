"""Generating the benchmark: every image rendered from its own seed (in parallel if asked), then the five files."""
from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from unionpose.synthetic.dataset_files import coco_file, mpii_file
from unionpose.synthetic.scene import (
    GENERATOR_VERSION, MIN_AREA, MIN_LABELLED, MIN_SHARED, MIN_VISIBLE, UNION_SKELETON, SynthParams, SynthPerson,
    is_annotated, preset_name, render_image, shared_names,
)

SPLIT_IDS = {"train": 0, "val": 1}          # part of each image's seed, so the splits never share a picture


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of the worker that renders it and of the other images."""
    return np.random.default_rng(np.random.SeedSequence([seed, SPLIT_IDS[split], index]))


def _render_chunk(out_dir: Path, split: str, start: int, stop: int, seed: int,
                  params: SynthParams) -> list[list[SynthPerson]]:
    """Render and save images start..stop-1 of a split; return the annotated persons of each."""
    results = []
    for index in range(start, stop):
        image, persons = render_image(image_rng(seed, split, index), params)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
        if not ok:
            raise ValueError(f"could not encode {split} image {index} as JPEG")
        (out_dir / "images" / image_name(split, index)).write_bytes(encoded.tobytes())
        results.append([p for p in persons if is_annotated(p)])
    return results


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")))


def _single_thread() -> None:
    cv2.setNumThreads(1)


def image_name(split: str, index: int) -> str:
    return f"{split}_{index:06d}.jpg"


def generate(out_dir: str | Path, num_train: int, num_val: int, seed: int, workers: int = 1,
             params: SynthParams = SynthParams(), progress: bool = False) -> dict:
    """Write the benchmark into `out_dir` and return what was written (the content of synth_meta.json).

    Train images: the first half is labelled as COCO-17 (`coco17.json`), the second half as MPII-16 (`mpii16.json`),
    so the two datasets have different pictures, as in the paper; `full21.json` labels every train image with all 21
    points (for pretraining, never for the paper's experiment). Validation images: every one in all three files
    (`coco17_val.json`, `mpii16_val.json`, `full21_val.json`). The two full21 files also carry every person's 3D
    truth (`keypoints_3d`, docs/3d.md); the COCO-17 and MPII files stay 2D, as their datasets are.
    Same seed -> byte-identical files, for any `workers`.
    Workers are spawned processes, so a script calling this with workers > 1 needs an `if __name__ == "__main__"`.
    """
    if num_train < 2 or num_val < 1:
        raise ValueError(f"synth: need at least 2 train images (one per dataset) and 1 val image, "
                         f"got train={num_train}, val={num_val}")
    if workers < 1:
        raise ValueError(f"synth: workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "synth_meta.json").exists():
        raise ValueError(f"synth: {out_dir} is not empty and holds no synth_meta.json; refusing to write into it")
    (out_dir / "images").mkdir(parents=True, exist_ok=True)

    chunk = 16
    tasks = [(split, start, min(start + chunk, total))
             for split, total in (("train", num_train), ("val", num_val)) for start in range(0, total, chunk)]
    persons: dict[str, list[list[SynthPerson]]] = {"train": [], "val": []}
    arguments = list(zip(*[(out_dir, *task, seed, params) for task in tasks]))
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_single_thread)
            if workers > 1 else None)
    try:
        results = pool.map(_render_chunk, *arguments) if pool else map(_render_chunk, *arguments)
        with tqdm(total=num_train + num_val, unit="img", disable=not progress) as bar:
            for (split, start, stop), chunk_persons in zip(tasks, results):
                persons[split] += chunk_persons
                bar.update(stop - start)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)

    def named(split: str, indices: range) -> list[tuple[str, list[SynthPerson]]]:
        return [(image_name(split, i), persons[split][i]) for i in indices]

    num_coco = (num_train + 1) // 2
    coco_train, mpii_train = named("train", range(num_coco)), named("train", range(num_coco, num_train))
    val = named("val", range(num_val))
    files = {
        "coco17.json": coco_file("coco17", coco_train, params, "UnionPose synthetic people, COCO-17 part"),
        "mpii16.json": mpii_file(mpii_train),
        "coco17_val.json": coco_file("coco17", val, params, "UnionPose synthetic people, validation, COCO-17"),
        "mpii16_val.json": mpii_file(val),
        "full21_val.json": coco_file(UNION_SKELETON, val, params, "UnionPose synthetic people, validation, all 21",
                                     with_3d=True),
        "full21.json": coco_file(UNION_SKELETON, named("train", range(num_train)), params,
                                 "UnionPose synthetic people, all train images, all 21 points", with_3d=True),
    }
    for name, data in files.items():
        _write_json(out_dir / name, data)

    def people(data: dict | list) -> int:
        return len(data["annotations"]) if isinstance(data, dict) else len(data)

    meta = {
        "generator": "unionpose synth", "version": GENERATOR_VERSION, "seed": seed,
        "train_images": num_train, "val_images": num_val,
        "coco_train_images": num_coco, "mpii_train_images": num_train - num_coco,
        "people": {name: people(data) for name, data in files.items()},
        "preset": preset_name(params),
        "params": asdict(params),
        "person_filter": {"min_area": MIN_AREA, "min_labelled": MIN_LABELLED, "min_visible": MIN_VISIBLE,
                          "min_shared_labelled": MIN_SHARED, "shared_points": list(shared_names())},
        "skeletons": {"coco17.json": "coco17", "mpii16.json": "mpii16", "full21_val.json": UNION_SKELETON,
                      "full21.json": UNION_SKELETON},
    }
    (out_dir / "synth_meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta

"""The demo's shipped weights (its two teachers, the students' pretrained backbone, and the larger 21-point teacher of
the DWPose benchmark) and the recipe that makes them.

The paper's teachers are released checkpoints, and real RTMPose students start from a pretrained backbone. The demo
does the same with weights made once, on synthetic images the demo never uses (another seed), and shipped in the
package in half precision. `retrain_weights` (`unionpose demo --retrain-teachers`) makes them again:

1. corpus: synthetic people of the demo preset, seed 7, 8000 training images (15.7k people) and 200 validation images;
2. pretraining: RTMPose-t at the demo's input, on every corpus image with all 21 points (the counterpart of the
   toolbox's backbone pretrained on AIC + COCO); its backbone is the students' starting point;
3. teachers: the pretrained model fine-tuned on the corpus's COCO-like half (17 points) and on its MPII-like half
   (16 points), each head channel carried over by keypoint name; they are the dataset experts of Khan et al. 2024;
4. the larger teacher of `benchmarks/dwpose_stages.py`: the pretrained model fine-tuned with all 21 points at
   160x128 (its head resampled to the larger input), DWPose's bigger teacher of the students' own skeleton.

Every stage validates on the corpus's own validation images, never on the demo's. The recipes are in
`configs/demo/` too (tests keep the two identical).
"""
from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from unionpose.apps.demo_setup import dataset_sources

CORPUS_SEED = 7
CORPUS_TRAIN_IMAGES = 8000
CORPUS_VAL_IMAGES = 200
WEIGHT_FILES = {"backbone": "backbone_t.safetensors",
                "teacher_coco": "teacher_coco17.safetensors",
                "teacher_mpii": "teacher_mpii16.safetensors",
                "teacher_full": "teacher_full21_160x128.safetensors"}
MANIFEST = "manifest.json"

PRETRAIN_EPOCHS = 19
TEACHER_EPOCHS = {"teacher_coco": 8, "teacher_mpii": 10, "teacher_full": 3}
# The MPII-like teacher sees a square crop: PCKh's threshold (half the head) is a few pixels at 128x96, and the
# larger input bought 3.7 points on the demo's validation people (70.1 -> 73.8 PCKh@0.5, flip test).
# The 21-point teacher of the DWPose benchmark (benchmarks/dwpose_stages.py) is the larger one: the same RTMPose-t at
# 160x128, 1.67 times the students' pixels and compute. (At 256x192 the backbone, pretrained at 128x96, sees people at
# twice its scale and 2 epochs of fine-tuning reached 0.1 AP on the corpus: it would need its own pretraining.)
TEACHER_INPUT = {"teacher_coco": [128, 96], "teacher_mpii": [128, 128], "teacher_full": [160, 128]}


def shipped_weights() -> Path:
    """The folder of the weights that come with the package."""
    return Path(str(resources.files("unionpose.apps") / "demo_weights"))


def weight_paths(folder: Path) -> dict[str, Path]:
    """The weight files in `folder`, checked to exist (a clear message says how to make them otherwise)."""
    paths = {name: folder / file for name, file in WEIGHT_FILES.items()}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"demo weights missing: {', '.join(missing)}; make them with "
                                "`unionpose demo --retrain-teachers` (about 4 hours on 2 CPU cores)")
    return paths


def corpus_sources(corpus: Path, split: str) -> dict[str, dict[str, Any]]:
    """The corpus's datasets as config entries: the demo's COCO-like and MPII-like ones, and 'full' (all 21 points:
    every training image for the pretraining, the validation images for its score)."""
    sources = dataset_sources(corpus, split)
    if split == "train":
        sources["full"] = {"name": "full", "format": "coco", "annotations": str(corpus / "full21.json"),
                           "images": str(corpus / "images"), "skeleton": "coco_mpii21"}
    else:
        sources["full"] = sources.pop("all21")
    return sources


def weight_recipes(corpus: Path, runs: Path) -> dict[str, dict[str, Any]]:
    """The trainings as config dicts (the schema of configs/): pretrain, then the teachers (TEACHER_EPOCHS)."""
    train, val = corpus_sources(corpus, "train"), corpus_sources(corpus, "val")

    def recipe(name: str, skeleton: str, dataset: str, epochs: int, init: str | None,
               input_hw: list[int]) -> dict[str, Any]:
        return {
            "skeleton": skeleton,
            "model": {"size": "t", "input": input_hw, **({"init": init} if init else {})},
            "data": {"train": [train[dataset]], "val": [val[dataset]],
                     "augment": {"rotation_factor": 45.0, "dropout_prob": 0.5, "scale_range": [0.75, 1.25]},
                     "mild_last_epochs": 0},
            "train": {"epochs": epochs, "batch_size": 64 if name == "pretrain" else 32, "lr": 4e-3,
                      "lr_batch_size": 1024 if name != "pretrain" else 256, "warmup_iters": 200,
                      "cosine_from_epoch": 13 if name == "pretrain" else 0, "ema": False, "seed": 21,
                      "workers": 1, "val_interval": 1, "validation": "datasets", "log_interval": 20,
                      "tensorboard": False},
            "output": str(runs / name),
        }

    pretrained = str(runs / "pretrain" / "final.safetensors")
    return {"pretrain": recipe("pretrain", "coco_mpii21", "full", PRETRAIN_EPOCHS, None, [128, 96]),
            **{name: recipe(name, skeleton, dataset, TEACHER_EPOCHS[name], pretrained, TEACHER_INPUT[name])
               for name, skeleton, dataset in (("teacher_coco", "coco17", "coco"), ("teacher_mpii", "mpii16", "mpii"),
                                               ("teacher_full", "coco_mpii21", "full"))}}


def retrain_weights(out: Path, *, say: Callable[[str], None] = print) -> Path:
    """Make the weight files again under `out` (resuming what an interrupted run left); return their folder."""
    from unionpose.engine.checkpoint import latest_checkpoint
    from unionpose.engine.config import validate_config
    from unionpose.engine.trainer import train
    from unionpose.synthetic import PRESETS, generate

    corpus, runs, weights = out / "corpus", out / "runs", out / "weights"
    if not (corpus / "synth_meta.json").is_file():
        say(f"[weights] corpus: {CORPUS_TRAIN_IMAGES} + {CORPUS_VAL_IMAGES} images, seed {CORPUS_SEED}")
        shutil.rmtree(corpus, ignore_errors=True)
        generate(corpus, CORPUS_TRAIN_IMAGES, CORPUS_VAL_IMAGES, CORPUS_SEED, params=PRESETS["demo"], progress=True)
    for name, recipe in weight_recipes(corpus, runs).items():
        run_dir = runs / name
        if (run_dir / "final.safetensors").is_file():
            say(f"[weights] {name}: done earlier, reused")
            continue
        say(f"[weights] {name} ...")
        train(validate_config(recipe, source=f"demo weights {name}"), resume=latest_checkpoint(run_dir) is not None)
    weights.mkdir(parents=True, exist_ok=True)
    save_half_precision(runs / "pretrain" / "final.safetensors", weights / WEIGHT_FILES["backbone"], backbone_only=True)
    for name in TEACHER_EPOCHS:
        save_half_precision(runs / name / "final.safetensors", weights / WEIGHT_FILES[name])
    write_manifest(weights, runs)
    say(f"[weights] written to {weights}")
    return weights


def write_manifest(weights: Path, runs: Path) -> None:
    """`manifest.json` beside the weights: the corpus, the recipes, what each file holds, and every stage's
    validation on the corpus after each epoch (its learning curve)."""
    from unionpose.models.model_file import read_model_info

    stages = ("pretrain", *TEACHER_EPOCHS)
    curves = {name: validation_curve(runs / name / "metrics.jsonl") for name in stages}
    manifest = {"corpus": {"preset": "demo", "seed": CORPUS_SEED, "train_images": CORPUS_TRAIN_IMAGES,
                           "val_images": CORPUS_VAL_IMAGES},
                "recipes": weight_recipes(Path("<corpus>"), Path("<runs>")),
                "corpus_validation": {name: curve[-1] if curve else {} for name, curve in curves.items()},
                "curves": curves,
                "files": {name: {"file": file, "skeleton": read_model_info(
                    runs / ("pretrain" if name == "backbone" else name) / "final.safetensors").skeleton.name}
                    for name, file in WEIGHT_FILES.items()}}
    (weights / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def save_half_precision(source: Path, target: Path, *, backbone_only: bool = False) -> Path:
    """A copy of a model file with its floating-point tensors in half precision (half the size; they load into a
    float32 model as usual); `backbone_only` keeps only the backbone, as a UnionPose backbone file."""
    import torch

    from unionpose.models import load_model_file
    from unionpose.models.backbone_file import save_backbone_file
    from unionpose.models.model_file import save_model_file

    model, info = load_model_file(source)
    model = model.to(torch.float16)
    if backbone_only:
        return save_backbone_file(target, model)
    return save_model_file(target, model, info.skeleton, codec_sigma=info.sigma, extra=info.extra)


def validation_curve(metrics_file: Path) -> list[dict[str, float]]:
    """A run's validation after each epoch, in order (the last record of an epoch wins: a resumed run repeats)."""
    records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    by_epoch = {r["epoch"]: {k: v for k, v in r.items() if k not in ("kind", "step", "time", "best")}
                for r in records if r.get("kind") == "val"}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]

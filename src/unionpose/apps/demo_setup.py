"""What the demo runs: its scales, its stages (one model each), and what a run returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoScale:
    """How much data and training for the students. The teachers and the students' pretrained backbone are shipped
    with the package (`demo_weights`), as the paper's teachers are released checkpoints."""

    train_images: int          # split in halves: COCO-like labels on the first, MPII-like on the second
    val_images: int
    student_epochs: int        # over each student's own training set (the unified students see both halves)
    warmup_iters: int
    batch_size: int = 32
    lr: float = 4e-3           # RTMPose's peak learning rate, stated for batches of `lr_batch_size` ...
    lr_batch_size: int = 1024  # ... and scaled linearly to `batch_size` (1.25e-4 at 32)
    freeze_backbone_epochs: int = 0         # epochs in which only the head learns (the shipped backbone kept)
    input: tuple[int, int] = (128, 96)      # (h, w): a quarter of the recipe's 256x192 pixels, for CPU speed
    student_size: str = "t"
    preset: str = "demo"                    # the synthetic scene preset (`unionpose synth --preset`)

    @property
    def description(self) -> dict[str, Any]:
        return {**self.__dict__, "input": list(self.input)}


DEFAULT_SCALE = DemoScale(train_images=1600, val_images=240, student_epochs=6, warmup_iters=50)
# --quick: only the heads learn, on the shipped backbone (no backward through it: a step costs about a third), at
# the rate a new head on fixed features tolerates; two minutes on 2 CPU cores.
QUICK_SCALE = DemoScale(train_images=640, val_images=40, student_epochs=3, warmup_iters=10, lr=4e-3, lr_batch_size=32,
                        freeze_backbone_epochs=3)


@dataclass(frozen=True)
class Stage:
    """One model of the experiment."""

    name: str                          # its run folder and key in results.json
    label: str                         # its row in the tables
    skeleton: str                      # coco17 | mpii16 | coco_mpii21
    datasets: tuple[str, ...]          # which training sets it sees
    teachers: tuple[str, ...] = ()     # names of the teachers it distils from


# The paper's distillation weights (Khan et al. 2024): loss = alpha * GT + (1 - alpha) * sum_j beta_j * KD_j.
ALPHA = 0.30
BETA = {"teacher_coco": 0.45, "teacher_mpii": 0.25}
TEACHERS = {"teacher_coco": "COCO-like teacher", "teacher_mpii": "MPII-like teacher"}
STUDENTS = (
    Stage("student_mpii", "MPII only", "mpii16", ("mpii",)),
    Stage("student_coco", "COCO only", "coco17", ("coco",)),
    Stage("unified", "unified, no distillation", "coco_mpii21", ("coco", "mpii")),
    Stage("unified_kd", "unified + distillation", "coco_mpii21", ("coco", "mpii"),
          teachers=("teacher_coco", "teacher_mpii")),
)
UNTRAINED = "untrained"                 # the students' starting point, scored as the floor every student must clear
LABELS = {**TEACHERS, **{s.name: s.label for s in STUDENTS}, UNTRAINED: "untrained (pretrained backbone, new head)"}


@dataclass
class DemoResult:
    out_dir: Path
    models: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    throughput: dict[str, dict[str, float]] = field(default_factory=dict)
    tables: str = ""
    report: Path | None = None


def dataset_sources(data_dir: Path, split: str) -> dict[str, dict[str, Any]]:
    """The demo's datasets as config entries: COCO-like and MPII-like for training; for validation also all 21."""
    images = str(data_dir / "images")
    if split == "train":
        return {"coco": {"name": "coco", "format": "coco", "annotations": str(data_dir / "coco17.json"),
                         "images": images},
                "mpii": {"name": "mpii", "format": "mpii", "annotations": str(data_dir / "mpii16.json"),
                         "images": images}}
    return {"coco": {"name": "coco", "format": "coco", "annotations": str(data_dir / "coco17_val.json"),
                     "images": images, "metric": "coco_ap"},
            "mpii": {"name": "mpii", "format": "mpii", "annotations": str(data_dir / "mpii16_val.json"),
                     "images": images, "metric": "pckh"},
            "all21": {"name": "all21", "format": "coco", "annotations": str(data_dir / "full21_val.json"),
                      "images": images, "skeleton": "coco_mpii21", "metric": "coco_ap"}}

"""What the demo runs: its two scales, its six stages (one model each), and what a run returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DemoScale:
    """How much data and training: the default fits 15 minutes on 2 CPU cores, `quick` 3 minutes."""

    train_images: int          # split in halves: COCO-like labels on the first, MPII-like on the second
    val_images: int
    teacher_epochs: int
    student_epochs: int
    batch_size: int
    input: tuple[int, int] = (96, 64)       # (h, w), an eighth of the recipe's 256x192 pixels, for CPU speed
    teacher_size: str = "s"                 # the teachers get a real edge: a bigger model trained longer
    student_size: str = "t"


DEFAULT_SCALE = DemoScale(train_images=1600, val_images=240, teacher_epochs=5, student_epochs=4, batch_size=32)
QUICK_SCALE = DemoScale(train_images=160, val_images=40, teacher_epochs=1, student_epochs=1, batch_size=16)


@dataclass(frozen=True)
class Stage:
    """One model of the experiment."""

    name: str                          # its run folder and key in results.json
    label: str                         # its row in the tables
    skeleton: str                      # coco17 | mpii16 | coco_mpii21
    datasets: tuple[str, ...]          # which training sets it sees
    teacher: bool = False
    teachers: tuple[str, ...] = ()     # names of the teacher stages it distils from


STAGES = (
    Stage("teacher_coco", "COCO-like teacher", "coco17", ("coco",), teacher=True),
    Stage("teacher_mpii", "MPII-like teacher", "mpii16", ("mpii",), teacher=True),
    Stage("student_mpii", "MPII only", "mpii16", ("mpii",)),
    Stage("student_coco", "COCO only", "coco17", ("coco",)),
    Stage("unified", "unified, no distillation", "coco_mpii21", ("coco", "mpii")),
    Stage("unified_kd", "unified + distillation", "coco_mpii21", ("coco", "mpii"),
          teachers=("teacher_coco", "teacher_mpii")),
)


@dataclass
class DemoResult:
    out_dir: Path
    models: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: str = ""
    report: Path | None = None

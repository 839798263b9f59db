"""The settings of one pseudo-labelling run, and the ones a resumed run must share."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from unionpose.teachers.mediapipe_experts import EXPERT_NAME, MEDIAPIPE_VERSION

EXPERTS = ("mediapipe",)


@dataclass(frozen=True)
class PseudoLabelConfig:
    """One pseudo-labelling run. Boxes come from `boxes` (a COCO ground-truth file or detection results), an ONNX
    `detector`, or else the whole frame is one person (Holistic finds one person per crop)."""

    source: str                         # an image, a folder, a glob or a video file
    out: Path                           # the labels file (.json)
    experts: str = "mediapipe"
    boxes: Path | None = None
    boxes_images: Path | None = None    # the image table that pairs detection image ids with file names
    box_threshold: float = 0.3
    detector: Path | None = None
    detector_layout: str = "rtmdet"
    stride: int = 1                     # label every stride-th image or video frame
    min_confidence: float = 0.3
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.experts not in EXPERTS:
            raise ValueError(f"unknown experts {self.experts!r}; known: {', '.join(EXPERTS)}")
        if self.stride < 1 or self.workers < 1:
            raise ValueError(f"stride and workers must be at least 1, got {self.stride} and {self.workers}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.boxes is not None and self.detector is not None:
            raise ValueError("give person boxes from a file (--boxes) or a detector (--detector), not both")

    def settings(self) -> dict:
        """What the labels depend on: a resumed run must have the same."""
        fields = asdict(self)
        for key in ("out", "workers", "progress"):
            del fields[key]
        fields["source"] = str(Path(self.source).resolve()) if Path(self.source).exists() else self.source
        for key in ("boxes", "boxes_images", "detector"):
            fields[key] = None if fields[key] is None else str(Path(fields[key]).resolve())
        fields["expert"] = f"{EXPERT_NAME} mediapipe=={MEDIAPIPE_VERSION}"
        return fields

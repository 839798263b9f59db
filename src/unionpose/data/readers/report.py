"""`ReadReport`: what a reader read, kept and skipped (by reason), so that nothing is dropped silently; for the COCO
family also every image and person record the files hold, which evaluation needs and should not parse again."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Why a record is not kept. The first four are the top-down recipe's filters (docs/conventions.md); `invalid` and
# `bad_image` count records with bad input under on_error="skip" (their messages are in `ReadReport.problems`).
CROWD = "crowd"
NO_KEYPOINTS = "no_keypoints"
OUTSIDE_IMAGE = "outside_image"      # the box does not overlap the image
DEGENERATE_BOX = "degenerate_box"    # the box, clipped to the image, is under one pixel wide or high
INVALID = "invalid"
BAD_IMAGE = "bad_image"
LOW_SCORE = "low_score"              # detections below the score threshold
OTHER_CATEGORY = "other_category"    # detections of a category that was not asked for


@dataclass(frozen=True, slots=True)
class PersonRecord:
    """One valid person annotation of a COCO-style file, kept as an instance or filtered (crowd, no labelled point,
    box outside the image): COCO evaluation lists them all, so that detections on the filtered ones are ignored."""

    ann_id: int
    image_id: int
    box: tuple[float, float, float, float]   # x, y, w, h as in the file
    area: float | None                       # the file's `area` (segment area, the OKS scale), when positive
    crowd: bool


@dataclass
class ReadReport:
    """Counts of one read; `kept` is derived, so `read == kept + sum(skipped.values())` holds by construction."""

    source: str
    read: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)          # COCO family: every image id the files list
    people: list[PersonRecord] = field(default_factory=list)    # COCO family: every valid person record

    @property
    def kept(self) -> int:
        return self.read - sum(self.skipped.values())

    def skip(self, reason: str, problem: str | None = None) -> None:
        """Count one record as skipped; `problem` is the message of a bad record skipped under on_error="skip"."""
        self.skipped[reason] += 1
        if problem is not None:
            self.problems.append(problem)

    def merge(self, other: ReadReport) -> None:
        self.read += other.read
        self.skipped.update(other.skipped)
        self.problems.extend(other.problems)
        self.image_ids.extend(other.image_ids)
        self.people.extend(other.people)

    def summary(self) -> str:
        """One line, e.g. 'read 172, kept 86, skipped 86 (crowd 5, no_keypoints 81)'."""
        total = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()) if count)
        return f"read {self.read}, kept {self.kept}, skipped {total}" + (f" ({reasons})" if reasons else "")

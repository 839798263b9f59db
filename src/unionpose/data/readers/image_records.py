"""Image records as a data file names them: one reading of repeated records, and paths kept inside the image root.

Repeated records: a COCO-style `images` table may list the same image more than once (files merged from several
sources do). Identical copies are one image; copies that disagree (another file name or size under one id) are an
error, since which one an annotation means would be a guess. The dataset reader and `unionpose score` read a file
through this one rule, so both count the same images.

Paths: a file name such as `../../x.jpg` or `/etc/x.jpg` would make a data file open a file anywhere on the
machine (and an error message describe it). File names must stay inside the dataset's image folder unless its
entry says `allow_outside_images: true`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unionpose.core.errors import DataError


def conflicting_fields(entry: Mapping[str, Any], first: Mapping[str, Any]) -> list[str]:
    """The fields in which two records of one image id differ; empty for identical copies."""
    return sorted(key for key in set(entry) | set(first) if entry.get(key) != first.get(key))


def check_repeated_image(file: str | Path, record: str, image_id: Any, entry: Mapping[str, Any],
                         first: Mapping[str, Any], first_where: str) -> None:
    """Accept an identical copy of an earlier image record; raise a `DataError` for one that disagrees with it."""
    fields = conflicting_fields(entry, first)
    if fields:
        raise DataError(file, record, "id", f"duplicate image id {image_id} (first in {first_where}) with other "
                                            f"values in {', '.join(repr(f) for f in fields)}")


def unique_image_records(file: str | Path, entries: list) -> list:
    """An `images` list with identical copies collapsed (first kept, in order); conflicting copies raise."""
    first: dict[Any, tuple[int, Mapping[str, Any]]] = {}
    unique = []
    for index, entry in enumerate(entries):
        image_id = entry.get("id") if isinstance(entry, Mapping) else None
        if isinstance(image_id, (int, str)) and image_id in first:
            earlier, previous = first[image_id]
            check_repeated_image(file, f"images[{index}] (image id {image_id})", image_id, entry, previous,
                                 f"images[{earlier}]")
            continue
        if isinstance(image_id, (int, str)):
            first[image_id] = (index, entry)
        unique.append(entry)
    return unique


def image_path(root: Path, name: str, file: str | Path, record: str, field: str, confine: bool) -> Path:
    """`root / name`, refused with a `DataError` when `confine` and the name leads outside `root`.

    The test is on the written path (`..` folded, links not followed): a link placed inside the image folder is the
    user's own choice and is followed when the image is read.
    """
    path = root / name
    if confine:
        inside = Path(os.path.normpath(root.absolute()))
        target = Path(os.path.normpath(path.absolute()))
        if target != inside and inside not in target.parents:
            raise DataError(file, record, field, f"{name!r} leads outside the images folder {root}; file names "
                                                 "must stay inside it (allow_outside_images: true in the dataset "
                                                 "entry lifts this)")
    return path

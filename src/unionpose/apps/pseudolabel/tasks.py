"""The images to label: files of a folder or glob, or every stride-th video frame written out as JPEG."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from unionpose.apps.labelling import write_atomically
from unionpose.apps.pseudolabel.config import PseudoLabelConfig
from unionpose.data.readers.box_file import BoxFile
from unionpose.infer.sources import ImageSource, VideoSource

JPEG_QUALITY = 95


@dataclass(frozen=True)
class Task:
    """One image to label: its name in the labels file, where it is, and its person boxes (None: find them)."""

    file_name: str
    path: str
    boxes: list | None = None


def frames_folder(out: str | Path) -> Path:
    """Where the frames of a video source are written as JPEG: beside the labels, named after them."""
    out = Path(out)
    return out.with_name(f"{out.stem}_frames")


def image_tasks(source: ImageSource, config: PseudoLabelConfig, done: dict, boxes: BoxFile | None
                 ) -> tuple[Path, list[str], list[Task]]:
    paths = source.paths[::config.stride]
    root = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
    names = [p.resolve().relative_to(root).as_posix() for p in paths]
    tasks = [Task(name, str(path), None if boxes is None else boxes.lookup(name)[0].tolist())
             for name, path in zip(names, paths) if name not in done]
    return root, names, tasks


def video_tasks(source: VideoSource, config: PseudoLabelConfig, done: dict, folder: Path,
                 names: list[str]) -> Iterator[Task]:
    """Every stride-th frame, written as JPEG (atomically) unless an earlier run already labelled it."""
    folder.mkdir(parents=True, exist_ok=True)
    for frame in source:
        if frame.index % config.stride:
            continue
        name = f"{frame.name}.jpg"
        names.append(name)
        if name in done:
            continue
        path = folder / name
        ok, encoded = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError(f"cannot encode frame {frame.index} of {config.source} as JPEG")
        write_atomically(path, encoded.tobytes())
        yield Task(name, str(path))


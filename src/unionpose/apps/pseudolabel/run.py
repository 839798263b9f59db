"""A pseudo-labelling run: the images to label, in this process or in worker processes, resumed and assembled."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from unionpose.apps.labelling import (
    UNREADABLE, label_tasks, progress_path, read_progress, record_progress, write_atomically,
)
from unionpose.apps.pseudolabel.config import PseudoLabelConfig
from unionpose.apps.pseudolabel.labeller import Labeller
from unionpose.apps.pseudolabel.labels import assemble_labels
from unionpose.apps.pseudolabel.tasks import Task, frames_folder, image_tasks, video_tasks
from unionpose.data.readers.box_file import BoxFile
from unionpose.infer.sources import open_source
from unionpose.teachers.mediapipe_experts import import_mediapipe

PROGRESS_FORMAT = "unionpose-pseudolabel-progress"
PROGRESS_VERSION = 1


def pseudolabel(config: PseudoLabelConfig) -> dict:
    """Label every (stride-th) image or frame of `config.source` with the experts; write `config.out`.

    Returns a summary: counts (images, labelled, people, nobody, no_boxes, unreadable, resumed), the unreadable images
    with their reasons, the images root the file names are relative to, and throughput of this run.
    """
    import_mediapipe()                      # fail before any work when the extra is missing
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    source = open_source(config.source, apply_exif=False)
    if config.boxes is not None and source.kind != "images":
        raise ValueError("--boxes pairs boxes with image file names; for a video use --detector or the full frame")
    boxes = BoxFile(config.boxes, config.boxes_images, config.box_threshold) if config.boxes else None
    header = {"format": PROGRESS_FORMAT, "version": PROGRESS_VERSION, "settings": config.settings()}
    progress_file = progress_path(out)
    done = read_progress(progress_file, header)
    names: list[str] = []
    if source.kind == "images":
        root, names, task_list = image_tasks(source, config, done, boxes)
        tasks: Iterator[Task] = iter(task_list)
        total, initial = len(names), len(names) - len(task_list)
    else:
        root = frames_folder(out)
        tasks = video_tasks(source, config, done, root, names)     # fills `names` as it reads the video
        total, initial = (-(-len(source) // config.stride) if len(source) else None), len(done)

    start = time.perf_counter()
    labelled = label_tasks(tasks, partial(Labeller, config), config.workers, total, initial, config.progress,
                          "pseudo-labels")
    new = record_progress(progress_file, header, labelled, done)
    seconds = time.perf_counter() - start
    records = [done[name] for name in sorted(set(names)) if name in done]
    skipped_frames = [{"name": name, "reason": reason} for name, reason in source.skipped]
    labels = assemble_labels(records, config, root, skipped_frames)
    write_atomically(out, json.dumps(labels, separators=(",", ":")).encode())
    counts = labels["info"]["counts"]
    return {
        **counts, "resumed": len(names) - new, "images_root": str(root), "out": str(out),
        "unreadable_images": [{"name": r["file_name"], "reason": r["reason"]} for r in records
                              if r["status"] == UNREADABLE] + skipped_frames,
        "seconds": round(seconds, 3),
        "images_per_second": round(new / seconds, 3) if seconds > 0 else None,
    }


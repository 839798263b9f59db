"""An annotate run: label every annotated person's image with the sources (resumable), then write each dataset's
completed file, its audit and a data config of the completed datasets."""
from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import yaml

from unionpose.apps.annotate.audit import audit_people, draw_cases
from unionpose.apps.annotate.completed import complete_dataset
from unionpose.apps.annotate.config import AnnotateConfig
from unionpose.apps.annotate.labeller import AnnotateLabeller, Task, source_box
from unionpose.apps.labelling import (
    UNREADABLE, label_tasks, progress_path, read_progress, record_progress, write_atomically,
)
from unionpose.apps.labelling.sources import CacheSource
from unionpose.data.instance import Instance
from unionpose.data.mixture import MixtureEntry, UnionMixture
from unionpose.data.readers.jsonfile import load_json
from unionpose.skeletons import Skeleton, get_skeleton, union
from unionpose.teachers.cache import check_teacher_cache, data_identity

PROGRESS_FORMAT = "unionpose-annotate-progress"
PROGRESS_VERSION = 1
PROGRESS_FILE = "annotate.json"             # the progress file is annotate.json.progress.jsonl
DATA_CONFIG, SKELETON_FILE, AUDIT_FOLDER = "data.yaml", "skeleton.yaml", "audit"
DRAWING = re.compile(r"\d{3}_ann-?\d+_[\w-]+\.jpg")


def output_names(config: AnnotateConfig) -> list[str]:
    """Every file an annotate run writes in its output folder (the drawings go under `audit/<dataset>/`)."""
    names = [progress_path(PROGRESS_FILE).name, DATA_CONFIG, SKELETON_FILE]
    for dataset in config.datasets:
        names += [f"{dataset.name}.json", f"{dataset.name}.audit.json"]
    return names


def annotate(config: AnnotateConfig) -> dict:
    """Complete every dataset of `config` from its sources; returns a summary per dataset."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    labeller = AnnotateLabeller(config.sources, config.flip_test)
    try:
        skeleton = _union_skeleton(config, [source.skeleton for source in labeller.sources])
        labeller.skeleton = skeleton
        mixture = UnionMixture(list(config.datasets), skeleton)
        for spec, source in zip(config.sources, labeller.sources):
            if isinstance(source, CacheSource):
                check_teacher_cache(source.cache, spec.path, data_identity(mixture.instances))
        raws = [load_json(entry.source.annotations) for entry in mixture.datasets]
        image_names = [_image_names(entry, raw) for entry, raw in zip(mixture.datasets, raws)]
        tasks = [task for entry, names in zip(mixture.datasets, image_names)
                 for task in _tasks(entry, mixture.instances, names)]
        names = [source.name for source in labeller.sources]
        header = {"format": PROGRESS_FORMAT, "version": PROGRESS_VERSION, "settings": {
            "datasets": [{"name": entry.source.name, "format": entry.source.format,
                          "annotations": str(entry.source.annotations), "images": str(entry.source.images),
                          "data": data_identity(mixture.instances[entry.start:entry.stop])}
                         for entry in mixture.datasets],
            "skeleton": list(skeleton.names),
            "sources": [[source.name, source.identity] for source in labeller.sources],
            "flip_test": config.flip_test,
        }}
        progress_file = progress_path(out / PROGRESS_FILE)
        done = read_progress(progress_file, header)
        todo = [task for task in tasks if task.key not in done]
        if config.workers == 1:
            make_labeller = lambda: labeller     # noqa: E731  (the sources already open in this process)
        else:
            labeller.close()
            make_labeller = partial(AnnotateLabeller, config.sources, config.flip_test, skeleton)
        start = time.perf_counter()
        records = label_tasks(todo, make_labeller, config.workers, len(tasks), len(tasks) - len(todo),
                              config.progress, "annotate")
        new = record_progress(progress_file, header, records, done)
        seconds = time.perf_counter() - start
    finally:
        labeller.close()
    write_atomically(out / SKELETON_FILE, skeleton.to_yaml().encode())
    summary: dict = {"out": str(out), "skeleton": skeleton.name, "sources": names, "images": len(tasks),
                     "resumed": len(tasks) - new, "seconds": round(seconds, 3), "datasets": {}}
    for entry, raw, image_table in zip(mixture.datasets, raws, image_names):
        summary["datasets"][entry.source.name] = _write_dataset(
            config, entry, mixture.instances[entry.start:entry.stop], raw, image_table, done, skeleton, names)
    _write_data_config(out, mixture.datasets)
    summary["data_config"] = str(out / DATA_CONFIG)
    return summary


def _union_skeleton(config: AnnotateConfig, source_skeletons: Sequence[Skeleton]) -> Skeleton:
    """The skeleton given, else the datasets' own skeletons then the sources', by keypoint name."""
    if config.skeleton is not None:
        return config.skeleton if isinstance(config.skeleton, Skeleton) else get_skeleton(config.skeleton)
    return union(*(dataset.native_skeleton() for dataset in config.datasets), *source_skeletons)


def _image_names(entry: MixtureEntry, raw) -> dict[int, str]:
    """Image id (as the reader numbers it) -> the file name the annotation file writes."""
    if entry.source.format == "mpii":
        return dict(enumerate(dict.fromkeys(record["image"] for record in raw)))
    return {image["id"]: image["file_name"] for image in raw["images"]
            if isinstance(image, dict) and "id" in image and "file_name" in image}


def _tasks(entry: MixtureEntry, instances: Sequence[Instance], image_names: dict[int, str]) -> list[Task]:
    """One task per image that holds a kept person, in the file's order of first appearance."""
    people: dict[int, list[int]] = {}
    for row in range(entry.start, entry.stop):
        people.setdefault(instances[row].image_id, []).append(row)
    tasks = []
    for image_id, rows in people.items():
        first = instances[rows[0]]
        tasks.append(Task(
            key=f"{entry.source.name}/{image_names[image_id]}", path=first.image, image_size=first.image_size,
            boxes=tuple(tuple(float(v) for v in source_box(entry.source.format, instances[row])) for row in rows),
            rows=tuple(rows),
            ann_ids=tuple(instances[row].ann_id for row in rows)))
    return tasks


def _write_dataset(config: AnnotateConfig, entry: MixtureEntry, instances: Sequence[Instance], raw,
                   image_names: dict[int, str], done: dict[str, dict], skeleton: Skeleton,
                   names: Sequence[str]) -> dict:
    """The completed file, the audit list and its drawings of one dataset; returns its counts."""
    out, name = Path(config.out), entry.source.name
    keys = {f"{name}/{image}" for image in image_names.values()}
    records = [record for key, record in done.items() if key in keys]
    info = {"images_root": str(entry.source.images), "unionpose_annotate": {
        "source_file": str(entry.source.annotations), "source_format": entry.source.format,
        "skeleton": skeleton.name, "sources": list(names), "min_confidence": config.min_confidence,
        "keypoint_confidence": "per point: 1.0 for a ground-truth point, the fused source confidence for a filled "
                               "one, null where no source gives the point",
        "keypoint_source": "per point: 'gt', the sources fused (most confident first, joined by '+'), or null"}}
    data, people, counts = complete_dataset(entry, instances, raw, records, skeleton, names, config.min_confidence,
                                            info)
    write_atomically(out / f"{name}.json", json.dumps(data, separators=(",", ":")).encode())
    cases = audit_people(people, skeleton, names, image_names, config.audit_confidence, config.audit_oks)
    head = json.dumps({"dataset": name, "audit_confidence": config.audit_confidence, "audit_oks": config.audit_oks})
    lines = ",\n".join(json.dumps(case, separators=(", ", ": ")) for case in cases)      # one case a line
    write_atomically(out / f"{name}.audit.json", f'{head[:-1]}, "cases": [\n{lines}\n]}}\n'.encode())
    folder = out / AUDIT_FOLDER / name
    for old in (folder.iterdir() if folder.is_dir() else ()):
        if DRAWING.fullmatch(old.name):           # an earlier run's drawings, never other files
            old.unlink()
    drawn = draw_cases(cases, people, skeleton, folder, config.audit_draw)
    unreadable = [{"image": r["file_name"].split("/", 1)[1], "reason": r["reason"]} for r in records
                  if r["status"] == UNREADABLE]
    return {**counts, "unreadable_images": unreadable, "audit_cases": len(cases), "drawn": len(drawn),
            "out": str(out / f"{name}.json")}


def _write_data_config(out: Path, datasets: Sequence[MixtureEntry]) -> None:
    """A data config listing the completed datasets (`unionpose data stats`, or a recipe's `data.train`)."""
    train = []
    for entry in datasets:
        source = entry.source
        dataset = {"name": source.name, "format": "coco", "skeleton": SKELETON_FILE,
                   "annotations": f"{source.name}.json", "images": str(source.images)}
        if source.allow_outside_images:
            dataset["allow_outside_images"] = True
        train.append(dataset)
    text = "# The completed datasets written by `unionpose annotate`; paths relative to this file.\n"
    text += yaml.safe_dump({"skeleton": SKELETON_FILE, "data": {"train": train}}, sort_keys=False, width=120)
    write_atomically(out / DATA_CONFIG, text.encode())

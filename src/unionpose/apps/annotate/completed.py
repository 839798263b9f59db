"""The completed file of one dataset: a COCO-format file in the union skeleton that keeps every original record and
field, with each missing point filled from the sources, its confidence and its source recorded.

Per annotation, `keypoints` holds the union skeleton's points (x, y, v); `keypoint_confidence` and `keypoint_source`
hold one value per point: a ground-truth point is 1.0 and `gt`; a filled point has the fused confidence and the
sources used, most confident first, joined by `+`; it is visible (v = 2) when its confidence reaches
`min_confidence`, else written not annotated (v = 0, its coordinates and confidence kept). A point no source gives
is [0, 0, 0] with null confidence and source, which the reader takes as not annotated. An MPII list becomes a COCO
file: one image per image name (its size read from the file's header), one annotation per record, with the record's
own fields (`image`, `center`, `scale`, `joints`, ...) kept and its box the toolbox's square.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unionpose.apps.annotate.labeller import people_predictions, source_box
from unionpose.apps.labelling import LABELLED, Fused, fuse
from unionpose.core.images import verify_image
from unionpose.core.transforms import mpii_center_scale_to_box
from unionpose.data.instance import Instance
from unionpose.data.mixture import MixtureEntry
from unionpose.data.readers import FLAVOURS
from unionpose.data.readers.image_records import image_path
from unionpose.skeletons import Skeleton

GT = "gt"


@dataclass
class Person:
    """One kept person of a dataset with the sources' fused points, as the audit and the writer use it."""

    instance: Instance                # in the union skeleton
    area: float                       # the OKS scale (`person_area`)
    predictions: tuple[np.ndarray, np.ndarray] | None    # sources' (S, K, 2) and (S, K), None: not labelled


def person_area(raw: dict, dataset_format: str, instance: Instance) -> float:
    """The OKS scale s^2: the file's `area`, else that of the box the sources saw."""
    area = raw.get("area")
    if isinstance(area, (int, float)) and not isinstance(area, bool) and np.isfinite(area) and area > 0:
        return float(area)
    box = source_box(dataset_format, instance)
    return float(box[2] * box[3])


def native_values(entry: MixtureEntry, raw: dict) -> np.ndarray:
    """A record's own points, (K_native, 3): x, y as written and the visibility flag; a WholeBody label score in
    (0, 1] is flag 1, as the reader takes it (the scores stay in the record's own part arrays)."""
    if entry.source.format == "mpii":
        joints = np.asarray(raw["joints"], dtype=np.float64).reshape(-1, 2)
        flags = np.asarray(raw["joints_vis"], dtype=np.float64).reshape(-1, 1)
        return np.concatenate([joints, flags], axis=1)
    parts = FLAVOURS[entry.source.format].parts or (("keypoints", None, entry.skeleton.num_keypoints),)
    values = np.concatenate([np.asarray(raw[field], dtype=np.float64).reshape(-1, 3) for field, _, _ in parts])
    values[:, 2] = np.clip(np.ceil(values[:, 2]), 0, 2)     # a label score (WholeBody) counts as labelled, as read
    return values


def native_annotated(entry: MixtureEntry, raw: dict) -> np.ndarray:
    """(K_native,) bool: the points a record labels at all (a WholeBody part marked not valid does not)."""
    parts = None if entry.source.format == "mpii" else FLAVOURS[entry.source.format].parts
    if parts is None:
        return np.ones(entry.skeleton.num_keypoints, dtype=bool)
    return np.repeat([flag is None or raw.get(flag) is True for _, flag, _ in parts], [n for _, _, n in parts])


def labelled_provenance(entry: MixtureEntry, raw: dict, instance: Instance | None, count: int
                        ) -> tuple[list[float], list[str]]:
    """Confidence and source of the labelled points: 1.0 and `gt`, unless the file is itself a completed or
    pseudo-labelled one, whose own per-point confidence and source are kept."""
    confidence = [1.0] * count
    if instance is not None and instance.confidence is not None:
        confidence = [round(float(c), 4) for c in instance.confidence]
    source = [GT] * count
    written = raw.get("keypoint_source")
    if isinstance(written, list) and len(written) == entry.skeleton.num_keypoints:
        source = [GT if i < 0 or not isinstance(written[i], str) else written[i] for i in entry.mapping.src_index]
    return confidence, source


def complete_person(values: np.ndarray, annotated: np.ndarray, labelled: tuple[list[float], list[str]],
                    fused: Fused | None, min_confidence: float
                    ) -> tuple[list[float], list[float | None], list[str | None]]:
    """One person's union values (K, 3): as labelled where `annotated` (with `labelled`'s confidence and source),
    filled from the fusion of its sources (one person) elsewhere -> flat keypoints, keypoint_confidence,
    keypoint_source."""
    keypoints = values.copy()
    confidence: list[float | None] = []
    source: list[str | None] = []
    for k in range(len(values)):
        if annotated[k]:
            confidence.append(labelled[0][k])
            source.append(labelled[1][k])
        elif fused is not None and fused.sources[0][k] is not None:
            score = round(float(fused.confidence[0, k]), 4)
            x, y = (round(float(v), 2) for v in fused.keypoints[0, k])
            keypoints[k] = [x, y, 2.0 if score >= min_confidence else 0.0]
            confidence.append(score)
            source.append(fused.sources[0][k])
        else:
            keypoints[k] = 0.0
            confidence.append(None)
            source.append(None)
    flat = [int(v) if float(v).is_integer() else float(v) for v in keypoints.reshape(-1)]
    return flat, confidence, source


def complete_dataset(entry: MixtureEntry, instances: Sequence[Instance], raw: Any, records: Sequence[dict],
                     skeleton: Skeleton, names: Sequence[str], min_confidence: float, info: dict
                     ) -> tuple[dict, list[Person], dict]:
    """The completed COCO file of one dataset, its kept people (for the audit) and counts, from the finished
    labelling records of its images."""
    mpii = entry.source.format == "mpii"
    by_ann = {instance.ann_id: instance for instance in instances}
    sources_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for record in records:
        if record["status"] == LABELLED:
            sources_of.update(people_predictions(record, names, skeleton.num_keypoints))
    image_ids = {name: number + 1 for number, name in enumerate(_mpii_image_names(raw))} if mpii else {}
    annotations_in = list(enumerate(raw)) if mpii else list(enumerate(raw["annotations"]))
    annotations, people = [], []
    counts = {"people": 0, "completed": 0, "filled": 0, "filled_below_min_confidence": 0, "not_given": 0,
              "invalid_left_out": 0}
    for index, ann in annotations_in:
        try:
            ann_id = index if mpii else ann["id"]
            values = entry.mapping.apply(native_values(entry, ann), axis=0, fill=0.0)
        except (KeyError, TypeError, ValueError):      # a bad record the reader skipped (on_error: skip)
            counts["invalid_left_out"] += 1
            continue
        instance = by_ann.get(ann_id)
        if instance is None:        # a record the reader leaves out (crowd, no keypoints, outside the image)
            annotated = entry.mapping.apply(native_annotated(entry, ann), axis=0, fill=False)
            fused = None
        else:
            annotated = instance.annotated
            predictions = sources_of.get(ann_id)
            person = Person(instance, person_area(ann, entry.source.format, instance), predictions)
            people.append(person)
            fused = None if predictions is None else fuse(
                predictions[0][:, None], predictions[1][:, None], names, skeleton.sigmas, np.array([person.area]))
        labelled = labelled_provenance(entry, ann, instance, len(values))
        flat, confidence, source = complete_person(values, annotated, labelled, fused, min_confidence)
        if instance is not None:
            missing = ~np.asarray(annotated)
            filled = np.array([s is not None for s in source]) & missing
            shown = np.array([c is not None and c >= min_confidence for c in confidence])
            counts["people"] += 1
            counts["completed"] += int(fused is not None)
            counts["filled"] += int((filled & shown).sum())
            counts["filled_below_min_confidence"] += int((filled & ~shown).sum())
            counts["not_given"] += int((missing & ~filled).sum())
        flags = np.asarray(flat, dtype=np.float64).reshape(-1, 3)[:, 2]
        completed = {**ann, "keypoints": flat, "num_keypoints": int((flags > 0).sum()),
                     "keypoint_confidence": confidence, "keypoint_source": source}
        if entry.dropped:          # native points the union has no place for: their labels kept beside
            completed[f"keypoints_{entry.skeleton.name}"] = ann["keypoints"] if not mpii else ann["joints"]
        if mpii:
            completed = _mpii_annotation(ann, index, image_ids[ann["image"]], completed)
        annotations.append(completed)
    if mpii:
        data = {"info": info, "images": _mpii_images(entry, raw), "annotations": annotations}
    else:
        data = {**raw, "info": {**(raw.get("info") if isinstance(raw.get("info"), dict) else {}), **info},
                "annotations": annotations}
    data["categories"] = _categories(None if mpii else raw.get("categories"), skeleton)
    return data, people, counts


def _categories(categories: Any, skeleton: Skeleton) -> list[dict]:
    """The person category with the union skeleton's point names and links (1-based, as COCO writes them)."""
    union = {"keypoints": list(skeleton.names), "skeleton": [[a + 1, b + 1] for a, b in skeleton.links]}
    if not isinstance(categories, list) or not categories:
        return [{"id": 1, "name": "person", "supercategory": "person", **union}]
    return [{**c, **union} if isinstance(c, dict) and c.get("keypoints") else c for c in categories]


def _mpii_image_names(raw: list) -> list[str]:
    return list(dict.fromkeys(record["image"] for record in raw))


def _mpii_images(entry: MixtureEntry, raw: list) -> list[dict]:
    """One COCO image per MPII image name, in order of appearance, its size read from the file's header."""
    images = []
    for number, name in enumerate(_mpii_image_names(raw)):
        path = image_path(entry.source.images, name, entry.source.annotations, f"image {name}", "image",
                          not entry.source.allow_outside_images)
        height, width = verify_image(path, record=f"image {name}")
        images.append({"id": number + 1, "file_name": name, "height": height, "width": width})
    return images


def _mpii_annotation(record: dict, index: int, image_id: int, completed: dict) -> dict:
    """An MPII record as a COCO annotation: ids from 1, the toolbox's square box, its head box as `bbox_head`."""
    box = mpii_center_scale_to_box(np.asarray(record["center"], dtype=np.float64), float(record["scale"]))
    box = [round(float(v), 2) for v in box]
    annotation = {"id": index + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": box,
                  "area": round(box[2] * box[3], 2), **completed}
    head = record.get("head_box")
    if head is not None:
        annotation["bbox_head"] = [head[0], head[1], head[2] - head[0], head[3] - head[1]]
    return annotation


"""The COCO family of keypoint files (COCO, CrowdPose, AIC, OCHuman, PoseTrack18, Halpe-136, COCO-WholeBody)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError
from unionpose.core.transforms import clip_box
from unionpose.core.values import is_int, is_number
from unionpose.data.instance import Instance
from unionpose.data.readers.image_records import check_repeated_image, image_path
from unionpose.data.readers.jsonfile import load_json
from unionpose.data.readers.keypoints_3d import FIELD as KEYPOINTS_3D, parse_keypoints_3d
from unionpose.data.readers.report import (
    CROWD, DEGENERATE_BOX, INVALID, NO_KEYPOINTS, OUTSIDE_IMAGE, PersonRecord, ReadReport,
)
from unionpose.skeletons import Skeleton, canonical, get_skeleton

WHOLEBODY_PARTS = (
    ("keypoints", None, 17),
    ("foot_kpts", "foot_valid", 6),
    ("face_kpts", "face_valid", 68),
    ("lefthand_kpts", "lefthand_valid", 21),
    ("righthand_kpts", "righthand_valid", 21),
)


@dataclass(frozen=True)
class CocoFlavour:
    """What sets one COCO-family format apart: its native skeleton and its quirks.

    `parts`: the keypoint arrays of one annotation, in skeleton order, as (field, validity flag field, points);
    None means one `keypoints` array holding every point of the skeleton.
    `never_labelled`: points the dataset's skeleton names but its annotators leave at zero; they are not
    `annotated`, unless a file does label them.
    `scored_parts`: arrays whose third value may be a label confidence in [0, 1] instead of a visibility flag.
    """

    skeleton: str
    parts: tuple[tuple[str, str | None, int], ...] | None = None
    never_labelled: tuple[str, ...] = ()
    scored_parts: tuple[str, ...] = ()


FLAVOURS: dict[str, CocoFlavour] = {
    "coco": CocoFlavour("coco17"),
    "crowdpose": CocoFlavour("crowdpose14"),
    "aic": CocoFlavour("aic14"),
    "ochuman": CocoFlavour("coco17"),
    # PoseTrack18 fills COCO's 17 slots with head_bottom/head_top in the eye slots and never labels the ears.
    "posetrack18": CocoFlavour("posetrack17", never_labelled=("left_ear", "right_ear")),
    # Halpe-FullBody: 26 body points, 68 face, 21 + 21 hands, flat; its neck and hip are left at zero.
    "halpe136": CocoFlavour("halpe26+coco_wholebody133", never_labelled=("neck", "hip")),
    # COCO-WholeBody: separate arrays per part with a *_valid flag each; face and hand points carry label scores.
    "coco_wholebody": CocoFlavour("coco_wholebody133", parts=WHOLEBODY_PARTS,
                                  scored_parts=("face_kpts", "lefthand_kpts", "righthand_kpts")),
}


@dataclass(frozen=True)
class ImageRecord:
    """One entry of a COCO `images` table."""

    id: int
    path: Path
    height: int
    width: int


def read_coco(annotations: str | Path, images: str | Path | None, format: str = "coco",
              skeleton: str | Skeleton | None = None, on_error: str = "raise", dataset: str = "",
              confine: bool = True) -> tuple[list[Instance], ReadReport]:
    """Read a COCO-family keypoint file (or a folder of them, as PoseTrack18 ships) into instances.

    `images` is the folder the file names are relative to; None takes the folder a file records in its
    `info.images_root`, as UnionPose's pseudo-label files do. With `confine` a file name leading outside that folder
    is an error. An image listed twice is one image when the copies are identical, an error when they differ.

    Instances keep the dataset's native skeleton (`skeleton`, default per format). Crowd annotations, people
    without keypoints and boxes outside the image are filtered (RTMPose's recipe); boxes are clipped to the image.
    Bad records raise a `DataError`, or are counted and reported when `on_error="skip"`.
    """
    if format not in FLAVOURS:
        raise ValueError(f"unknown COCO-family format {format!r}; known: {', '.join(FLAVOURS)}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    flavour = FLAVOURS[format]
    skeleton = get_skeleton(skeleton or flavour.skeleton)
    parts = flavour.parts or (("keypoints", None, skeleton.num_keypoints),)
    if sum(count for _, _, count in parts) != skeleton.num_keypoints:
        raise ValueError(f"format {format!r} stores {sum(c for _, _, c in parts)} points per person but skeleton "
                         f"{skeleton.name!r} has {skeleton.num_keypoints}")
    annotations = Path(annotations)
    files = sorted(annotations.glob("*.json")) if annotations.is_dir() else [annotations]
    if not files:
        raise DataError(annotations, None, None, "the annotation folder holds no .json files")
    reader = _CocoReader(None if images is None else Path(images), flavour, parts, skeleton, on_error, dataset,
                         confine)
    report = ReadReport(str(annotations))
    instances: list[Instance] = []
    for file in files:
        instances += reader.read_file(file, report)
    _mark_never_labelled(instances, skeleton, flavour.never_labelled)
    return instances, report


def read_image_table(annotations: str | Path, images: str | Path, confine: bool = True) -> dict[int, ImageRecord]:
    """The `images` table of a COCO-style file: image id -> path and size (to pair detections with their images).

    `confine`: file names must stay inside `images` (pass False where the files are only matched by name).
    """
    annotations = Path(annotations)
    data = load_json(annotations)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(annotations, None, "images", "expected a COCO-style object with an 'images' list")
    table: dict[int, ImageRecord] = {}
    first: dict[int, tuple[int, dict]] = {}
    for i, entry in enumerate(data["images"]):
        image_id = entry.get("id") if isinstance(entry, dict) else None
        if is_int(image_id) and image_id in first:
            check_repeated_image(annotations, f"images[{i}] (image id {image_id})", image_id, entry,
                                 first[image_id][1], f"images[{first[image_id][0]}]")
            continue
        record = _parse_image(annotations, i, entry, Path(images), confine)
        table[record.id] = record
        first[record.id] = (i, entry)
    return table


def _mark_never_labelled(instances: list[Instance], skeleton: Skeleton, names: tuple[str, ...]) -> None:
    for name in (n for n in names if skeleton.has(n)):
        k = skeleton.index(name)
        if not any(instance.visible[k] > 0 for instance in instances):
            for instance in instances:
                instance.annotated[k] = False


def _recorded_images_root(file: Path, data: dict) -> Path:
    """The images folder a file records in `info.images_root` (pseudo-label files), or an error saying to pass one."""
    info = data.get("info")
    root = info.get("images_root") if isinstance(info, dict) else None
    if not isinstance(root, str) or not root:
        raise DataError(file, None, "info.images_root", "missing; pass the images folder")
    return Path(root)


def _parse_image(file: Path, index: int, entry: Any, images: Path, confine: bool) -> ImageRecord:
    record = f"images[{index}]"
    if not isinstance(entry, dict):
        raise DataError(file, record, None, f"expected an object, got {type(entry).__name__}")
    image_id = entry.get("id")
    if not is_int(image_id):
        raise DataError(file, record, "id", f"expected an integer image id, got {image_id!r}")
    record = f"images[{index}] (image id {image_id})"
    name = entry.get("file_name")
    if not isinstance(name, str) or not name:
        raise DataError(file, record, "file_name", f"expected a file name, got {name!r}")
    path = image_path(images, name, file, record, "file_name", confine)
    for key in ("height", "width"):
        value = entry.get(key)
        if not is_int(value) or value <= 0:
            raise DataError(file, record, key, f"expected a positive integer, got {value!r}")
    return ImageRecord(id=image_id, path=path, height=entry["height"], width=entry["width"])


class _CocoReader:
    """Reads the files of one source; checks records one by one, then the numbers of all of them at once."""

    def __init__(self, images: Path | None, flavour: CocoFlavour, parts: tuple[tuple[str, str | None, int], ...],
                 skeleton: Skeleton, on_error: str, dataset: str, confine: bool) -> None:
        self.images = images
        self.confine = confine
        self.parts = parts
        self.skeleton = skeleton
        self.on_error = on_error
        self.dataset = dataset
        self.seen_ann_ids: dict[int, str] = {}     # annotation id -> where it was first seen (across files)
        # image id -> (the file and index that first list it, its record as written, what it was read as)
        self.seen_images: dict[int, tuple[Path, int, dict, ImageRecord | DataError]] = {}
        starts = np.cumsum([0] + [count for _, _, count in parts])
        self.part_of_point = np.repeat(np.arange(len(parts)), [count for _, _, count in parts])
        self.part_start = starts[:-1]
        self.scored = np.isin(self.part_of_point, [i for i, p in enumerate(parts) if p[0] in flavour.scored_parts])

    def read_file(self, file: Path, report: ReadReport) -> list[Instance]:
        data = load_json(file)
        if not isinstance(data, dict):
            raise DataError(file, None, None, f"expected a COCO-style object, got a JSON {type(data).__name__}")
        for key in ("images", "annotations"):
            if not isinstance(data.get(key), list):
                raise DataError(file, None, key, "missing or not a list (is this a COCO-style keypoint file?)")
        self._check_category_names(file, data.get("categories"))
        images = self._image_table(file, data["images"], self.images or _recorded_images_root(file, data))
        annotations = data["annotations"]
        report.read += len(annotations)
        errors: dict[int, DataError] = {}
        records = []
        for i, ann in enumerate(annotations):
            try:
                records.append(self._parse_annotation(file, i, ann, images))
            except DataError as error:
                errors[i] = error
        records = self._check_numbers(file, records, errors)
        report.image_ids.extend(i for i in images if self.seen_images[i][0] == file)   # each image once
        report.people.extend(PersonRecord(r.ann_id, r.image_id, tuple(float(v) for v in r.box), r.area, r.crowd)
                             for r in records)
        if errors:
            if self.on_error == "raise":
                raise errors[min(errors)]      # the first bad record in file order
            for i in sorted(errors):
                report.skip(INVALID, str(errors[i]))
        return self._filter(records, images, report)

    # --- structure --------------------------------------------------------------------------------------------
    def _check_category_names(self, file: Path, categories: Any) -> None:
        """A file that names its points must name the skeleton's (catches a wrong format or skeleton early)."""
        body = self.skeleton.canonical_names[: self.parts[0][2]]
        for j, category in enumerate(categories if isinstance(categories, list) else []):
            names = category.get("keypoints") if isinstance(category, dict) else None
            if not names:
                continue
            if not all(isinstance(n, str) for n in names) or tuple(canonical(n) for n in names) != body:
                raise DataError(file, f"categories[{j}]", "keypoints",
                                f"the file's points {names} do not match skeleton {self.skeleton.name!r} "
                                f"({list(self.skeleton.names[: len(body)])}); check the format and skeleton")

    def _image_table(self, file: Path, entries: list, root: Path) -> dict[int, ImageRecord | DataError]:
        """Image id -> record; an identical repeat (in this file or an earlier one) is the same image, a repeat
        that differs is an error even under on_error="skip" (which image an annotation means would be a guess)."""
        table: dict[int, ImageRecord | DataError] = {}
        for i, entry in enumerate(entries):
            image_id = entry.get("id") if isinstance(entry, dict) else None
            if is_int(image_id) and image_id in self.seen_images:
                first_file, index, first, parsed = self.seen_images[image_id]
                check_repeated_image(file, f"images[{i}] (image id {image_id})", image_id, entry, first,
                                     f"{first_file.name} images[{index}]")
                table[image_id] = parsed
                continue
            try:
                parsed = _parse_image(file, i, entry, root, self.confine)
            except DataError as error:
                if self.on_error == "raise" or not is_int(image_id):
                    raise           # an annotation of an id-less image could not tell which it means
                parsed = error      # its annotations are skipped with this message
            table[image_id] = parsed
            self.seen_images[image_id] = (file, i, entry, parsed)
        return table

    def _parse_annotation(self, file: Path, i: int, ann: Any, images: dict) -> _Record:
        if not isinstance(ann, dict):
            raise DataError(file, f"annotations[{i}]", None, f"expected an object, got {type(ann).__name__}")
        ann_id, image_id = ann.get("id"), ann.get("image_id")
        where = _where(i, ann_id, image_id)
        if not is_int(ann_id):
            raise DataError(file, where, "id", f"expected an integer annotation id, got {ann_id!r}")
        if ann_id in self.seen_ann_ids:
            raise DataError(file, where, "id",
                            f"duplicate annotation id {ann_id} (first at {self.seen_ann_ids[ann_id]})")
        self.seen_ann_ids[ann_id] = f"{file.name} annotations[{i}]"
        image = images.get(image_id) if is_int(image_id) else None
        if image is None:
            raise DataError(file, where, "image_id", f"no image with id {image_id!r} in the 'images' table")
        if isinstance(image, DataError):
            raise DataError(file, where, "image_id", f"its image record is invalid: {image}")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):          # True and False compare equal to 1 and 0 (PoseTrack writes booleans)
            raise DataError(file, where, "iscrowd", f"expected 0 or 1, got {crowd!r}")
        box = _numbers(file, where, "bbox", ann.get("bbox"), 4, "[x, y, w, h]")
        values, valid = [], []
        for key, flag, count in self.parts:
            values.append(_numbers(file, where, key, ann.get(key), 3 * count, f"{count} keypoints x 3"))
            state = True if flag is None else ann.get(flag)
            if not isinstance(state, bool):
                raise DataError(file, where, flag, f"expected true or false, got {state!r}")
            valid.append(state)
        head_box = None
        if ann.get("bbox_head") is not None:       # PoseTrack's head box, for PCKh
            head_box = _numbers(file, where, "bbox_head", ann["bbox_head"], 4, "[x, y, w, h]")
            if not np.isfinite(head_box).all() or (head_box[2:] <= 0).any():
                raise DataError(file, where, "bbox_head", f"expected finite x, y and w, h > 0, got {head_box.tolist()}")
            head_box = np.concatenate([head_box[:2], head_box[:2] + head_box[2:]])
        track_id = ann.get("track_id", -1)
        area = ann.get("area")
        points = np.concatenate(values).reshape(-1, 3)
        valid = np.repeat(valid, [count for _, _, count in self.parts])
        confidence = None
        if ann.get("keypoint_confidence") is not None:   # pseudo-labels: per-point trust; null = the expert has none
            raw = ann["keypoint_confidence"]
            if not isinstance(raw, list) or len(raw) != len(points):
                raise DataError(file, where, "keypoint_confidence", f"expected a list of {len(points)} numbers or "
                                f"nulls, got {type(raw).__name__} of length {len(raw) if isinstance(raw, list) else '-'}")
            given = np.array([value is not None for value in raw])
            confidence = np.array([0.0 if value is None else value for value in raw], dtype=np.float64)
            if not np.isfinite(confidence).all() or (confidence < 0).any() or (confidence > 1).any():
                raise DataError(file, where, "keypoint_confidence", "values must be in [0, 1] or null")
            valid = valid & given      # a point the expert cannot give is not annotated, whatever its part flag says
            confidence = confidence.astype(np.float32)
        points_3d = annotated_z = None
        if ann.get(KEYPOINTS_3D) is not None:             # a 3D source: root-relative points, their own mask
            points_3d, annotated_z = parse_keypoints_3d(file, where, ann[KEYPOINTS_3D], self.skeleton)
        return _Record(index=i, ann_id=ann_id, image_id=image_id, crowd=bool(crowd), box=box, points=points,
                       valid=valid, head_box=head_box, track_id=track_id if is_int(track_id) else -1,
                       confidence=confidence, points_3d=points_3d, annotated_z=annotated_z,
                       area=float(area) if is_number(area) and np.isfinite(area) and area > 0 else None)

    # --- numbers, for all records at once ----------------------------------------------------------------------
    def _check_numbers(self, file: Path, records: list[_Record], errors: dict[int, DataError]) -> list[_Record]:
        if not records:
            return []
        boxes = np.stack([r.box for r in records])
        points = np.stack([r.points for r in records])
        flags = points[..., 2]
        flag_ok = np.isin(flags, (0.0, 1.0, 2.0)) | (self.scored & (flags >= 0) & (flags <= 1))
        point_ok = np.isfinite(points).all(axis=2) & flag_ok
        box_ok = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
        for row in np.flatnonzero(~(point_ok.all(axis=1) & box_ok)):
            r = records[row]
            where = _where(r.index, r.ann_id, r.image_id)
            if not box_ok[row]:
                errors[r.index] = DataError(file, where, "bbox",
                                            f"expected finite x, y and w, h > 0, got {boxes[row].tolist()}")
                continue
            point = int(np.flatnonzero(~point_ok[row])[0])
            part = self.part_of_point[point]
            key, local = self.parts[part][0], point - int(self.part_start[part])
            x, y, v = points[row, point].tolist()
            name = f"keypoint {local} ({self.skeleton.names[point]})"
            if not np.isfinite(points[row, point]).all():
                errors[r.index] = DataError(file, where, key, f"{name} is not finite: x={x}, y={y}, v={v}")
            else:
                allowed = "0, 1 or 2, or a score in [0, 1]" if self.scored[point] else "0, 1 or 2"
                errors[r.index] = DataError(file, where, key, f"{name} has visibility {v}; expected {allowed}")
        return [r for r in records if r.index not in errors]

    # --- the top-down filters ----------------------------------------------------------------------------------
    def _filter(self, records: list[_Record], images: dict, report: ReadReport) -> list[Instance]:
        instances = []
        for r in records:
            image = images[r.image_id]
            # A label score in (0, 1] counts as labelled (1); points of a part marked not valid are not labelled.
            visible = np.where(r.valid, np.clip(np.ceil(r.points[:, 2]), 0, 2), 0).astype(np.int8)
            if r.crowd:
                report.skip(CROWD)
                continue
            if not visible.any():
                report.skip(NO_KEYPOINTS)
                continue
            box, reason = usable_box(r.box, image.height, image.width)
            if reason:
                report.skip(reason)
                continue
            instances.append(Instance(
                image=str(image.path),
                box=box,
                keypoints=r.points[:, :2].astype(np.float32),
                visible=visible,
                annotated=r.valid.copy(),
                dataset=self.dataset,
                image_id=r.image_id,
                ann_id=r.ann_id,
                image_size=(image.height, image.width),
                head_box=None if r.head_box is None else r.head_box.astype(np.float32),
                track_id=r.track_id,
                confidence=r.confidence,
                keypoints_3d=r.points_3d,
                annotated_z=r.annotated_z,
            ))
        return instances


@dataclass
class _Record:
    """One annotation whose structure checked out; its numbers are checked with the whole file's."""

    index: int
    ann_id: int
    image_id: int
    crowd: bool
    box: np.ndarray
    points: np.ndarray           # (K, 3): x, y, visibility flag or label score
    valid: np.ndarray            # (K,) bool: the point's part is labelled for this person
    head_box: np.ndarray | None  # x1, y1, x2, y2
    track_id: int
    confidence: np.ndarray | None = None   # (K,) label confidence of pseudo-labels, in [0, 1]
    area: float | None = None              # the file's `area`, when a positive number
    points_3d: np.ndarray | None = None    # (K, 3) root-relative 3D of a 3D source (`keypoints_3d`)
    annotated_z: np.ndarray | None = None  # (K,) bool: the points it labels in 3D


def _where(index: int, ann_id: Any, image_id: Any) -> str:
    return f"annotations[{index}] (annotation id {ann_id}, image id {image_id})"


def _numbers(file: Path, where: str, key: str, value: Any, length: int, expected: str) -> np.ndarray:
    """A flat list of `length` numbers as float64 (null becomes NaN, which the numeric check then reports)."""
    if not isinstance(value, list) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, list) else repr(value)[:40]
        raise DataError(file, where, key, f"expected a list of {length} numbers ({expected}), got {got}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.ndim != 1:
        raise DataError(file, where, key, f"expected a list of {length} numbers ({expected})")
    return array


def usable_box(box: np.ndarray, height: int, width: int) -> tuple[np.ndarray | None, str | None]:
    """The box clipped to the image (`core.transforms.clip_box`) as float32, or None and the skip reason: it does not
    overlap the image, or is under one pixel wide or high once clipped."""
    x, y, w, h = box
    if x > width - 1 or y > height - 1 or x + w < 0 or y + h < 0:
        return None, OUTSIDE_IMAGE
    clipped = clip_box(box, width, height)
    if clipped[2] < 1 or clipped[3] < 1:
        return None, DEGENERATE_BOX
    return clipped.astype(np.float32), None

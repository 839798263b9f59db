"""MPII annotations as the JSON list {image, center, scale, joints, joints_vis[, head_box | head_size]} of the pose
toolboxes, with the head boxes of the official evaluation file when given."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError
from unionpose.core.transforms import mpii_center_scale_to_box
from unionpose.data.instance import Instance
from unionpose.data.readers.image_records import image_path
from unionpose.data.readers.jsonfile import load_json
from unionpose.data.readers.mpii_mat import MpiiMatGroundTruth, read_ground_truth_mat
from unionpose.data.readers.report import INVALID, NO_KEYPOINTS, ReadReport
from unionpose.skeletons import Skeleton, get_skeleton

DEFAULT_SKELETON = "mpii16"
MAT_JOINT_TOLERANCE = 2.0   # pixels: a JSON record and its .mat person agree up to rounding, or the files do not pair


def read_mpii(annotations: str | Path, images: str | Path, skeleton: str | Skeleton | None = None,
              on_error: str = "raise", dataset: str = "", head_boxes: str | Path | None = None,
              confine: bool = True) -> tuple[list[Instance], ReadReport]:
    """Read an MPII-style list of people into instances in the native skeleton (default mpii16).

    MPII gives a centre and scale rather than a box; the box is the toolbox's square of side 200 * scale, centred
    15 * scale pixels lower, with the MATLAB 1-based centre made 0-based. `joints` are 0-based pixels, `joints_vis`
    says which are labelled. MPII states no image size, so boxes are not clipped here (the crop pads the image).
    PCKh needs each person's head size; it comes from, in this order: `head_boxes`, the official evaluation file
    (`mpii_gt_val.mat`, whose person i is record i: its `headboxes_src`, the joints checked against `pos_gt_src`);
    a record's `head_box` [x1, y1, x2, y2]; a record's `head_size` (the PCKh normaliser itself, 0.6 x the head box
    diagonal, as the toolboxes store it). With `confine`, image names must stay inside `images`.
    Records are named by their list index; the image id is the index of the image name in order of appearance.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    annotations, images = Path(annotations), Path(images)
    skeleton = get_skeleton(skeleton or DEFAULT_SKELETON)
    data = load_json(annotations)
    if not isinstance(data, list):
        raise DataError(annotations, None, None, f"expected a JSON list of people, got a JSON {type(data).__name__}")
    report = ReadReport(str(annotations), read=len(data))
    official = None
    if head_boxes is not None:
        if skeleton.names != get_skeleton(DEFAULT_SKELETON).names:
            raise ValueError(f"{annotations}: head boxes from {head_boxes} pair with MPII's own 16 joints; the "
                             f"skeleton {skeleton.name!r} is another")
        official = read_ground_truth_mat(head_boxes)
        if len(official.head_boxes) != len(data):
            raise DataError(head_boxes, None, "headboxes_src",
                            f"{len(official.head_boxes)} people, but {annotations} lists {len(data)}: the files do "
                            "not pair")
    image_ids: dict[str, int] = {}
    instances = []
    for i, entry in enumerate(data):
        try:
            instance = _parse_record(annotations, i, entry, images, skeleton, image_ids, dataset, confine)
            if official is not None:
                _pair_with_official(instance, official, i, Path(head_boxes), annotations)
        except DataError as error:
            if on_error == "raise":
                raise
            report.skip(INVALID, str(error))
            continue
        if not instance.visible.any():
            report.skip(NO_KEYPOINTS)
            continue
        instances.append(instance)
    return instances, report


def _pair_with_official(instance: Instance, official: MpiiMatGroundTruth, i: int, mat: Path,
                        annotations: Path) -> None:
    """Give record i person i's head box from the official file, after checking that they are the same person."""
    both = official.labelled[i] & (instance.visible > 0)
    distance = np.abs(official.joints[i][both] - instance.keypoints[both]).max(initial=0.0)
    if distance > MAT_JOINT_TOLERANCE:
        raise DataError(mat, f"person {i}", "pos_gt_src", f"its joints are {distance:.0f} px from those of "
                                                          f"{annotations} record {i}: the files do not pair")
    instance.head_box = official.head_boxes[i].astype(np.float32)
    instance.head_size = None


def _parse_record(file: Path, i: int, entry: Any, images: Path, skeleton: Skeleton, image_ids: dict[str, int],
                  dataset: str, confine: bool) -> Instance:
    k = skeleton.num_keypoints
    record = f"record {i}"
    if not isinstance(entry, dict):
        raise DataError(file, record, None, f"expected an object, got {type(entry).__name__}")
    name = entry.get("image")
    if not isinstance(name, str) or not name:
        raise DataError(file, record, "image", f"expected an image file name, got {name!r}")
    record = f"record {i} (image {name})"
    path = image_path(images, name, file, record, "image", confine)
    center = _array(file, record, "center", entry.get("center"), (2,))
    scale = _array(file, record, "scale", entry.get("scale"), ())
    if not scale > 0:
        raise DataError(file, record, "scale", f"expected a positive number, got {entry.get('scale')!r}")
    joints = _array(file, record, "joints", entry.get("joints"), (k, 2))
    flags = _array(file, record, "joints_vis", entry.get("joints_vis"), (k,))
    bad = np.flatnonzero(~np.isin(flags, (0, 1, 2)))
    if bad.size:
        j = int(bad[0])
        raise DataError(file, record, "joints_vis", f"joint {j} ({skeleton.names[j]}) has visibility {flags[j]}; "
                                                    "expected 0, 1 or 2")
    head_box = None
    if entry.get("head_box") is not None:
        head_box = _array(file, record, "head_box", entry["head_box"], (4,))
        if head_box[2] <= head_box[0] or head_box[3] <= head_box[1]:
            raise DataError(file, record, "head_box", f"expected x1 < x2 and y1 < y2, got {head_box.tolist()}")
    head_size = None
    if entry.get("head_size") is not None:
        head_size = float(_array(file, record, "head_size", entry["head_size"], ()))
        if head_size <= 0:
            raise DataError(file, record, "head_size", f"expected a positive number, got {entry['head_size']!r}")
    return Instance(
        image=str(path),
        box=mpii_center_scale_to_box(center, float(scale)).astype(np.float32),
        keypoints=joints.astype(np.float32),
        visible=flags.astype(np.int8),
        annotated=np.ones(k, dtype=bool),
        dataset=dataset,
        image_id=image_ids.setdefault(name, len(image_ids)),
        ann_id=i,
        head_box=None if head_box is None else head_box.astype(np.float32),
        head_size=head_size,
    )


def _array(file: Path, record: str, field: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as a finite float64 array of `shape`, or a DataError naming the field."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape:
        want = "a number" if not shape else f"shape {list(shape)}"
        got = "not numbers" if array is None else f"shape {list(array.shape)}"
        raise DataError(file, record, field, f"expected {want}, got {got}")
    if not np.isfinite(array).all():
        raise DataError(file, record, field, f"values must be finite, got {np.asarray(value).tolist()}")
    return array

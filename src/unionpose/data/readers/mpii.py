"""MPII annotations as the JSON list {image, center, scale, joints, joints_vis[, head_box]} of the pose toolboxes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError
from unionpose.core.transforms import mpii_center_scale_to_box
from unionpose.data.instance import Instance
from unionpose.data.readers.jsonfile import load_json
from unionpose.data.readers.report import INVALID, NO_KEYPOINTS, ReadReport
from unionpose.skeletons import Skeleton, get_skeleton

DEFAULT_SKELETON = "mpii16"


def read_mpii(annotations: str | Path, images: str | Path, skeleton: str | Skeleton | None = None,
              on_error: str = "raise", dataset: str = "") -> tuple[list[Instance], ReadReport]:
    """Read an MPII-style list of people into instances in the native skeleton (default mpii16).

    MPII gives a centre and scale rather than a box; the box is the toolbox's square of side 200 * scale, centred
    15 * scale pixels lower, with the MATLAB 1-based centre made 0-based. `joints` are 0-based pixels, `joints_vis`
    says which are labelled. MPII states no image size, so boxes are not clipped here (the crop pads the image).
    An optional `head_box` [x1, y1, x2, y2] (written by the synthetic data; PCKh needs it) is kept.
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
    image_ids: dict[str, int] = {}
    instances = []
    for i, entry in enumerate(data):
        try:
            instance = _parse_record(annotations, i, entry, images, skeleton, image_ids, dataset)
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


def _parse_record(file: Path, i: int, entry: Any, images: Path, skeleton: Skeleton, image_ids: dict[str, int],
                  dataset: str) -> Instance:
    k = skeleton.num_keypoints
    record = f"record {i}"
    if not isinstance(entry, dict):
        raise DataError(file, record, None, f"expected an object, got {type(entry).__name__}")
    name = entry.get("image")
    if not isinstance(name, str) or not name:
        raise DataError(file, record, "image", f"expected an image file name, got {name!r}")
    record = f"record {i} (image {name})"
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
    return Instance(
        image=str(images / name),
        box=mpii_center_scale_to_box(center, float(scale)).astype(np.float32),
        keypoints=joints.astype(np.float32),
        visible=flags.astype(np.int8),
        annotated=np.ones(k, dtype=bool),
        dataset=dataset,
        image_id=image_ids.setdefault(name, len(image_ids)),
        ann_id=i,
        head_box=None if head_box is None else head_box.astype(np.float32),
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

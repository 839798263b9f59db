"""MPII's official evaluation files, MATLAB .mat read with SciPy (the `mpii` extra): the validation ground truth
`mpii_gt_val.mat` and a predictions file `pred.mat`.

The layout is that of the evaluation code the pose toolboxes ship with the MPII validation split (Andriluka et al.,
CVPR 2014, and its Python ports):
- `dataset_joints` (1, 16): the joint names, `rank rkne rhip lhip lkne lank pelv thor neck head rwri relb rsho lsho
  lelb lwri` (our mpii16 order);
- `pos_gt_src` (16, 2, N): each person's joints, x and y, in 1-based (MATLAB) pixels;
- `jnt_missing` (16, N): 1 where a joint is not labelled;
- `headboxes_src` (2, 2, N): each person's head box as two corners, [[x1, y1], [x2, y2]], 1-based;
- `preds` (N, 16, 2) in `pred.mat`: predictions in 1-based pixels, in the ground truth's person order.
Everything here is returned 0-based, as the JSON readers and the model count pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unionpose.core.errors import DataError, MissingDependencyError
from unionpose.skeletons import get_skeleton

# dataset_joints name -> our mpii16 joint name
JOINT_NAMES = {"rank": "right_ankle", "rkne": "right_knee", "rhip": "right_hip", "lhip": "left_hip",
               "lkne": "left_knee", "lank": "left_ankle", "pelv": "pelvis", "thor": "thorax", "neck": "upper_neck",
               "head": "head_top", "rwri": "right_wrist", "relb": "right_elbow", "rsho": "right_shoulder",
               "lsho": "left_shoulder", "lelb": "left_elbow", "lwri": "left_wrist"}


@dataclass
class MpiiMatGroundTruth:
    """The people of `mpii_gt_val.mat`, 0-based, joints in mpii16 order."""

    joints: np.ndarray        # (N, 16, 2)
    labelled: np.ndarray      # (N, 16) bool: not `jnt_missing`
    head_boxes: np.ndarray    # (N, 4) x1, y1, x2, y2


def load_mat(path: str | Path) -> dict[str, Any]:
    """The variables of a .mat file; a `DataError` naming the file when it is not one SciPy reads (v4 to v7.2)."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise MissingDependencyError(f"{path}: reading MATLAB .mat files needs SciPy: pip install "
                                     "'unionpose[mpii]' (or scipy)") from None
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, None, "file not found" if not path.exists() else "not a file")
    try:
        return loadmat(str(path))
    except Exception as error:      # SciPy's parser raises many types on damaged input; all mean "not readable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(path, None, None, f"not a MATLAB .mat file SciPy can read ({reason})") from None


def read_head_boxes(path: str | Path) -> np.ndarray:
    """`headboxes_src` of a .mat file as (N, 4) x1, y1, x2, y2, 0-based; each box must have x1 < x2, y1 < y2."""
    path = Path(path)
    boxes = _array(path, load_mat(path), "headboxes_src", (2, 2, None))
    boxes = boxes.transpose(2, 0, 1).reshape(-1, 4) - 1.0
    bad = np.flatnonzero(~((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])))
    if bad.size:
        raise DataError(path, f"person {int(bad[0])}", "headboxes_src",
                        f"expected corners x1 < x2 and y1 < y2, got {(boxes[bad[0]] + 1).tolist()}")
    return boxes


def read_ground_truth_mat(path: str | Path) -> MpiiMatGroundTruth:
    """`mpii_gt_val.mat`: joints reordered to mpii16 by `dataset_joints`, labels, head boxes; all 0-based."""
    path = Path(path)
    data = load_mat(path)
    order = _joint_order(path, data)
    joints = _array(path, data, "pos_gt_src", (16, 2, None))
    count = joints.shape[2]
    missing = _array(path, data, "jnt_missing", (16, count))
    head_boxes = read_head_boxes(path)
    if len(head_boxes) != count:
        raise DataError(path, None, "headboxes_src", f"{len(head_boxes)} head boxes for {count} people in "
                                                     "pos_gt_src")
    return MpiiMatGroundTruth(joints=joints.transpose(2, 0, 1)[:, order] - 1.0,
                              labelled=(missing.T[:, order] == 0), head_boxes=head_boxes)


def read_predictions_mat(path: str | Path) -> np.ndarray:
    """`preds` of a `pred.mat`, (N, 16, 2) in mpii16 order, 0-based."""
    path = Path(path)
    return _array(path, load_mat(path), "preds", (None, 16, 2)) - 1.0


def _joint_order(path: Path, data: dict[str, Any]) -> list[int]:
    """For each mpii16 joint, its index in the file's `dataset_joints`."""
    raw = data.get("dataset_joints")
    names = [_text(item) for item in np.asarray(raw, dtype=object).reshape(-1)] if raw is not None else []
    if sorted(names) != sorted(JOINT_NAMES):
        raise DataError(path, None, "dataset_joints", f"expected MPII's 16 joint names ({' '.join(JOINT_NAMES)}), "
                                                      f"got {names[:20]}")
    ours = {JOINT_NAMES[name]: index for index, name in enumerate(names)}
    return [ours[name] for name in get_skeleton("mpii16").names]


def _text(item: Any) -> str:
    """A MATLAB string as SciPy returns it: a str, or an array (of arrays) holding one."""
    while isinstance(item, np.ndarray):
        if item.size != 1:
            return str(item.tolist())
        item = item.reshape(-1)[0]
    return str(item)


def _array(path: Path, data: dict[str, Any], name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """Variable `name` as a finite float64 array of `shape` (None: any length), or a `DataError` naming it."""
    if name not in data:
        raise DataError(path, None, name, "missing from the .mat file")
    try:
        array = np.asarray(data[name], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, None, name, "expected a numeric array") from None
    if array.ndim == len(shape) - 1 and shape[-1] is None:      # MATLAB drops a trailing axis of length 1
        array = array[..., None]
    if array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape)):
        wanted = " x ".join("N" if want is None else str(want) for want in shape)
        raise DataError(path, None, name, f"expected an array of {wanted}, got {' x '.join(map(str, array.shape))}")
    if not np.isfinite(array).all():
        raise DataError(path, None, name, "values must be finite")
    return array

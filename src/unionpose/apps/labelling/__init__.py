"""What `pseudolabel` (unlabelled images) and `annotate` (labelled images with holes) share: point sources mapped
onto a target skeleton by keypoint name, their confidence-weighted fusion, the resumable progress file and the
labelling loop (one process or worker processes, with a progress bar), and atomic writes.

Each app only says which images to label, which people (boxes) each holds, and how to write the result.
"""
from __future__ import annotations

from unionpose.apps.labelling.fusion import Fused, fuse
from unionpose.apps.labelling.progress import (
    LABELLED, NO_BOXES, NOBODY, UNREADABLE, progress_path, read_progress,
)
from unionpose.apps.labelling.run import label_tasks, record_progress, write_atomically
from unionpose.apps.labelling.sources import PointSource, predict_in_skeleton

__all__ = [
    "Fused", "LABELLED", "NOBODY", "NO_BOXES", "PointSource", "UNREADABLE", "fuse", "label_tasks",
    "predict_in_skeleton", "progress_path", "read_progress", "record_progress", "write_atomically",
]

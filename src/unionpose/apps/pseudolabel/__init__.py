"""Pseudo-labelling: part experts over image folders or video frames -> COCO-WholeBody labels, resumable and parallel.

Each finished image is appended as one JSON line to a progress file beside the output (`labels.json.progress.jsonl`,
flushed and fsynced line by line), so an interrupted run resumes where it stopped and a rerun after adding images
labels only the new ones. The labels file is assembled from the progress file, sorted by file name, and written
atomically, so an interrupted and an uninterrupted run give the same file.

Output: a COCO-WholeBody file (`keypoints`, `foot_kpts`, `face_kpts`, `lefthand_kpts`, `righthand_kpts`, `*_valid`,
`*_box`) that `read_coco(..., format="coco_wholebody")` loads, plus per annotation `keypoint_confidence` (133 values
in WholeBody order, null where the expert gives no such point) and `expert`. A point is written visible (v = 2) when
its confidence reaches `min_confidence`, else with v = 0 and its coordinates kept; a point the expert cannot give
(the small toes, a hand or face not found) is [0, 0, 0], the format's "not labelled", with a null confidence.
Unreadable images and images where nobody is found are counted and reported, never written as labels.
"""
from __future__ import annotations

from unionpose.apps.pseudolabel.config import EXPERTS, PseudoLabelConfig
from unionpose.apps.pseudolabel.labeller import FULL_FRAME_PADDING, Labeller
from unionpose.apps.pseudolabel.labels import assemble_labels, load_pseudolabels, wholebody_annotation
from unionpose.apps.labelling import progress_path, read_progress
from unionpose.apps.pseudolabel.run import pseudolabel
from unionpose.apps.pseudolabel.tasks import frames_folder

__all__ = [
    "EXPERTS", "FULL_FRAME_PADDING", "Labeller", "PseudoLabelConfig", "assemble_labels", "frames_folder",
    "load_pseudolabels", "progress_path", "pseudolabel", "read_progress", "wholebody_annotation",
]

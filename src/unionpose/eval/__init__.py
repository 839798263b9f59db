"""Evaluation independent of models: COCO keypoint AP, MPII PCKh, box PCK, results files, tables and reports.

Each dataset is scored on its own keypoints, in its own order, with its own sigmas: slice a union model's predictions
with `slice_to_skeleton` first. Every result is a JSON-safe dict of fractions with a 'metric' key.
Reports (`unionpose.eval.report`) import matplotlib, so they are not imported here.
"""
from unionpose.eval.coco_ap import (
    STAT_NAMES, GroundTruthError, build_ground_truth, coco_keypoint_ap, ground_truth_in_skeleton, read_ground_truth,
    score_results_file, validate_ground_truth,
)
from unionpose.eval.pck import pck_bbox
from unionpose.eval.pckh import head_size_from_boxes, pckh
from unionpose.eval.results import (
    ResultsError, ground_truth_as_results, map_results, read_results, results_from_arrays,
    skeleton_for_count, slice_to_skeleton, validate_results, write_results,
)
from unionpose.eval.tables import (
    format_keypoint_table, format_paper_table, format_result, headline, to_json, write_json,
)

__all__ = [
    "GroundTruthError", "ResultsError", "STAT_NAMES", "build_ground_truth", "coco_keypoint_ap", "format_keypoint_table",
    "format_paper_table", "format_result", "ground_truth_as_results", "ground_truth_in_skeleton",
    "head_size_from_boxes", "headline", "map_results", "pck_bbox", "pckh", "read_ground_truth",
    "read_results", "results_from_arrays", "score_results_file", "skeleton_for_count", "slice_to_skeleton", "to_json",
    "validate_ground_truth", "validate_results", "write_json", "write_results",
]

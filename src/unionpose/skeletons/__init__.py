"""Skeletons: named keypoint layouts, built-in presets, the alias table, union and mappings between skeletons."""
from unionpose.skeletons.algebra import KeypointMapping, keypoint_mapping, union
from unionpose.skeletons.aliases import ALIASES, canonical
from unionpose.skeletons.presets import get_skeleton, load_skeleton_file, preset_names
from unionpose.skeletons.skeleton import Skeleton, SkeletonError

__all__ = [
    "ALIASES", "KeypointMapping", "Skeleton", "SkeletonError", "canonical", "get_skeleton", "keypoint_mapping",
    "load_skeleton_file", "preset_names", "union",
]

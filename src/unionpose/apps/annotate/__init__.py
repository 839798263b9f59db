"""Completing labelled datasets: every point a dataset does not annotate, filled from teachers and experts.

`annotate(config)` reads the datasets (a recipe's `data.train` schema), runs every source (`--teachers`: UnionPose
model files, ONNX graphs, teacher prediction caches, MediaPipe) on each annotated person's box, fuses the sources
by confidence, and writes per dataset a COCO-format file in the union skeleton that keeps every original record
and field and marks each point's confidence and source (`completed.py`), an audit of the labels that confident
sources contradict (`audit.py`), and a data config of the completed datasets. Resumable: the labelling, fusion,
progress file and loop are those of `pseudolabel` (`apps/labelling`).
"""
from __future__ import annotations

from unionpose.apps.annotate.config import AnnotateConfig, SourceSpec, parse_sources
from unionpose.apps.annotate.run import annotate, output_names

__all__ = ["AnnotateConfig", "SourceSpec", "annotate", "output_names", "parse_sources"]

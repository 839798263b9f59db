"""`unionpose pseudolabel`: COCO-WholeBody pseudo-labels from MediaPipe part experts, for images or video frames."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unionpose.commands.models import finite_float

HELP = "label images or video frames with part experts (needs the 'experts' extra)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from unionpose.apps.pseudolabel import EXPERTS
    from unionpose.infer.detector import LAYOUTS

    parser = subparsers.add_parser(
        "pseudolabel", help=HELP,
        description="Run part experts (MediaPipe Holistic) on every person and write COCO-WholeBody labels with "
                    "per-point confidences. Resumable: rerun the same command after an interruption.")
    parser.add_argument("source", help="an image, a folder of images, a quoted glob, or a video file")
    parser.add_argument("--experts", choices=EXPERTS, default="mediapipe", help="which experts (default mediapipe)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the labels file (.json); video frames go to <name>_frames/ beside it")
    boxes = parser.add_argument_group("person boxes (default: the whole frame is one person)")
    boxes.add_argument("--boxes", type=Path, help="COCO detection results or a COCO ground-truth file (images only)")
    boxes.add_argument("--boxes-images", type=Path, metavar="GT_JSON",
                       help="a COCO file whose 'images' table pairs detection image ids with file names")
    boxes.add_argument("--box-threshold", type=finite_float, default=0.3, help="minimum detection score (default 0.3)")
    boxes.add_argument("--detector", type=Path, help="an ONNX person detector")
    boxes.add_argument("--detector-layout", choices=LAYOUTS, default="rtmdet",
                       help="input/output layout of the detector export (default rtmdet)")
    parser.add_argument("--stride", type=int, default=1, metavar="N", help="label every N-th frame or image (1)")
    parser.add_argument("--min-confidence", type=float, default=0.3,
                        help="expert confidence for a point to be written visible (default 0.3)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="worker processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.apps.pseudolabel import PseudoLabelConfig, pseudolabel
    from unionpose.core.output_paths import check_output_file

    # An existing labels file is how a run resumes; it must only never be one of the run's inputs.
    inputs = [path for path in (args.source, args.boxes, args.boxes_images, args.detector)
              if path is not None and Path(path).is_file()]
    check_output_file(args.out, overwrite=True, inputs=inputs)
    config = PseudoLabelConfig(
        source=args.source, out=args.out, experts=args.experts, boxes=args.boxes, boxes_images=args.boxes_images,
        box_threshold=args.box_threshold, detector=args.detector, detector_layout=args.detector_layout,
        stride=args.stride, min_confidence=args.min_confidence, workers=args.workers, progress=not args.quiet)
    try:
        summary = pseudolabel(config)
    except ImportError as error:
        print(f"unionpose pseudolabel: error: {error}", file=sys.stderr)
        return 1
    unreadable = summary.pop("unreadable_images")
    print(json.dumps(summary), f"-> {summary['out']} (images relative to {summary['images_root']})")
    for item in unreadable:
        print(f"unreadable {item['name']}: {item['reason']}")
    if summary["images"] and summary["unreadable"] == summary["images"]:
        print(f"unionpose pseudolabel: error: nothing was labelled: all {summary['images']} image(s) unreadable",
              file=sys.stderr)
        return 1
    return 0

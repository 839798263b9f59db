"""`unionpose predict`: poses for images, folders, videos or a webcam, written as drawings and keypoint files."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from unionpose.commands.models import finite_float, parse_input_size, positive_int

HELP = "predict poses in images, a folder, a glob, a video or webcam:N"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from unionpose.core.images import MAX_PIXELS
    from unionpose.infer.detector import LAYOUTS
    from unionpose.infer.writers import FORMATS

    parser = subparsers.add_parser("predict", help=HELP)
    parser.add_argument("source", nargs="+",
                        help="an image, a folder of images, a quoted glob, a video file, or webcam:N; or several "
                             "images, folders and globs (outputs mirror their paths relative to their common folder)")
    parser.add_argument("--model", type=Path, required=True,
                        help="a UnionPose model file (.safetensors) or an ONNX model (our export, or the public "
                             "RTMPose layout with --skeleton)")
    parser.add_argument("--out", type=Path, default=Path("predictions"),
                        help="output folder, new or empty (default predictions)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a used output folder, replacing the outputs of an earlier run there")
    parser.add_argument("--formats", default="draw,jsonl",
                        help=f"comma-separated outputs among {','.join(FORMATS)}, or 'all' (default draw,jsonl)")
    boxes = parser.add_argument_group("person boxes (default: the full frame)")
    boxes.add_argument("--boxes", type=Path,
                       help="COCO detection results or a COCO ground-truth file (images only; EXIF orientation is "
                            "then ignored, as the files refer to stored pixels)")
    boxes.add_argument("--boxes-images", type=Path, metavar="GT_JSON",
                       help="a COCO file whose 'images' table pairs detection image ids with file names "
                            "(default: COCO file names, 000000000785.jpg = id 785)")
    boxes.add_argument("--box-threshold", type=finite_float, default=0.3, help="minimum detection score (default 0.3)")
    boxes.add_argument("--detector", type=Path, help="an ONNX person detector (see --detector-layout)")
    boxes.add_argument("--detector-layout", choices=LAYOUTS, default="rtmdet",
                       help="input/output layout of the detector export (default rtmdet)")
    boxes.add_argument("--detect-every", type=int, default=1, metavar="N",
                       help="run the detector every N video frames; between, boxes follow the poses (default 1)")
    model = parser.add_argument_group("model")
    model.add_argument("--flip-test", action="store_true", help="average with the mirrored crop (2x the compute)")
    model.add_argument("--batch-size", type=positive_int, default=32, help="crops per model call (default 32)")
    model.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    model.add_argument("--skeleton", help="skeleton of an ONNX model without UnionPose metadata (e.g. coco17)")
    model.add_argument("--input", type=parse_input_size, metavar="HxW",
                       help="input size of such an ONNX model when its graph does not fix it")
    model.add_argument("--nms", type=finite_float, default=0.9,
                       help="OKS-NMS threshold for duplicates (1 = off, default 0.9)")
    video = parser.add_argument_group("video")
    video.add_argument("--track", action=argparse.BooleanOptionalAction, default=None,
                       help="give people stable track ids (default: on for videos)")
    video.add_argument("--track-metric", choices=("oks", "iou"), default="oks", help="tracking similarity (oks)")
    video.add_argument("--smooth", action="store_true", help="One-Euro smoothing of each track's keypoints")
    video.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    parser.add_argument("--threshold", type=finite_float, default=0.3,
                        help="keypoint score to draw a point (default 0.3)")
    parser.add_argument("--ignore-exif", action="store_true", help="keep images as stored, ignoring EXIF rotation")
    parser.add_argument("--max-image-pixels", type=positive_int, default=MAX_PIXELS, metavar="N",
                        help=f"refuse images larger than this, from their header (default {MAX_PIXELS})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.data.readers.box_file import BoxFile
    from unionpose.infer.detector import OnnxPersonDetector
    from unionpose.infer.predictor import Predictor
    from unionpose.infer.run import predict_source
    from unionpose.infer.sources import open_source
    from unionpose.infer.writers import FORMATS

    formats = list(FORMATS) if args.formats == "all" else [f.strip() for f in args.formats.split(",") if f.strip()]
    source = open_source(args.source, apply_exif=not (args.ignore_exif or args.boxes), max_frames=args.max_frames,
                         max_pixels=args.max_image_pixels)
    boxes_for = None
    if args.boxes:
        if source.kind != "images":
            raise ValueError("--boxes pairs boxes with image file names; for a video use --detector or the full frame")
        boxes_for = BoxFile(args.boxes, args.boxes_images, args.box_threshold).lookup
    detector = OnnxPersonDetector(args.detector, args.detector_layout, args.box_threshold) if args.detector else None
    predictor = Predictor.from_file(args.model, flip_test=args.flip_test, batch_size=args.batch_size,
                                    detector=detector, skeleton=args.skeleton, input_size=args.input,
                                    device=args.device, nms_threshold=args.nms)
    inputs = [path for path in (args.model, args.boxes, args.boxes_images, args.detector) if path is not None]
    summary = predict_source(predictor, source, args.out, formats, boxes_for, args.detect_every, args.track,
                             args.track_metric, args.smooth, args.threshold, progress=not args.quiet,
                             description=" ".join(args.source), overwrite=args.overwrite, inputs=inputs)
    print(json.dumps({key: summary[key] for key in ("frames", "people", "frames_per_second")}),
          f"-> {args.out}")
    for skipped in summary["skipped"]:
        print(f"skipped {skipped['name']}: {skipped['reason']}")
    if summary["frames"] == 0 and not summary["interrupted"]:
        skipped = summary["skipped"]
        first = f"; first: {skipped[0]['name']}: {skipped[0]['reason']}" if skipped else ""
        print(f"unionpose predict: error: nothing was processed from {' '.join(args.source)}: {len(skipped)} "
              f"input(s) skipped{first}", file=sys.stderr)
        return 1
    return 0

"""`unionpose models`: the RTMPose size zoo with parameters and GFLOPs for a keypoint count and input size."""
from __future__ import annotations

import argparse
import math

HELP = "the RTMPose sizes t/s/m/l: parameters, GFLOPs, published COCO AP"


def parse_input_size(text: str) -> tuple[int, int]:
    """'256x192' -> (256, 192), height first."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"input size must be HEIGHTxWIDTH, e.g. 256x192, got {text!r}")
    return int(parts[0]), int(parts[1])


def positive_int(text: str) -> int:
    """An integer of at least 1, for counts and limits given on the command line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """A finite number, for thresholds given on the command line (`nan` would silently disable a comparison)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help=HELP)
    parser.add_argument("--keypoints", type=int, default=17, metavar="K", help="number of keypoints (default 17)")
    parser.add_argument("--input", type=parse_input_size, default=(256, 192), metavar="HxW",
                        help="input crop size, height x width, multiples of 32 (default 256x192)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.models import MODEL_SIZES, model_complexity

    height, width = args.input
    rows = [(size, spec, model_complexity(size, args.keypoints, (height, width))) for size, spec in MODEL_SIZES.items()]
    print(f"RTMPose zoo, {args.keypoints} keypoints, input {height}x{width} (h x w); GFLOPs count multiply-adds.")
    print("Published COCO val AP (COCO-17, 256x192, detector boxes): trained on COCO only / on AIC+COCO.")
    print(f"{'size':<5} {'deepen':>7} {'widen':>6} {'params (M)':>11} {'GFLOPs':>7}  {'COCO AP':>13}")
    for size, spec, complexity in rows:
        print(f"{size:<5} {spec.deepen:>7.3f} {spec.widen:>6.3f} {complexity.params / 1e6:>11.2f} "
              f"{complexity.gflops:>7.2f}  {spec.published_coco_ap:>6.1f} / {spec.published_aic_coco_ap:.1f}")
    return 0

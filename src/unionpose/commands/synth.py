"""`unionpose synth`: write the synthetic people benchmark (COCO-17 and MPII-16 train sets, 21-point validation)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "generate the synthetic people data set (COCO + MPII format)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("synth", help=HELP)
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (images/ and the JSON files), new or empty")
    parser.add_argument("--overwrite", action="store_true", help="write into a used --out folder")
    parser.add_argument("--train", type=int, required=True, metavar="N",
                        help="train images: the first half labelled as COCO-17, the second half as MPII-16")
    parser.add_argument("--val", type=int, required=True, metavar="M", help="validation images (all 21 points)")
    parser.add_argument("--seed", type=int, default=0, help="same seed -> identical files (default 0)")
    parser.add_argument("--preset", choices=("benchmark", "demo"), default="benchmark",
                        help="scene preset: the hard benchmark (default) or the demo's calibrated scenes")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="processes rendering images (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.core.output_paths import check_output_folder
    from unionpose.synthetic import PRESETS, generate

    check_output_folder(args.out, overwrite=args.overwrite)
    start = time.perf_counter()
    meta = generate(args.out, args.train, args.val, args.seed, workers=args.workers, params=PRESETS[args.preset],
                    progress=True)
    seconds = time.perf_counter() - start
    images = meta["train_images"] + meta["val_images"]
    people = meta["people"]
    print(f"{images} images in {seconds:.1f} s ({images / seconds:.0f} images/s, {args.workers} worker(s)) "
          f"-> {args.out}")
    print(f"train: {meta['coco_train_images']} COCO images, {people['coco17.json']} people (coco17.json); "
          f"{meta['mpii_train_images']} MPII images, {people['mpii16.json']} people (mpii16.json)")
    print(f"val: {meta['val_images']} images, {people['full21_val.json']} people "
          f"(coco17_val.json, mpii16_val.json, full21_val.json)")
    return 0

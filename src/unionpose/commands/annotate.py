"""`unionpose annotate`: complete every dataset's missing keypoints from teachers and experts, with confidence and
provenance per point, and audit the existing labels against them."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from unionpose.commands.models import finite_float

if TYPE_CHECKING:
    from unionpose.data.sources import DatasetSource
    from unionpose.skeletons import Skeleton

HELP = "fill the keypoints datasets do not annotate from teachers, and audit their labels"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from typing import get_args

    from unionpose.data.sources import Format

    parser = subparsers.add_parser(
        "annotate", help=HELP,
        description="Run teachers and experts on every annotated person and write, per dataset, a COCO-format file "
                    "in the union skeleton with the missing points filled (keypoint_confidence and keypoint_source "
                    "per point), an audit of labels the sources contradict, and a data config of the completed "
                    "datasets. The input files are never changed. Resumable: rerun the same command.")
    parser.add_argument("data", type=Path,
                        help="a data config (.yaml: its data.train datasets and skeleton) or one annotation file "
                             "(then give --format and --images)")
    parser.add_argument("--teachers", nargs="+", required=True, metavar="TEACHER",
                        help="sources of filled points: [NAME=]FILE (.safetensors model file or teacher prediction "
                             "cache, .onnx graph), a recipe .yaml (its teachers: list), or 'mediapipe'")
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumes a run already there)")
    single = parser.add_argument_group("one annotation file")
    single.add_argument("--format", choices=get_args(Format), help="the file's format")
    single.add_argument("--images", type=Path, help="the folder its image file names are relative to")
    single.add_argument("--name", help="the dataset's name (default: the file's name without extension)")
    parser.add_argument("--skeleton", help="the union skeleton to write (preset, a+b union or YAML file; default: "
                                           "the data config's, else the datasets' and the teachers' skeletons)")
    parser.add_argument("--min-confidence", type=finite_float, default=0.3,
                        help="a filled point below this confidence is written not annotated (default 0.3)")
    parser.add_argument("--flip-test", action="store_true", help="run model teachers on mirrored crops as well")
    audit = parser.add_argument_group("audit of the existing labels")
    audit.add_argument("--audit-confidence", type=finite_float, default=0.5,
                       help="a source's point must be this confident to contradict a label (default 0.5)")
    audit.add_argument("--audit-oks", type=finite_float, default=0.1,
                       help="... and its per-point OKS with the label below this (default 0.1)")
    audit.add_argument("--audit-draw", type=int, default=12, metavar="N",
                       help="draw the N worst cases per dataset (default 12)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="worker processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.apps.annotate import AnnotateConfig, annotate, output_names, parse_sources
    from unionpose.core.output_paths import check_output_file

    datasets, skeleton = _datasets(args)
    sources = parse_sources(args.teachers)
    config = AnnotateConfig(
        datasets=tuple(datasets), sources=sources, out=args.out, skeleton=args.skeleton or skeleton,
        min_confidence=args.min_confidence, flip_test=args.flip_test, audit_confidence=args.audit_confidence,
        audit_oks=args.audit_oks, audit_draw=args.audit_draw, workers=args.workers, progress=not args.quiet)
    if args.out.exists() and not args.out.is_dir():
        raise FileExistsError(f"{args.out}: is a file; --out is a folder")
    # Existing outputs are how a run resumes; they must only never be one of the run's inputs.
    inputs = [args.data, *(d.annotations for d in datasets), *(s.path for s in sources if s.path is not None)]
    for name in output_names(config):
        check_output_file(args.out / name, overwrite=True, inputs=inputs)
    summary = annotate(config)
    for name, counts in summary["datasets"].items():
        print(f"{name}: {counts['people']} people, {counts['filled']} points filled "
              f"({counts['filled_below_min_confidence']} more below --min-confidence, written not annotated; "
              f"{counts['not_given']} given by no source); audit: {counts['audit_cases']} case(s), "
              f"{counts['drawn']} drawn -> {counts['out']}")
        for item in counts.pop("unreadable_images"):
            print(f"  unreadable {item['image']}: {item['reason']} (its people are not completed)")
    print(json.dumps({key: value for key, value in summary.items() if key != "datasets"}))
    print(f"data config of the completed datasets: {summary['data_config']}")
    return 0


def _datasets(args: argparse.Namespace) -> tuple[list[DatasetSource], Skeleton | None]:
    """The datasets to complete and the union skeleton a data config names (None: not named)."""
    from unionpose.data.config import load_data_config
    from unionpose.data.sources import DatasetSource

    if args.data.suffix in (".yaml", ".yml"):
        if args.format or args.images or args.name:
            raise ValueError("--format, --images and --name describe one annotation file; a data config says them")
        recipe = load_data_config(args.data)
        return list(recipe.data.train), (recipe.build_skeleton() if recipe.skeleton is not None else None)
    if not args.format or not args.images:
        raise ValueError(f"{args.data}: one annotation file needs --format and --images (or give a data config)")
    if not args.data.is_file():
        raise FileNotFoundError(f"{args.data}: annotation file not found")
    return [DatasetSource(name=args.name or args.data.stem, format=args.format, annotations=args.data.resolve(),
                          images=args.images.resolve())], None

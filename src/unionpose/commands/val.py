"""`unionpose val`: evaluate model files on the validation datasets of a config, each on its own points and metric."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unionpose.commands.models import positive_int

if TYPE_CHECKING:
    from unionpose.eval.evaluation import EvaluationResult

HELP = ("evaluate models on the validation datasets of a config (COCO AP, MPII PCKh, PCK) and print the paper's "
        "Table 1 layout")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("val", help=HELP)
    parser.add_argument("--model", type=Path, action="append", required=True, metavar="FILE",
                        help="model file (.safetensors) or ONNX model; repeat to compare several in one table")
    parser.add_argument("--data", type=Path, required=True, metavar="CONFIG",
                        help="YAML with a 'data: {val: [...]}' list: a training recipe or a data-only config")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=True,
                        help="average each crop's logits with its mirror's (default: on)")
    parser.add_argument("--detections", action="append", default=[], metavar="[DATASET=]FILE",
                        help="COCO detection results to take person boxes from instead of the ground truth, for "
                             "the named dataset (the name may be left out when the config has one dataset)")
    parser.add_argument("--points", choices=("paper", "all", "shared"), default="paper",
                        help="which points the summary table scores when a model lacks some of a dataset's: 'all' "
                             "(missing ones count as misses), 'shared', or 'paper' (shared for PCKh/PCK, all for "
                             "COCO AP, as the paper's Table 1); metrics.json holds both")
    parser.add_argument("--on-model-points", action="append", default=[], metavar="DATASET",
                        help="score this dataset in the model's skeleton on the points its ground truth has "
                             "(e.g. all 21 points on Halpe, thorax from the shoulders)")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write predictions, metrics.json, tables and a Markdown report here (one sub-folder "
                             "per model when several are given); a new or empty folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a used --out folder, replacing same-named files")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="crops per forward pass (default 32)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--skeleton", metavar="NAME",
                        help="skeleton of an ONNX model without UnionPose metadata (default: the config's skeleton)")
    parser.add_argument("--worst", type=int, default=12, metavar="N", help="worst people drawn per dataset (0: none)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.core.atomic import write_text_atomic
    from unionpose.core.output_paths import check_output_folder
    from unionpose.data.config import build_skeleton, load_val_datasets
    from unionpose.eval.evaluate import evaluate_model
    from unionpose.eval.summary import format_details, format_summary

    if args.out is not None:
        check_output_folder(args.out, overwrite=args.overwrite, inputs=[*args.model, args.data])
    datasets, skeleton_spec = load_val_datasets(args.data)
    names = [source.name for source in datasets]
    skeleton = args.skeleton or (build_skeleton(skeleton_spec, datasets) if skeleton_spec is not None else None)
    detections = _parse_detections_option(args.detections, names)
    labels = _model_labels(args.model)
    evaluations: list[EvaluationResult] = []
    for path, label in zip(args.model, labels):
        out_dir = None if args.out is None else (args.out / label if len(args.model) > 1 else args.out)
        evaluation = evaluate_model(path, datasets, flip_test=args.flip_test, boxes=detections or "gt",
                                    batch_size=args.batch_size, out_dir=out_dir, progress=not args.no_progress,
                                    on_model_points=args.on_model_points, skeleton=skeleton, device=args.device,
                                    name=label, worst=args.worst)
        evaluations.append(evaluation)
        print(format_details(evaluation))
        print()
        if out_dir is not None:
            print(f"report: {evaluation.files['report']}")
            print()
    summary = format_summary(evaluations, args.points)
    print(summary)
    if args.out is not None and len(args.model) > 1:
        write_text_atomic(args.out / "summary.txt", summary + "\n")
    return 0


def _parse_detections_option(values: list[str], names: list[str]) -> dict[str, Path]:
    """`DATASET=FILE` or, with one dataset in the config, `FILE`."""
    files: dict[str, Path] = {}
    for value in values:
        dataset, separator, path = value.partition("=")
        if not separator or dataset not in names:
            if len(names) != 1:
                raise ValueError(f"--detections {value}: name the dataset (DATASET=FILE), one of {', '.join(names)}")
            dataset, path = names[0], value
        if dataset in files:
            raise ValueError(f"--detections: two files for dataset {dataset!r}")
        files[dataset] = Path(path)
    return files


def _model_labels(paths: list[Path]) -> list[str]:
    """Table row names (and sub-folder names): file stems, numbered where stems repeat."""
    stems = [path.stem for path in paths]
    return [stem if stems.count(stem) == 1 else f"{stem}#{i + 1}" for i, stem in enumerate(stems)]

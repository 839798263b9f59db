"""`unionpose demo`: the paper's experiment in miniature on synthetic people (see `unionpose.apps.demo`)."""
from __future__ import annotations

import argparse
from pathlib import Path


HELP = "two datasets, two teachers, one 21-point student: train, evaluate, report (CPU, minutes)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help=HELP)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="heads only on the shipped backbone, smaller data: under 2 minutes")
    parser.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    parser.add_argument("--seed", type=int, default=21, help="seed of the data and of every training run")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", type=Path, metavar="DIR",
                         help="a folder with the teachers and the students' backbone (default: the shipped ones)")
    weights.add_argument("--retrain-teachers", action="store_true",
                         help="make the teachers and the backbone again first (about 4 hours on 2 CPU cores), "
                              "into OUT/weights_build, and use them")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.apps.demo import run_demo

    run_demo(args.out, quick=args.quick, force=args.force, seed=args.seed, weights=args.weights,
             retrain_teachers=args.retrain_teachers)
    return 0

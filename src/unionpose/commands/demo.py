"""`unionpose demo`: the paper's experiment in miniature on synthetic people (see `unionpose.apps.demo`)."""
from __future__ import annotations

import argparse
from pathlib import Path


HELP = "two datasets, two teachers, one 21-point student: train, evaluate, report (CPU, minutes)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help=HELP)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    parser.add_argument("--quick", action="store_true", help="a smoke-test scale: about 3 minutes instead of 15")
    parser.add_argument("--force", action="store_true", help="redo every stage instead of reusing finished ones")
    parser.add_argument("--seed", type=int, default=21, help="seed of the data and of every training run")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.apps.demo import run_demo

    run_demo(args.out, quick=args.quick, force=args.force, seed=args.seed)
    return 0

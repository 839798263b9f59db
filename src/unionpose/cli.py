"""The `unionpose` command. Thin: each verb lives in `unionpose.commands.<verb>` and calls the library."""
from __future__ import annotations

import argparse
import importlib
import sys

from unionpose.core.errors import MissingDependencyError

# The verbs, in the order `unionpose --help` lists them. Each module defines `add_parser(subparsers)`, which registers
# its sub-parser and sets `func(args) -> int` as the default.
COMMANDS = (
    "skeleton",
    "data",
    "models",
    "convert",
    "score",
    "synth",
    "train",
    "val",
    "demo",
    "predict",
    "export",
    "pseudolabel",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unionpose", description="Train and run one pose model for the union of several datasets' keypoints.")
    from unionpose import __version__

    parser.add_argument("--version", action="version", version=f"unionpose {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"unionpose.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, MissingDependencyError) as error:
        # Library errors carry the file, record and field (or what to install); show them without a traceback.
        print(f"unionpose {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

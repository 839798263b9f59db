"""The `unionpose` command. Thin and lazy: each verb lives in `unionpose.commands.<verb>`, and only the verb being
run builds its arguments and imports the library parts it uses, so `unionpose --help` never loads torch."""
from __future__ import annotations

import argparse
import importlib
import sys

from unionpose.core.errors import MissingDependencyError

# The verbs, in the order `unionpose --help` lists them. Each module holds `HELP`, its one-line summary, and
# `add_parser(subparsers)`, which registers its sub-parser and sets `func(args) -> int` as the default.
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
    "serve",
    "export",
    "pseudolabel",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of `command` only (the others are listed with their summary)."""
    parser = argparse.ArgumentParser(
        prog="unionpose", description="Train and run one pose model for the union of several datasets' keypoints.")
    from unionpose import __version__

    parser.add_argument("--version", action="version", version=f"unionpose {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"unionpose.commands.{name}")
        if name == command:
            module.add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
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

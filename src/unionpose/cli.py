"""The `unionpose` command. Thin and lazy: each verb lives in `unionpose.commands.<verb>`, and only the verb being
run builds its arguments and imports the library parts it uses, so `unionpose --help` never loads torch.

Every user-facing error ends the command with one line on stderr, `unionpose VERB: error: ...`, naming the file (and
the record and field where there is one), and exit code 1; a bad command line is exit code 2. `--debug`, anywhere on
the command line, shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

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
    "annotate",
)


# What the command reports as one line: bad input (ValueError: DataError, config, results and ground-truth errors),
# files (OSError: not found, exists, is a folder, no permission), a missing extra, a diverged training run.
USER_ERRORS = (ValueError, OSError, MissingDependencyError, FloatingPointError)
# An exception raised inside a torch DataLoader worker reaches the main process re-raised with the worker's whole
# traceback as its message; the original type's name and message are recovered from it.
WORKER_ERROR = re.compile(r"Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback")
USER_ERROR_NAMES = {"DataError", "ValueError", "FileNotFoundError", "FileExistsError", "IsADirectoryError",
                    "NotADirectoryError", "PermissionError", "OSError", "MissingDependencyError", "ResultsError",
                    "GroundTruthError"}


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (`unionpose VERB: error: ...`, exit code 2), like every other
    error of the command; the usage is one `--help` away."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of `command` only (the others are listed with their summary)."""
    parser = OneLineParser(
        prog="unionpose", description="Train and run one pose model for the union of several datasets' keypoints.",
        epilog="Errors are one line; add --debug anywhere to see the traceback.")
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
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Exception as error:
        # Library errors carry the file, record and field (or what to install); show them without a traceback.
        message = user_message(error)
        if debug or message is None:
            raise
        print(f"unionpose {args.command}: error: {message}", file=sys.stderr)
        return 1


def user_message(error: BaseException) -> str | None:
    """The one-line message of a user-facing error (one from a loader worker unwrapped); None for anything else,
    which is a bug and keeps its traceback."""
    text = str(error)
    worker = WORKER_ERROR.match(text)
    if worker is not None:
        if worker.group(1) not in USER_ERROR_NAMES:
            return None
        text = _worker_message(worker.group(1), text)
    elif not isinstance(error, USER_ERRORS):
        return None
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or type(error).__name__


def _worker_message(name: str, text: str) -> str:
    """The original message at the end of a worker's traceback: the text after the last `module.Name: `."""
    lines = text.rstrip().splitlines()
    pattern = re.compile(rf"(?:[\w.]+\.)?{name}: ?(.*)")
    for index in range(len(lines) - 1, 0, -1):
        match = pattern.fullmatch(lines[index])
        if match:
            return "\n".join([match.group(1), *lines[index + 1:]])
    return lines[-1]


if __name__ == "__main__":
    sys.exit(main())

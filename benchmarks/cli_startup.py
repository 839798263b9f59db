"""Start-up time of the `unionpose` command: the median wall time of each call below, run N times as a subprocess.

    python benchmarks/cli_startup.py --out cli_startup.json [--runs 15]

The target is at most 0.3 s for `unionpose --help` and `unionpose skeleton list`: a verb imports only what it uses,
so the cheap ones never load torch. The calls run through the installed `unionpose` script beside this interpreter
(or `python -m unionpose` when there is none).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

CALLS = (
    ("--help",),
    ("skeleton", "list"),
    ("skeleton", "show", "coco17"),
    ("predict", "--help"),
    ("serve", "--help"),
    ("train", "--help"),
)


def command_prefix() -> list[str]:
    script = Path(sys.executable).with_name("unionpose")
    if script.exists():
        return [str(script)]
    found = shutil.which("unionpose")
    return [found] if found else [sys.executable, "-m", "unionpose"]


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("cli_startup.json"))
    parser.add_argument("--runs", type=int, default=15, help="runs per call; the median is reported")
    args = parser.parse_args()
    prefix = command_prefix()
    subprocess.run(prefix + ["--help"], check=True, stdout=subprocess.DEVNULL)  # warm the file cache
    results = {" ".join(("unionpose",) + call): round(median_seconds(prefix + list(call), args.runs), 3)
               for call in CALLS}
    report = {"median_seconds": results, "runs": args.runs, "command": prefix,
              "python": platform.python_version(), "cpus": os.cpu_count()}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""The bad-input corpus of issue 14 (`fuzz_corpus.py`), run through the public commands.

Every case ends with exit code 1 or 2 and one line `unionpose VERB: error: ...` naming the file (and the record and
field where there is one) or the argument; no traceback; no file outside the case's output folder created, changed or
removed; its inputs and the shared inputs unchanged (SHA-256 before and after). Cases run in this process (calling
`unionpose.cli.main`, the command's own entry point) with a time limit each; a sample also runs as real processes.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, require
from fuzz_corpus import CASES, CATEGORIES, Case, Shared, build_case, counts
from unionpose.cli import main

SUBPROCESS_SAMPLE = ("image_png_claims_60000x60000_train", "image_truncated_jpeg_predict", "coco_keypoint_nan",
                     "config_lr_infinite", "override_replaces_a_section", "predict_safetensors_is_a_pickle",
                     "cli_predict_batch_size_word", "video_first_2000_bytes")


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    require(DATA / "videos/street_5frames.mp4")
    return Shared(tmp_path_factory.mktemp("fuzz")).build()


def snapshot(roots: list[Path], case: Case) -> dict[str, tuple]:
    """Every file under `roots` but in the case's output folder: (size, mtime), and the SHA-256 of the inputs this
    case reads (its own, and the shared ones; other cases' folders are only stat'ed)."""
    files = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if not path.is_file() or case.out in path.parents:
                continue
            stat = path.stat()
            read = case.inputs in path.parents or "cases" not in path.relative_to(root).parts
            files[str(path)] = (stat.st_size, stat.st_mtime_ns,
                                hashlib.sha256(path.read_bytes()).hexdigest() if read else None)
    return files


def run_in_process(case: Case) -> tuple[int, str]:
    err = io.StringIO()
    previous = Path.cwd()
    os.chdir(case.out)                  # a command's default outputs (e.g. `predictions/`) land in its folder
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(case.argv))
            except SystemExit as exit_:
                code = exit_.code
    finally:
        os.chdir(previous)
    return code, err.getvalue()


def check(case: Case, code: int, error: str) -> None:
    assert code in (1, 2), f"{case.name}: exit code {code}, stderr:\n{error[-2000:]}"
    assert "Traceback" not in error, f"{case.name}: a traceback:\n{error[-3000:]}"
    lines = [line for line in error.splitlines() if line.startswith("unionpose") and ": error: " in line]
    assert len(lines) == 1 and error.rstrip().endswith(lines[0]), f"{case.name}: not one error line:\n{error[-2000:]}"
    for name in case.names:
        assert name in lines[0], f"{case.name}: {name!r} not in: {lines[0]}"


def test_the_corpus_is_large_and_covers_every_category():
    assert len(CASES) >= 200 and set(counts()) == set(CATEGORIES)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_in_one_line_and_touches_nothing(shared, name):
    case = build_case(name, shared)
    before = snapshot([shared.root], case)
    code, error = run_in_process(case)
    check(case, code, error)
    assert snapshot([shared.root], case) == before, f"{name}: files outside {case.out} changed"


def _in_a_process(case: Case) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "unionpose", *case.argv], cwd=case.out, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_sample_through_real_processes(shared, tmp_path):
    """Exit codes and stderr as a shell sees them (the in-process run cannot see C libraries' own output)."""
    for name in SUBPROCESS_SAMPLE:
        case = build_case(name, shared, tmp_path / "cases")
        before = snapshot([shared.root, tmp_path], case)
        result = _in_a_process(case)
        check(case, result.returncode, _without_library_noise(result.stderr))
        assert snapshot([shared.root, tmp_path], case) == before, f"{name}: files outside {case.out} changed"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_fourth_case_through_real_processes(shared, tmp_path):
    for name in list(CASES)[::4]:
        case = build_case(name, shared, tmp_path / "cases")
        before = snapshot([shared.root, tmp_path], case)
        result = _in_a_process(case)
        check(case, result.returncode, _without_library_noise(result.stderr))
        assert snapshot([shared.root, tmp_path], case) == before, f"{name}: files outside {case.out} changed"


def _without_library_noise(stderr: str) -> str:
    """stderr less the lines C libraries print themselves (libpng's `libpng error: ...`, OpenCV's `[ WARN:...]`),
    which precede the command's own message."""
    return "\n".join(line for line in stderr.splitlines()
                     if not line.startswith(("libpng error:", "[ WARN:", "[ERROR:")))

"""The progress file: one JSON line per finished image, flushed and fsynced, so an interrupted run resumes.

Line 1 is a header (`format`, `version`, `settings`); a resumed run must have the same header, so that labels made
under other settings (another source, other data) never mix with new ones.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from unionpose.core.errors import DataError

# What became of one image: the status of its record in the progress file.
LABELLED, NOBODY, NO_BOXES, UNREADABLE = "labelled", "nobody", "no_boxes", "unreadable"


def progress_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".progress.jsonl")


def read_progress(path: Path, header: dict) -> dict[str, dict]:
    """Finished records by file name. A torn last line (the run was killed while writing it) is cut off; a header
    with other settings is refused, naming the first field that differs."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = data.rfind(b"\n") + 1
    if complete < len(data):               # a torn last line: drop it so that appending starts on a fresh line
        with path.open("r+b") as file:
            file.truncate(complete)
        lines = data[:complete].split(b"\n")
    lines = [line for line in lines if line.strip()]
    if not lines:
        return {}
    try:
        found = json.loads(lines[0]).get("header", {})
    except (json.JSONDecodeError, AttributeError):
        found = {}
    if found.get("format") != header["format"]:
        raise DataError(path, "line 1", "header", f"not a {header['format']} file; delete it or choose another --out")
    for key in sorted(set(header["settings"]) | set(found.get("settings", {}))):
        ours, theirs = header["settings"].get(key), found.get("settings", {}).get(key)
        if ours != theirs:
            raise DataError(path, "line 1", f"settings.{key}",
                            f"this run has {ours!r} but the unfinished run had {theirs!r}; rerun with the same "
                            "settings to resume, or delete the progress file to start over")
    done: dict[str, dict] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, f"line {number}", None, f"not valid JSON ({error})") from None
        if not isinstance(record, dict) or not isinstance(record.get("file_name"), str) \
                or record.get("status") not in (LABELLED, NOBODY, NO_BOXES, UNREADABLE):
            raise DataError(path, f"line {number}", "file_name/status", "expected a finished-image record")
        done[record["file_name"]] = record
    return done


def append_record(file, record: dict) -> None:
    """One whole line, flushed to disk before the next image is reported done."""
    file.write(json.dumps(record, separators=(",", ":")) + "\n")
    file.flush()
    os.fsync(file.fileno())

"""Where a command may write: never over one of its inputs, never over an existing output unless asked to.

The rules every command's `--out` follows (README, "Safety"):
- an output path that is one of the command's inputs (the same file, whatever the spelling or link) is refused, with
  or without `--overwrite`: `export --model m.safetensors --out m.safetensors` would otherwise replace the model by
  its own export;
- an existing output file, or an output folder that is not empty, is refused unless `--overwrite`; with it, only the
  outputs the command itself names are replaced (other files in the folder stay);
- within one run two outputs never share a name (`OutputFolder.claim`), so two inputs called `img.jpg` in different
  folders keep two drawings (their relative paths are mirrored; a name taken all the same gets a number).
Each refusal is a `FileExistsError` whose message names the path and says what to do.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

OVERWRITE_HINT = "pass --overwrite to replace it, or choose another output"


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file: equal once resolved, or the same inode (hard links, bind mounts)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """`path` if a command may write the file there; else a `FileExistsError` saying why (see the module rules)."""
    path = Path(path)
    for source in inputs:
        if same_file(path, source):
            raise FileExistsError(f"{path}: is an input of this command and is never overwritten; choose another "
                                  "output")
    if path.is_dir():
        raise FileExistsError(f"{path}: is a folder; the output here is a file, give a file name")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists; {OVERWRITE_HINT}")
    return path


def check_output_folder(folder: str | Path, *, overwrite: bool = False, replaces: Iterable[str] = (),
                        inputs: Iterable[str | Path] = ()) -> Path:
    """`folder` if a command may write its outputs there, after removing the outputs of an earlier run.

    A folder that holds anything is refused unless `overwrite`; then the entries named in `replaces` (the command's
    own output names) are removed first, so old and new outputs never mix, and nothing else is touched. An entry
    that is, or holds, one of `inputs` is never removed: that is refused too.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder}: is a file; the output here is a folder")
    if not folder.is_dir() or not any(folder.iterdir()):
        return folder
    if not overwrite:
        raise FileExistsError(f"{folder}: the output folder is not empty; {OVERWRITE_HINT} (only this command's own "
                              "outputs are replaced)")
    resolved_inputs = [Path(source).resolve() for source in inputs]
    for name in replaces:
        entry = folder / name
        if not entry.exists() and not entry.is_symlink():
            continue
        target = entry.resolve()
        held = [source for source in resolved_inputs if source == target or target in source.parents]
        if held:
            raise FileExistsError(f"{entry}: holds an input of this command ({held[0]}), which is never "
                                  "overwritten; choose another output folder")
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return folder


class OutputFolder:
    """Names handed out within one run: each output path once, never one of the inputs."""

    def __init__(self, folder: str | Path, inputs: Iterable[str | Path] = ()) -> None:
        self.folder = Path(folder)
        self.inputs = {Path(source).resolve() for source in inputs}
        self.claimed: set[Path] = set()

    def claim(self, relative: str | Path) -> Path:
        """`folder / relative`, or when an earlier output of this run took that name `stem_2.ext`, `stem_3.ext`, ...;
        a `FileExistsError` when the path is one of the inputs."""
        path = self.folder / relative
        number = 1
        while path.resolve() in self.claimed:
            number += 1
            path = self.folder / Path(relative).with_stem(f"{Path(relative).stem}_{number}")
        if path.resolve() in self.inputs:
            raise FileExistsError(f"{path}: is an input of this command and is never overwritten; choose another "
                                  "output folder")
        self.claimed.add(path.resolve())
        return path

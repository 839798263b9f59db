"""Atomic file writes: a file is either the old one or the complete new one, never half written."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary file beside `path` to write; on success one rename puts it in place, on error it is removed.

    The temporary file lives in the same folder, so the rename never crosses file systems. `suffix` ends its name,
    for writers that choose the format by it (a video writer wants `.mp4`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)        # mkstemp makes it private; the result is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` through `atomic_path`: readers see the old file or the whole new one."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode())


def write_image_atomic(path: str | Path, image: np.ndarray) -> Path:
    """Encode `image` (BGR) in the format its suffix names (.png, .jpg, ...) and write it atomically."""
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"cannot write the image {path}: OpenCV has no encoder for {path.suffix!r} (use .png or .jpg)")
    return write_bytes_atomic(path, encoded.tobytes())

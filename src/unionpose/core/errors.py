"""Error types the command line reports without a traceback: bad input (`DataError`), a missing extra."""
from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input in a dataset file or image.

    `file` is the file at fault, `record` says which record (e.g. "annotation id 42 (image id 7)", "record 3"),
    `field` which field of it; either may be None when the whole file is at fault. `reason` says what is wrong.
    """

    def __init__(self, file: str | Path, record: str | None, field: str | None, reason: str) -> None:
        self.file = str(file)
        self.record = record
        self.field = field
        self.reason = reason
        where = [self.file] + ([record] if record else []) + ([f"field '{field}'"] if field else [])
        super().__init__(": ".join(where + [reason]))


class ImageTooLargeError(DataError):
    """An image over the pixel limit, refused from its header before decoding (a server answers 413, not 422)."""


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says what to install (or what to use instead)."""

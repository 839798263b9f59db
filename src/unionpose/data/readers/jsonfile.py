"""Reading one JSON annotation file, with a `DataError` naming the file (and line) when it cannot be read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unionpose.core.errors import DataError


def load_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, None, None, "annotation file not found") from None
    except OSError as error:
        raise DataError(path, None, None, f"cannot read the annotation file ({error.strerror})") from None
    try:
        return json.loads(text)
    except UnicodeDecodeError as error:
        raise DataError(path, f"byte {error.start}", None, "not valid JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        raise DataError(path, where, None, f"not valid JSON ({error.msg})") from None

"""What one request may bring and how requests are batched: the server's knobs, with their defaults.

Kept apart from the application so that `unionpose serve --help` shows the defaults without importing the web stack.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    """Upload caps (bytes of the request body, pixels of the decoded image, boxes per image) and batching: up to
    `max_batch` requests per model call, gathered for at most `max_wait_ms`, with at most `max_queue` waiting."""

    max_upload_bytes: int = 20 * 2 ** 20
    max_pixels: int = 50_000_000
    max_boxes: int = 100
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 32

    def __post_init__(self) -> None:
        bad = {key: value for key, value in vars(self).items() if not value > 0}
        if bad:
            raise ValueError(f"serve limits must be positive, got {bad}")

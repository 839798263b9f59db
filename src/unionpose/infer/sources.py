"""Frame sources for prediction: an image, a folder, a glob, a video file or a webcam, streamed one frame at a time.

Bad input never stops a stream: an unreadable image or video frame is skipped and recorded in `source.skipped`
as (name, reason). A source that cannot be opened at all (missing file, unreadable video) is a clear error.
Images pass the image gate and are decoded by `unionpose.core.images.read_image` (EXIF orientation applied unless
`apply_exif=False`). An image's name is its path relative to the folder all the images share, so `a/img.jpg` and
`b/img.jpg` stay two names.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from unionpose.core.errors import DataError
from unionpose.core.images import MAX_PIXELS, read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
MAX_FAILED_READS = 25          # failed reads in a row that end a webcam stream (or a video without a frame count)


@dataclass
class Frame:
    """One image of a stream: `index` counts the source's frames (skipped ones included)."""

    index: int
    name: str                   # image path relative to the images' common folder, or frame_000042 for a video
    image: np.ndarray           # BGR uint8 (H, W, 3)
    time: float                 # seconds from the start of a video (the index for images)


def check_frame(image: np.ndarray | None) -> str | None:
    """Why a decoded frame cannot be used (None when it can)."""
    if image is None or image.size == 0:
        return "empty frame"
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"frame of shape {image.shape} and type {image.dtype}, expected (H, W, 3) uint8"
    return None


class ImageSource:
    """Image files in order; an unreadable file is skipped and recorded."""

    kind = "images"
    fps = None

    def __init__(self, paths: list[Path], apply_exif: bool = True, max_pixels: int = MAX_PIXELS) -> None:
        self.paths = paths
        self.apply_exif = apply_exif
        self.max_pixels = max_pixels
        self.skipped: list[tuple[str, str]] = []
        folders = [str(path.absolute().parent) for path in paths]
        root = Path(os.path.commonpath(folders)) if folders else Path.cwd()
        self.names = [path.absolute().relative_to(root).as_posix() for path in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, (path, name) in enumerate(zip(self.paths, self.names)):
            try:
                image = read_image(path, self.apply_exif, self.max_pixels)
            except DataError as error:
                self.skipped.append((name, str(error)))
                continue
            yield Frame(index, name, image, float(index))


class VideoSource:
    """Frames of a video file or a webcam (`cv2.VideoCapture`), decoded one at a time (constant memory)."""

    def __init__(self, target: str | int, max_frames: int | None = None) -> None:
        self.target = target
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            what = f"webcam {target}" if isinstance(target, int) else f"video {target}"
            raise ValueError(f"cannot open {what} (missing, unreadable, or a codec OpenCV lacks)")
        self.kind = "webcam" if isinstance(target, int) else "video"
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else 30.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.declared_frames = count if count > 0 and self.kind == "video" else None
        self.max_frames = max_frames
        self._skipped: list[list] = []     # [first index, last index, reason]
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))

    def __len__(self) -> int:
        limits = [n for n in (self.declared_frames, self.max_frames) if n is not None]
        return min(limits) if limits else 0

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """(frame or frame range, reason) for every frame that could not be used; a run of failures is one entry."""
        return [(f"frame_{first:06d}" if first == last else f"frames {first}-{last}", reason)
                for first, last, reason in self._skipped]

    def _skip(self, index: int, reason: str) -> None:
        if self._skipped and self._skipped[-1][1] == index - 1 and self._skipped[-1][2] == reason:
            self._skipped[-1][1] = index
        else:
            self._skipped.append([index, index, reason])

    def __iter__(self) -> Iterator[Frame]:
        """Decode frame after frame. A video file is read up to its declared frame count (a failed read moves on:
        decoding resumes at the next key frame); a webcam or a file without a count stops after
        MAX_FAILED_READS failed reads in a row."""
        index, failures = -1, 0
        try:
            while self.max_frames is None or index + 1 < self.max_frames:
                ok, image = self.capture.read()
                index += 1
                problem = check_frame(image) if ok else "the decoder returned no frame"
                if problem is None:
                    failures = 0
                    yield Frame(index, f"frame_{index:06d}", image, index / self.fps)
                    continue
                failures += 1
                if self.declared_frames is not None and index >= self.declared_frames:
                    return
                if self.declared_frames is None and failures > MAX_FAILED_READS:
                    self._skip(index, f"{MAX_FAILED_READS} failed reads in a row: the stream has ended")
                    return
                self._skip(index, problem)
        finally:
            self.capture.release()


def open_source(spec: str | Sequence[str], apply_exif: bool = True, max_frames: int | None = None,
                max_pixels: int = MAX_PIXELS) -> ImageSource | VideoSource:
    """An image, a folder of images, a glob pattern, a video file or `webcam:N` -> a frame source; several images,
    folders and globs -> one source of all their images, in the order given."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    if len(specs) != 1:
        paths = [path for one in specs for path in _image_paths(one, several=True)]
        return ImageSource(paths[:max_frames], apply_exif, max_pixels)
    spec = specs[0]
    if spec.startswith("webcam:"):
        device = spec.split(":", 1)[1]
        if not device.isdigit():
            raise ValueError(f"webcam source must be webcam:N with N the device number, got {spec!r}")
        return VideoSource(int(device), max_frames)
    if Path(spec).is_file() and Path(spec).suffix.lower() in VIDEO_SUFFIXES:
        return VideoSource(spec, max_frames)
    return ImageSource(_image_paths(spec, several=False)[:max_frames], apply_exif, max_pixels)


def _image_paths(spec: str, several: bool) -> list[Path]:
    """The image files one source names: itself, a folder's images, a glob's matches (sorted)."""
    path = Path(spec)
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return paths
    if path.is_file():
        if several and path.suffix.lower() in VIDEO_SUFFIXES:
            raise ValueError(f"{path}: a video is a source on its own; give it alone")
        return [path]
    if glob.has_magic(spec):
        paths = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ValueError(f"no images match {spec!r}")
        return paths
    raise FileNotFoundError(f"source not found: {spec} (an image, a folder, a glob, a video or webcam:N)")

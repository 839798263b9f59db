"""Checked image decoding: missing, undecodable, truncated or wrongly sized images raise a `DataError`.

EXIF orientation: `load_image` keeps the stored pixels, which is what annotation and detection files refer to (the
dataset readers decode that way). `read_image` rotates a photo by its EXIF orientation tag by default, as photo viewers
show it (checked: a 40x80 JPEG tagged "rotate 90" decodes as 80x40); `apply_exif=False` keeps the stored pixels.
`decode_image_bytes` applies the same checks to bytes that never were a file (an upload to `unionpose serve`).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unionpose.core.errors import DataError, ImageTooLargeError

JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
# Annotations describe the stored pixels, as annotation tools see them: do not apply an EXIF rotation.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
HEADER_BYTES = 1 << 16     # enough for the JPEG markers (EXIF included) that precede the frame header
TAIL_BYTES = 1024          # where the end-of-image marker must be; trailing padding after it is tolerated
FIELD = "image"
MAX_PIXELS = 1 << 28       # 268 megapixels (~800 MB as BGR): beyond this `read_image` refuses, rather than swap


def load_image(path: str | Path, expected_hw: tuple[int, int] | None = None, record: str | None = None) -> np.ndarray:
    """Decode an image as BGR uint8 (H, W, 3); grayscale, alpha and 16-bit images are converted.

    `expected_hw` is the (height, width) the annotation declares; `record` names the annotation record in errors.
    OpenCV returns a partial image for a truncated JPEG without complaint, so the end marker is checked first.
    """
    path = Path(path)
    data = _read(path, record)
    _check_complete(path, data[:HEADER_BYTES], data[-TAIL_BYTES:], record)
    image = _decode(data, path, record, apply_exif=False)
    _check_size(path, image.shape[:2], expected_hw, record)
    return image


def verify_image(path: str | Path, expected_hw: tuple[int, int] | None = None, record: str | None = None
                 ) -> tuple[int, int]:
    """Check an image without decoding it (JPEG/PNG: header size and end marker) and return its (height, width).

    This is the quick pass of `unionpose data stats --verify-images`; other formats are decoded in full.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_BYTES)
            file.seek(max(file.seek(0, 2) - TAIL_BYTES, 0))
            tail = file.read()
    except FileNotFoundError:
        raise DataError(path, record, FIELD, "image file not found") from None
    except OSError as error:
        raise DataError(path, record, FIELD, f"cannot read the image file ({error.strerror})") from None
    _check_complete(path, head, tail, record)
    size = _header_size(head)
    if size is None and head.startswith(JPEG_START) and len(head) == HEADER_BYTES:
        size = _header_size(path.read_bytes())        # a very long EXIF block: look further
    if size is None:
        return tuple(load_image(path, expected_hw, record).shape[:2])
    _check_size(path, size, expected_hw, record)
    return size


def read_image(path: str | Path, apply_exif: bool = True, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image; grayscale, alpha and 16-bit images are converted. Errors are `DataError`s naming the file."""
    path = Path(path)
    size = verify_image(path)       # missing, empty or truncated files fail here, before decoding
    _check_pixels(path, size, max_pixels)
    if not apply_exif:
        return load_image(path)
    return _decode(_read(path, None), path, None, apply_exif=True)


def decode_image_bytes(data: bytes, name: str, apply_exif: bool = True, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image bytes from outside the file system (an upload) -> BGR uint8, with the checks of `read_image`.

    Only JPEG and PNG are taken: their size is read from the header, so an image over `max_pixels` is refused
    (`ImageTooLargeError`) before a pixel is decoded, however small the bytes that claim it. Empty, truncated,
    undecodable or other bytes are a `DataError`; `name` (the client's label, never opened) names them in messages.
    """
    _check_complete(name, data[:HEADER_BYTES], data[-TAIL_BYTES:], None)
    size = _header_size(data)
    if size is None:
        raise DataError(name, None, FIELD, "not a JPEG or PNG image (the formats whose size is checked before "
                                           "decoding)")
    _check_pixels(name, size, max_pixels)
    return _decode(data, name, None, apply_exif)


def _read(path: Path, record: str | None) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, record, FIELD, "image file not found") from None
    except OSError as error:
        raise DataError(path, record, FIELD, f"cannot read the image file ({error.strerror})") from None


def _check_complete(path: str | Path, head: bytes, tail: bytes, record: str | None) -> None:
    if not head:
        raise DataError(path, record, FIELD, "the image file is empty")
    if head.startswith(JPEG_START) and tail.rfind(JPEG_END) < 0:
        raise DataError(path, record, FIELD, "truncated JPEG: no end-of-image marker (FF D9) at the end of the file")
    if head.startswith(PNG_SIGNATURE) and not tail.rstrip(b"\x00").endswith(PNG_END):
        raise DataError(path, record, FIELD, "truncated PNG: the file does not end with an IEND chunk")


def _check_pixels(path: str | Path, size: tuple[int, int], max_pixels: int) -> None:
    height, width = size
    if height * width > max_pixels:
        raise ImageTooLargeError(path, None, FIELD, f"{width}x{height} is {height * width / 1e6:.0f} megapixels, "
                                                    f"over the limit of {max_pixels / 1e6:.0f} (downscale it first)")


def _decode(data: bytes, path: str | Path, record: str | None, apply_exif: bool) -> np.ndarray:
    """Decode as BGR uint8, rotated by the EXIF orientation tag when `apply_exif`, else as stored."""
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH if apply_exif else DECODE_FLAGS
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None:
        raise DataError(path, record, FIELD, f"cannot decode the image ({len(data)} bytes; not an image OpenCV reads)")
    return _to_bgr_uint8(image, path, record)


def _to_bgr_uint8(image: np.ndarray, path: str | Path, record: str | None) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DataError(path, record, FIELD, f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _check_size(path: Path, size: tuple[int, int], expected_hw: tuple[int, int] | None, record: str | None) -> None:
    if expected_hw is None or tuple(size) == tuple(expected_hw):
        return
    hint = " (swapped: an EXIF rotation?)" if tuple(size) == tuple(expected_hw)[::-1] else ""
    raise DataError(path, record, "height/width",
                    f"the annotation says {expected_hw[0]}x{expected_hw[1]} (h x w) but the image file is "
                    f"{size[0]}x{size[1]}{hint}")


def _header_size(head: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG frame header or a PNG IHDR chunk; None for other formats."""
    if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if not head.startswith(JPEG_START):
        return None
    position = 2
    while position + 9 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:                      # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:     # markers without a length
            position += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):   # start of frame
            height = int.from_bytes(head[position + 5:position + 7], "big")
            width = int.from_bytes(head[position + 7:position + 9], "big")
            return height, width
        position += 2 + int.from_bytes(head[position + 2:position + 4], "big")
    return None

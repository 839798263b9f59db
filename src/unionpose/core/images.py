"""The one gate every image passes before it is decoded, and checked decoding behind it.

Every path that reads an image (training crops, `data show` and `data stats --verify-images`, evaluation, prediction,
teachers, pseudo-labels) goes through `verify_image`: it reads the file's header and last bytes only and refuses,
with a `DataError` naming the file, an image that is missing, empty, truncated, of a format without a readable size,
of another size than annotated, or larger than a pixel limit. The limit matters because a small file can declare a
huge picture: a 1 MB PNG of 20000 x 20000 pixels decodes to 1.2 GB, in every loader worker at once, and a header
claiming 60000 x 60000 makes OpenCV itself fail. The size is taken from the header (JPEG, PNG, BMP, WebP, TIFF), so
nothing is allocated for a refused image.

`decode_image_bytes` applies the same checks to bytes that never were a file (an upload to `unionpose serve`).

EXIF orientation: `load_image` keeps the stored pixels, which is what annotation and detection files refer to (the
dataset readers decode that way). `read_image` rotates a photo by its EXIF orientation tag by default, as photo viewers
show it (checked: a 40x80 JPEG tagged "rotate 90" decodes as 80x40); `apply_exif=False` keeps the stored pixels.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from unionpose.core.errors import DataError, ImageTooLargeError

JPEG_START = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
BIGTIFF_SIGNATURES = (b"II+\x00", b"MM\x00+")
FORMATS = "JPEG, PNG, BMP, WebP or TIFF"
# Annotations describe the stored pixels, as annotation tools see them: do not apply an EXIF rotation.
DECODE_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH | cv2.IMREAD_IGNORE_ORIENTATION
HEADER_BYTES = 1 << 16     # enough for the JPEG markers (EXIF included) that precede the frame header
JPEG_SEARCH_BYTES = 1 << 24   # how far a frame header is looked for behind long EXIF / ICC blocks
MAX_TIFF_ENTRIES = 4096       # directory entries read, at most, looking for the size tags
TAIL_BYTES = 1024          # where the end-of-image marker must be; trailing padding after it is tolerated
FIELD = "image"
MAX_PIXELS = 1 << 28       # 268 megapixels (~800 MB as BGR): the default limit everywhere (configurable)


def verify_image(path: str | Path, expected_hw: tuple[int, int] | None = None, record: str | None = None,
                 max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The gate: check an image file without decoding it and return its (height, width) from the header.

    `expected_hw` is the (height, width) the annotation declares; `record` names the annotation record in errors.
    Refused: a missing, unreadable or empty file; a JPEG without its end marker or a PNG without its IEND chunk
    (OpenCV would return a partial picture without complaint); a format whose size cannot be read from the header;
    a size of zero, above `max_pixels`, or other than `expected_hw`.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(HEADER_BYTES)
            file.seek(max(file.seek(0, 2) - TAIL_BYTES, 0))
            tail = file.read()
            _check_complete(path, head, tail, record)
            size = _header_size(file, head)
    except FileNotFoundError:
        raise DataError(path, record, FIELD, "image file not found") from None
    except IsADirectoryError:
        raise DataError(path, record, FIELD, "is a folder, not an image file") from None
    except OSError as error:
        raise DataError(path, record, FIELD, f"cannot read the image file ({error.strerror})") from None
    if size is None:
        raise DataError(path, record, FIELD, f"cannot decode the image: not a {FORMATS} file with a readable size "
                                             "in its header")
    height, width = size
    if height <= 0 or width <= 0:
        raise DataError(path, record, FIELD, f"cannot decode the image: its header says {width}x{height} pixels")
    _check_pixels(path, size, max_pixels, record)
    _check_size(path, size, expected_hw, record)
    return size


def load_image(path: str | Path, expected_hw: tuple[int, int] | None = None, record: str | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an image as BGR uint8 (H, W, 3) after `verify_image`; grayscale, alpha and 16-bit images are converted.

    The stored pixels are kept (no EXIF rotation), as annotation files refer to them.
    """
    path = Path(path)
    size = verify_image(path, expected_hw, record, max_pixels)
    return _decode(path, _read(path, record), DECODE_FLAGS, size, record)


def read_image(path: str | Path, apply_exif: bool = True, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image after `verify_image`, turned upright by its EXIF orientation unless `apply_exif=False`."""
    path = Path(path)
    height, width = verify_image(path, max_pixels=max_pixels)
    if not apply_exif:
        return _decode(path, _read(path, None), DECODE_FLAGS, (height, width), None)
    image = _decode(path, _read(path, None), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH, None, None)
    if sorted(image.shape[:2]) != sorted((height, width)):
        raise DataError(path, None, FIELD, f"decodes to {image.shape[1]}x{image.shape[0]} pixels but its header "
                                           f"says {width}x{height}")
    return image


def decode_image_bytes(data: bytes, name: str, apply_exif: bool = True, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Image bytes from outside the file system (an upload) -> BGR uint8, with the checks of `read_image`.

    Only JPEG and PNG are taken. An image over `max_pixels` is refused (`ImageTooLargeError`) from its header, before
    a pixel is decoded, however small the bytes that claim it. Empty, truncated, undecodable or other bytes are a
    `DataError`; `name` (the client's label, never opened) names them in messages.
    """
    head = data[:HEADER_BYTES]
    _check_complete(name, head, data[-TAIL_BYTES:], None)
    size = _header_size(io.BytesIO(data), head) if head.startswith((JPEG_START, PNG_SIGNATURE)) else None
    if size is None:
        raise DataError(name, None, FIELD, "not a JPEG or PNG image (the formats whose size is checked before "
                                           "decoding)")
    _check_pixels(name, size, max_pixels, None)
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH if apply_exif else DECODE_FLAGS
    return _decode(name, data, flags, None if apply_exif else size, None)


def _check_pixels(path: str | Path, size: tuple[int, int], max_pixels: int, record: str | None) -> None:
    height, width = size
    if height * width > max_pixels:
        raise ImageTooLargeError(path, record, FIELD,
                                 f"{width}x{height} is {height * width / 1e6:.0f} megapixels, over the limit of "
                                 f"{max_pixels / 1e6:.0f} (downscale it, or raise the limit: max_image_pixels in the "
                                 "dataset entry, --max-image-pixels)")


def _decode(path: str | Path, data: bytes, flags: int, size: tuple[int, int] | None, record: str | None) -> np.ndarray:
    """imdecode, with OpenCV's own failures turned into a `DataError`; the result must have the header's size."""
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "OpenCV error"
        raise DataError(path, record, FIELD, f"cannot decode the image ({reason})") from None
    if image is None:
        raise DataError(path, record, FIELD, f"cannot decode the image ({len(data)} bytes; not an image OpenCV reads)")
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        raise DataError(path, record, FIELD, f"decodes to {image.shape[1]}x{image.shape[0]} pixels but its header "
                                             f"says {size[1]}x{size[0]}")
    return _to_bgr_uint8(image, path, record)


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


def _header_size(file: BinaryIO, head: bytes) -> tuple[int, int] | None:
    """(height, width) from the header of a JPEG, PNG, BMP, WebP or TIFF file; None for anything else."""
    if head.startswith(PNG_SIGNATURE):
        return _png_size(head)
    if head.startswith(JPEG_START):
        size = _jpeg_size(head)
        if size is None and len(head) == HEADER_BYTES:      # a very long EXIF block: look further
            file.seek(0)
            size = _jpeg_size(file.read(JPEG_SEARCH_BYTES))
        return size
    if head.startswith(b"BM"):
        return _bmp_size(head)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:4] in TIFF_SIGNATURES + BIGTIFF_SIGNATURES:
        return _tiff_size(file, head)
    return None


def _png_size(head: bytes) -> tuple[int, int] | None:
    if head[12:16] != b"IHDR" or len(head) < 24:
        return None
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in the first start-of-frame segment, walking the marker segments that precede it."""
    position = 2
    while position + 9 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:                      # fill byte
            position += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:     # markers without a length
            position += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):   # start of frame
            height = int.from_bytes(data[position + 5:position + 7], "big")
            width = int.from_bytes(data[position + 7:position + 9], "big")
            return height, width
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if length < 2:
            return None
        position += 2 + length
    return None


def _bmp_size(head: bytes) -> tuple[int, int] | None:
    if len(head) < 26:
        return None
    if int.from_bytes(head[14:18], "little") == 12:          # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return int.from_bytes(head[20:22], "little"), int.from_bytes(head[18:20], "little")
    width = int.from_bytes(head[18:22], "little", signed=True)
    height = int.from_bytes(head[22:26], "little", signed=True)   # negative: rows stored top-down
    return abs(height), width


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":     # lossy
        return int.from_bytes(head[28:30], "little") & 0x3FFF, int.from_bytes(head[26:28], "little") & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:                   # lossless
        bits = int.from_bytes(head[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:                                        # extended: the canvas
        return int.from_bytes(head[27:30], "little") + 1, int.from_bytes(head[24:27], "little") + 1
    return None


def _tiff_size(file: BinaryIO, head: bytes) -> tuple[int, int] | None:
    """ImageWidth (256) and ImageLength (257) of the first directory, which may sit anywhere in the file."""
    order = "little" if head.startswith(b"II") else "big"
    big = head[:4] in BIGTIFF_SIGNATURES
    # Classic TIFF: a 2-byte entry count, 12-byte entries (tag, type, 4-byte count, 4-byte value); BigTIFF: 8, 20, 8.
    count_size, value_size, entry_size = (8, 8, 20) if big else (2, 4, 12)
    if len(head) < 16:
        return None
    directory = int.from_bytes(head[8:16] if big else head[4:8], order)
    file.seek(directory)
    count = int.from_bytes(file.read(count_size), order)
    entries = file.read(min(count, MAX_TIFF_ENTRIES) * entry_size)
    values: dict[int, int] = {}
    for start in range(0, len(entries) - entry_size + 1, entry_size):
        tag = int.from_bytes(entries[start:start + 2], order)
        kind = int.from_bytes(entries[start + 2:start + 4], order)
        if tag in (256, 257):
            value = entries[start + entry_size - value_size:start + entry_size]
            width = {3: 2, 4: 4, 16: 8}.get(kind)              # SHORT, LONG, LONG8
            if width is None or width > value_size:
                return None
            values[tag] = int.from_bytes(value[:width], order)
    if 256 not in values or 257 not in values:
        return None
    return values[257], values[256]

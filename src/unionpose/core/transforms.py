"""Top-down geometry: person box -> centre/scale -> affine crop, and the input normalisation the model expects."""
from __future__ import annotations

import cv2
import numpy as np

from unionpose.core.constants import BOX_PADDING, IMAGE_MEAN_RGB, IMAGE_STD_RGB

MPII_PIXEL_STD = 200.0   # MPII's `scale` is the person height in units of 200 pixels


def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow the short side of `scale` (w, h) so that w / h == aspect_ratio; the crop never cuts the box."""
    width, height = float(scale[0]), float(scale[1])
    if width > height * aspect_ratio:
        height = width / aspect_ratio
    else:
        width = height * aspect_ratio
    return np.array([width, height], dtype=np.float64)


def box_to_center_scale(
    box_xywh: np.ndarray, aspect_ratio: float = 0.75, padding: float = BOX_PADDING
) -> tuple[np.ndarray, np.ndarray]:
    """Person box (x, y, w, h) -> crop centre (2,) and crop size `scale` (2,) in image pixels.

    The box is padded by `padding` so that limbs at its border keep some context, then its short side is grown to
    the model's aspect ratio (w / h), as RTMPose does, so the warp never stretches the person.
    """
    x, y, w, h = (float(v) for v in np.asarray(box_xywh, dtype=np.float64).reshape(4))
    center = np.array([x + 0.5 * w, y + 0.5 * h], dtype=np.float64)
    scale = fix_aspect_ratio(np.array([w, h]) * padding, aspect_ratio)
    return center, scale


def mpii_center_scale_to_box(center: np.ndarray, scale: float) -> np.ndarray:
    """MPII's annotated (centre, scale) -> a square box (x, y, w, h) in 0-based image pixels.

    MPII gives no box: the person is `200 * scale` pixels tall around `center`, and `center` sits a little high, so the
    reference pipeline moves it down by 15 * scale pixels; `center` is MATLAB 1-based, hence the -1.
    The usual 1.25 padding is applied later by `box_to_center_scale`, as for every other dataset.
    """
    center = np.asarray(center, dtype=np.float64).reshape(2)
    side = MPII_PIXEL_STD * float(scale)
    center_x = center[0] - 1.0
    center_y = center[1] + 15.0 * float(scale) - 1.0
    return np.array([center_x - 0.5 * side, center_y - 0.5 * side, side, side], dtype=np.float64)


def clip_box(box_xywh: np.ndarray, image_width: int, image_height: int) -> np.ndarray:
    """Clip a box (x, y, w, h) to the image, whose pixel centres span [0, W - 1] x [0, H - 1].

    The one clipping rule of UnionPose (docs/conventions.md, "Top-down crops"): the reference toolbox's dataset
    readers clip this way, so annotation boxes, box files and detector boxes all do. A box fully outside the image
    comes back with zero width or height (the readers drop such degenerate boxes).
    """
    x, y, w, h = (float(v) for v in np.asarray(box_xywh, dtype=np.float64).reshape(4))
    x1, x2 = np.clip([x, x + w], 0.0, float(image_width) - 1.0)
    y1, y2 = np.clip([y, y + h], 0.0, float(image_height) - 1.0)
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The point c with b->c equal to a->b turned by 90 degrees: it fixes the affine's shear and handedness."""
    direction = a - b
    return b + np.array([-direction[1], direction[0]])


def get_warp_matrix(
    center: np.ndarray,
    scale: np.ndarray,
    rotation_deg: float,
    output_size_wh: tuple[int, int],
    shift: tuple[float, float] = (0.0, 0.0),
    inverse: bool = False,
) -> np.ndarray:
    """The (2, 3) affine that maps image pixels to crop pixels (or crop to image with `inverse=True`).

    Built from three point pairs as in RTMPose: the (shifted) centre goes to the crop centre (w/2, h/2), the point
    half a box-width above it (rotated by `rotation_deg`) to the point half a crop-width above the crop centre, and a
    third point at a right angle fixes the rest. `scale` is the crop size in image pixels (w, h); only its width sets
    the zoom, so it must already have the output's aspect ratio. `shift` moves the centre by a fraction of `scale`.
    """
    center = np.asarray(center, dtype=np.float64).reshape(2)
    scale = np.asarray(scale, dtype=np.float64).reshape(2)
    output_width, output_height = float(output_size_wh[0]), float(output_size_wh[1])
    angle = np.deg2rad(rotation_deg)
    sin, cos = np.sin(angle), np.cos(angle)

    source_up = 0.5 * scale[0] * np.array([sin, -cos])      # (0, -w/2) rotated by the angle
    source = np.zeros((3, 2))
    source[0] = center + scale * np.asarray(shift, dtype=np.float64)
    source[1] = source[0] + source_up
    source[2] = _third_point(source[0], source[1])

    target = np.zeros((3, 2))
    target[0] = (0.5 * output_width, 0.5 * output_height)
    target[1] = target[0] + (0.0, -0.5 * output_width)
    target[2] = _third_point(target[0], target[1])

    if inverse:
        return _affine_from_points(target, source)
    return _affine_from_points(source, target)


def _affine_from_points(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Solve the (2, 3) affine taking three source points to three target points, in float64.

    cv2.getAffineTransform would do, but it wants float32 points, which costs the 1e-6 round-trip precision.
    """
    design = np.concatenate([source, np.ones((3, 1))], axis=1)       # (3, 3): rows (x, y, 1)
    return np.linalg.solve(design, target).T                          # (2, 3)


def warp_image(image: np.ndarray, matrix: np.ndarray, output_size_wh: tuple[int, int]) -> np.ndarray:
    """Crop with the affine `matrix` (image -> crop), bilinear, black outside the image."""
    return cv2.warpAffine(
        image, np.asarray(matrix, dtype=np.float64), (int(output_size_wh[0]), int(output_size_wh[1])),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points of shape (..., 2); returns float64 of the same shape."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def normalise(image_rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (h, w, 3) -> float32 (3, h, w) with RTMPose's mean/std: exactly what the model takes as input."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"normalise: expected an (h, w, 3) RGB image, got shape {image_rgb.shape}")
    mean = np.asarray(IMAGE_MEAN_RGB, dtype=np.float32)[:, None, None]
    inverse_std = (1.0 / np.asarray(IMAGE_STD_RGB, dtype=np.float32))[:, None, None]
    tensor = image_rgb.transpose(2, 0, 1).astype(np.float32, order="C")   # transpose first: one copy, 7x faster
    tensor -= mean
    tensor *= inverse_std
    return tensor

"""Top-down training augmentation (RTMPose recipe): flip, half body, box jitter, then colour, blur, dropout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np
from pydantic import Field, model_validator

from unionpose.core.config_schema import ConfigModel
from unionpose.core.constants import BOX_PADDING
from unionpose.core.transforms import (
    box_to_center_scale,
    fix_aspect_ratio,
    get_warp_matrix,
    transform_points,
    warp_image,
)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class AugmentConfig(ConfigModel):
    """Augmentation settings; defaults are RTMPose's COCO recipe (docs/conventions.md); `enabled=False` for
    validation."""

    enabled: bool = True
    box_padding: float = Field(BOX_PADDING, gt=0.0)         # box -> crop padding; used with augmentation off as well
    flip_prob: Probability = 0.5
    half_body_prob: Probability = 0.3
    half_body_min_points: int = Field(9, ge=0)       # visible points needed before half body is tried
    half_body_min_upper: int = Field(2, ge=1)        # visible points an upper-body crop needs
    half_body_min_lower: int = Field(3, ge=1)        # visible points a lower-body crop needs
    half_body_upper_prob: Probability = 0.7          # which half to crop when both qualify
    half_body_padding: float = Field(1.5, gt=0.0)
    shift_factor: float = Field(0.16, ge=0.0)        # centre shift, as a fraction of the crop size
    shift_prob: Probability = 0.3
    scale_range: tuple[float, float] = (0.6, 1.4)
    scale_prob: Probability = 1.0
    rotation_factor: float = Field(80.0, ge=0.0)     # degrees
    rotation_prob: Probability = 0.6
    hsv_prob: Probability = 1.0
    hue_delta: int = Field(5, ge=0)                  # OpenCV 8-bit HSV units (hue 0-179); each gain on with p=0.5
    saturation_delta: int = Field(30, ge=0)
    value_delta: int = Field(30, ge=0)
    blur_prob: Probability = 0.1
    median_blur_prob: Probability = 0.1
    blur_max_kernel: int = Field(7, ge=3)            # odd kernel drawn from 3..blur_max_kernel
    dropout_prob: Probability = 1.0
    dropout_size: tuple[float, float] = (0.2, 0.4)   # hole side as a fraction of the crop side

    @model_validator(mode="after")
    def _check_ranges(self) -> AugmentConfig:
        low, high = self.scale_range
        if not 0.0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {self.scale_range}")
        low, high = self.dropout_size
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"dropout_size must satisfy 0 < low <= high <= 1, got {self.dropout_size}")
        if self.blur_max_kernel % 2 == 0:
            raise ValueError(f"blur_max_kernel must be odd, got {self.blur_max_kernel}")
        return self

    def mild(self) -> AugmentConfig:
        """RTMPose's milder last-epochs variant: no shift, scale [0.75, 1.25], rotation 60, dropout p=0.5."""
        return self.model_validate(
            {**self.model_dump(), "shift_prob": 0.0, "scale_range": (0.75, 1.25), "rotation_factor": 60.0,
             "dropout_prob": 0.5}
        )


@dataclass
class CropSample:
    """One person cropped for the model, with the geometry needed to map predictions back to the image."""

    image: np.ndarray       # (h, w, 3) uint8, same channel order as the input image
    keypoints: np.ndarray   # (K, 2) float32, crop pixels, already in the flipped order when `flipped`
    visible: np.ndarray     # (K,) as given, 0 where the point falls outside the crop
    annotated: np.ndarray   # (K,) bool
    matrix: np.ndarray      # (2, 3) float64, original image pixels -> crop pixels (includes the mirror when flipped)
    center: np.ndarray      # (2,) crop centre in original image pixels
    scale: np.ndarray       # (2,) crop size (w, h) in image pixels
    rotation: float         # degrees
    flipped: bool


def truncated_normal(rng: np.random.Generator, count: int) -> np.ndarray:
    """Standard normal draws truncated to [-1, 1] by rejection: a true truncated normal, not a clipped one
    (clipping would pile about a third of the draws onto the limits, e.g. rotations of exactly +-80 degrees)."""
    out = np.empty(0)
    while out.size < count:
        draws = rng.standard_normal(2 * count)
        out = np.concatenate([out, draws[np.abs(draws) <= 1.0]])
    return out[:count]


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """A generator that depends only on (seed, epoch, index): an augmentation does not depend on worker order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


class TopDownAugmenter:
    """Crop one person from an image with RTMPose's training augmentation (or a plain crop when disabled).

    Geometry is done in the image frame: a flip mirrors the keypoints (x' = W - 1 - x, left and right swapped by
    `flip_indices`) and the box centre, and the mirror is folded into the affine matrix, so the full image is never
    copied; the crop equals warping the mirrored image exactly. Colour, blur and dropout then act on the small crop.
    """

    def __init__(
        self,
        config: AugmentConfig,
        input_size_hw: tuple[int, int],
        flip_indices: np.ndarray,
        upper_body_ids: tuple[int, ...] | np.ndarray = (),
        lower_body_ids: tuple[int, ...] | np.ndarray = (),
    ) -> None:
        self.config = config
        self.input_size_hw = (int(input_size_hw[0]), int(input_size_hw[1]))
        self.output_size_wh = (self.input_size_hw[1], self.input_size_hw[0])
        self.aspect_ratio = self.input_size_hw[1] / self.input_size_hw[0]
        self.flip_indices = np.asarray(flip_indices, dtype=np.int64).reshape(-1)
        num_keypoints = len(self.flip_indices)
        if not np.array_equal(np.sort(self.flip_indices), np.arange(num_keypoints)) or not np.array_equal(
            self.flip_indices[self.flip_indices], np.arange(num_keypoints)
        ):
            raise ValueError(f"flip_indices must be a self-inverse permutation of 0..K-1, got {flip_indices}")
        self.upper_body_ids = self._check_ids(upper_body_ids, "upper_body_ids")
        self.lower_body_ids = self._check_ids(lower_body_ids, "lower_body_ids")

    def _check_ids(self, ids: tuple[int, ...] | np.ndarray, field: str) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.flip_indices)):
            raise ValueError(f"{field} must index the {len(self.flip_indices)} keypoints, got {ids.tolist()}")
        return ids

    def __call__(
        self,
        image: np.ndarray,
        box_xywh: np.ndarray,
        keypoints: np.ndarray,
        visible: np.ndarray,
        annotated: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> CropSample:
        """Crop one person: flip, half body, box jitter (image frame), warp, then colour, blur and dropout.

        `rng` comes from `sample_rng(seed, epoch, index)`; it may be None when augmentation is disabled.
        """
        keypoints, visible, annotated = self._check_inputs(image, box_xywh, keypoints, visible, annotated)
        augment = self.config.enabled
        if augment and rng is None:
            raise ValueError("TopDownAugmenter: augmentation is enabled, so an rng (see sample_rng) is required")
        image_width = image.shape[1]
        center, scale = box_to_center_scale(box_xywh, self.aspect_ratio, self.config.box_padding)
        rotation = 0.0
        flipped = bool(augment and rng.random() < self.config.flip_prob)
        if flipped:
            keypoints = keypoints[self.flip_indices]
            keypoints[:, 0] = image_width - 1 - keypoints[:, 0]
            visible, annotated = visible[self.flip_indices], annotated[self.flip_indices]
            center[0] = image_width - 1 - center[0]
        if augment:
            if rng.random() < self.config.half_body_prob:
                center, scale = self._half_body_box(keypoints, visible, annotated, rng) or (center, scale)
            center, scale, rotation = self._jitter_box(center, scale, rng)
        scale = fix_aspect_ratio(scale, self.aspect_ratio)

        matrix = get_warp_matrix(center, scale, rotation, self.output_size_wh)
        crop_keypoints = transform_points(keypoints, matrix)
        if flipped:
            # image -> mirrored image -> crop, so the caller can map crop pixels back to the original image
            mirror = np.array([[-1.0, 0.0, image_width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            matrix = matrix @ mirror
            center[0] = image_width - 1 - center[0]
        crop = warp_image(image, matrix, self.output_size_wh)

        width, height = self.output_size_wh
        inside = (
            (crop_keypoints[:, 0] >= 0) & (crop_keypoints[:, 0] <= width - 1)
            & (crop_keypoints[:, 1] >= 0) & (crop_keypoints[:, 1] <= height - 1)
        )
        visible = np.where(inside, visible, 0).astype(visible.dtype)
        if augment:
            crop = self._photometric(crop, rng)
        return CropSample(
            image=crop, keypoints=crop_keypoints.astype(np.float32), visible=visible, annotated=annotated,
            matrix=matrix, center=center, scale=scale, rotation=float(rotation), flipped=flipped,
        )

    def _check_inputs(
        self, image: np.ndarray, box_xywh: np.ndarray, keypoints: np.ndarray, visible: np.ndarray, annotated: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        num_keypoints = len(self.flip_indices)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got shape {image.shape} dtype {image.dtype}")
        box = np.asarray(box_xywh, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
            raise ValueError(f"box_xywh must be 4 finite numbers with positive width and height, got {box_xywh}")
        keypoints = np.array(keypoints, dtype=np.float64)
        if keypoints.shape != (num_keypoints, 2):
            raise ValueError(f"keypoints must be ({num_keypoints}, 2) as flip_indices, got shape {keypoints.shape}")
        visible = np.array(visible).reshape(-1)
        annotated = np.array(annotated, dtype=bool).reshape(-1)
        if visible.shape != (num_keypoints,) or annotated.shape != (num_keypoints,):
            raise ValueError(
                f"visible {visible.shape} and annotated {annotated.shape} must both have {num_keypoints} entries"
            )
        return keypoints, visible, annotated

    def _half_body_box(
        self, keypoints: np.ndarray, visible: np.ndarray, annotated: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A box around the visible upper or lower body, or None when the person does not qualify."""
        config = self.config
        usable = (visible > 0) & annotated & np.isfinite(keypoints).all(axis=1)
        prefer_upper = rng.random() < config.half_body_upper_prob
        if usable.sum() < config.half_body_min_points or not (self.upper_body_ids.size and self.lower_body_ids.size):
            return None
        upper = self.upper_body_ids[usable[self.upper_body_ids]]
        lower = self.lower_body_ids[usable[self.lower_body_ids]]
        upper_ok, lower_ok = len(upper) >= config.half_body_min_upper, len(lower) >= config.half_body_min_lower
        if not (upper_ok or lower_ok):
            return None
        selected = upper if (upper_ok and (prefer_upper or not lower_ok)) else lower
        points = keypoints[selected]
        low, high = points.min(axis=0), points.max(axis=0)
        if (high - low).max() < 1.0:
            return None
        center = 0.5 * (low + high)
        scale = fix_aspect_ratio(high - low, self.aspect_ratio) * config.half_body_padding
        return center, scale

    def _jitter_box(
        self, center: np.ndarray, scale: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Random shift, zoom and rotation: standard normal draws truncated to [-1, 1], then scaled (as RTMPose)."""
        config = self.config
        draws = truncated_normal(rng, 4)                        # shift x, shift y, scale, rotation
        gates = rng.random(3)                                   # shift, scale, rotation
        if gates[0] < config.shift_prob:
            center = center + draws[:2] * config.shift_factor * scale
        if gates[1] < config.scale_prob:
            low, high = config.scale_range
            scale = scale * (0.5 * (low + high) + draws[2] * 0.5 * (high - low))
        rotation = float(draws[3] * config.rotation_factor) if gates[2] < config.rotation_prob else 0.0
        return center, scale, rotation

    def _photometric(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """HSV jitter, box / median blur and one coarse-dropout hole, on the crop only (cheap at model size)."""
        config = self.config
        gates = rng.random(4)                                   # hsv, blur, median blur, dropout
        if gates[0] < config.hsv_prob:
            crop = _jitter_hsv(crop, config, rng)
        kernels = np.arange(3, config.blur_max_kernel + 1, 2)
        if gates[1] < config.blur_prob:
            size = int(rng.choice(kernels))
            crop = cv2.blur(crop, (size, size))
        if gates[2] < config.median_blur_prob:
            crop = cv2.medianBlur(crop, int(rng.choice(kernels)))
        if gates[3] < config.dropout_prob:
            height, width = crop.shape[:2]
            low, high = config.dropout_size
            hole_h = int(height * rng.uniform(low, high))
            hole_w = int(width * rng.uniform(low, high))
            top = int(rng.integers(0, height - hole_h + 1))
            left = int(rng.integers(0, width - hole_w + 1))
            crop[top:top + hole_h, left:left + hole_w] = 0
        return crop


def _jitter_hsv(crop: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Shift hue (cyclic) and add to saturation and value, each gain switched on with p=0.5 (YOLOX-style).

    The crop is treated as BGR. On an RGB crop the hue moves the other way round the colour circle, which the
    symmetric draw makes equally likely, so the augmentation is the same in distribution for either channel order.
    """
    deltas = np.array([config.hue_delta, config.saturation_delta, config.value_delta], dtype=np.float64)
    gains = np.round(rng.uniform(-1.0, 1.0, 3) * deltas * rng.integers(0, 2, 3)).astype(np.int64)
    if not gains.any():
        return crop
    values = np.arange(256)
    table = np.stack(
        [(values + gains[0]) % 180, np.clip(values + gains[1], 0, 255), np.clip(values + gains[2], 0, 255)], axis=-1
    ).astype(np.uint8)[None]                                  # (1, 256, 3): one lookup table per channel
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    return cv2.cvtColor(cv2.LUT(hsv, table), cv2.COLOR_HSV2BGR)

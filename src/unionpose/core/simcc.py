"""SimCC codec: keypoints in crop pixels <-> per-axis 1-D classification targets over sub-pixel bins (RTMPose)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unionpose.core.constants import SIMCC_SPLIT_RATIO

# Sigmas (x, y) in bins that the RTMPose recipes use at split ratio 2, keyed by input (h, w); 384x288 is the
# RTMPose-l/x high-resolution recipe (docs/conventions.md).
_RECIPE_SIGMAS = {
    (256, 192): (4.9, 5.66),
    (256, 256): (5.66, 5.66),
    (384, 288): (6.93, 7.99),
}


def default_sigma(input_size_hw: tuple[int, int], split_ratio: float = SIMCC_SPLIT_RATIO) -> tuple[float, float]:
    """The Gaussian width (x, y) in bins for an input size.

    The recipe values are used where they exist. Elsewhere each axis gets 5.66 * sqrt(L / 256) * split_ratio / 2 bins
    for an axis of L pixels: this reproduces both recipe values (192 px -> 4.90, 256 px -> 5.66),
    widens the target less than the axis grows (a bigger input resolves a point more finely), and keeps the width
    in pixels fixed when only the split ratio changes.
    """
    height, width = int(input_size_hw[0]), int(input_size_hw[1])
    if split_ratio == SIMCC_SPLIT_RATIO and (height, width) in _RECIPE_SIGMAS:
        return _RECIPE_SIGMAS[(height, width)]
    return tuple(float(5.66 * np.sqrt(length / 256.0) * split_ratio / SIMCC_SPLIT_RATIO) for length in (width, height))


def resampled_bin_positions(source_length: int, source_ratio: float, target_length: int,
                            target_ratio: float) -> np.ndarray:
    """For each bin of a target axis, the fractional source bin that sits at the same place in the crop.

    Both sides see the same box; the crop is resized between their sizes (bilinear with half-pixel centres, as
    cv2.resize), so target pixel x_t and source pixel x_s see the same point when
        x_s + 0.5 = (x_t + 0.5) * source_length / target_length,
    and bin b sits at pixel b / ratio on either side. Positions are clamped to the source's bins. Reading source
    values there by linear interpolation gives target values that keep meaning the same fraction of the crop: how a
    teacher's logits are read at a student's bins, and how a classifier's rows move to another input size.
    """
    source_bins = int(round(source_length * source_ratio))
    target_bins = int(round(target_length * target_ratio))
    target_pixels = np.arange(target_bins, dtype=np.float64) / target_ratio
    source_pixels = (target_pixels + 0.5) * (source_length / target_length) - 0.5
    return np.clip(source_pixels * source_ratio, 0, source_bins - 1)


@dataclass
class SimCCTarget:
    """Training target for one crop: a Gaussian per keypoint and axis (peak 1, not normalised) and a weight."""

    x: np.ndarray        # (K, num_bins_x) float32
    y: np.ndarray        # (K, num_bins_y) float32
    weight: np.ndarray   # (K,) float32, 0 where the keypoint gives no supervision


class SimCCCodec:
    """Encode crop-pixel keypoints as SimCC targets and decode SimCC logits back to crop pixels.

    Each axis of the crop is split into `split_ratio` bins per pixel (384 x 512 bins for a 256x192 input at ratio 2).
    """

    def __init__(
        self,
        input_size_hw: tuple[int, int] = (256, 192),
        sigma: tuple[float, float] | None = None,
        split_ratio: float = SIMCC_SPLIT_RATIO,
    ) -> None:
        height, width = (int(v) for v in input_size_hw)
        if height <= 0 or width <= 0 or split_ratio <= 0:
            raise ValueError(f"SimCCCodec: input_size_hw {input_size_hw} and split_ratio {split_ratio} must be > 0")
        self.input_size_hw = (height, width)
        self.split_ratio = float(split_ratio)
        sigma = sigma if sigma is not None else default_sigma((height, width), split_ratio)
        self.sigma = tuple(float(s) for s in sigma)
        if len(self.sigma) != 2 or min(self.sigma) <= 0:
            raise ValueError(f"SimCCCodec: sigma must be two positive numbers (x, y) in bins, got {sigma}")
        self.num_bins_x = int(round(width * self.split_ratio))
        self.num_bins_y = int(round(height * self.split_ratio))
        self._bins_x = np.arange(self.num_bins_x, dtype=np.float32)
        self._bins_y = np.arange(self.num_bins_y, dtype=np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray, annotated: np.ndarray) -> SimCCTarget:
        """Gaussian targets centred on round(coord * split_ratio) for keypoints (K, 2) in crop pixels.

        The weight is 0 for a keypoint that is not visible (visible == 0), that the dataset does not annotate, whose
        coordinates are not finite, or whose +-3 sigma window lies fully outside the bins; its target rows are 0.
        A point just outside the crop keeps weight 1: the visible tail of its Gaussian still says where it is.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim != 2 or keypoints.shape[1] != 2:
            raise ValueError(f"SimCCCodec.encode: keypoints must be (K, 2), got shape {keypoints.shape}")
        num_keypoints = keypoints.shape[0]
        visible = np.asarray(visible).reshape(-1)
        annotated = np.asarray(annotated).reshape(-1)
        if visible.shape[0] != num_keypoints or annotated.shape[0] != num_keypoints:
            raise ValueError(
                f"SimCCCodec.encode: visible {visible.shape} and annotated {annotated.shape} must have "
                f"K={num_keypoints} entries"
            )

        finite = np.isfinite(keypoints).all(axis=1)
        centres = np.round(np.where(finite[:, None], keypoints, 0.0) * self.split_ratio)     # (K, 2) bins
        radius = 3.0 * np.asarray(self.sigma)
        num_bins = np.array([self.num_bins_x, self.num_bins_y])
        window_overlaps = ((centres - radius) < num_bins).all(axis=1) & ((centres + radius + 1) >= 0).all(axis=1)
        weight = (visible > 0) & annotated.astype(bool) & finite & window_overlaps

        x = _gaussian(self._bins_x, centres[:, 0], self.sigma[0]) * weight[:, None]
        y = _gaussian(self._bins_y, centres[:, 1], self.sigma[1]) * weight[:, None]
        return SimCCTarget(x=x.astype(np.float32), y=y.astype(np.float32), weight=weight.astype(np.float32))

    def decode(self, simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K, Wx), (N, K, Wy) -> keypoints (N, K, 2) float32 in crop pixels and scores (N, K) float32.

        Argmax per axis of the raw logits; coordinate = bin / split_ratio; score = min of the two maxima.
        A keypoint whose score is <= 0 (or not finite) is invalid: its coordinates are -1 and its score 0.
        Inputs without the batch axis, (K, W), give (K, 2) and (K,).
        """
        simcc_x = np.asarray(simcc_x)
        simcc_y = np.asarray(simcc_y)
        unbatched = simcc_x.ndim == 2
        if unbatched:
            simcc_x, simcc_y = simcc_x[None], simcc_y[None]
        if simcc_x.ndim != 3 or simcc_y.ndim != 3 or simcc_x.shape[:2] != simcc_y.shape[:2]:
            raise ValueError(
                f"SimCCCodec.decode: expected simcc_x (N, K, Wx) and simcc_y (N, K, Wy), got {simcc_x.shape} and "
                f"{simcc_y.shape}"
            )
        if simcc_x.shape[2] != self.num_bins_x or simcc_y.shape[2] != self.num_bins_y:
            raise ValueError(
                f"SimCCCodec.decode: this codec has {self.num_bins_x} x-bins and {self.num_bins_y} y-bins, got "
                f"{simcc_x.shape[2]} and {simcc_y.shape[2]}"
            )
        bins = np.stack([simcc_x.argmax(axis=2), simcc_y.argmax(axis=2)], axis=-1)
        keypoints = bins.astype(np.float32) / np.float32(self.split_ratio)
        scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float32)
        invalid = ~(scores > 0)
        keypoints[invalid] = -1.0
        scores[invalid] = 0.0
        if unbatched:
            return keypoints[0], scores[0]
        return keypoints, scores

    def soft_targets_from_coordinates(
        self, keypoints: np.ndarray, confidence: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """SimCC-shaped soft targets for a teacher that only gives coordinates (e.g. MediaPipe), in crop pixels.

        keypoints (..., K, 2) and confidence (..., K) -> x (..., K, Wx), y (..., K, Wy) float32: a Gaussian with the
        codec's sigma and peak `confidence`, so they stand in for teacher logits in the KL loss, where softmax(beta * t)
        turns a confident point into a sharp distribution and a doubtful one into a flat one; decoding them gives the
        coordinates back (to the bin) with score = confidence. Unlike `encode`, the centre is not rounded to a bin, so
        the teacher's sub-bin position survives. Points with confidence <= 0 or non-finite coordinates give all-zero
        rows (a uniform distribution after the softmax); the caller masks them out of the loss.
        """
        keypoints = np.asarray(keypoints, dtype=np.float64)
        confidence = np.asarray(confidence, dtype=np.float64)
        if keypoints.shape[-1] != 2 or keypoints.shape[:-1] != confidence.shape:
            raise ValueError(
                "SimCCCodec.soft_targets_from_coordinates: expected keypoints (..., K, 2) and confidence (..., K), "
                f"got {keypoints.shape} and {confidence.shape}"
            )
        usable = np.isfinite(keypoints).all(axis=-1) & np.isfinite(confidence) & (confidence > 0)
        peak = np.where(usable, confidence, 0.0)[..., None]
        centres = np.where(usable[..., None], keypoints, 0.0) * self.split_ratio
        x = _gaussian(self._bins_x, centres[..., 0], self.sigma[0]) * peak
        y = _gaussian(self._bins_y, centres[..., 1], self.sigma[1]) * peak
        return x.astype(np.float32), y.astype(np.float32)


def _gaussian(bins: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-(bin - centre)^2 / (2 sigma^2)) for every centre (...,) and bin (W,) -> (..., W)."""
    offsets = bins - centres[..., None].astype(np.float32)
    return np.exp(offsets * offsets * np.float32(-0.5 / sigma**2))

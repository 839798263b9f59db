"""Depth codec: root-relative depth per keypoint <-> SimCC-style classification over depth bins (docs/3d.md).

The depth head is a third SimCC axis: the same tokens that give x and y give a distribution over `bins` evenly
spaced depths from -range to +range, in the unit of the training data (the synthetic people: body heights). Depth is
camera-space z (away from the camera) minus the root's, so it does not change under the crop's shift, scale,
in-plane rotation or mirror (a mirror only swaps left and right points).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unionpose.core.values import is_finite_number, is_int

DEFAULT_DEPTH_RANGE = 1.0            # +- body heights: every point of a person lies within one height of its root
DEFAULT_DEPTH_UNIT = "body_height"
DEFAULT_DEPTH_BINS = 256
DEFAULT_DEPTH_SIGMA = 4.0            # Gaussian width in bins (0.03 body heights at the defaults)


@dataclass(frozen=True)
class DepthCodec:
    """Encode root-relative depths as Gaussian targets over bins, and decode logits back to depths."""

    range: float = DEFAULT_DEPTH_RANGE
    bins: int = DEFAULT_DEPTH_BINS
    unit: str = DEFAULT_DEPTH_UNIT
    sigma: float = DEFAULT_DEPTH_SIGMA

    def __post_init__(self) -> None:
        if not (is_finite_number(self.range) and self.range > 0):
            raise ValueError(f"depth range must be a positive number, got {self.range!r}")
        if not is_int(self.bins) or self.bins < 2:
            raise ValueError(f"depth bins must be an integer of at least 2, got {self.bins!r}")
        if not (is_finite_number(self.sigma) and self.sigma > 0):
            raise ValueError(f"depth sigma must be a positive number of bins, got {self.sigma!r}")
        if not isinstance(self.unit, str) or not self.unit:
            raise ValueError(f"depth unit must be a non-empty name, got {self.unit!r}")

    @property
    def step(self) -> float:
        """Depth per bin."""
        return 2.0 * self.range / (self.bins - 1)

    def bin_of(self, depth: np.ndarray) -> np.ndarray:
        """Fractional bin of each depth (bin 0 is -range, the last bin +range)."""
        return (np.asarray(depth, dtype=np.float64) + self.range) / self.step

    def encode(self, depth: np.ndarray, annotated_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """depth (K,), annotated_z (K,) -> target (K, bins) float32 (peak 1 at the rounded bin) and weight (K,).

        The weight is 0 where depth is not annotated, not finite, or outside +-range (its row is then all zero).
        """
        depth = np.asarray(depth, dtype=np.float64).reshape(-1)
        annotated_z = np.asarray(annotated_z, dtype=bool).reshape(-1)
        if annotated_z.shape != depth.shape:
            raise ValueError(f"DepthCodec.encode: depth {depth.shape} and annotated_z {annotated_z.shape} differ")
        finite = np.isfinite(depth)
        weight = annotated_z & finite & (np.abs(np.where(finite, depth, 0.0)) <= self.range)
        centres = np.round(self.bin_of(np.where(weight, depth, 0.0)))
        offsets = np.arange(self.bins, dtype=np.float64) - centres[:, None]
        target = np.exp(-0.5 * (offsets / self.sigma) ** 2) * weight[:, None]
        return target.astype(np.float32), weight.astype(np.float32)

    def decode(self, simcc_z: np.ndarray) -> np.ndarray:
        """Logits (..., bins) -> depths (...) float32: the argmax bin's depth, as x and y are decoded."""
        simcc_z = np.asarray(simcc_z)
        if simcc_z.shape[-1] != self.bins:
            raise ValueError(f"DepthCodec.decode: this codec has {self.bins} depth bins, got {simcc_z.shape[-1]}")
        return (simcc_z.argmax(axis=-1) * self.step - self.range).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"range": float(self.range), "bins": int(self.bins), "unit": self.unit, "sigma": float(self.sigma)}

    @classmethod
    def from_dict(cls, value: Any, source: str) -> DepthCodec:
        """What `to_dict` wrote; errors name `source`."""
        if not isinstance(value, dict) or set(value) != {"range", "bins", "unit", "sigma"}:
            raise ValueError(f"{source}: depth must be an object with range, bins, unit and sigma, got {value!r}")
        try:
            return cls(range=value["range"], bins=value["bins"], unit=value["unit"], sigma=value["sigma"])
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

"""One-Euro filtering of keypoint trajectories: steady when a person stands still, little lag when they move."""
from __future__ import annotations

import math

import numpy as np


class OneEuroFilter:
    """The One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) on an array signal, e.g. one person's (K, 2) points.

    A low-pass filter whose cut-off frequency rises with the signal's speed: `min_cutoff` (Hz) sets the smoothing
    at rest (lower: steadier), `beta` how fast the cut-off follows the speed (higher: less lag), `derivative_cutoff`
    (Hz) smooths the speed estimate itself.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, derivative_cutoff: float = 1.0) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivative_cutoff = derivative_cutoff
        self._value: np.ndarray | None = None
        self._derivative: np.ndarray | None = None
        self._time: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, period: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / period)

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        """Filter the sample `value` taken at `time` (seconds); returns the filtered value."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or time <= self._time:
            self._value, self._derivative, self._time = value, np.zeros_like(value), time
            return value
        period = time - self._time
        derivative = (value - self._value) / period
        derivative_alpha = self._alpha(self.derivative_cutoff, period)
        self._derivative = derivative_alpha * derivative + (1 - derivative_alpha) * self._derivative
        alpha = self._alpha(self.min_cutoff + self.beta * np.abs(self._derivative), period)
        self._value = alpha * value + (1 - alpha) * self._value
        self._time = time
        return self._value


class TrackSmoother:
    """One One-Euro filter per track id over that person's keypoints; filters of vanished tracks are dropped."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, derivative_cutoff: float = 1.0) -> None:
        self.settings = (min_cutoff, beta, derivative_cutoff)
        self.filters: dict[int, OneEuroFilter] = {}

    def __call__(self, track_ids: np.ndarray, keypoints: np.ndarray, time: float) -> np.ndarray:
        """Keypoints (N, K, 2) of the people with `track_ids` (N,) at `time` seconds -> smoothed keypoints."""
        self.filters = {i: f for i, f in self.filters.items() if i in set(track_ids.tolist())}
        smoothed = np.empty_like(keypoints)
        for n, track_id in enumerate(track_ids.tolist()):
            filter_ = self.filters.setdefault(track_id, OneEuroFilter(*self.settings))
            smoothed[n] = filter_(keypoints[n], time)
        return smoothed

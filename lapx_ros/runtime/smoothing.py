"""One-Euro filtering of keypoints (Casiez et al., CHI 2012).

Slow motion is smoothed strongly (less jitter), fast motion weakly (less lag). The
cut-off parameters can be changed at any time; the filters keep their state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class OneEuroParams:
    min_cutoff: float  # Hz; lower = smoother at rest
    beta: float  # how fast the cut-off rises with speed (per pixel/s)
    d_cutoff: float  # Hz; cut-off of the speed estimate


def _alpha(cutoff, dt: float):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters an array of values (e.g. (K, 2) keypoints) element-wise over time."""

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._x = None
        self._dx = None
        self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        p = self.params
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = _alpha(p.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        # A joint that was not finite last time restarts from its new value.
        self._x = np.where(np.isfinite(self._x), a * x + (1 - a) * self._x, x)
        self._t = t
        return self._x.copy()


class PoseSmoother:
    """One filter per tracked person; filters of people no longer tracked are freed."""

    def __init__(self, params: OneEuroParams):
        self.params = params
        self._filters: dict[int, OneEuroFilter] = {}

    def set_params(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        # Filters share the params object, so a change applies to everyone at once.
        self.params.min_cutoff, self.params.beta, self.params.d_cutoff = min_cutoff, beta, d_cutoff

    def __call__(self, track_id: int, keypoints: np.ndarray, t: float) -> np.ndarray:
        f = self._filters.get(track_id)
        if f is None:
            f = self._filters[track_id] = OneEuroFilter(self.params)
        return f(keypoints, t)

    def retain(self, track_ids) -> None:
        keep = set(track_ids)
        for tid in [t for t in self._filters if t not in keep]:
            del self._filters[tid]

    def reset(self) -> None:
        self._filters.clear()

    def __len__(self) -> int:
        return len(self._filters)

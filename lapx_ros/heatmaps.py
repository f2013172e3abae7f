"""Gaussian heatmap targets and sub-pixel decoding (numpy only).

Training encodes keypoints as heatmaps; evaluation and the ROS runtime decode with the
same functions, so what is measured offline is what the node publishes.
"""
from __future__ import annotations

import numpy as np

DECODE_METHODS = ("argmax", "quarter", "dark")


def encode(points: np.ndarray, weights: np.ndarray, heatmap_size, sigma: float = 2.0):
    """Gaussian targets centred at sub-pixel ``points`` (K, 2) in heatmap pixels.

    Returns (targets (K, H, W) float32, weights (K,) float32). A joint whose centre is
    outside the heatmap gets weight 0 (and an all-zero target).
    """
    width, height = int(heatmap_size[0]), int(heatmap_size[1])
    points = np.asarray(points, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32).copy()
    xs = np.arange(width, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)
    targets = np.zeros((len(points), height, width), dtype=np.float32)
    for k, (x, y) in enumerate(points):
        if weights[k] <= 0 or not (np.isfinite(x) and np.isfinite(y)):
            weights[k] = 0.0
            continue
        if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
            weights[k] = 0.0
            continue
        gx = np.exp(-((xs - x) ** 2) / (2 * sigma**2))
        gy = np.exp(-((ys - y) ** 2) / (2 * sigma**2))
        targets[k] = gy[:, None] * gx[None, :]
    return targets, weights


def decode(heatmaps: np.ndarray, method: str = "dark", blur_kernel: int = 5):
    """Keypoint positions (N, K, 2) in heatmap pixels and peak values (N, K).

    ``argmax`` is the integer peak; ``quarter`` moves it a quarter pixel towards the
    higher neighbour; ``dark`` refines it with a second-order Taylor step on the
    log of a smoothed heatmap (Zhang et al., "Distribution-Aware Coordinate
    Representation", CVPR 2020), which is closest for Gaussian-shaped peaks.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; use one of {DECODE_METHODS}")
    hm = np.asarray(heatmaps, dtype=np.float32)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {hm.shape}")
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, -1)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    if method == "quarter":
        coords = _quarter_offset(hm, coords)
    elif method == "dark":
        coords = _dark_refine(hm, coords, blur_kernel)
    return coords, maxvals


def dark_blur_kernel(heatmap_stride: int) -> int:
    """DARK's smoothing window in heatmap pixels: about 20 input pixels at any stride, odd
    (5 at stride 4, where the targets' sigma is 1.5 heatmap pixels; 11 at stride 2)."""
    return int(20 // heatmap_stride) | 1


def _quarter_offset(hm: np.ndarray, coords: np.ndarray) -> np.ndarray:
    n, k, h, w = hm.shape
    out = coords.copy()
    px = coords[..., 0].astype(int)
    py = coords[..., 1].astype(int)
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    inner_x = (px > 0) & (px < w - 1)
    inner_y = (py > 0) & (py < h - 1)
    dx = hm[ni, ki, py, np.clip(px + 1, 0, w - 1)] - hm[ni, ki, py, np.clip(px - 1, 0, w - 1)]
    dy = hm[ni, ki, np.clip(py + 1, 0, h - 1), px] - hm[ni, ki, np.clip(py - 1, 0, h - 1), px]
    out[..., 0] += np.where(inner_x, np.sign(dx) * 0.25, 0.0)
    out[..., 1] += np.where(inner_y, np.sign(dy) * 0.25, 0.0)
    return out


def _gaussian_blur(hm: np.ndarray, kernel: int) -> np.ndarray:
    import cv2  # local: cv2 is only needed for DARK

    n, k, h, w = hm.shape
    flat = hm.reshape(n * k, h, w)
    out = np.empty_like(flat)
    for i in range(n * k):
        peak = flat[i].max()
        blurred = cv2.GaussianBlur(flat[i], (kernel, kernel), 0)
        # Keep the peak height so the log-likelihood keeps its curvature.
        bmax = blurred.max()
        out[i] = blurred * (peak / bmax) if bmax > 0 else blurred
    return out.reshape(n, k, h, w)


def _dark_refine(hm: np.ndarray, coords: np.ndarray, blur_kernel: int) -> np.ndarray:
    n, k, h, w = hm.shape
    logh = np.log(np.maximum(_gaussian_blur(hm, blur_kernel), 1e-10))
    out = coords.copy()
    for i in range(n):
        for j in range(k):
            x, y = int(coords[i, j, 0]), int(coords[i, j, 1])
            if not (1 < x < w - 2 and 1 < y < h - 2):
                continue
            L = logh[i, j]
            dx = 0.5 * (L[y, x + 1] - L[y, x - 1])
            dy = 0.5 * (L[y + 1, x] - L[y - 1, x])
            dxx = 0.25 * (L[y, x + 2] - 2 * L[y, x] + L[y, x - 2])
            dxy = 0.25 * (L[y + 1, x + 1] - L[y - 1, x + 1] - L[y + 1, x - 1] + L[y - 1, x - 1])
            dyy = 0.25 * (L[y + 2, x] - 2 * L[y, x] + L[y - 2, x])
            det = dxx * dyy - dxy * dxy
            if det == 0 or not np.isfinite(det):
                continue
            # Newton step: offset = -H^-1 * gradient, bounded to one pixel.
            ox = -(dyy * dx - dxy * dy) / det
            oy = -(dxx * dy - dxy * dx) / det
            if abs(ox) <= 1 and abs(oy) <= 1:
                out[i, j, 0] += ox
                out[i, j, 1] += oy
    return out


def flip_heatmaps(heatmaps: np.ndarray, flip_permutation) -> np.ndarray:
    """Mirror heatmaps (N, K, H, W) horizontally and swap left/right joints back."""
    return heatmaps[:, list(flip_permutation), :, ::-1]


def to_heatmap_coords(points: np.ndarray, stride: int) -> np.ndarray:
    """Input-pixel coordinates to heatmap-pixel coordinates (pixel centres aligned)."""
    return (np.asarray(points, dtype=np.float64) + 0.5) / stride - 0.5


def from_heatmap_coords(points: np.ndarray, stride: int) -> np.ndarray:
    """Heatmap-pixel coordinates back to input-pixel coordinates."""
    return (np.asarray(points, dtype=np.float64) + 0.5) * stride - 0.5

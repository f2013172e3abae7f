"""Predicted skeletons drawn on sample images, to see what an evaluation score means."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lapx_ros.data.transforms import read_rgb
from lapx_ros.runtime.drawing import track_colour


def draw_people(image_rgb: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, skeleton,
                threshold: float = 0.2) -> np.ndarray:
    """A BGR copy of the image with each person's (P, K, 2) joints above ``threshold``
    and the bones between them, one colour per person."""
    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(min(canvas.shape[:2]) / 240))
    for person, (points, conf) in enumerate(zip(keypoints, confidence)):
        colour = tuple(int(255 * v) for v in reversed(track_colour(person)))
        seen = (conf >= threshold) & np.isfinite(points).all(axis=1)
        pts = np.round(np.where(seen[:, None], points, 0)).astype(int)
        for a, b in skeleton:
            if seen[a] and seen[b]:
                cv2.line(canvas, tuple(pts[a]), tuple(pts[b]), colour, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(seen):
            cv2.circle(canvas, tuple(pts[k]), thickness + 1, colour, -1, cv2.LINE_AA)
    return canvas


def write_samples(out_dir, samples, skeleton, threshold: float = 0.2) -> list[Path]:
    """One PNG per (image path, keypoints (P, K, 2), confidences (P, K)) sample."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (image_path, keypoints, confidence) in enumerate(samples):
        path = out_dir / f"{index:03d}_{Path(image_path).stem}.png"
        cv2.imwrite(str(path), draw_people(read_rgb(image_path), keypoints, confidence, skeleton, threshold))
        written.append(path)
    return written

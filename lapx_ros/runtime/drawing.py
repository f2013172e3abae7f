"""Skeletons, boxes and ids drawn on a frame, and the per-person colour they share
with the RViz markers (so a person has the same colour everywhere)."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

_GOLDEN = 0.618033988749895
LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX


def track_colour(track_id: int):
    """A distinct, stable RGB colour in [0, 1] for a track id."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.85, 1.0)


def label_origin(text: str, box, frame_shape, scale: float, thickness: int) -> tuple[int, int]:
    """Bottom-left corner for a box's label: above the box, moved inside the frame so that a
    person at the frame's edge keeps a readable id."""
    (width, height), baseline = cv2.getTextSize(text, LABEL_FONT, scale, thickness)
    frame_h, frame_w = frame_shape[:2]
    x0, y0 = int(round(box[0])), int(round(box[1]))
    x = min(max(x0, 0), max(frame_w - width, 0))
    y = min(max(y0 - 4, height), max(frame_h - baseline, height))
    return x, y


def draw_poses(frame_bgr: np.ndarray, poses, skeleton, threshold: float) -> np.ndarray:
    """Draw in place on ``frame_bgr`` (keypoints in OpenCV pixel convention); returns it."""
    thickness = max(1, round(min(frame_bgr.shape[:2]) / 240))
    for p in poses:
        r, g, b = track_colour(p.track_id)
        colour = (int(b * 255), int(g * 255), int(r * 255))
        seen = p.confidences >= threshold
        pts = np.round(p.keypoints).astype(int)
        for a, c in skeleton:
            if seen[a] and seen[c]:
                cv2.line(frame_bgr, tuple(pts[a]), tuple(pts[c]), colour, thickness, cv2.LINE_AA)
        for k in np.flatnonzero(seen):
            cv2.circle(frame_bgr, tuple(pts[k]), thickness + 1, colour, -1, cv2.LINE_AA)
        x0, y0, x1, y1 = np.round(p.box).astype(int)
        cv2.rectangle(frame_bgr, (x0, y0), (x1, y1), colour, 1)
        label, scale = f"{p.track_id} {p.score:.2f}", 0.4 * thickness
        cv2.putText(frame_bgr, label, label_origin(label, p.box, frame_bgr.shape, scale, thickness),
                    LABEL_FONT, scale, colour, thickness, cv2.LINE_AA)
    return frame_bgr

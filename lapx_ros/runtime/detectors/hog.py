"""OpenCV's HOG + linear SVM people detector, which ships with OpenCV: it needs no file,
so it is also what runs when another detector's file cannot be used. It finds upright
pedestrians of 128 px or more only, and is slow next to the pose network's crops."""
from __future__ import annotations

import cv2
import numpy as np

from lapx_ros.geometry import non_max_suppression
from lapx_ros.runtime.detectors.base import DetectorSettings

# HOG's window is 64x128 pixels: people smaller than about 128 px need upscaling.
HOG_WINDOW_HEIGHT = 128
# Scale step between pyramid levels: coarser than OpenCV's 1.05, far cheaper, and it
# still finds people of every size in between.
PYRAMID_STEP = 1.1


class HogPersonDetector:
    """Person boxes (x0, y0, x1, y1) and scores from OpenCV's default HOG detector."""

    label = "HOG"
    summary = ("OpenCV's HOG people detector (upright pedestrians only; also the fallback when the "
               "MoveNet file cannot be used)")

    def __init__(self, scale: float, score_threshold: float, nms_threshold: float = 0.4):
        self.scale = scale
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    @classmethod
    def from_settings(cls, settings: DetectorSettings, log=None) -> HogPersonDetector:
        return cls(settings.hog_scale, settings.hog_threshold)

    def update(self, settings: DetectorSettings) -> None:
        self.scale = settings.hog_scale
        self.score_threshold = settings.hog_threshold

    @property
    def description(self) -> str:
        return (f"hog (OpenCV {cv2.__version__} people detector, scale {self.scale:g}, "
                f"threshold {self.score_threshold:g})")

    def __call__(self, frame_bgr: np.ndarray):
        """Boxes (N, 4) float64 in frame pixels and scores (N,), best first: windows
        scoring above ``score_threshold``, overlaps above ``nms_threshold`` suppressed."""
        image = frame_bgr
        if self.scale != 1.0:
            image = cv2.resize(frame_bgr, None, fx=self.scale, fy=self.scale,
                               interpolation=cv2.INTER_LINEAR)
        if min(image.shape[:2]) < HOG_WINDOW_HEIGHT:
            return np.zeros((0, 4)), np.zeros(0)
        rects, weights = self._hog.detectMultiScale(image, winStride=(8, 8), padding=(0, 0),
                                                    scale=PYRAMID_STEP)
        if len(rects) == 0:
            return np.zeros((0, 4)), np.zeros(0)
        weights = np.asarray(weights, np.float64).reshape(-1)
        rects = np.asarray(rects, np.float64).reshape(-1, 4)
        windows = np.column_stack([rects[:, :2], rects[:, :2] + rects[:, 2:]])
        candidates = np.flatnonzero(weights > self.score_threshold)
        keep = candidates[non_max_suppression(windows[candidates], weights[candidates], self.nms_threshold)]
        boxes = windows[keep] / self.scale
        order = np.argsort(-weights[keep])
        return boxes[order], weights[keep][order]

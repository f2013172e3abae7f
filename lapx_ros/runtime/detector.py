"""Built-in person detector for multi-person scenes when no detector node runs.

OpenCV's HOG + linear SVM people detector ships with OpenCV (no model download). It is
slow (~100 ms per VGA frame on 2 cores), so the pipeline runs it every few frames and
follows people by their keypoints in between.
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

# HOG's window is 64x128 pixels: people smaller than about 128 px need upscaling.
HOG_WINDOW_HEIGHT = 128
# Scale step between pyramid levels: 1.1 halves the cost of OpenCV's 1.05 and still
# finds people of every size in between.
PYRAMID_STEP = 1.1


class HogPersonDetector:
    """Person boxes (x0, y0, x1, y1) and scores from OpenCV's default HOG detector."""

    def __init__(self, scale: float, score_threshold: float, nms_threshold: float = 0.4):
        self.scale = scale
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, frame_bgr: np.ndarray):
        """Boxes (N, 4) float64 in frame pixels and scores (N,), best first."""
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
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], weights.tolist(),
                                self.score_threshold, self.nms_threshold)
        keep = np.asarray(keep, int).reshape(-1)
        rects = np.asarray(rects, np.float64)[keep] / self.scale
        boxes = np.column_stack([rects[:, 0], rects[:, 1],
                                 rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]])
        order = np.argsort(-weights[keep])
        return boxes[order], weights[keep][order]


class BackgroundDetector:
    """Runs a slow detector on a thread of its own so that pose estimation never waits.

    ``submit`` hands over a frame when the detector is idle; ``take`` returns the
    newest finished result once. With ``synchronous`` the detector runs inside
    ``submit`` (tests, offline evaluation).
    """

    def __init__(self, detect, synchronous: bool = False):
        self.detect = detect
        self.synchronous = synchronous
        self._lock = threading.Lock()
        self._busy = False
        self._result = None
        self.last_error = ""

    def submit(self, frame_bgr: np.ndarray) -> bool:
        """Start a detection on ``frame_bgr``; False when one is still running."""
        with self._lock:
            if self._busy:
                return False
            self._busy = True
        if self.synchronous:
            self._run(frame_bgr)
        else:
            threading.Thread(target=self._run, args=(frame_bgr.copy(),), daemon=True,
                             name="lapx_detector").start()
        return True

    def _run(self, frame_bgr) -> None:
        try:
            result = self.detect(frame_bgr)
        except Exception as exc:  # a detector failure must not end the pipeline
            result, self.last_error = None, f"{type(exc).__name__}: {exc}"
        with self._lock:
            if result is not None:
                self._result = result
            self._busy = False

    def take(self):
        """(boxes, scores) of the newest finished detection, or None; each result once."""
        with self._lock:
            result, self._result = self._result, None
            return result

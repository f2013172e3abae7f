"""A slow detector on a thread of its own, so that pose estimation never waits for it."""
from __future__ import annotations

import threading

import numpy as np


class BackgroundDetector:
    """Runs a slow detector on a thread of its own so that pose estimation never waits.

    ``submit`` hands over a frame when the detector is idle; ``take`` returns the
    newest finished result once. With ``synchronous`` the detector runs inside
    ``submit`` (tests, offline evaluation). One long-lived thread does every detection:
    a new thread per run made glibc spread the engine's allocations over ever more
    arenas, and the node's memory grew with every run.
    """

    def __init__(self, detect, synchronous: bool = False):
        self.detect = detect
        self.synchronous = synchronous
        self._cond = threading.Condition()
        self._busy = False
        self._frame = None
        self._result = None
        self._thread: threading.Thread | None = None
        self.last_error = ""

    def submit(self, frame_bgr: np.ndarray) -> bool:
        """Start a detection on ``frame_bgr``; False when one is still running."""
        with self._cond:
            if self._busy:
                return False
            self._busy = True
            if not self.synchronous:
                self._frame = frame_bgr.copy()
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, daemon=True, name="lapx_detector")
                    self._thread.start()
                self._cond.notify()
                return True
        self._run(frame_bgr)
        return True

    def _serve(self) -> None:
        while True:
            with self._cond:
                while self._frame is None:
                    self._cond.wait()
                frame, self._frame = self._frame, None
            self._run(frame)

    def _run(self, frame_bgr) -> None:
        try:
            result = self.detect(frame_bgr)
        except Exception as exc:  # a detector failure must not end the pipeline
            result, self.last_error = None, f"{type(exc).__name__}: {exc}"
        with self._cond:
            if result is not None:
                self._result = result
            self._busy = False

    def take(self):
        """(boxes, scores) of the newest finished detection, or None; each result once."""
        with self._cond:
            result, self._result = self._result, None
            return result

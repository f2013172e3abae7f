"""What every built-in person detector shares: the settings it is made from, what it
returns, the error for a file it cannot use, and the interface the pipeline and the node
rely on (``PersonDetector``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from lapx_ros.runtime.backend import ModelError


@dataclass(frozen=True)
class DetectorSettings:
    """What a detector is made from (the node's detector_* parameters); each detector
    reads the fields it has a use for."""

    kind: str = "movenet"  # a name of detectors.DETECTORS
    model: str = ""  # MoveNet file; "" = the file set-up installs
    input_size: int = 384
    threshold: float = 0.1  # MoveNet person score
    threads: int = 1
    backend: str = "auto"
    # f32 even where the pose network runs bf16: in bf16 MoveNet lost people and found
    # duplicates for half the time a run (docs/node.md, "The built-in detector")
    precision: str = "f32"
    box_scale: float = 1.0  # MoveNet boxes grown by this (they hug the keypoints)
    hog_scale: float = 1.0
    hog_threshold: float = 0.3


class DetectorModelError(ModelError):
    """The detector file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str, problem: str):
        super().__init__(path, problem)
        self.args = (f"detector model {path!r}: {problem}",)


class Detections(tuple):
    """``(boxes, scores)`` as every detector returns them (so ``boxes, scores = d``
    still works), plus ``keypoints`` (N, 17, 3): x, y [frame pixels] and score of each
    person's COCO joints, in the order of the boxes."""

    def __new__(cls, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray):
        self = super().__new__(cls, (boxes, scores))
        self.keypoints = keypoints
        return self

    @property
    def boxes(self) -> np.ndarray:
        return self[0]

    @property
    def scores(self) -> np.ndarray:
        return self[1]


class PersonDetector(Protocol):
    """A built-in detector: one class in a file of its own, named in detectors.DETECTORS."""

    label: str  # its name in messages, e.g. "HOG instead of MoveNet"
    summary: str  # what it is, for the parameter table

    @classmethod
    def from_settings(cls, settings: DetectorSettings, log=None) -> PersonDetector:
        """The detector; DetectorModelError when its file cannot be used (``log`` takes
        the fallbacks of the inference backend)."""

    @property
    def description(self) -> str:
        """What runs, with its settings, for the log and the diagnostics."""

    def update(self, settings: DetectorSettings) -> None:
        """Take the settings that may change while it runs (thresholds, scales)."""

    def __call__(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) x0, y0, x1, y1 in frame pixels and their scores (N,), best
        first (a ``Detections`` when it finds keypoints too)."""

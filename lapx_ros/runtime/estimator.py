"""The pose network on person boxes of a frame: poses in source-image pixels. No ROS here.

``PoseEstimator`` runs the network on given boxes through the top-down path that offline
evaluation shares; which boxes to look at, frame after frame, is the pipeline's and its
mode's (``runtime.pipeline``, ``runtime.modes``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.geometry import box_to_center_size
from lapx_ros.runtime.engine import Engine
from lapx_ros.topdown import TopDownPredictor

# Boxes narrower or lower than this many pixels cannot hold a person worth cropping.
MIN_BOX_SIDE = 4.0


@dataclass(frozen=True)
class DetectedPerson:
    """What the built-in detector said of a person in this frame's detection."""

    box: np.ndarray                   # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray | None      # (17, 3) COCO joints: x, y, score; None for a detector without


@dataclass
class Pose:
    """One person: keypoints (K, 2) and confidences (K,) in source-image pixels."""

    keypoints: np.ndarray
    confidences: np.ndarray
    box: np.ndarray  # x0, y0, x1, y1 of the seen joints (or of the crop when none)
    score: float
    track_id: int = 0
    detection: DetectedPerson | None = None  # the detection this crop came from or matched, this frame
    vouched: float = 0.0  # the person score its track carries from its last detection


def usable_boxes(boxes, scores, width: int, height: int):
    """Boxes clipped to the image (N, 4) and which of them are usable (N,): not NaN, not
    degenerate, not off the image. A box whose max corner lies before its min corner is
    degenerate too: the sender mixed up its fields, so no guess at what it meant is made."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    finite = np.isfinite(boxes).all(axis=1)
    if len(scores) == len(boxes):
        finite &= np.isfinite(scores)
    clipped = np.nan_to_num(boxes).copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    ok = finite & ((clipped[:, 2] - clipped[:, 0]) >= MIN_BOX_SIDE) & ((clipped[:, 3] - clipped[:, 1]) >= MIN_BOX_SIDE)
    return clipped, ok


def sanitize_boxes(boxes, scores, width: int, height: int):
    """The usable boxes (``usable_boxes``) clipped to the image, and their scores.
    Returns (boxes (M, 4), scores (M,), number dropped)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(boxes):
        scores = np.ones(len(boxes))
    clipped, ok = usable_boxes(boxes, scores, width, height)
    return clipped[ok], scores[ok], int((~ok).sum())


class PoseEstimator:
    """Runs the network on person boxes of a BGR frame, through the same top-down path
    as offline evaluation, and returns poses in frame pixels."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.metadata = engine.metadata
        self.predictor = TopDownPredictor(engine.infer, engine.metadata, channel_order="bgr")

    def region(self, box, padding: float):
        center, size = box_to_center_size(box, self.predictor.aspect_ratio, padding)
        return center, size, 0.0

    def __call__(self, frame_bgr: np.ndarray, boxes, padding, decode: str = "dark") -> list[Pose]:
        """One pose per box (all crops in one batch); raises InferenceError on bad output.

        ``padding`` is one factor for all boxes or one per box.
        """
        if len(boxes) == 0:
            return []
        paddings = np.broadcast_to(np.asarray(padding, np.float64), (len(boxes),))
        regions = [self.region(b, pad) for b, pad in zip(boxes, paddings)]
        keypoints, confidences = self.predictor.predict_regions(frame_bgr, regions, decode)
        return [Pose(kps, conf.astype(np.float32), np.asarray(box, np.float64), float(conf.mean()))
                for kps, conf, box in zip(keypoints, confidences, boxes)]

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


@dataclass
class Pose:
    """One person: keypoints (K, 2) and confidences (K,) in source-image pixels."""

    keypoints: np.ndarray
    confidences: np.ndarray
    box: np.ndarray  # x0, y0, x1, y1 of the seen joints (or of the crop when none)
    score: float
    track_id: int = 0


def sanitize_boxes(boxes, scores, width: int, height: int):
    """Drop NaN, degenerate and off-image boxes; clip the rest to the image.

    A box whose max corner lies before its min corner is degenerate too: the sender
    mixed up its fields, so no guess at what it meant is made.
    Returns (boxes (M, 4), scores (M,), number dropped).
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != len(boxes):
        scores = np.ones(len(boxes))
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    boxes, scores = boxes[finite], scores[finite]
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    ok = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_SIDE)
    dropped = int((~finite).sum() + (~ok).sum())
    return boxes[ok], scores[ok], dropped


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

"""Stable person ids across frames.

People are matched to the tracks of previous frames by box overlap or keypoint
similarity, whichever is higher, greedily from the best pair. A track that finds no
match survives ``max_missed`` frames, so that a short occlusion keeps the id.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Per-joint falloff of the keypoint similarity, as a fraction of the box size
# (about COCO's average OKS constant).
KEYPOINT_FALLOFF = 0.1


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def keypoint_similarity(kp_a, conf_a, kp_b, conf_b, box, threshold: float) -> float:
    """OKS-like similarity in [0, 1] over joints seen in both poses."""
    seen = (np.asarray(conf_a) >= threshold) & (np.asarray(conf_b) >= threshold)
    if not seen.any():
        return 0.0
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    d2 = ((np.asarray(kp_a)[seen] - np.asarray(kp_b)[seen]) ** 2).sum(axis=1)
    return float(np.exp(-d2 / (2.0 * area * KEYPOINT_FALLOFF**2)).mean())


@dataclass
class Track:
    track_id: int
    box: np.ndarray
    keypoints: np.ndarray | None
    confidences: np.ndarray | None
    missed: int = 0


class Tracker:
    """Assigns ids to the people found in successive frames."""

    def __init__(self, match_threshold: float, max_missed: int, keypoint_threshold: float):
        self.match_threshold = match_threshold
        self.max_missed = max_missed
        self.keypoint_threshold = keypoint_threshold
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track; ids keep increasing so that an old id is never reused."""
        self.tracks.clear()

    def _similarity(self, track: Track, box, keypoints, confidences) -> float:
        sim = box_iou(track.box, box)
        if keypoints is not None and track.keypoints is not None:
            sim = max(sim, keypoint_similarity(track.keypoints, track.confidences,
                                               keypoints, confidences, box,
                                               self.keypoint_threshold))
        return sim

    def update(self, boxes, keypoints=None, confidences=None) -> list[int]:
        """Ids for the given people (boxes (N, 4), optional keypoints (N, K, 2))."""
        n = len(boxes)
        pairs = []
        for ti, track in enumerate(self.tracks):
            for di in range(n):
                sim = self._similarity(track, boxes[di],
                                       None if keypoints is None else keypoints[di],
                                       None if confidences is None else confidences[di])
                if sim >= self.match_threshold:
                    pairs.append((sim, ti, di))
        ids = [0] * n
        used_tracks = set()
        for _, ti, di in sorted(pairs, key=lambda p: -p[0]):
            if ti in used_tracks or ids[di]:
                continue
            used_tracks.add(ti)
            ids[di] = self.tracks[ti].track_id
            self._store(self.tracks[ti], boxes, keypoints, confidences, di)
        for ti, track in enumerate(self.tracks):
            if ti not in used_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for di in range(n):
            if not ids[di]:
                track = Track(self._next_id, np.asarray(boxes[di], np.float64), None, None)
                self._store(track, boxes, keypoints, confidences, di)
                self.tracks.append(track)
                ids[di] = self._next_id
                self._next_id += 1
        return ids

    @staticmethod
    def _store(track: Track, boxes, keypoints, confidences, di: int) -> None:
        track.box = np.asarray(boxes[di], np.float64)
        track.keypoints = None if keypoints is None else np.asarray(keypoints[di])
        track.confidences = None if confidences is None else np.asarray(confidences[di])
        track.missed = 0

    @property
    def active_ids(self) -> list[int]:
        return [t.track_id for t in self.tracks]

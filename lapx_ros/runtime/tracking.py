"""Stable person ids across frames.

People are matched to the tracks of previous frames by box overlap or keypoint
similarity, whichever is higher, greedily from the best pair. Each track moves at a
constant velocity (its joints' mean displacement per frame, smoothed), so a person is
looked for where it should be now, and also where it was last seen (a person who
stopped while hidden).

Ids are handed out only when a track is confirmed: ``confirm_frames`` frames in a row
at or above ``confirm_threshold`` (mean joint confidence). A confirmed track keeps its id
while its person stays at or above ``keep_threshold`` (lower: hysteresis); frames
without a match, or below ``keep_threshold``, are misses, and a track ends after more
than ``max_missed`` of them in a row (all of these in ``TrackerSettings``). An unconfirmed track ends at its first miss, so a
spurious detection costs no id. Ids are never reused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.geometry import box_iou

# Per-joint falloff of the keypoint similarity, as a fraction of the person's size (the
# longer side of its box): a joint this far from its partner scores exp(-1/2).
KEYPOINT_FALLOFF = 0.1
# Weight of the newest displacement in a track's velocity (exponential smoothing).
VELOCITY_GAIN = 0.5
# A track moves at most this fraction of its size per frame (a bad match cannot fling it).
MAX_SPEED = 0.5
# Similarity to where a moving track was last seen counts this much (a person who stopped
# while hidden is found there; someone else arriving there loses to the track predicted
# at that place).
LAST_SEEN_WEIGHT = 0.8
# When pairs are ranked, a track's similarity counts this much less per frame it has been
# missed: a prediction grows less certain, and a person seen in the last frame goes
# first (two people at one spot: the one in front is the one that was seen).
MISSED_RANK_FACTOR = 0.95


def box_size(box) -> float:
    """A person's size: the longer side of its box (at least 1 pixel)."""
    return max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)


def keypoint_similarity(kp_a, conf_a, kp_b, conf_b, size: float, threshold: float,
                        min_common: int = 1) -> float:
    """OKS-like similarity in [0, 1] over the joints seen (confidence >= ``threshold``)
    in both poses; 0 when fewer than ``min_common`` are. ``size`` is the person's size in
    pixels (``box_size``)."""
    seen = (np.asarray(conf_a) >= threshold) & (np.asarray(conf_b) >= threshold)
    if seen.sum() < max(min_common, 1):
        return 0.0
    d2 = ((np.asarray(kp_a)[seen] - np.asarray(kp_b)[seen]) ** 2).sum(axis=1)
    sigma = KEYPOINT_FALLOFF * max(size, 1.0)
    return float(np.exp(-d2 / (2.0 * sigma**2)).mean())


@dataclass
class Track:
    """One person followed over frames; ``track_id`` is 0 until it is confirmed."""

    track_id: int
    box: np.ndarray  # where it was last seen
    keypoints: np.ndarray | None
    confidences: np.ndarray | None
    velocity: np.ndarray  # pixels per frame
    hits: int = 1  # frames seen (for confirmation)
    missed: int = 0  # frames since it was last seen
    vouched: float = 0.0  # the pipeline's person score carried from its last detection (runtime.pipeline)

    def shift(self, frames_ahead: int = 1) -> np.ndarray:
        """Displacement from the last sighting to ``frames_ahead`` frames after the
        newest one (1 = the next frame)."""
        return self.velocity * (self.missed + frames_ahead)

    def predicted_box(self, frames_ahead: int = 1) -> np.ndarray:
        dx, dy = self.shift(frames_ahead)
        return self.box + np.array([dx, dy, dx, dy])

    def predicted_keypoints(self, frames_ahead: int = 1):
        return None if self.keypoints is None else self.keypoints + self.shift(frames_ahead)


@dataclass(frozen=True)
class TrackerSettings:
    """How the tracker decides. With the defaults of ``confirm_threshold``,
    ``keep_threshold`` and ``confirm_frames`` every person is reported from its first
    frame."""

    match_threshold: float  # box IoU / keypoint similarity a person needs to keep a track
    max_missed: int  # misses in a row a confirmed track survives
    keypoint_threshold: float  # a joint below it counts as not seen
    confirm_threshold: float = 0.0
    keep_threshold: float = 0.0
    confirm_frames: int = 1


class Tracker:
    """Assigns ids to the people found in successive frames. ``settings`` may be replaced
    between frames (the tracks stay)."""

    def __init__(self, settings: TrackerSettings):
        self.settings = settings
        self.tracks: list[Track] = []
        self.matched: list[Track | None] = []  # the last update's track of each person given
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track; ids keep increasing so that an old id is never reused."""
        self.tracks.clear()

    def similarity(self, track: Track, box, keypoints=None, confidences=None) -> float:
        """How well a person matches ``track`` now: box IoU or keypoint similarity,
        against where the track should be and where it was last seen, the best of them."""
        best = 0.0
        for shift, weight in ((track.shift(), 1.0), (np.zeros(2), LAST_SEEN_WEIGHT)):
            dx, dy = shift
            sim = box_iou(track.box + np.array([dx, dy, dx, dy]), box)
            if keypoints is not None and track.keypoints is not None:
                sim = max(sim, keypoint_similarity(
                    track.keypoints + shift, track.confidences, keypoints, confidences,
                    max(box_size(track.box), box_size(box)), self.settings.keypoint_threshold))
            best = max(best, weight * sim)
            if not track.velocity.any():
                break
        return best

    def update(self, boxes, keypoints=None, confidences=None, scores=None) -> list[int]:
        """Ids for the given people (boxes (N, 4), optional keypoints (N, K, 2), joint
        confidences (N, K) and scores (N,), the mean joint confidences; without scores
        every person counts as confirmed). 0 = not reported (not confirmed yet, or below
        the keep threshold)."""
        n = len(boxes)
        boxes = [np.asarray(b, np.float64) for b in boxes]
        keypoints = [None] * n if keypoints is None else [np.asarray(k, np.float64) for k in keypoints]
        confidences = [None] * n if confidences is None else [np.asarray(c) for c in confidences]
        scores = [1.0] * n if scores is None else [float(s) for s in scores]
        pairs = []
        for ti, track in enumerate(self.tracks):
            for di in range(n):
                sim = self.similarity(track, boxes[di], keypoints[di], confidences[di])
                if sim >= self.settings.match_threshold:
                    pairs.append((sim * MISSED_RANK_FACTOR ** track.missed, ti, di))
        match: dict[int, int] = {}
        taken = set()
        for _, ti, di in sorted(pairs, key=lambda p: -p[0]):
            if ti not in match and di not in taken:
                match[ti] = di
                taken.add(di)
        ids = [0] * n
        self.matched = [None] * n
        survivors = []
        for ti, track in enumerate(self.tracks):
            di = match.get(ti)
            needed = self.settings.keep_threshold if track.track_id else self.settings.confirm_threshold
            if di is not None and scores[di] >= needed:
                self._observe(track, boxes[di], keypoints[di], confidences[di])
                self._confirm(track)
                ids[di] = track.track_id
                self.matched[di] = track
                survivors.append(track)
                continue
            # A miss; a matched person below the threshold is this track's, not a new one.
            track.missed += 1
            if track.track_id and track.missed <= self.settings.max_missed:
                survivors.append(track)
        for di in range(n):
            if di in taken or scores[di] < self.settings.confirm_threshold:
                continue
            track = Track(0, boxes[di], keypoints[di], confidences[di], np.zeros(2))
            self._confirm(track)
            ids[di] = track.track_id
            self.matched[di] = track
            survivors.append(track)
        self.tracks = survivors
        return ids

    def _confirm(self, track: Track) -> None:
        if not track.track_id and track.hits >= self.settings.confirm_frames:
            track.track_id = self._next_id
            self._next_id += 1

    def _observe(self, track: Track, box, keypoints, confidences) -> None:
        """Store a new sighting and update the velocity from the displacement."""
        step = self._displacement(track, box, keypoints, confidences) / (track.missed + 1)
        limit = MAX_SPEED * box_size(box)
        speed = float(np.hypot(*step))
        if speed > limit:
            step *= limit / speed
        track.velocity = step if track.hits == 1 else (
            VELOCITY_GAIN * step + (1.0 - VELOCITY_GAIN) * track.velocity)
        track.box, track.keypoints, track.confidences = box, keypoints, confidences
        track.hits += 1
        track.missed = 0

    def _displacement(self, track: Track, box, keypoints, confidences) -> np.ndarray:
        """Median displacement of the joints seen in both sightings (the box centre's
        when fewer than two are)."""
        if keypoints is not None and track.keypoints is not None:
            seen = ((np.asarray(track.confidences) >= self.settings.keypoint_threshold)
                    & (np.asarray(confidences) >= self.settings.keypoint_threshold))
            if seen.sum() >= 2:
                return np.median(keypoints[seen] - track.keypoints[seen], axis=0)
        return (box[:2] + box[2:]) / 2.0 - (track.box[:2] + track.box[2:]) / 2.0

    def track(self, track_id: int) -> Track | None:
        """The confirmed track of ``track_id``, or None."""
        return next((t for t in self.tracks if t.track_id == track_id and track_id), None)

    @property
    def active_ids(self) -> list[int]:
        """Ids of the confirmed tracks (seen now or missed for a while)."""
        return [t.track_id for t in self.tracks if t.track_id]

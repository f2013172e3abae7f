"""Frame (+ optional person boxes) -> poses in source-image pixels. No ROS here.

``PoseEstimator`` runs the network on given regions. ``PosePipeline`` decides which
regions to look at, frame after frame:

- ``single``: the whole frame, then crops around the keypoints found (``search_passes``
  network calls in all); on later frames the crop follows the previous keypoints, and
  the whole frame is searched again when the person's confidence falls. While nobody is
  followed, the search runs every ``search_interval`` frames and the frames between crop
  where the last look found its joints (one network call instead of ``search_passes``);
- ``boxes``: person boxes from outside (another node), followed by keypoints on frames
  that bring no boxes;
- ``detector``: the built-in detector every ``detector_interval`` frames, on a thread
  of its own; people are followed by their keypoints in between, and also when a
  detection misses them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.geometry import JOINTS_BOX_PADDING, box_to_center_size, keypoints_to_box
from lapx_ros.runtime.engine import Engine
from lapx_ros.runtime.smoothing import OneEuroParams, PoseSmoother
from lapx_ros.runtime.tracking import Tracker, box_iou, box_size, keypoint_similarity
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING, MIN_SEEN_JOINTS, TopDownPredictor

MODES = ("single", "boxes", "detector")
# Boxes narrower or lower than this many pixels cannot hold a person worth cropping.
MIN_BOX_SIDE = 4.0
# Two person boxes overlapping more than this are taken to be the same person.
DUPLICATE_IOU = 0.5
# Two poses whose joints seen in both are this similar (tracking.keypoint_similarity,
# over at least MIN_SEEN_JOINTS joints) are one person found twice, whatever their boxes.
DUPLICATE_SIMILARITY = 0.5
# A track whose predicted box lies less than this fraction inside the image has left it.
MIN_INSIDE = 0.5
# A followed box lying this much inside a detector box whose height is at most
# COVERED_HEIGHT_RATIO times its own is that detection's person: one crop for both.
COVERED_INSIDE = 0.8
COVERED_HEIGHT_RATIO = 2.0
# A track missed on more frames in a row than this gets no crop of its own any more (it
# keeps its id for track_max_missed frames: a detection or a box can still find it). On
# vtest.avi 46 of 52 returns came within 5 frames.
FOLLOW_MAX_MISSED = 5


@dataclass
class Pose:
    """One person: keypoints (K, 2) and confidences (K,) in source-image pixels."""

    keypoints: np.ndarray
    confidences: np.ndarray
    box: np.ndarray  # x0, y0, x1, y1 of the seen joints (or of the crop when none)
    score: float
    track_id: int = 0


@dataclass
class PipelineConfig:
    """Settings the node may change between frames. No defaults here: the node's
    parameter table (lapx_ros/ros/params.py, ``pipeline_config``) is their one source."""

    mode: str
    max_people: int
    keypoint_threshold: float  # a joint below it counts as not seen
    person_threshold: float  # mean confidence a new person needs (confirm); below it: re-search
    person_keep_margin: float  # a reported person stays down to person_threshold minus this
    search_interval: int  # frames between whole-frame searches while nobody is followed
    search_passes: int  # network calls of a whole-frame search
    search_passes_when_busy: int  # of those, the ones run when a newer frame already waits
    box_padding: float  # context around a person box from another node (crops of joints keep JOINTS_BOX_PADDING)
    decode: str
    flip_test: bool  # average with the mirrored crop: more accurate, twice the network calls
    detector_interval: int  # frames between detector runs
    track_match_threshold: float
    track_max_missed: int
    track_confirm_frames: int  # modes boxes/detector: frames in a row at person_threshold to report a new person
    smoothing: bool
    smoothing_params: OneEuroParams


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


class PosePipeline:
    """Chooses where to look, runs the estimator, tracks ids and smooths keypoints."""

    def __init__(self, estimator: PoseEstimator, config: PipelineConfig, detector=None):
        self.estimator = estimator
        self.config = config
        self.detector = detector
        self.tracker = Tracker(config.track_match_threshold, config.track_max_missed,
                               config.keypoint_threshold, config.person_threshold,
                               self._keep_threshold(), self._confirm_frames())
        self.smoother = PoseSmoother(config.smoothing_params)
        self._previous: list[Pose] = []
        self._unconfirmed_box = None  # single mode: where the last look, below threshold, lay
        # single mode: context of the next crop around the last look's joints; the search's
        # first-refinement padding when that look was a whole-frame search cut short
        self._next_crop_padding = JOINTS_BOX_PADDING
        self._frames_since_search = 0
        self._frame_index = 0
        self._last_submit = None
        self._frame_shape = None
        # Set by the caller that queues frames (the node's worker): whether a newer frame
        # already waits. Never, offline.
        self.newer_frame_waiting = lambda: False

    def reset(self) -> None:
        """Forget people (camera restart, resolution change)."""
        self._previous = []
        self._unconfirmed_box = None
        self._next_crop_padding = JOINTS_BOX_PADDING
        self._last_submit = None
        if self.detector is not None:
            self.detector.take()  # a detection from before the reset is stale
        self.tracker.reset()
        self.smoother.reset()

    def process(self, frame_bgr: np.ndarray, stamp: float, boxes=None, box_scores=None):
        """Poses found in ``frame_bgr``; ``boxes`` (N, 4) only in ``boxes`` mode, or None."""
        if frame_bgr.shape != self._frame_shape:
            self.reset()
            self._frame_shape = frame_bgr.shape
        cfg = self.config
        self._sync_settings()
        if cfg.mode == "single":
            poses = self._single(frame_bgr)
        else:
            poses = self._multi(frame_bgr, boxes, box_scores)
        poses = self._track(poses)
        self._previous = poses
        if cfg.smoothing:
            for p in poses:
                p.keypoints = self.smoother(p.track_id, p.keypoints, stamp)
            self.smoother.retain(self.tracker.active_ids)
        else:
            self.smoother.reset()
        return [Pose(p.keypoints.copy(), p.confidences.copy(), p.box.copy(), p.score,
                     p.track_id) for p in poses]

    def _track(self, poses) -> list[Pose]:
        """The poses to report, with their ids: duplicates dropped, then the tracker
        decides (a new person once confirmed at ``person_threshold``, a known one while
        at or above the keep threshold)."""
        cfg = self.config
        poses = [p for p in poses if p.score >= self._keep_threshold()]
        for p in poses:
            seen_box = self._seen_box(p)
            p.box = p.box if seen_box is None else seen_box
        poses = self._suppress_duplicates(poses)[:cfg.max_people]
        ids = self.tracker.update([p.box for p in poses], [p.keypoints for p in poses],
                                  [p.confidences for p in poses], [p.score for p in poses])
        for p, tid in zip(poses, ids):
            p.track_id = tid
        return [p for p in poses if p.track_id]

    def _keep_threshold(self) -> float:
        return max(0.0, self.config.person_threshold - self.config.person_keep_margin)

    def _confirm_frames(self) -> int:
        """``track_confirm_frames`` where it applies: mode single reports at once (its
        whole-frame search has looked several times), and so does person_threshold 0
        (every pose wanted, unvetted)."""
        cfg = self.config
        return 1 if cfg.mode == "single" or cfg.person_threshold <= 0 else cfg.track_confirm_frames

    def _sync_settings(self) -> None:
        cfg = self.config
        self.tracker.match_threshold = cfg.track_match_threshold
        self.tracker.max_missed = cfg.track_max_missed
        self.tracker.keypoint_threshold = cfg.keypoint_threshold
        self.tracker.confirm_threshold = cfg.person_threshold
        self.tracker.keep_threshold = self._keep_threshold()
        self.tracker.confirm_frames = self._confirm_frames()
        self.estimator.predictor.flip_test = cfg.flip_test
        p = cfg.smoothing_params  # copied into the smoother's shared params: live filters follow
        self.smoother.set_params(p.min_cutoff, p.beta, p.d_cutoff)

    def _seen_box(self, pose: Pose):
        """Box around the confident joints, or None when there are too few of them."""
        seen = pose.confidences >= self.config.keypoint_threshold
        if seen.sum() < MIN_SEEN_JOINTS:
            return None
        return np.asarray(keypoints_to_box(pose.keypoints, seen), np.float64)

    def _estimate(self, frame, boxes, padding):
        return self.estimator(frame, boxes, padding, self.config.decode)

    def _follow_boxes(self) -> list:
        """Crop boxes for the people of the previous frame, from their seen joints,
        moved on by their track's velocity."""
        tracks = [self.tracker.track(p.track_id) for p in self._previous]
        return [p.box if t is None else t.predicted_box() for p, t in zip(self._previous, tracks)]

    def _tracked_boxes(self, width: int, height: int):
        """Crop boxes for every live track (reported, missed for up to
        FOLLOW_MAX_MISSED frames, or not yet confirmed) where it should be now, skipping
        those that have left the image; reported people first. Also whether each track
        was seen in the previous frame."""
        boxes, seen = [], []
        for track in sorted(self.tracker.tracks, key=lambda t: (not t.track_id, t.missed)):
            if track.missed > FOLLOW_MAX_MISSED:
                continue
            box = track.predicted_box()
            inside = box_iou(box, np.clip(box, 0, [width, height, width, height]))
            if inside >= MIN_INSIDE:
                boxes.append(box)
                seen.append(track.missed == 0)
        return boxes, seen

    def _single(self, frame):
        """Follow the previous frame's person while it stays above the keep threshold, or
        search the whole frame at once when that person is lost. While nobody is followed, search only every
        ``search_interval`` frames and look where the last unconfirmed pose lay in
        between: its joints are the search's second pass carried to the next frame."""
        cfg = self.config
        self._frames_since_search += 1
        padding, self._next_crop_padding = self._next_crop_padding, JOINTS_BOX_PADDING
        if self._previous:
            poses = self._estimate(frame, self._follow_boxes()[:1], padding)
            if poses and poses[0].score >= self._keep_threshold():  # hysteresis, as the tracker
                return poses
        elif self._unconfirmed_box is not None and self._frames_since_search < cfg.search_interval:
            poses = self._estimate(frame, [self._unconfirmed_box], padding)
            self._remember_unconfirmed(poses[0])
            return poses
        poses = self._search_whole_frame(frame)
        self._frames_since_search = 0
        self._remember_unconfirmed(poses[0])
        return poses

    def _remember_unconfirmed(self, pose: Pose) -> None:
        """Keep where a pose below ``person_threshold`` lay as the next frame's crop, boxed
        by all its joints like the search's second pass; a reported pose is followed instead."""
        box = None if pose.score >= self.config.person_threshold else keypoints_to_box(pose.keypoints)
        self._unconfirmed_box = None if box is None else np.asarray(box, np.float64)

    def _search_whole_frame(self, frame):
        """``search_passes`` network calls, exactly as offline evaluation: the whole
        frame, then each time a crop around the joints the previous call found. Passes
        beyond ``search_passes_when_busy`` run only while ``newer_frame_waiting`` says no:
        on a live stream the next frame's crop refines instead of a late answer (grown as
        the refinement it stands for)."""
        cfg = self.config
        busy_passes = min(cfg.search_passes_when_busy, cfg.search_passes)
        passes_run = cfg.search_passes

        def more_passes(done: int) -> bool:
            nonlocal passes_run
            if done < busy_passes or not self.newer_frame_waiting():
                return True
            passes_run = done
            return False

        keypoints, confidences = self.estimator.predictor.estimate_single(
            frame, passes=cfg.search_passes, decode_method=cfg.decode, more_passes=more_passes)
        if passes_run == 1:
            self._next_crop_padding = FIRST_REFINEMENT_PADDING
        h, w = frame.shape[:2]
        return [Pose(keypoints, confidences.astype(np.float32), np.array([0.0, 0.0, w, h]),
                     float(confidences.mean()))]

    def _multi(self, frame, boxes, box_scores):
        cfg = self.config
        h, w = frame.shape[:2]
        followed, seen = self._tracked_boxes(w, h)
        if cfg.mode == "detector":
            boxes = box_scores = None
            if self.detector is not None:
                self._frame_index += 1
                due = (self._last_submit is None
                       or self._frame_index - self._last_submit >= cfg.detector_interval)
                if due and self.detector.submit(frame):
                    self._last_submit = self._frame_index
                found = self.detector.take()
                if found is not None:
                    boxes, box_scores = found
        if boxes is None:
            return self._estimate(frame, followed, JOINTS_BOX_PADDING)
        scores = np.ones(len(boxes)) if box_scores is None else box_scores
        boxes, scores, _ = sanitize_boxes(boxes, scores, w, h)
        boxes = list(boxes[np.argsort(-scores)][:cfg.max_people])
        # The built-in detector's boxes are already loose around the person (MoveNet's
        # are grown around its keypoints, HOG's windows hold margins); boxes from another
        # node are person boxes, grown by box_padding.
        paddings = [1.0 if cfg.mode == "detector" else cfg.box_padding] * len(boxes)
        if cfg.mode == "detector":
            # People followed from the previous frame keep their crop, centred on where
            # they are now (the detection may be a few frames old); the detector's boxes
            # look for everyone else.
            new = self._not_followed([f for f, s in zip(followed, seen) if s], boxes)
            boxes = [boxes[i] for i in new] + followed
            paddings = [paddings[i] for i in new] + [JOINTS_BOX_PADDING] * len(followed)
        return self._estimate(frame, boxes, paddings)

    @staticmethod
    def _not_followed(followed, detections) -> list[int]:
        """Indices of the detections that are nobody followed already. A followed box
        accounts for one detection at most: the best overlapping one of those it lies
        mostly inside (a detector box is loose around the joints a followed box holds)
        that are not much taller."""
        pairs = []
        for fi, f in enumerate(followed):
            for di, d in enumerate(detections):
                # the share of f inside d: f's IoU with its own part inside d
                inside = box_iou(f, np.clip(f, [d[0], d[1], d[0], d[1]], [d[2], d[3], d[2], d[3]]))
                iou = box_iou(f, d)
                if iou >= DUPLICATE_IOU or (inside >= COVERED_INSIDE
                                            and d[3] - d[1] <= COVERED_HEIGHT_RATIO * (f[3] - f[1])):
                    pairs.append((iou, fi, di))
        followed_taken, known = set(), set()
        for _, fi, di in sorted(pairs, reverse=True):
            if fi not in followed_taken and di not in known:
                followed_taken.add(fi)
                known.add(di)
        return [di for di in range(len(detections)) if di not in known]

    def _suppress_duplicates(self, poses):
        """Best first; a pose that repeats a better one (one person found twice, e.g. by a
        detector box and by the crop following it) is dropped."""
        kept = []
        for p in sorted(poses, key=lambda p: -p.score):
            if not any(self._same_person(p, k) for k in kept):
                kept.append(p)
        return kept

    def _same_person(self, a: Pose, b: Pose) -> bool:
        """Boxes overlapping more than DUPLICATE_IOU, or the same joints: a box inside
        another around one person overlaps little but finds the same keypoints."""
        if box_iou(a.box, b.box) >= DUPLICATE_IOU:
            return True
        return keypoint_similarity(a.keypoints, a.confidences, b.keypoints, b.confidences,
                                   max(box_size(a.box), box_size(b.box)),
                                   self.config.keypoint_threshold,
                                   MIN_SEEN_JOINTS) >= DUPLICATE_SIMILARITY

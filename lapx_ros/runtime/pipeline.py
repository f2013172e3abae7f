"""Frame after frame: where to look (the mode), the pose network on those crops, then one
pose per person with a stable id, smoothed. No ROS here.

The mode (``runtime.modes``) chooses the crops; everything after is the same for every
mode: poses below the keep threshold go, one person found twice is one pose, the tracker
gives ids (a new person once confirmed), the smoother follows the ids.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.geometry import box_iou, keypoints_to_box
from lapx_ros.layouts import COCO_17, convert_joints
from lapx_ros.runtime.estimator import Pose, PoseEstimator
from lapx_ros.runtime.modes import DUPLICATE_IOU, mode_class
from lapx_ros.runtime.person_score import PersonEvidence, PersonScorer, mean_confidence
from lapx_ros.runtime.smoothing import OneEuroParams, PoseSmoother
from lapx_ros.runtime.tracking import Tracker, TrackerSettings, box_size, keypoint_similarity
from lapx_ros.topdown import MIN_SEEN_JOINTS

# Two poses whose joints seen in both are this similar (tracking.keypoint_similarity,
# over at least MIN_SEEN_JOINTS joints) are one person found twice, whatever their boxes.
DUPLICATE_SIMILARITY = 0.5
# A track whose predicted box lies less than this fraction inside the image has left it.
MIN_INSIDE = 0.5
# A track missed on more frames in a row than this gets no crop of its own any more (it
# keeps its id for track_max_missed frames: a detection or a box can still find it).
FOLLOW_MAX_MISSED = 5
# A detector joint and a pose joint count as seen by both from this score up, when the
# detector's keypoints are compared with the pose's.
AGREEMENT_JOINT_SCORE = 0.2
# A followed person keeps the score its last detection gave it, times this for every
# frame since: the detector runs every few frames, and a person it vouched for stays one
# in between (a one-frame phantom still costs no id: confirmation needs two frames).
VOUCHED_DECAY = 0.9


@dataclass
class PipelineConfig:
    """Settings the node may change between frames (all but ``mode``, which is read when
    the pipeline is made). No defaults here: the node's parameter table
    (lapx_ros/ros/params.py, ``pipeline_config``) is their one source."""

    mode: str  # a name of modes.MODES
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


class PosePipeline:
    """Chooses where to look (its ``mode``), runs the estimator, tracks ids and smooths
    keypoints. ``detector`` is the built-in detector's BackgroundDetector in a mode that
    runs one."""

    def __init__(self, estimator: PoseEstimator, config: PipelineConfig, detector=None):
        self.estimator = estimator
        self.config = config
        self.detector = detector
        self.mode = mode_class(config.mode)()
        # the person score the model file was calibrated with, else its mean joint confidence
        self.scorer = PersonScorer.from_metadata(estimator.metadata.extra)
        self.tracker = Tracker(self._tracker_settings())
        self.smoother = PoseSmoother(config.smoothing_params)
        self._previous: list[Pose] = []
        self._frame_shape = None
        # Set by the caller that queues frames (the node's worker): whether a newer frame
        # already waits. Never, offline.
        self.newer_frame_waiting = lambda: False

    def reset(self) -> None:
        """Forget people (camera restart, resolution change)."""
        self._previous = []
        self.mode.reset()
        if self.detector is not None:
            self.detector.take()  # a detection from before the reset is stale
        self.tracker.reset()
        self.smoother.reset()

    def process(self, frame_bgr: np.ndarray, stamp: float, boxes=None, box_scores=None):
        """Poses found in ``frame_bgr``; ``boxes`` (N, 4) only in a mode that takes them,
        or None."""
        if frame_bgr.shape != self._frame_shape:
            self.reset()
            self._frame_shape = frame_bgr.shape
        self._apply_settings()
        poses = self._track(self.mode.look(self, frame_bgr, boxes, box_scores))
        self._previous = poses
        if self.config.smoothing:
            for p in poses:
                p.keypoints = self.smoother(p.track_id, p.keypoints, stamp)
            self.smoother.retain(self.tracker.active_ids)
        else:
            self.smoother.reset()
        return [Pose(p.keypoints.copy(), p.confidences.copy(), p.box.copy(), p.score,
                     p.track_id, p.detection) for p in poses]

    # ----------------------------------------------------------- for the modes
    @property
    def keep_threshold(self) -> float:
        """The score a reported person keeps being reported down to (hysteresis)."""
        return max(0.0, self.config.person_threshold - self.config.person_keep_margin)

    def estimate(self, frame, boxes, padding) -> list[Pose]:
        """One pose per box (crops grown by ``padding``, one factor or one per box), each
        scored (``score``)."""
        poses = self.estimator(frame, boxes, padding, self.config.decode)
        for p in poses:
            p.score = self.score(p)
        return poses

    def evidence(self, pose: Pose) -> PersonEvidence:
        """What says that ``pose`` is a person: its joints' confidences and, when a
        detection of this frame goes with it, the detection's score and how well the
        detector's keypoints agree with the pose's."""
        detection = pose.detection
        if detection is None:
            return PersonEvidence(pose.confidences)
        agreement = None
        if detection.keypoints is not None:
            ours = convert_joints(np.column_stack([pose.keypoints, pose.confidences]),
                                  self.estimator.metadata.layout, COCO_17, missing=np.nan)
            agreement = keypoint_similarity(np.nan_to_num(ours[:, :2]), np.nan_to_num(ours[:, 2]),
                                            detection.keypoints[:, :2], detection.keypoints[:, 2],
                                            box_size(detection.box), AGREEMENT_JOINT_SCORE, MIN_SEEN_JOINTS)
        return PersonEvidence(pose.confidences, detection.score, agreement)

    def score(self, pose: Pose) -> float:
        """How sure the pipeline is that ``pose`` is a person (runtime.person_score); a
        followed person without a detection this frame keeps its track's, decayed."""
        evidence = self.evidence(pose)
        if self.scorer is None:
            return mean_confidence(evidence)
        own = self.scorer(evidence)
        return own if pose.detection is not None else max(own, VOUCHED_DECAY * pose.vouched)

    def followed_boxes(self) -> list:
        """Crop boxes for the people of the previous frame, from their seen joints,
        moved on by their track's velocity."""
        tracks = [self.tracker.track(p.track_id) for p in self._previous]
        return [p.box if t is None else t.predicted_box() for p, t in zip(self._previous, tracks)]

    def tracked_boxes(self, width: int, height: int):
        """Crop boxes for every live track (reported, missed for up to
        FOLLOW_MAX_MISSED frames, or not yet confirmed) where it should be now, skipping
        those that have left the image; reported people first. Also whether each track
        was seen in the previous frame."""
        tracks = self.tracks_followed(width, height)
        return [t.predicted_box() for t in tracks], [t.missed == 0 for t in tracks]

    def tracks_followed(self, width: int, height: int):
        """The live tracks ``tracked_boxes`` crops, in its order."""
        out = []
        for track in sorted(self.tracker.tracks, key=lambda t: (not t.track_id, t.missed)):
            if track.missed > FOLLOW_MAX_MISSED:
                continue
            box = track.predicted_box()
            if box_iou(box, np.clip(box, 0, [width, height, width, height])) >= MIN_INSIDE:
                out.append(track)
        return out

    # ----------------------------------------------------------------- the rest
    def _tracker_settings(self) -> TrackerSettings:
        """The tracker's settings from the config. ``track_confirm_frames`` applies where
        the mode asks for confirmation, unless person_threshold is 0 (every pose wanted,
        unvetted)."""
        cfg = self.config
        at_once = self.mode.reports_at_once or cfg.person_threshold <= 0
        return TrackerSettings(cfg.track_match_threshold, cfg.track_max_missed, cfg.keypoint_threshold,
                               cfg.person_threshold, self.keep_threshold,
                               1 if at_once else cfg.track_confirm_frames)

    def _apply_settings(self) -> None:
        """The config as it is now, into the parts that keep their own copy."""
        cfg = self.config
        self.tracker.settings = self._tracker_settings()
        self.estimator.predictor.flip_test = cfg.flip_test
        p = cfg.smoothing_params  # copied into the smoother's shared params: live filters follow
        self.smoother.set_params(p.min_cutoff, p.beta, p.d_cutoff)

    def _track(self, poses) -> list[Pose]:
        """The poses to report, with their ids: duplicates dropped, then the tracker
        decides (a new person once confirmed at ``person_threshold``, a known one while
        at or above the keep threshold)."""
        poses = [p for p in poses if p.score >= self.keep_threshold]
        for p in poses:
            p.box = self.published_box(p)
        poses = self._suppress_duplicates(poses)[:self.config.max_people]
        ids = self.tracker.update([p.box for p in poses], [p.keypoints for p in poses],
                                  [p.confidences for p in poses], [p.score for p in poses])
        for p, tid, track in zip(poses, ids, self.tracker.matched):
            p.track_id = tid
            if track is not None and self.scorer is not None:
                track.vouched = p.score if p.detection is not None else VOUCHED_DECAY * track.vouched
        return [p for p in poses if p.track_id]

    def published_box(self, pose: Pose) -> np.ndarray:
        """The box a pose is published with: around its confident joints, or its crop's
        box when too few joints are confident."""
        seen = pose.confidences >= self.config.keypoint_threshold
        if seen.sum() < MIN_SEEN_JOINTS:
            return pose.box
        return np.asarray(keypoints_to_box(pose.keypoints, seen), np.float64)

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

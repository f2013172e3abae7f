"""Where the pipeline looks in each frame, by the name the ``mode`` parameter gives it.

One class per mode, behind ``MODES = {name: class}``; adding a mode is a class that
follows ``Mode`` and its row. A mode decides which crops of a frame go through the pose
network; the pipeline (``runtime.pipeline``) then drops duplicates, tracks ids and
smooths, the same for every mode.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from lapx_ros.geometry import JOINTS_BOX_PADDING, box_iou, keypoints_to_box
from lapx_ros.runtime.estimator import DetectedPerson, Pose, sanitize_boxes, usable_boxes
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING

if TYPE_CHECKING:
    from lapx_ros.runtime.pipeline import PosePipeline

# Two person boxes overlapping more than this are taken to be the same person.
DUPLICATE_IOU = 0.5
# A followed box lying this much inside a detector box whose height is at most
# COVERED_HEIGHT_RATIO times its own is that detection's person: one crop for both.
COVERED_INSIDE = 0.8
COVERED_HEIGHT_RATIO = 2.0


class Mode(Protocol):
    """Where a pipeline looks; one instance per pipeline, holding what the mode remembers
    between frames."""

    summary: str  # what it does, for the parameter table
    takes_boxes: bool  # person boxes from another node come with the frames
    runs_detector: bool  # the built-in detector runs beside the pipeline
    reports_at_once: bool  # a new person is reported on its first frame (no track_confirm_frames)

    def reset(self) -> None:
        """Forget what was seen (the pipeline's reset: camera restart, new resolution)."""

    def look(self, pipeline: PosePipeline, frame: np.ndarray, boxes, box_scores) -> list[Pose]:
        """The poses of this frame's crops, before duplicates are dropped and ids given.
        ``boxes`` (N, 4) and ``box_scores`` come with the frame in a mode that takes them,
        or are None."""


class SingleMode:
    """One person: the whole frame is searched (``search_passes`` network calls), later
    frames crop around the previous frame's keypoints, and the whole frame is searched
    again when the person's confidence falls. While nobody is followed, the search runs
    every ``search_interval`` frames and the frames between crop where the last look found
    its joints (one network call instead of ``search_passes``)."""

    summary = "one person followed over frames"
    takes_boxes = False
    runs_detector = False
    reports_at_once = True  # its whole-frame search has looked several times

    def __init__(self):
        self._frames_since_search = 0
        self.reset()

    def reset(self) -> None:
        self._unconfirmed_box = None  # where the last look, below threshold, lay
        # context of the next crop around the last look's joints; the search's
        # first-refinement padding when that look was a whole-frame search cut short
        self._next_crop_padding = JOINTS_BOX_PADDING

    def look(self, pipeline, frame, boxes, box_scores):
        """Follow the previous frame's person while it stays above the keep threshold, or
        search the whole frame at once when that person is lost. While nobody is
        followed, search only every ``search_interval`` frames and look where the last
        unconfirmed pose lay in between: its joints are the search's second pass carried
        to the next frame."""
        cfg = pipeline.config
        self._frames_since_search += 1
        padding, self._next_crop_padding = self._next_crop_padding, JOINTS_BOX_PADDING
        followed = pipeline.followed_boxes()
        if followed:
            poses = pipeline.estimate(frame, followed[:1], padding)
            if poses and poses[0].score >= pipeline.keep_threshold:  # hysteresis, as the tracker
                return poses
        elif self._unconfirmed_box is not None and self._frames_since_search < cfg.search_interval:
            poses = pipeline.estimate(frame, [self._unconfirmed_box], padding)
            self._remember_unconfirmed(poses[0], cfg.person_threshold)
            return poses
        poses = self._search_whole_frame(pipeline, frame)
        self._frames_since_search = 0
        self._remember_unconfirmed(poses[0], cfg.person_threshold)
        return poses

    def _remember_unconfirmed(self, pose: Pose, person_threshold: float) -> None:
        """Keep where a pose below ``person_threshold`` lay as the next frame's crop, boxed
        by all its joints like the search's second pass; a reported pose is followed instead."""
        box = None if pose.score >= person_threshold else keypoints_to_box(pose.keypoints)
        self._unconfirmed_box = None if box is None else np.asarray(box, np.float64)

    def _search_whole_frame(self, pipeline, frame):
        """``search_passes`` network calls, exactly as offline evaluation: the whole
        frame, then each time a crop around the joints the previous call found. Passes
        beyond ``search_passes_when_busy`` run only while the pipeline's
        ``newer_frame_waiting`` says no: on a live stream the next frame's crop refines
        instead of a late answer (grown as the refinement it stands for)."""
        cfg = pipeline.config
        busy_passes = min(cfg.search_passes_when_busy, cfg.search_passes)
        passes_run = cfg.search_passes

        def more_passes(done: int) -> bool:
            nonlocal passes_run
            if done < busy_passes or not pipeline.newer_frame_waiting():
                return True
            passes_run = done
            return False

        keypoints, confidences = pipeline.estimator.predictor.estimate_single(
            frame, passes=cfg.search_passes, decode_method=cfg.decode, more_passes=more_passes)
        if passes_run == 1:
            self._next_crop_padding = FIRST_REFINEMENT_PADDING
        h, w = frame.shape[:2]
        return [Pose(keypoints, confidences.astype(np.float32), np.array([0.0, 0.0, w, h]),
                     float(confidences.mean()))]


class BoxesMode:
    """Person boxes from another node, grown by ``box_padding``; frames that bring no
    boxes follow the people already seen by their keypoints."""

    summary = "person boxes from boxes_topic"
    takes_boxes = True
    runs_detector = False
    reports_at_once = False

    def reset(self) -> None:
        pass  # nothing kept between frames beyond the pipeline's tracks

    def look(self, pipeline, frame, boxes, box_scores):
        h, w = frame.shape[:2]
        if boxes is None:
            return pipeline.estimate(frame, pipeline.tracked_boxes(w, h)[0], JOINTS_BOX_PADDING)
        return pipeline.estimate(frame, best_boxes(boxes, box_scores, w, h, pipeline.config.max_people),
                                 pipeline.config.box_padding)


class DetectorMode:
    """The built-in detector (the pipeline's ``detector``) every ``detector_interval``
    frames, on a thread of its own; people are followed by their keypoints in between,
    and also when a detection misses them."""

    summary = "the built-in person detector (parameter detector)"
    takes_boxes = False
    runs_detector = True
    reports_at_once = False

    def __init__(self):
        self._frame_index = 0
        self._last_submit = None

    def reset(self) -> None:
        self._last_submit = None

    def look(self, pipeline, frame, boxes, box_scores):
        h, w = frame.shape[:2]
        tracks = pipeline.tracks_followed(w, h)
        followed, seen = [t.predicted_box() for t in tracks], [t.missed == 0 for t in tracks]
        found = self._detections(pipeline, frame)
        if found is None:
            return self._rescored(pipeline, pipeline.estimate(frame, followed, JOINTS_BOX_PADDING),
                                  [None] * len(followed), tracks)
        detected = best_detections(found, w, h, pipeline.config.max_people)
        # People followed from the previous frame keep their crop, centred on where they
        # are now (the detection may be a few frames old); the detector's boxes, already
        # loose around the person (MoveNet's are grown around its keypoints, HOG's windows
        # hold margins), look for everyone else. Each pose keeps the detection it came
        # from or matched: evidence that it is a person (runtime.person_score).
        seen_index = [i for i, s in enumerate(seen) if s]
        pairs = follow_pairs([followed[i] for i in seen_index], [d.box for d in detected])
        matched = {seen_index[fi]: di for fi, di in pairs.items()}
        new = [di for di in range(len(detected)) if di not in pairs.values()]
        poses = pipeline.estimate(frame, [detected[i].box for i in new] + followed,
                                  [1.0] * len(new) + [JOINTS_BOX_PADDING] * len(followed))
        sources = [detected[i] for i in new] + [detected[matched[fi]] if fi in matched else None
                                                for fi in range(len(followed))]
        return self._rescored(pipeline, poses, sources, [None] * len(new) + tracks)

    @staticmethod
    def _rescored(pipeline, poses, sources, tracks):
        """The poses with the detection each came from or matched and what its track
        carries from its last detection, scored again on that evidence."""
        for pose, source, track in zip(poses, sources, tracks):
            pose.detection = source
            if track is not None:
                pose.vouched = track.vouched
            pose.score = pipeline.score(pose)
        return poses

    def _detections(self, pipeline, frame):
        """The newest finished detection, (boxes, scores), or None; hands the detector
        this frame when a run is due."""
        detector = pipeline.detector
        if detector is None:
            return None
        self._frame_index += 1
        due = (self._last_submit is None
               or self._frame_index - self._last_submit >= pipeline.config.detector_interval)
        if due and detector.submit(frame):
            self._last_submit = self._frame_index
        return detector.take()


MODES: dict[str, type[Mode]] = {
    "single": SingleMode,
    "boxes": BoxesMode,
    "detector": DetectorMode,
}


def mode_class(name: str) -> type[Mode]:
    """The mode of ``name``; ValueError naming the choices for any other name."""
    try:
        return MODES[name]
    except KeyError:
        raise ValueError(f"mode must be one of {list(MODES)}, got {name!r}") from None


def best_boxes(boxes, scores, width: int, height: int, max_people: int) -> list:
    """The usable boxes (``sanitize_boxes``), best score first, at most ``max_people``."""
    scores = np.ones(len(boxes)) if scores is None else scores
    boxes, scores, _ = sanitize_boxes(boxes, scores, width, height)
    return list(boxes[np.argsort(-scores)][:max_people])


def best_detections(found, width: int, height: int, max_people: int) -> list[DetectedPerson]:
    """The usable detections (``sanitize_boxes``), best score first, at most ``max_people``,
    with their keypoints where the detector gives them."""
    boxes = np.asarray(found[0], np.float64).reshape(-1, 4)
    scores = np.ones(len(boxes)) if found[1] is None else np.asarray(found[1], np.float64).reshape(-1)
    keypoints = getattr(found, "keypoints", None)
    if keypoints is not None and len(keypoints) != len(boxes):
        keypoints = None
    clipped, ok = usable_boxes(boxes, scores, width, height)
    usable = sorted(np.flatnonzero(ok), key=lambda i: -scores[i])[:max_people]
    return [DetectedPerson(clipped[i], float(scores[i]), None if keypoints is None else np.asarray(keypoints[i]))
            for i in usable]


def follow_pairs(followed, detections) -> dict[int, int]:
    """{followed index: detection index} for the followed people a detection accounts
    for. A followed box accounts for one detection at most: the best overlapping one of
    those it lies mostly inside (a detector box is loose around the joints a followed box
    holds) that are not much taller."""
    pairs = []
    for fi, f in enumerate(followed):
        for di, d in enumerate(detections):
            # the share of f inside d: f's IoU with its own part inside d
            inside = box_iou(f, np.clip(f, [d[0], d[1], d[0], d[1]], [d[2], d[3], d[2], d[3]]))
            iou = box_iou(f, d)
            if iou >= DUPLICATE_IOU or (inside >= COVERED_INSIDE
                                        and d[3] - d[1] <= COVERED_HEIGHT_RATIO * (f[3] - f[1])):
                pairs.append((iou, fi, di))
    taken: dict[int, int] = {}
    for _, fi, di in sorted(pairs, reverse=True):
        if fi not in taken and di not in taken.values():
            taken[fi] = di
    return taken

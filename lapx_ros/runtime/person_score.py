"""How sure the pipeline is that a pose is a person: every signal in one calibrated score.

The pose network's joint confidences alone are low on everyday people (small, occluded,
cut by the frame) and throw away what the detector found; a detector's score alone lets
its phantoms through. ``PersonScorer`` combines, by logistic regression fitted on tuning
sets (scripts/calibrate_person_score.py), the pose's confidences (the mean of its more
confident half: a person half hidden is still a person), the detector's score for the
person this frame, and how well the detector's keypoints agree with the pose's. The result
is a probability that the pose is a real person; the tracker confirms and keeps people on
it (person_threshold), over frames (track_confirm_frames), so a one-frame detection costs
no id.

The fitted weights belong to one pose network: a model file carries them in its metadata
(``extra["person_score"]``); a file without them keeps the mean joint confidence.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

METADATA_KEY = "person_score"


@dataclass(frozen=True)
class PersonEvidence:
    """What is known of one pose in one frame."""

    joint_confidences: np.ndarray               # (K,) the pose network's
    detector_score: float | None = None         # the detection it came from this frame, if any
    detector_agreement: float | None = None     # keypoint similarity of the detection's joints to the pose's


def confident_half_mean(confidences: np.ndarray) -> float:
    """Mean of the more confident half of the joints."""
    c = np.sort(np.asarray(confidences, np.float64).reshape(-1))[::-1]
    return float(c[: max(1, (len(c) + 1) // 2)].mean()) if len(c) else 0.0


def features(evidence: PersonEvidence) -> np.ndarray:
    """(pose, detector score, agreement, no detection) for the logistic model."""
    detected = evidence.detector_score is not None
    return np.array([confident_half_mean(evidence.joint_confidences),
                     float(evidence.detector_score) if detected else 0.0,
                     float(evidence.detector_agreement or 0.0) if detected else 0.0,
                     0.0 if detected else 1.0])


@dataclass(frozen=True)
class PersonScorer:
    """sigmoid(bias + w . features): the probability that a pose is a person."""

    bias: float
    pose: float
    detector: float
    agreement: float
    no_detection: float

    def __call__(self, evidence: PersonEvidence) -> float:
        z = self.bias + float(np.dot([self.pose, self.detector, self.agreement, self.no_detection],
                                     features(evidence)))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_metadata(cls, extra: dict) -> "PersonScorer | None":
        """The scorer a model file carries, None when it carries none; ValueError when
        what it carries is malformed."""
        raw = extra.get(METADATA_KEY)
        if raw is None:
            return None
        try:
            scorer = cls(**{k: float(raw[k]) for k in ("bias", "pose", "detector", "agreement", "no_detection")})
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model metadata {METADATA_KEY!r} is malformed: {exc!r}") from None
        if not all(math.isfinite(v) for v in asdict(scorer).values()):
            raise ValueError(f"model metadata {METADATA_KEY!r} has a non-finite weight")
        return scorer


def mean_confidence(evidence: PersonEvidence) -> float:
    """The score of a model file without a fitted scorer: its mean joint confidence."""
    return float(np.mean(evidence.joint_confidences)) if len(evidence.joint_confidences) else 0.0


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> tuple[float, np.ndarray]:
    """Bias and weights of a logistic regression of ``y`` (0/1) on ``x`` (N, F), by
    Newton's method with a small L2 penalty (no library needed)."""
    x = np.column_stack([np.ones(len(x)), np.asarray(x, np.float64)])
    y = np.asarray(y, np.float64)
    w = np.zeros(x.shape[1])
    penalty = l2 * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), w[1:]

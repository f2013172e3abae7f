"""The calibrated person score: features, the logistic fit, and what a model file carries."""
import numpy as np
import pytest

from lapx_ros.runtime.person_score import (PersonEvidence, PersonScorer, confident_half_mean, features,
                                           fit_logistic, mean_confidence)

SCORER = PersonScorer(bias=-3.0, pose=4.0, detector=3.0, agreement=2.0, no_detection=0.5)


def test_the_confident_half_ignores_hidden_joints():
    half_hidden = np.array([0.9] * 9 + [0.0] * 8)
    assert confident_half_mean(half_hidden) == pytest.approx(0.9)
    assert mean_confidence(PersonEvidence(half_hidden)) < 0.5


def test_a_detection_that_agrees_with_the_pose_raises_the_score():
    weak_pose = np.full(17, 0.3)
    alone = SCORER(PersonEvidence(weak_pose))
    detected = SCORER(PersonEvidence(weak_pose, detector_score=0.6, detector_agreement=0.8))
    disagreeing = SCORER(PersonEvidence(weak_pose, detector_score=0.6, detector_agreement=0.0))
    assert alone < disagreeing < detected and 0.0 < alone and detected < 1.0
    assert features(PersonEvidence(weak_pose))[3] == 1.0


def test_the_fit_recovers_weights_that_made_the_labels():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4000, 2))
    true_bias, true_w = -2.0, np.array([3.0, 1.5])
    y = rng.random(4000) < 1 / (1 + np.exp(-(true_bias + x @ true_w)))
    bias, w = fit_logistic(x, y)
    assert bias == pytest.approx(true_bias, abs=0.4) and np.allclose(w, true_w, atol=0.5)


def test_a_model_file_carries_its_scorer_or_none():
    assert PersonScorer.from_metadata({}) is None
    assert PersonScorer.from_metadata({"person_score": SCORER.to_dict()}) == SCORER
    with pytest.raises(ValueError, match="malformed"):
        PersonScorer.from_metadata({"person_score": {"bias": 1.0}})
    with pytest.raises(ValueError, match="non-finite"):
        PersonScorer.from_metadata({"person_score": {**SCORER.to_dict(), "pose": float("nan")}})

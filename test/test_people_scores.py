"""Scoring of the people found against COCO labels (lapx_ros.testing.people): the
matching protocol of detector_probe.py, tallies, track and latency summaries."""
import numpy as np
import pytest

from lapx_ros.geometry import box_ious
from lapx_ros.testing import people as scoring


def test_ious_and_crowd_cover():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(box_ious(np.array([0, 0, 10, 10.0]), boxes), [1.0, 1 / 3, 0.0])
    assert box_ious(np.array([0, 0, 1, 1.0]), np.zeros((0, 4))).shape == (0,)
    crowd = np.array([[0, 0, 100, 100]], float)
    assert scoring.covered_by_crowd([10, 10, 20, 20], crowd)
    assert not scoring.covered_by_crowd([90, 90, 120, 120], crowd)  # a quarter inside
    assert not scoring.covered_by_crowd([10, 10, 20, 20], np.zeros((0, 4)))


def test_label_poses_greedy_best_score_first():
    people = np.array([[0, 0, 10, 20], [30, 0, 40, 20]], float)
    target = np.array([True, False])
    crowd = np.array([[100, 100, 200, 200]], float)
    boxes = np.array([
        [0, 0, 10, 19],       # 0: target, lower score
        [0, 0, 10, 20],       # 1: target, best score: takes person 0 first
        [30, 0, 40, 20],      # 2: person with few keypoints: true, not a target
        [50, 50, 60, 60],     # 3: false
        [120, 120, 130, 130],  # 4: inside the crowd box: not counted
    ], float)
    scores = np.array([0.5, 0.9, 0.8, 0.7, 0.6])
    kinds = scoring.label_poses(boxes, scores, people, target, crowd)
    # pose 0 finds person 0 taken and no other match: false (not in a crowd)
    assert kinds.tolist() == [scoring.FALSE, scoring.TARGET, scoring.OTHER_PERSON, scoring.FALSE, scoring.IN_CROWD]
    # each person is found once, by the better pose, whatever the input order
    order = [4, 3, 2, 1, 0]
    assert scoring.label_poses(boxes[order], scores[order], people, target, crowd).tolist() == kinds[order].tolist()
    assert scoring.label_poses(np.zeros((0, 4)), np.zeros(0), people, target, crowd).tolist() == []
    # IoU below 0.5 is no match
    assert scoring.label_poses([[0, 0, 10, 9]], [1.0], people, target, crowd).tolist() == [scoring.FALSE]


def test_tally_and_coco_people():
    anns = [{"bbox": [0, 0, 10, 20], "num_keypoints": 7, "iscrowd": 0},
            {"bbox": [30, 0, 10, 20], "num_keypoints": 2, "iscrowd": 0},
            {"bbox": [100, 100, 100, 100], "num_keypoints": 0, "iscrowd": 1}]
    boxes, target, crowd = scoring.coco_people(anns)
    np.testing.assert_allclose(boxes, [[0, 0, 10, 20], [30, 0, 40, 20]])
    assert target.tolist() == [True, False]
    np.testing.assert_allclose(crowd, [[100, 100, 200, 200]])
    t = scoring.tally([np.array([scoring.TARGET, scoring.OTHER_PERSON, scoring.FALSE, scoring.IN_CROWD]), np.array([], int)],
                 targets=2, people=3)
    assert (t["targets_found"], t["true"], t["counted"], t["not_counted_in_crowd"]) == (1, 2, 3, 1)
    assert t["recall"] == 0.5 and t["precision"] == pytest.approx(2 / 3)
    assert t["recall_all_people"] == pytest.approx(2 / 3)
    empty = scoring.tally([], targets=0, people=0)
    assert np.isnan(empty["recall"]) and np.isnan(empty["precision"])


def test_track_summary_counts_ids_and_short_tracks():
    s = scoring.track_summary([[1, 2], [1, 2, 3], [1], [], [4, 0]])
    assert s["frames"] == 5
    assert s["track_ids"] == 4  # 0 = no id, not counted
    assert s["people_per_frame_max"] == 3
    assert s["people_per_frame_mean"] == pytest.approx(8 / 5)
    assert s["frames_with_people"] == 4
    assert s["tracks_of_1_frame"] == 2  # ids 3 and 4


def test_rate_and_latency():
    stamps = 100.0 + np.arange(11) * 0.1
    recv = stamps + 0.05
    r = scoring.rate_and_latency(stamps, recv)
    assert r["processed"] == 11
    assert r["rate_hz"] == pytest.approx(10.0)
    assert r["latency_ms_p50"] == pytest.approx(50.0)
    assert np.isnan(scoring.rate_and_latency([], [])["rate_hz"])

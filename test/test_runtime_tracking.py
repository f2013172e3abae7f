"""Tracking ids, One-Euro smoothing, stamp checks and the pipeline's counters (plain Python)."""
import numpy as np
import pytest

from lapx_ros.geometry import box_iou
from lapx_ros.runtime.frames import DropCounter, FrameGate, PipelineStats
from lapx_ros.runtime.smoothing import OneEuroFilter, OneEuroParams, PoseSmoother
from lapx_ros.runtime.tracking import Tracker, TrackerSettings


def test_ids_follow_moving_people_and_survive_occlusion():
    tracker = Tracker(TrackerSettings(match_threshold=0.3, max_missed=3, keypoint_threshold=0.2))
    a, b = np.array([0, 0, 50, 100.0]), np.array([200, 0, 250, 100.0])
    assert tracker.update([a, b]) == [1, 2]
    assert tracker.update([b + 5, a + 5]) == [2, 1]  # order does not matter
    for _ in range(3):  # b hidden for 3 frames
        assert tracker.update([a + 5]) == [1]
    assert tracker.update([a + 5, b + 5]) == [1, 2]


def test_lost_track_gets_a_new_id_and_ids_are_not_reused():
    tracker = Tracker(TrackerSettings(match_threshold=0.3, max_missed=1, keypoint_threshold=0.2))
    box = np.array([0, 0, 50, 100.0])
    assert tracker.update([box]) == [1]
    tracker.update([])
    tracker.update([])
    assert tracker.update([box]) == [2]
    tracker.reset()
    assert tracker.update([box]) == [3]


def test_keypoint_similarity_matches_when_boxes_do_not_overlap_much():
    tracker = Tracker(TrackerSettings(match_threshold=0.5, max_missed=15, keypoint_threshold=0.2))
    kps = np.array([[10.0, 10.0], [40.0, 90.0]])
    conf = np.array([0.9, 0.9])
    tracker.update([np.array([0, 0, 50, 100.0])], [kps], [conf])
    # Same joints, a much wider box (e.g. an arm stretched out): IoU 0.2, keypoints match.
    ids = tracker.update([np.array([0, 0, 250, 100.0])], [kps + 1], [conf])
    assert ids == [1]


def hysteresis_tracker(**changes):
    """Confirm at 0.5, keep down to 0.3, as the pipeline sets it up."""
    settings = dict(match_threshold=0.3, max_missed=3, keypoint_threshold=0.2,
                    confirm_threshold=0.5, keep_threshold=0.3, confirm_frames=1)
    return Tracker(TrackerSettings(**{**settings, **changes}))


def test_confirmed_person_keeps_its_id_through_dips_below_the_confirm_threshold():
    tracker = hysteresis_tracker()
    box = np.array([0, 0, 50, 100.0])
    assert tracker.update([box], scores=[0.6]) == [1]
    for score in (0.45, 0.35, 0.31, 0.6):  # below confirm, above keep: still reported
        assert tracker.update([box], scores=[score]) == [1]
    for _ in range(3):  # below keep: not reported, a miss, the id is kept
        assert tracker.update([box], scores=[0.2]) == [0]
    assert tracker.update([box], scores=[0.4]) == [1]
    for _ in range(4):  # below keep for more than max_missed frames: the track ends
        tracker.update([box], scores=[0.2])
    assert tracker.update([box], scores=[0.4]) == [0]  # a new person must be confirmed again
    assert tracker.update([box], scores=[0.5]) == [2]


def test_a_person_never_confirmed_is_never_reported_and_costs_no_id():
    tracker = hysteresis_tracker()
    phantom, person = np.array([300, 0, 350, 100.0]), np.array([0, 0, 50, 100.0])
    for _ in range(10):  # above keep, never at confirm: a detection the network doubts
        assert tracker.update([phantom], scores=[0.45]) == [0]
    assert tracker.active_ids == []
    assert tracker.update([phantom, person], scores=[0.45, 0.9]) == [0, 1]


def test_confirmation_over_frames_and_spurious_detections_cost_no_id():
    tracker = hysteresis_tracker(confirm_frames=2)
    person, spurious, other = (np.array([0, 0, 50, 100.0]), np.array([300, 0, 350, 100.0]),
                               np.array([150, 0, 200, 100.0]))
    assert tracker.update([person], scores=[0.9]) == [0]  # seen once: not yet
    assert tracker.update([person + 2, spurious], scores=[0.9, 0.9]) == [1, 0]
    assert tracker.update([person + 4], scores=[0.9]) == [1]  # the spurious one is gone
    assert tracker.update([person + 6, other], scores=[0.9, 0.9]) == [1, 0]
    assert tracker.update([person + 8, other], scores=[0.9, 0.9]) == [1, 2]  # 2, not 3
    # An unconfirmed track ends at its first miss: confirmation needs frames in a row.
    assert tracker.update([spurious], scores=[0.9]) == [0]
    tracker.update([], scores=[])
    assert tracker.update([spurious], scores=[0.9]) == [0]


def test_a_hidden_walker_is_found_where_its_motion_takes_it():
    tracker = Tracker(TrackerSettings(match_threshold=0.3, max_missed=5, keypoint_threshold=0.2))
    box, step = np.array([0, 0, 40, 100.0]), np.array([15.0, 0, 15.0, 0])
    for k in range(4):
        assert tracker.update([box + k * step]) == [1]
    for _ in range(4):  # hidden for 4 frames
        assert tracker.update([]) == []
    # Back 75 px on: nowhere near where it was last seen.
    assert box_iou(box + 3 * step, box + 8 * step) == 0
    assert tracker.update([box + 8 * step]) == [1]
    assert tracker.active_ids == [1]


def test_a_person_who_stopped_while_hidden_is_found_where_it_was_last_seen():
    tracker = Tracker(TrackerSettings(match_threshold=0.3, max_missed=5, keypoint_threshold=0.2))
    box, step = np.array([0, 0, 40, 100.0]), np.array([15.0, 0, 15.0, 0])
    for k in range(4):
        tracker.update([box + k * step])
    for _ in range(3):
        tracker.update([])
    assert tracker.update([box + 4 * step]) == [1]


def test_crossing_people_keep_their_ids():
    """A walks right, B walks left on the same line; B is hidden behind A while they
    cross and comes out on the other side, where A's last sighting lies."""
    tracker = Tracker(TrackerSettings(match_threshold=0.3, max_missed=8, keypoint_threshold=0.2))
    box = np.array([0, 0, 40, 100.0])
    step = np.array([10.0, 0, 10.0, 0])
    b0 = box + 20 * step
    ids = tracker.update([b0, box])  # B listed first: it gets the older track
    assert ids == [1, 2]
    for k in range(1, 21):
        a, b = box + k * step, b0 - k * step
        if 7 <= k <= 13:  # B behind A
            assert tracker.update([a]) == [2], k
        else:
            assert tracker.update([b, a]) == [1, 2], k


def test_keypoints_follow_the_track_velocity():
    tracker = Tracker(TrackerSettings(match_threshold=0.5, max_missed=5, keypoint_threshold=0.2))
    kps = np.array([[10.0, 10.0], [30.0, 50.0], [20.0, 90.0]])
    conf = np.full(3, 0.9)
    box = np.array([10.0, 10.0, 30.0, 90.0])
    for k in range(3):
        assert tracker.update([box + (8 * k, 0, 8 * k, 0)], [kps + (8 * k, 0)], [conf]) == [1]
    track = tracker.track(1)
    assert np.allclose(track.velocity, (8, 0))
    assert np.allclose(track.predicted_keypoints(), kps + (24, 0))
    assert np.allclose(track.predicted_box(), box + (24, 0, 24, 0))
    tracker.update([])
    assert np.allclose(track.predicted_box(), box + (32, 0, 32, 0))  # two frames on


def test_one_euro_smooths_noise_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0, d_cutoff=1.0))
    noisy = [f(np.array([100.0 + rng.normal(0, 2)]), i / 30) for i in range(60)]
    assert np.std(noisy[30:]) < 1.0
    fast = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=1.0, d_cutoff=1.0))
    slow = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.0, d_cutoff=1.0))
    for i in range(10):
        x = np.array([i * 20.0])
        out_fast, out_slow = fast(x, i / 30), slow(x, i / 30)
    assert abs(out_fast[0] - 180) < abs(out_slow[0] - 180)  # beta reduces lag


def test_one_euro_restarts_on_time_going_back():
    f = OneEuroFilter(OneEuroParams(min_cutoff=1.0, beta=0.05, d_cutoff=1.0))
    f(np.array([0.0]), 1.0)
    assert f(np.array([50.0]), 0.5)[0] == 50.0


def test_smoother_params_change_at_run_time_and_filters_are_freed():
    smoother = PoseSmoother(OneEuroParams(min_cutoff=1.0, beta=0.05, d_cutoff=1.0))
    smoother(1, np.zeros((2, 2)), 0.0)
    smoother(2, np.zeros((2, 2)), 0.0)
    smoother.set_params(min_cutoff=100.0, beta=0.0, d_cutoff=1.0)
    out = smoother(1, np.full((2, 2), 10.0), 1.0)
    assert out[0, 0] > 9.9  # a high cut-off barely smooths
    smoother.retain([1])
    assert len(smoother) == 1


def test_frame_gate():
    gate = FrameGate(reset_after=3)
    assert gate.check(10.0, 10.0, 1.0) == (None, False)
    reason, _ = gate.check(20.0, 10.0, 1.0)
    assert "future" in reason
    assert "backwards" in gate.check(9.0, 10.0, 1.0)[0]
    assert "backwards" in gate.check(9.1, 10.0, 1.0)[0]
    assert gate.check(9.2, 10.0, 1.0) == (None, True)  # a restarted clock
    assert gate.check(9.3, 10.0, 1.0) == (None, False)
    assert gate.check(15.0, 20.0, 1.0, max_gap=2.0) == (None, True)  # camera was off


def test_stats_report_rates_and_reasons():
    stats = PipelineStats()
    for _ in range(3):
        stats.received()
    stats.stale()
    stats.invalid("unsupported encoding '16UC1'; supported ...")
    stats.processed(0.02, 0.01, 2)
    report = stats.report()
    assert report["frames_received"] == 3 and report["dropped_stale"] == 1
    assert report["dropped_invalid"] == 1 and report["people"] == 2
    assert report["latency_ms_p50"] == pytest.approx(20.0)
    assert report["invalid_reasons"] == {"unsupported encoding": 1}
    assert stats.invalid("image too small: 1x1") != stats.invalid("image too large: 7680x4320 > 8294400")
    for i in range(100):
        stats.invalid(f"{'word' * (i + 1)} and more")
    assert len(stats.report()["invalid_reasons"]) <= 17


def test_drops_are_counted_by_kind_in_a_bounded_table():
    drops = DropCounter(max_kinds=2)
    assert drops.count("image too large: 7680x4320 > 8294400") == "image too large"
    assert drops.count("image too large: 9000x9000 > 8294400") == "image too large"
    assert drops.count("stamp went backwards by 0.100 s") == "stamp went backwards by N s"
    assert drops.count("a third kind") == "other"  # the table is full
    assert drops.kinds == {"image too large": 2, "stamp went backwards by N s": 1, "other": 1}

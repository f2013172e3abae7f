"""The input's health without ROS: QoS that follows the camera, frames lost in transport
told apart from a stopped camera, and the newest-frame worker."""
import threading
import time

import pytest

from lapx_ros.runtime import health
from lapx_ros.runtime.frames import DuplicateFilter, NewestFrameWorker, PipelineStats, SequenceGaps

IMAGE = "sensor_msgs/msg/Image"
RELIABLE, BEST_EFFORT = health.Publisher(IMAGE, True), health.Publisher(IMAGE, False)


@pytest.mark.parametrize("setting, publishers, expected", [
    ("auto", [], "best_effort"),  # nobody yet: match whoever comes
    ("auto", [RELIABLE], "reliable"),  # lost fragments get repaired
    ("auto", [RELIABLE, RELIABLE], "reliable"),
    ("auto", [RELIABLE, BEST_EFFORT], "best_effort"),  # a reliable reader would miss the second
    ("auto", [BEST_EFFORT], "best_effort"),
    ("reliable", [BEST_EFFORT], "reliable"),  # fixed settings are kept
    ("best_effort", [RELIABLE], "best_effort"),
])
def test_reliability_follows_the_publishers(setting, publishers, expected):
    assert health.choose_reliability(setting, publishers) == expected


def facts(**changes):
    values = dict(topic="/cam/image_raw", expected_type=IMAGE, subscription_reliability="best_effort",
                  publishers=(BEST_EFFORT,), since_last_frame_s=0.1, stale_timeout=2.0,
                  frames_received=30, frames_lost=0)
    values.update(changes)
    return health.InputFacts(**values)


def test_frames_arriving_whole_are_no_problem():
    assert health.input_problem(facts()) is None


def test_frames_arriving_with_gaps_name_the_transport_fix():
    level, message = health.input_problem(facts(frames_received=10, frames_lost=20))
    assert level == health.WARN
    assert "20 of 30 frames" in message and "lost in transport" in message
    assert "qos_reliability" in message and "Large frames" in message


def test_a_publisher_whose_frames_never_arrive_is_not_called_a_stopped_camera():
    level, message = health.input_problem(facts(since_last_frame_s=None))
    assert level == health.STALE
    assert "lost in transport" in message and "stopped" not in message
    assert "Large frames" in message


@pytest.mark.parametrize("changes, words", [
    (dict(publishers=()), "nobody publishes /cam/image_raw"),
    (dict(publishers=(health.Publisher("sensor_msgs/msg/CompressedImage", True),)), "input_transport"),
    (dict(subscription_reliability="reliable"), "qos_reliability: auto"),
])
def test_no_frames_says_why(changes, words):
    level, message = health.input_problem(facts(since_last_frame_s=5.0, **changes))
    assert level == health.STALE and words in message


def test_sequence_gaps_count_the_frames_skipped():
    gaps = SequenceGaps()
    assert [gaps.add(n) for n in (1, 2, 5, 6, 10)] == [0, 0, 2, 0, 3]
    assert gaps.lost == 5
    gaps.add(3)  # publisher restarted: numbers went back, nothing counted
    gaps.forget()
    gaps.add(100)  # the first number after forget() starts afresh
    assert gaps.add(101) == 0 and gaps.lost == 5


def test_worker_takes_the_newest_frame_and_counts_the_rest_stale():
    stats = PipelineStats()
    seen, release = [], threading.Event()

    def process(item):
        release.wait(5)
        seen.append(item)

    worker = NewestFrameWorker(process, on_error=lambda exc: None, stats=stats)
    worker.start()
    worker.put(0)
    time.sleep(0.1)  # the worker is busy with frame 0
    for i in range(1, 6):
        worker.put(i)  # 1..4 are replaced before the worker gets to them
    release.set()
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [0, 5]
    assert stats.total_received == 6 and stats.total_stale == 4


def test_worker_survives_a_failing_frame():
    stats, errors, seen = PipelineStats(), [], []

    def process(item):
        if item == "bad":
            raise ValueError("broken frame")
        seen.append(item)

    worker = NewestFrameWorker(process, on_error=errors.append, stats=stats)
    worker.start()
    worker.put("bad")
    time.sleep(0.2)
    worker.put("good")
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == ["good"] and isinstance(errors[0], ValueError)
    assert stats.total_errors == 1 and "broken frame" in stats.last_error


def test_duplicates_of_a_handover_are_recognised():
    recent = DuplicateFilter(size=3)
    assert [recent.seen(k) for k in ((1, 10), (2, 11), (1, 10), (3, 12))] == [False, False, True, False]
    for k in ((4, 13), (5, 14)):
        recent.seen(k)
    assert not recent.seen((1, 10))  # long gone: a new frame as far as the filter knows


def test_deltas_speak_of_the_last_period_and_restart_from_zero():
    deltas = health.Deltas()
    assert deltas.since_last("frames", 5) == 5
    assert deltas.since_last("frames", 8) == 3
    assert deltas.since_last("frames", 8) == 0
    deltas.forget("frames")  # its counter was replaced by a new one
    assert deltas.since_last("frames", 2) == 2


def pipeline_facts(**changes):
    values = dict(model_problem="", active=True, last_error="", input=facts(), new_invalid=0,
                  new_with_depth=0, new_without_depth=0, depth_reason="", detector_problem="", detector_fallback="",
                  processing_rate_hz=29.96, people=2)
    values.update(changes)
    return health.PipelineFacts(**values)


@pytest.mark.parametrize("changes, level, words, warn", [
    ({}, health.OK, "30.0 Hz, 2 people", False),
    ({"model_problem": "no such file", "active": False}, health.ERROR, "model not loaded: no such file", False),
    ({"active": False, "input": facts(publishers=())}, health.OK, "inactive", False),
    ({"last_error": "NaN heatmaps"}, health.ERROR, "inference failing: NaN heatmaps", False),
    # the input's problem comes before what the frames that did arrive went through
    ({"input": facts(frames_lost=3), "new_invalid": 2}, health.WARN, "lost in transport", True),
    ({"input": facts(since_last_frame_s=None)}, health.STALE, "no frames", True),
    ({"new_invalid": 2}, health.WARN, "dropped 2 bad frame(s)", False),
    ({"new_without_depth": 4, "depth_reason": "no depth image received yet"}, health.WARN,
     "no depth for the last 4 frame(s), poses without 3D: no depth image received yet", False),
    ({"new_without_depth": 4, "new_with_depth": 1}, health.OK, "people", False),  # some depth came
    ({"detector_problem": "file truncated", "detector_fallback": "HOG instead of MoveNet"}, health.WARN,
     "HOG instead of MoveNet: file truncated", False),
])
def test_the_most_serious_problem_sets_the_level(changes, level, words, warn):
    verdict = health.pipeline_status(pipeline_facts(**changes))
    assert verdict.level == level and words in verdict.message and verdict.warn == warn

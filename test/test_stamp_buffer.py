"""runtime/frames.py StampBuffer: what comes beside the frames (person boxes, depth
images) handed to the frame of its stamp, with bounded waits, from two threads."""
import threading
import time

import pytest

from lapx_ros.runtime.frames import StampBuffer


def test_an_item_that_came_first_is_taken_at_once():
    buffer = StampBuffer()
    buffer.add(10.0, "depth@10")
    started = time.monotonic()
    assert buffer.take(10.0, tolerance=0.01, wait=10.0) == "depth@10"
    assert time.monotonic() - started < 2.0  # far less than the wait
    assert (buffer.unused, buffer.late) == (0, 0)


def test_a_frame_that_came_first_waits_for_its_item():
    buffer = StampBuffer()
    sender = threading.Timer(0.1, buffer.add, args=(5.0, "depth@5"))
    started = time.monotonic()
    sender.start()
    try:
        assert buffer.take(5.0, tolerance=0.01, wait=10.0) == "depth@5"
    finally:
        sender.join()
    assert 0.05 < time.monotonic() - started < 5.0


def test_the_wait_is_bounded_when_nothing_comes():
    buffer = StampBuffer()
    started = time.monotonic()
    assert buffer.take(1.0, tolerance=0.01, wait=0.2) is None
    assert 0.19 <= time.monotonic() - started < 3.0


def test_the_wait_ends_early_once_a_newer_item_came():
    buffer = StampBuffer()
    buffer.add(2.0, "later")
    started = time.monotonic()
    assert buffer.take(1.0, tolerance=0.01, wait=10.0) is None
    assert time.monotonic() - started < 2.0


def test_after_a_wait_in_vain_frames_do_not_wait_until_something_comes_again():
    buffer = StampBuffer(skip_waits_when_silent=True)
    assert buffer.take(1.0, tolerance=0.01, wait=0.1) is None  # the sender stopped
    started = time.monotonic()
    assert buffer.take(2.0, tolerance=0.01, wait=10.0) is None
    assert time.monotonic() - started < 2.0
    buffer.add(2.9, "again")
    threading.Timer(0.1, buffer.add, args=(3.0, "depth@3")).start()
    assert buffer.take(3.0, tolerance=0.01, wait=10.0) == "depth@3"


def test_without_skipping_every_frame_waits_for_its_item():
    buffer = StampBuffer()
    assert buffer.take(1.0, tolerance=0.01, wait=0.1) is None
    threading.Timer(0.1, buffer.add, args=(2.0, "boxes@2")).start()  # sent first, came later
    assert buffer.take(2.0, tolerance=0.01, wait=10.0) == "boxes@2"


def test_the_nearest_stamp_within_the_tolerance_wins():
    buffer = StampBuffer()
    for stamp in (0.90, 0.967, 1.004, 1.033):
        buffer.add(stamp, stamp)
    assert buffer.take(1.0, tolerance=0.02) == 1.004
    assert buffer.take(1.05, tolerance=0.01) is None  # 1.033 is 17 ms away
    assert buffer.take(1.05, tolerance=0.02) == 1.033


def test_items_never_taken_are_counted_when_they_leave():
    buffer = StampBuffer(capacity=3, max_age=1.0)
    for stamp in (1.0, 1.1, 1.2, 1.3):  # the fourth pushes out 1.0, never taken
        buffer.add(stamp, stamp)
    assert buffer.unused == 1
    assert buffer.take(1.2, tolerance=0.01) == 1.2
    assert buffer.take(3.0, tolerance=0.01) is None  # 1.1..1.3 are older than max_age now
    assert buffer.unused == 3  # 1.0, 1.1, 1.3 (1.2 was taken)


def test_a_restart_keeps_the_new_timeline_only():
    buffer = StampBuffer(max_age=1.0)
    buffer.add(50.0, "old timeline")  # a bag looped back to 10 s
    buffer.add(50.0, "old timeline, a second message")
    buffer.restart(10.0)  # a frame stamped 10 s: the input restarted
    buffer.add(10.0, "sent just before the restarting frame")
    assert buffer.unused == 2
    assert buffer.take(10.0, tolerance=0.001) == "sent just before the restarting frame"
    assert buffer.take(50.0, tolerance=0.001) is None


def test_after_a_restart_the_old_timeline_ends_no_wait():
    buffer = StampBuffer(max_age=1.0)
    buffer.add(50.0, "old timeline")
    buffer.restart(10.0)
    threading.Timer(0.05, buffer.add, args=(10.0, "new timeline")).start()
    assert buffer.take(10.0, tolerance=0.001, wait=10.0) == "new timeline"  # 50 s is not "newer"


def test_a_sender_clock_that_jumps_back_starts_afresh():
    buffer = StampBuffer(max_age=2.0)
    buffer.add(100.0, "old timeline")
    buffer.add(1.0, "new timeline")  # would otherwise end every wait early as "newer"
    assert buffer.unused == 1 and buffer.newest == 1.0
    threading.Timer(0.05, buffer.add, args=(1.5, "next")).start()
    assert buffer.take(1.5, tolerance=0.01, wait=10.0) == "next"


def test_an_item_that_comes_after_its_frame_went_on_is_counted_late():
    buffer = StampBuffer()
    assert buffer.take(1.0, tolerance=0.01, wait=0.05) is None
    time.sleep(0.1)
    late = buffer.add(1.004, "depth@1")
    assert late == pytest.approx(0.1, abs=0.09)  # seconds after the frame stopped waiting
    assert buffer.late == 1
    assert buffer.add(1.005, "a second one for the same frame") is None  # the frame counts once
    assert buffer.add(2.0, "depth@2") is None  # no frame asked for it yet
    assert buffer.late == 1


def test_taking_from_two_threads_loses_nothing():
    buffer = StampBuffer(capacity=100)
    stamps = [i / 30.0 for i in range(60)]
    got = []

    def frames():
        for stamp in stamps:
            got.append(buffer.take(stamp, tolerance=0.005, wait=5.0))

    consumer = threading.Thread(target=frames)
    consumer.start()
    for stamp in stamps:
        buffer.add(stamp, stamp)
        time.sleep(0.001)
    consumer.join(10)
    assert got == stamps and buffer.unused == 0 and buffer.late == 0

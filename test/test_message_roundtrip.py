"""HumanPoseArray messages cross from one real rclpy process to another over DDS intact.

The talker and listener are examples/pose_talker.py and examples/pose_listener.py,
two separate processes besides pytest's. The listener prints every message it gets
as JSON (every field); the test compares that with the messages the talker built.
"""
from __future__ import annotations

import json

import pytest

from pose_samples import SAMPLE_JOINTS, make_pose_array, to_plain

from lapx_ros.testing.ros_processes import EXAMPLES


def _received(listener) -> list[dict]:
    return [json.loads(line[4:]) for line in listener.lines if line.startswith("MSG ")]


@pytest.mark.parametrize(
    "count, people",
    [(4, 3), (2, 30), (1, 0)],
    ids=["4 messages x 3 people", "2 messages x 30 people", "no people"],
)
def test_round_trip_between_processes(ros_process, unique_topic, count, people):
    listener = ros_process(
        EXAMPLES / "pose_listener.py", "--topic", unique_topic, "--count", str(count),
        "--json", "--timeout", "60", ready=r"^READY$", ready_timeout=60,
    )
    talker = ros_process(
        EXAMPLES / "pose_talker.py", "--topic", unique_topic, "--count", str(count),
        "--people", str(people), "--period", "0.05", "--linger", "120",
        ready=r"^READY$", ready_timeout=60,
    )
    talker.wait_for(r"^DONE$", timeout=60)
    assert listener.wait_exit(timeout=60) == 0, listener.output
    assert talker.proc.pid != listener.proc.pid

    got = _received(listener)
    want = [to_plain(make_pose_array(seq, people=people)) for seq in range(count)]
    assert len(got) == count, listener.output
    for seq, (g, w) in enumerate(zip(got, want)):
        assert g["header"] == w["header"], f"message {seq}: stamp or frame_id changed"
        assert g["joint_names"] == list(SAMPLE_JOINTS)
        assert len(g["people"]) == people
        assert g == w, f"message {seq} differs"


def test_listener_reports_timeout_without_talker(ros_process, unique_topic):
    """The helper's failure path: nothing published, the listener gives up on time."""
    listener = ros_process(
        EXAMPLES / "pose_listener.py", "--topic", unique_topic, "--count", "1",
        "--timeout", "2", ready=r"^READY$", ready_timeout=60,
    )
    assert listener.wait_exit(timeout=30) == 2
    listener.wait_for(r"^TIMEOUT after 0 message", timeout=1)

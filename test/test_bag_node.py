"""A recorded RGB-D bag (real footage, registered depth of a person on a tilted plane,
both CameraInfos) played into the real pose node over DDS with lapx-replay --bag, and
the same bag through lapx-bag-poses: the node answers every frame with the recorded
stamp, living in the bag's time (use_sim_time and the replayed /clock), and the offline
command writes the same poses, ids and 3D positions, frame by frame."""
import json
import math
import subprocess
import sys
import time

import pytest
from bag_scenes import (
    COLOUR,
    COLOUR_INFO,
    DEPTH,
    DEPTH_INFO,
    PERIOD_NS,
    exercise_frames,
    person_depths,
    write_rgbd_bag,
)
from lapx_ros.testing.node_client import READY, REPO, PoseClient, node_command, unique_namespace

from lapx_ros.ros.bags import BagReader
from lapx_ros.runtime.engine import default_model_path

PARAMS_FILE = REPO / "config" / "lapx.yaml"
# The node's topics, relative: in its namespace over DDS, at the bag's names offline.
PARAMS = ("input_topic:=camera/color/image_raw", "depth_topic:=camera/aligned_depth_to_color/image_raw",
          "threads:=1")
FRAMES = 6
NO_DEPTH_FRAME = 3  # its depth image was never recorded: no 3D, in both


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    frames = exercise_frames(FRAMES)
    depth = person_depths(frames)
    depth[NO_DEPTH_FRAME] = None
    path = tmp_path_factory.mktemp("bags") / "squat"
    stamps = write_rgbd_bag(path, frames, depth, storage="mcap", start_ns=time.time_ns() - 30 * 10**9)
    return path, stamps


def stamp_of(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def close(a: float, b: float, tolerance: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance


def assert_same_poses(node_msg, offline_msg):
    """Same frame, people, ids and joints. Both ran the same model through the same
    engine settings; the tolerances only allow for the last bits of float arithmetic."""
    assert (node_msg.header.stamp, node_msg.header.frame_id) == (offline_msg.header.stamp,
                                                                 offline_msg.header.frame_id)
    assert (node_msg.image_width, node_msg.image_height) == (offline_msg.image_width, offline_msg.image_height)
    assert list(node_msg.joint_names) == list(offline_msg.joint_names)
    assert [p.id for p in node_msg.people] == [p.id for p in offline_msg.people]
    for a, b in zip(node_msg.people, offline_msg.people):
        assert close(a.score, b.score, 1e-5)
        assert all(close(x, y, 1e-3) for x, y in ((a.x_min, b.x_min), (a.y_min, b.y_min),
                                                  (a.x_max, b.x_max), (a.y_max, b.y_max)))
        for ka, kb in zip(a.keypoints, b.keypoints):
            assert close(ka.x, kb.x, 1e-3) and close(ka.y, kb.y, 1e-3), (ka, kb)
            assert close(ka.confidence, kb.confidence, 1e-5)
            for axis in "xyz":
                assert close(getattr(ka.position, axis), getattr(kb.position, axis), 1e-6), (ka, kb)
        for axis in "xyz":
            assert close(getattr(a.position, axis), getattr(b.position, axis), 1e-6)


def test_replayed_bag_into_the_node_matches_lapx_bag_poses(ros_process, recording, tmp_path):
    bag, stamps = recording
    namespace = unique_namespace()
    ros_process(*node_command(namespace, default_model_path(), *PARAMS, "use_sim_time:=true"), ready=READY,
                ready_timeout=60)
    remaps = [f"--topic={name}:={namespace}{name}" for name in (COLOUR, COLOUR_INFO, DEPTH, DEPTH_INFO)]
    with PoseClient(namespace, publish_images=False) as client:
        replay = ros_process("-m", "lapx_ros.ros.replay", "--bag", bag, "--rate", "answer",
                             "--answer-topic", f"{namespace}/human_pose", "--answer-timeout", "30",
                             "--settle", "1", *remaps)
        assert replay.wait_exit(timeout=240) == 0, replay.output
        assert f"sent {FRAMES} frames" in replay.output and "0 unanswered" in replay.output, replay.output
        assert client.wait(lambda: len(client.poses) >= FRAMES, 10), len(client.poses)
        from_node = {stamp_of(m): m for m in client.poses}
    # every frame answered, with its recorded stamp (the node lived in the bag's time:
    # with use_sim_time and no /clock, frames stamped decades ahead would be dropped)
    assert sorted(from_node) == stamps

    out = tmp_path / "poses"
    offline = subprocess.run([sys.executable, "-m", "lapx_ros.ros.bag_poses", str(bag), str(out),
                              "--params-file", str(PARAMS_FILE), *[a for p in PARAMS for a in ("-p", p)],
                              "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    summary = json.loads(offline.stdout.strip().splitlines()[-1])
    with BagReader(out) as written:
        from_bag = {stamp_of(m.msg): m.msg for m in written.messages(["/human_pose"])}
    assert sorted(from_bag) == stamps
    for stamp in stamps:
        assert_same_poses(from_node[stamp], from_bag[stamp])
    # the scene as recorded: one person throughout, 3D on every frame but the one
    # whose depth image is missing
    assert summary["ids"] == [1] and summary["frames_with_people"] == FRAMES
    assert summary["frames_with_depth"] == FRAMES - 1
    with_3d = [any(math.isfinite(k.position.z) for p in from_node[s].people for k in p.keypoints) for s in stamps]
    assert with_3d == [i != NO_DEPTH_FRAME for i in range(FRAMES)]


def test_replay_keeps_recorded_time_at_a_rate_and_runs_on_when_looping(ros_process, recording):
    """--rate 2 --loop: the recorded stamps, then each later pass shifted to follow the
    last frame by a frame period (time never runs back); /clock follows the recording."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image

    bag, stamps = recording
    namespace = unique_namespace()
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node(f"bag_clock_test_{namespace.strip('/')}")
    qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
    got = {"colour": [], "clock": [], "info": []}
    node.create_subscription(Image, f"{namespace}/colour", lambda m: got["colour"].append(stamp_of(m)), qos)
    node.create_subscription(CameraInfo, f"{namespace}/info", lambda m: got["info"].append(m), qos)
    node.create_subscription(Clock, "/clock", lambda m: got["clock"].append(m.clock.sec * 10**9 + m.clock.nanosec),
                             qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    import threading

    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    count = FRAMES + 3
    try:
        replay = ros_process("-m", "lapx_ros.ros.replay", "--bag", bag, "--rate", "2", "--loop",
                             "--count", str(count), "--wait-subscribers", "1",
                             f"--topic={COLOUR}:={namespace}/colour", f"--topic={COLOUR_INFO}:={namespace}/info")
        assert replay.wait_exit(timeout=60) == 0, replay.output
        deadline = time.monotonic() + 10
        while len(got["colour"]) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
    assert f"sent {count} frames" in replay.output, replay.output
    span = stamps[-1] - stamps[0]
    shift = span + PERIOD_NS
    expected = stamps + [s + shift for s in stamps[:count - FRAMES]]
    assert got["colour"] == expected
    assert sorted(stamp_of(m) for m in got["info"]) == expected
    # (discovery of /clock may miss the first ticks; those that came run forward, in the bag's time)
    assert got["clock"] and got["clock"] == sorted(got["clock"])
    assert stamps[0] <= got["clock"][-1] <= expected[-1] + 10**9
    elapsed = float(replay.wait_for(r"in ([\d.]+) s").group(1))
    assert elapsed >= (expected[-1] - expected[0]) / 1e9 / 2 * 0.9, replay.output

"""rosbag2 files without DDS: what lapx-bag-poses writes (real footage through the
shipped model), what lapx-replay --bag would publish, and bad bags (cut, damaged, a
message that does not decode, a type the tools cannot use): one clear line, exit
status 2, nothing written."""
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from bag_scenes import (
    COLOUR,
    COLOUR_INFO,
    DELAY_NS,
    DEPTH,
    DEPTH_INFO,
    NOTES,
    PERIOD_NS,
    exercise_frames,
    header_at,
    person_depths,
    write_rgbd_bag,
)

from lapx_ros.ros.bag_play import choose_topics, parse_rate
from lapx_ros.ros.bag_poses import ConfigError, load_config
from lapx_ros.ros.bags import BagError, BagReader, frame_events, message_definitions_folder, typestore
from lapx_ros.ros.replay import parse_args

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "config" / "lapx.yaml"
NODE_PARAMS = ("-p", "input_topic:=camera/color/image_raw",
               "-p", "depth_topic:=camera/aligned_depth_to_color/image_raw", "-p", "threads:=1")


def run(module: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def bag_poses(source, out, *extra) -> subprocess.CompletedProcess:
    return run("lapx_ros.ros.bag_poses", source, out, "--params-file", PARAMS, *NODE_PARAMS, *extra)


def refused(result, *fragments):
    """Exit status 2, one readable line naming ``fragments``, no traceback."""
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def nothing_written(out: Path):
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.partial")]


@pytest.fixture(scope="module")
def frames():
    return exercise_frames(4)


@pytest.fixture(scope="module")
def recorded(frames, tmp_path_factory):
    """{storage: (bag, colour stamps)}: the same RGB-D recording as .mcap and as .db3;
    frame 2's depth image was never recorded."""
    depth = person_depths(frames)
    depth[2] = None
    folder = tmp_path_factory.mktemp("recorded")
    start = time.time_ns() - 20 * 10**9
    return {storage: (folder / storage, write_rgbd_bag(folder / storage, frames, depth, storage=storage,
                                                          start_ns=start))
            for storage in ("mcap", "sqlite3")}


# ----------------------------------------------------------------------- message types
def test_own_message_types_carry_the_hashes_rosidl_gave_them():
    """Bags written here name lapx_ros/msg/HumanPoseArray with the type hash the
    generated package has: ROS tools that check it accept the bag."""
    import json

    store = typestore()
    folder = message_definitions_folder()
    for name in ("Keypoint", "PersonPose", "HumanPoseArray"):
        generated = folder / f"{name}.json"
        if not generated.is_file():
            pytest.skip(f"{generated} missing: the message build installs it (make setup)")
        hashes = {h["type_name"]: h["hash_string"] for h in json.loads(generated.read_text())["type_hashes"]}
        assert store.hash_rihs01(f"lapx_ros/msg/{name}") == hashes[f"lapx_ros/msg/{name}"]


# --------------------------------------------------------------------------- ordering
def fake(topic, stamp, log, frame=False):
    msg = SimpleNamespace(header=header_at(stamp))
    return SimpleNamespace(topic=topic, log_ns=log, msg=msg, frame=frame)


def test_a_frame_is_answered_once_its_own_depth_and_info_are_out():
    """Depth recorded after its colour frame (stamped like it) comes before the frame's
    answer point; what belongs to the next frame waits until after it."""
    messages = [
        fake("colour", 100, 104, frame=True), fake("info", 100, 105),
        fake("depth", 166, 160),  # the next frame's depth, recorded early
        fake("depth", 100, 170),  # this frame's depth, recorded late
        fake("colour", 166, 171, frame=True), fake("depth", 233, 236), fake("colour", 233, 238, frame=True),
    ]
    order = [(kind, m.topic, m.msg.header.stamp.nanosec) for kind, m in
             frame_events(messages, lambda m: m.frame)]
    assert order == [
        ("message", "colour", 100), ("message", "info", 100), ("message", "depth", 100), ("answer", "colour", 100),
        ("message", "depth", 166), ("message", "colour", 166), ("answer", "colour", 166),
        ("message", "depth", 233), ("message", "colour", 233), ("answer", "colour", 233),
    ]


# ----------------------------------------------------------------------------- replay
def test_replay_chooses_camera_topics_by_name_and_type(recorded):
    bag_path, _ = recorded["mcap"]
    with BagReader(bag_path) as bag:
        plan, notes = choose_topics(bag, [], [])
        assert set(plan) == {COLOUR, COLOUR_INFO, DEPTH, DEPTH_INFO}
        assert notes == [f"not published: {NOTES} (std_msgs/msg/String)"]
        plan, _ = choose_topics(bag, [f"{COLOUR}:=/robot/camera/image_raw"], ["CameraInfo"])
        assert plan == {COLOUR: ("/robot/camera/image_raw", "sensor_msgs/msg/Image"),
                        COLOUR_INFO: (COLOUR_INFO, "sensor_msgs/msg/CameraInfo"),
                        DEPTH_INFO: (DEPTH_INFO, "sensor_msgs/msg/CameraInfo")}
        with pytest.raises(BagError, match=f"topic {NOTES} is std_msgs/msg/String: lapx-replay publishes only"):
            choose_topics(bag, [NOTES], [])
        with pytest.raises(BagError, match="no topic /camera/nothing in the bag; its topics:"):
            choose_topics(bag, ["/camera/nothing"], [])
        with pytest.raises(BagError, match="--type std_msgs/msg/String: lapx-replay publishes only"):
            choose_topics(bag, [], ["std_msgs/String"])


def test_replay_bag_options():
    args = parse_args(["--bag", "x", "--topic", "/a:=/b", "--topic", "/c"])
    assert (args.rate, args.topic, args.source) == ("1", ["/a:=/b", "/c"], None)
    assert parse_rate("answer") == "answer" and parse_rate("2.5") == 2.5
    for bad in (["x.mp4", "--bag", "b"], ["--bag", "b", "--encoding", "rgb8"], ["--bag", "b", "--depth", "plane:2"],
                ["x.mp4", "--list"], ["x.mp4", "--topic", "a", "--topic", "b"], ["x.mp4", "--rate", "answer"], []):
        with pytest.raises(SystemExit):
            parse_args(bad)
    assert parse_args(["x.mp4"]).topic == "camera/image_raw" and parse_args(["x.mp4"]).rate == 10.0


def test_replay_refuses_a_topic_it_cannot_publish(recorded):
    bag_path, _ = recorded["mcap"]
    refused(run("lapx_ros.ros.replay", "--bag", bag_path, "--topic", NOTES),
            f"topic {NOTES} is std_msgs/msg/String")
    refused(run("lapx_ros.ros.replay", "--bag", bag_path, "--rate", "soon"), "--rate 'soon'")


# ------------------------------------------------------------------- lapx-bag-poses
def test_bag_poses_counts_the_frames_whose_depth_was_recorded_too_late(frames, tmp_path):
    """Frame 1's depth image was recorded after frame 2: frame 1 goes without 3D, and the
    summary says its depth came too late."""
    import json

    path = tmp_path / "late"
    write_rgbd_bag(path, frames, person_depths(frames), start_ns=time.time_ns() - 20 * 10**9,
                   depth_delay_ns={1: PERIOD_NS + DELAY_NS + 1_000_000})
    result = bag_poses(path, tmp_path / "poses", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["frames_with_depth"], summary["frames_without_depth"]) == (len(frames) - 1, 1)
    assert summary["frames_depth_too_late"] == 1
    assert "depth recorded too late: 1" in result.stdout


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_poses_writes_poses_with_the_source_stamps(recorded, tmp_path, storage):
    """Every frame of the input topic gives one HumanPoseArray at the frame's stamp
    and recording time; 3D where the depth image was recorded, NaN where it was not;
    the bag decodes with rosbags' own decoder through the registered definitions."""
    import json

    from rclpy.serialization import deserialize_message

    from lapx_ros.msg import HumanPoseArray

    bag_path, stamps = recorded[storage]
    out = tmp_path / "poses"
    result = bag_poses(bag_path, out, "--markers", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["frames"] == summary["written"] == len(stamps) and summary["storage"] == storage
    assert summary["frames_with_depth"] == len(stamps) - 1 and summary["frames_without_depth"] == 1
    assert summary["frames_with_people"] == len(stamps) and summary["ids"] == [1]
    assert "human_pose messages" in result.stdout and "frames/s" in result.stdout
    from rosbags.rosbag2 import Reader

    store = typestore()
    with BagReader(out) as written, BagReader(bag_path) as source:
        assert {t.name: t.msgtype for t in written.topics.values()} == {
            "/human_pose": "lapx_ros/msg/HumanPoseArray", "/human_pose/markers": "visualization_msgs/msg/MarkerArray"}
        source_logs = [m.log_ns for m in source.messages([COLOUR])]
        poses = list(written.messages(["/human_pose"]))
    with Reader(out) as reader:
        raw = list(reader.messages(connections=[c for c in reader.connections if c.topic == "/human_pose"]))
    assert [m.log_ns for m in poses] == source_logs
    assert [m.msg.header.stamp.sec * 10**9 + m.msg.header.stamp.nanosec for m in poses] == stamps
    for item, (_, _, data) in zip(poses, raw):
        assert repr(deserialize_message(bytes(data), HumanPoseArray)) == repr(item.msg)  # NaN != NaN
        decoded = store.deserialize_cdr(bytes(data), "lapx_ros/msg/HumanPoseArray")
        assert [k.x for k in decoded.people[0].keypoints] == [k.x for k in item.msg.people[0].keypoints]
    for i, item in enumerate(poses):
        person = item.msg.people[0]
        z = np.array([k.position.z for k in person.keypoints])
        if i == 2:
            assert np.isnan(z).all() and np.isnan(person.position.z)
        else:  # the person stands on the plane 2.6 m away (tilted): joints between 2 and 3.5 m
            seen = np.array([k.confidence >= 0.2 for k in person.keypoints])
            assert np.isfinite(z[seen]).mean() > 0.7, z
            assert ((z[np.isfinite(z)] > 2.0) & (z[np.isfinite(z)] < 3.5)).all(), z


def test_bag_poses_refuses_an_existing_output_and_a_missing_input_topic(recorded, tmp_path):
    bag_path, _ = recorded["mcap"]
    (tmp_path / "taken").mkdir()
    refused(bag_poses(bag_path, tmp_path / "taken"), "exists already")
    out = tmp_path / "out"
    text = refused(run("lapx_ros.ros.bag_poses", bag_path, out, "--params-file", PARAMS),
                   "no topic /camera/image_raw", COLOUR, "-p input_topic:=")
    assert "sensor_msgs/msg/Image" in text
    nothing_written(out)


def test_a_cut_mcap_recording_is_refused_saying_where_it_breaks(recorded, tmp_path):
    """A recorder killed mid-write leaves an MCAP file without its end: the error names
    the byte and the last message before it; nothing is written."""
    import shutil

    bag_path, _ = recorded["mcap"]
    cut = tmp_path / "cut"
    shutil.copytree(bag_path, cut)
    (mcap,) = cut.glob("*.mcap")
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 2 // 3])
    (cut / "metadata.yaml").unlink()  # the recorder never got to write it either
    out = tmp_path / "out"
    refused(bag_poses(cut, out), "has no metadata.yaml", "breaks off at byte", "after message",
            "messages readable before it")
    nothing_written(out)
    refused(run("lapx_ros.ros.replay", "--bag", cut), "breaks off at byte")


def test_a_damaged_sqlite_bag_is_refused(recorded, tmp_path):
    import shutil

    bag_path, _ = recorded["sqlite3"]
    damaged = tmp_path / "damaged"
    shutil.copytree(bag_path, damaged)
    (db3,) = damaged.glob("*.db3")
    data = db3.read_bytes()
    db3.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    refused(bag_poses(damaged, out), "not a readable rosbag2 bag", "damaged or cut short")
    nothing_written(out)


def odd_bag(path: Path, frames, colour_type: str = "sensor_msgs/msg/Image", spoil_frame: int | None = None):
    """A colour stream whose ``spoil_frame``-th message is cut to half its bytes, or
    recorded under a message type of another package."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from lapx_ros.ros.convert import to_image_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    if colour_type.startswith("acme_msgs/"):
        store.register(get_types_from_msg("std_msgs/Header header\nuint8[] pixels", colour_type))
    start = time.time_ns() - 10 * 10**9
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(COLOUR, colour_type, typestore=store)
        for i, frame in enumerate(frames):
            data = serialize_message(to_image_msg(frame, "bgr8", header_at(start + i * PERIOD_NS)))
            if i == spoil_frame:
                data = data[: len(data) // 2]
            writer.write(conn, start + i * PERIOD_NS + 4_000_000, data)


def test_a_message_that_does_not_decode_is_named_and_nothing_is_written(frames, tmp_path):
    bag_path = tmp_path / "spoilt"
    odd_bag(bag_path, frames, spoil_frame=2)
    out = tmp_path / "out"
    refused(bag_poses(bag_path, out), f"message 2 of {COLOUR} at +0.133 s", "does not decode")
    nothing_written(out)
    refused(run("lapx_ros.ros.replay", "--bag", bag_path, "--rate", "0"), f"message 2 of {COLOUR} at +0.133 s")


def test_an_unknown_message_type_is_named(frames, tmp_path):
    bag_path = tmp_path / "acme"
    odd_bag(bag_path, frames[:2], colour_type="acme_msgs/msg/Frame")
    out = tmp_path / "out"
    refused(bag_poses(bag_path, out), f"topic {COLOUR} is acme_msgs/msg/Frame", "reads sensor_msgs/msg/Image")
    nothing_written(out)
    refused(run("lapx_ros.ros.replay", "--bag", bag_path, "--topic", COLOUR),
            f"topic {COLOUR} is acme_msgs/msg/Frame")
    refused(run("lapx_ros.ros.replay", "--bag", bag_path), "no camera topics")


def test_missing_bags_are_refused(tmp_path):
    refused(bag_poses(tmp_path / "nothing", tmp_path / "out"), "no such bag")
    (tmp_path / "notes.txt").write_text("not a bag")
    refused(run("lapx_ros.ros.replay", "--bag", tmp_path / "notes.txt"), "not a readable rosbag2 bag")


# ------------------------------------------------------------------------- parameters
def test_the_parameters_file_is_read_as_the_node_reads_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent("""\
        /**:
          ros__parameters:
            mode: detector
            threads: 2
            use_sim_time: true
        /robot/lapx_pose:
          ros__parameters:
            threads: 1
            depth_max: 6
        /other_node:
          ros__parameters:
            threads: 7
        """))
    warnings = []
    config = load_config(path, ["keypoint_threshold:=0.3", "no_such_thing:=1"], "/robot", warn=warnings.append)
    assert (config.mode, config.threads, config.depth_max, config.keypoint_threshold) == ("detector", 1, 6.0, 0.3)
    assert isinstance(config.depth_max, float)
    assert warnings == ["parameter no_such_thing is not one of the pose node's: ignored"]
    assert load_config(path, [], "/").threads == 2
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        load_config(path, ["threads:=0"])
    with pytest.raises(ConfigError, match="depth_min"):
        load_config(None, ["depth_min:=5.0", "depth_max:=4.0"])

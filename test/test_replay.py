"""lapx-replay's depth stream: its sources, its options, and what goes out over DDS."""
import threading
import uuid

import cv2
import numpy as np
import pytest

from lapx_ros.ros.replay import DEPTH_TOPIC, DepthFileError, DepthSource, parse_args


def write_depth(path, millimetres):
    assert cv2.imwrite(str(path), np.asarray(millimetres, np.uint16))


def test_a_plane_is_one_distance_everywhere():
    depth = DepthSource("plane:2.5").depth_for(0, 64, 48)
    assert depth.dtype == np.uint16 and depth.shape == (48, 64)
    assert (depth == 2500).all()


@pytest.mark.parametrize("spec, reason", [
    ("plane:far", "number of metres"),
    ("plane:0", r"must be in \(0"),
    ("plane:70", r"must be in \(0"),
    ("no/such/place", "not a folder or file"),
])
def test_bad_depth_sources_are_refused_at_start(spec, reason):
    with pytest.raises(ValueError, match=reason):
        DepthSource(spec)


def test_a_folder_goes_in_name_order_and_repeats(tmp_path):
    for name, mm in (("b.png", 2000), ("a.png", 1000)):
        write_depth(tmp_path / name, np.full((6, 8), mm))
    (tmp_path / "notes.txt").write_text("not depth")
    source = DepthSource(str(tmp_path))
    firsts = [int(source.depth_for(i, 8, 6)[0, 0]) for i in range(5)]
    assert firsts == [1000, 2000, 1000, 2000, 1000]


def test_a_folder_without_pngs_is_refused(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no .png depth images"):
        DepthSource(str(tmp_path))


def test_depth_is_resized_to_the_colour_frame_without_blending(tmp_path):
    mm = np.full((24, 32), 4000, np.uint16)
    mm[6:18, 8:20] = 1500  # a person in front of a wall
    mm[0, :] = 0           # a row without depth
    write_depth(tmp_path / "d.png", mm)
    depth = DepthSource(str(tmp_path / "d.png")).depth_for(0, 64, 48)
    assert depth.shape == (48, 64)
    assert set(np.unique(depth)) == {0, 1500, 4000}


def test_an_8_bit_png_is_refused_when_read(tmp_path):
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((4, 4), 200, np.uint8))
    with pytest.raises(DepthFileError, match="16-bit"):
        DepthSource(str(tmp_path)).depth_for(0, 4, 4)


def test_without_depth_the_options_are_as_before():
    args = parse_args(["video.mp4"])
    assert args.depth is None and args.depth_topic == DEPTH_TOPIC and args.depth_transport == "raw"


def test_depth_options_need_depth():
    with pytest.raises(SystemExit):
        parse_args(["video.mp4", "--depth-transport", "both"])
    args = parse_args(["video.mp4", "--depth", "plane:2", "--depth-transport", "both", "--depth-first"])
    assert (args.depth, args.depth_transport, args.depth_first) == ("plane:2", "both", True)


@pytest.mark.parametrize("order", [[], ["--depth-first"]])
def test_replay_publishes_depth_with_the_colour_stamp(ros_process, tmp_path, order):
    """Real process over DDS: raw and compressedDepth depth, and the depth CameraInfo,
    carry each colour frame's stamp; the depth folder's values arrive in metres."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image

    from lapx_ros.ros.convert import depth_from_compressed, depth_from_image

    colour = tmp_path / "colour"
    depth_dir = tmp_path / "depth"
    colour.mkdir()
    depth_dir.mkdir()
    for i in range(3):
        cv2.imwrite(str(colour / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
        write_depth(depth_dir / f"{i}.png", np.full((48, 64), 1000 + 250 * i))
    ns = f"/replay_{uuid.uuid4().hex[:8]}"
    if not rclpy.ok():
        rclpy.init()
    node = rclpy.create_node(f"replay_depth_test_{uuid.uuid4().hex[:8]}")
    qos = QoSProfile(depth=20, reliability=QoSReliabilityPolicy.RELIABLE)
    got = {"colour": [], "depth": [], "compressed": [], "info": []}
    done = threading.Event()

    def keep(kind):
        def callback(msg):
            got[kind].append(msg)
            if min(len(v) for v in got.values()) >= 4:
                done.set()
        return callback

    depth_topic = f"{ns}/camera/aligned_depth_to_color/image_raw"
    node.create_subscription(Image, f"{ns}/camera/image_raw", keep("colour"), qos)
    node.create_subscription(Image, depth_topic, keep("depth"), qos)
    node.create_subscription(CompressedImage, depth_topic + "/compressedDepth", keep("compressed"), qos)
    node.create_subscription(CameraInfo, f"{ns}/camera/aligned_depth_to_color/camera_info",
                             keep("info"), qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        replay = ros_process("-m", "lapx_ros.ros.replay", str(colour), "--topic", f"{ns}/camera/image_raw",
                             "--depth", str(depth_dir), "--depth-topic", depth_topic,
                             "--depth-transport", "both", *order, "--rate", "4",
                             "--loop", "--count", "6", "--stamps-out", str(tmp_path / "stamps.txt"),
                             "--wait-subscribers", "1", "--reliable")
        assert replay.wait_exit(timeout=60) == 0, replay.output
        assert done.wait(10), {k: len(v) for k, v in got.items()}
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
    def stamp(msg):
        return msg.header.stamp.sec, msg.header.stamp.nanosec

    # Colour frame i is grey level 40 * i and goes with depth file i: 1 m + 0.25 m * i.
    # (The first depth messages may be sent before the depth subscriptions match.)
    metres_at = {stamp(m): 1.0 + 0.25 * (m.data[0] // 40) for m in got["colour"]}
    # --stamps-out names every frame sent with its stamp, in order: frame i is grey 40 * (i % 3)
    sent = [line.split() for line in (tmp_path / "stamps.txt").read_text().splitlines()]
    assert [int(i) for i, _ in sent] == list(range(6))
    by_stamp = {round(float(t), 6): int(i) for i, t in sent}
    for m in got["colour"]:
        assert by_stamp[round(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, 6)] % 3 == m.data[0] // 40
    assert all(stamp(m) in metres_at for kind in ("depth", "compressed", "info") for m in got[kind])
    for raw in got["depth"]:
        assert raw.encoding == "16UC1" and (raw.width, raw.height) == (64, 48)
        assert np.allclose(depth_from_image(raw), metres_at[stamp(raw)])
    for packed in got["compressed"]:
        assert packed.format == "16UC1; compressedDepth png"
        assert np.allclose(depth_from_compressed(packed), metres_at[stamp(packed)])
    assert (got["info"][0].width, got["info"][0].height) == (64, 48)
    assert len(set(metres_at.values())) == 3

"""The pose node in its own process over real DDS: real photos in every input encoding
and as CompressedImage, the outputs' shape, runtime parameters, bad input and faults."""
import contextlib
import math
import os
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from lapx_ros.msg import HumanPoseArray, PersonPose
from sensor_msgs.msg import CompressedImage, Image
from tiny_models import build_model

from lapx_ros.ros.convert import compress_bgr, to_image_msg
from lapx_ros.runtime.detectors.movenet import default_detector_path
from lapx_ros.runtime.frames import reason_kind
from lapx_ros.testing.node_client import LSPET, READY, PoseClient, node_command, set_parameters, unique_namespace
from lapx_ros.testing.ros_processes import RosProcess

ENCODINGS = ["bgr8", "rgb8", "bgra8", "rgba8", "mono8", "yuv422", "yuyv"]
# Low thresholds: the tiny test model's confidences mean nothing, every frame has a person.
OPEN_THRESHOLDS = ("person_threshold:=0.0", "keypoint_threshold:=0.0")
# A frame that needs no data set: with OPEN_THRESHOLDS the node finds a "person" in it.
_y, _x = np.mgrid[0:96, 0:128]
GOOD_FRAME = np.stack([_x * 2, _y * 2, _x + _y], axis=-1).astype(np.uint8)
H, W = GOOD_FRAME.shape[:2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("model") / "tiny.onnx", input_size=(128, 96))


@pytest.fixture
def namespace():
    return unique_namespace()


def lspet_frames(count):
    if not LSPET.is_dir():
        pytest.skip(f"LSPET images not found beside the repository ({LSPET.name}: see data notes)")
    paths = [LSPET / "images" / f"im{9001 + i:05d}.jpg" for i in range(count)]
    frames = [cv2.imread(str(p)) for p in paths]
    # yuv422 needs an even width: crop one column off odd-width photos.
    return [f[:, : f.shape[1] // 2 * 2] for f in frames]


def check_pose_message(msg: HumanPoseArray, frame, frame_id="camera_optical_frame"):
    assert msg.header.frame_id == frame_id
    assert (msg.image_width, msg.image_height) == (frame.shape[1], frame.shape[0])
    assert len(msg.joint_names) == 16 and len(msg.skeleton_a) == len(msg.skeleton_b) > 0
    for person in msg.people:
        assert person.id >= 1 and 0.0 <= person.score <= 1.0
        assert [k.name for k in person.keypoints] == list(msg.joint_names)
        for k in person.keypoints:
            assert math.isfinite(k.x) and math.isfinite(k.y) and 0.0 <= k.confidence <= 1.0
            assert math.isnan(k.position.x)  # no depth input: 3D unknown


def test_poses_for_every_encoding_with_the_image_stamp(ros_process, model, namespace):
    ros_process(*node_command(namespace, model, *OPEN_THRESHOLDS), ready=READY)
    frames = lspet_frames(len(ENCODINGS))
    with PoseClient(namespace) as client:
        client.wait_for_node()
        for frame, encoding in zip(frames, ENCODINGS):
            stamp = client.publish_image(frame, encoding)
            msg = client.wait_pose(stamp)
            assert msg is not None, f"no /human_pose for a {encoding} frame"
            check_pose_message(msg, frame)
            assert len(msg.people) == 1


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_input(ros_process, model, namespace, fmt):
    ros_process(*node_command(namespace, model, "input_transport:=compressed", *OPEN_THRESHOLDS),
                ready=READY)
    frames = lspet_frames(2)
    with PoseClient(namespace) as client:
        client.wait_for_node(compressed=True)
        for frame in frames:
            stamp = client.publish_compressed(frame, fmt)
            msg = client.wait_pose(stamp)
            assert msg is not None
            check_pose_message(msg, frame)


def test_markers_and_annotated_image(ros_process, model, namespace):
    ros_process(*node_command(namespace, model, *OPEN_THRESHOLDS), ready=READY)
    (frame,) = lspet_frames(1)
    with PoseClient(namespace, subscribe_image=True) as client:
        client.wait_for_node()
        # The node draws and sends markers only once it has matched our subscriptions,
        # which may take a few frames after its input is matched.
        for _ in range(20):
            stamp = client.publish_image(frame)
            assert client.wait_pose(stamp) is not None
            image = client.wait(lambda s=stamp: next((m for m in client.images if m.header.stamp == s),
                                                     None), 1)
            markers = client.wait(lambda s=stamp: next((m for m in client.markers
                                                        if m.markers and m.markers[0].header.stamp == s),
                                                       None), 1)
            if image and markers:
                break
        assert image is not None and image.encoding == "bgr8"
        assert (image.width, image.height) == (frame.shape[1], frame.shape[0])
        assert len(image.data) == image.step * image.height
        assert markers is not None
        kinds = {m.ns for m in markers.markers}
        assert kinds == {"joints", "bones", "ids"}
        for m in markers.markers:
            assert m.header.frame_id == "camera_optical_frame"
            for p in m.points:
                assert p.z == pytest.approx(2.0) and math.isfinite(p.x) and math.isfinite(p.y)
        joints = next(m for m in markers.markers if m.ns == "joints")
        assert len(joints.points) == 16


def test_parameter_change_takes_effect_and_bad_values_are_refused(ros_process, model, namespace):
    ros_process(*node_command(namespace, model, *OPEN_THRESHOLDS), ready=READY)
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as client:
        client.wait_for_node()
        assert len(client.wait_pose(client.publish_image(frame)).people) == 1
        (ok,) = set_parameters(client, namespace, person_threshold=1.0)
        assert ok.successful
        assert client.wait_pose(client.publish_image(frame)).people == []
        refused = set_parameters(client, namespace, keypoint_threshold=2.0)
        assert not refused[0].successful and refused[0].reason
        (readonly,) = set_parameters(client, namespace, model_path="/elsewhere.onnx")
        assert not readonly.successful
        (ok,) = set_parameters(client, namespace, person_threshold=0.0)
        assert ok.successful
        assert len(client.wait_pose(client.publish_image(frame)).people) == 1


def test_nan_model_publishes_no_poses_and_reports_an_error(ros_process, namespace, tmp_path):
    model = build_model(tmp_path / "nan.onnx", input_size=(128, 96), nan_output=True)
    ros_process(*node_command(namespace, model), ready=READY)
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as client:
        client.wait_for_node(warm_up=False)
        seen = len(client.diagnostics)
        stamp = client.publish_image(frame)
        assert client.wait_pose(stamp, timeout=3) is None
        values = client.wait_diagnostics(lambda v: v["level"] == 2, after=seen)
        assert values and "NaN" in values["message"], client.diagnostic_values()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("write_model, problem", [
    pytest.param(None, "file does not exist", id="missing"),
    pytest.param(lambda path, good: path.write_bytes(Path(good).read_bytes()[:200]),
                 "not a loadable ONNX model", id="truncated"),
    pytest.param(lambda path, good: path.write_text("this is not a model"), "not a loadable ONNX model",
                 id="text_file"),
    pytest.param(lambda path, good: build_model(path, input_size=(128, 96), input_rank=3),
                 "input has rank 3", id="wrong_input_rank"),
    pytest.param(lambda path, good: build_model(path, input_size=(128, 96), metadata_joints=5),
                 "output dim 1 is 16, expected 5", id="joint_count_unlike_its_metadata"),
])
def test_broken_model_refuses_to_activate_and_retries_quietly(ros_process, model, namespace, tmp_path,
                                                              write_model, problem):
    """The file and the problem are named once in the log and in an ERROR diagnostic; the
    retries cost little CPU, and the node starts once the file is fixed."""
    path = tmp_path / "broken.onnx"
    if write_model:
        write_model(path, model)
    node = ros_process(*node_command(namespace, str(path), "retry_period:=0.5", "diagnostics_period:=0.2"))
    node.wait_for(rf"cannot configure: model '{re.escape(str(path))}': {problem}", timeout=30)
    with PoseClient(namespace) as client:
        values = client.wait_diagnostics(lambda v: v["level"] == 2)
        assert values and str(path) in values["message"] and problem in values["message"], values
    cpu = cpu_seconds(node.proc.pid)
    time.sleep(2.0)  # four retries
    assert cpu_seconds(node.proc.pid) - cpu < 0.5, "retrying a broken model keeps the CPU busy"
    assert sum("cannot configure" in line for line in node.lines) == 1, node.output
    assert sum("trying onnxruntime" in line for line in node.lines) <= 1, node.output
    assert not any(re.search(READY, line) for line in node.lines)
    path.write_bytes(Path(model).read_bytes())
    node.wait_for(READY, timeout=30)


def boxes_sender(client):
    """send(stamp, boxes, scores=None) publishing person boxes (x_min, y_min, x_max, y_max)
    to the client's node in mode boxes, once the node's subscription is matched."""
    boxes_pub = client.node.create_publisher(HumanPoseArray, f"{client.ns}/person_boxes", 10)
    assert client.wait(lambda: boxes_pub.get_subscription_count() > 0, 10)

    def send(stamp, boxes, scores=None):
        msg = HumanPoseArray()
        msg.header.stamp = stamp
        msg.people = [PersonPose(score=float(score), x_min=float(a), y_min=float(b), x_max=float(c),
                                 y_max=float(d))
                      for (a, b, c, d), score in zip(boxes, scores or [0.9] * len(boxes))]
        boxes_pub.publish(msg)
    return send


def test_boxes_mode_matches_boxes_by_stamp(ros_process, model, namespace):
    ros_process(*node_command(namespace, model, "mode:=boxes", "boxes_wait:=0.5", *OPEN_THRESHOLDS),
                ready=READY)
    (frame,) = lspet_frames(1)
    h, w = frame.shape[:2]
    with PoseClient(namespace) as client:
        client.wait_for_node()
        send_boxes = boxes_sender(client)
        stamp = client.next_stamp()
        send_boxes(stamp, [(0, 0, w / 2, h), (w / 2, 0, w, h)])
        client.publish_image(frame, stamp=stamp)
        msg = client.wait_pose(stamp)
        assert msg is not None and len(msg.people) == 2
        check_pose_message(msg, frame)


def test_replay_feeds_the_node(ros_process, model, namespace, tmp_path):
    frames = lspet_frames(3)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    ros_process(*node_command(namespace, model, "input_transport:=compressed", *OPEN_THRESHOLDS),
                ready=READY)
    with PoseClient(namespace) as client:
        replay = ros_process("-m", "lapx_ros.ros.replay", str(tmp_path), "--topic",
                             f"{namespace}/camera/image_raw", "--transport", "both", "--rate", "5",
                             "--wait-subscribers", "1", "--reliable")
        assert replay.wait_exit(timeout=30) == 0, replay.output
        assert "sent 3 frames" in replay.output
        sent = [(f.shape[1], f.shape[0]) for f in frames]

        def sizes():
            return [(m.image_width, m.image_height) for m in client.poses]

        # The node works on the newest frame: under load it may skip one sent while it was
        # busy, but never the last, and never reorders.
        assert client.wait(lambda: sent[-1] in sizes(), 10), f"sent {sent}, published {sizes()}"
        got = iter(sent)
        assert all(size in got for size in sizes()), f"sent {sent}, published {sizes()}"
        assert len(sizes()) >= 2, f"sent {sent}, published {sizes()}"


def test_autostart_false_waits_for_a_lifecycle_manager(ros_process, model, namespace):
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    node = ros_process(*node_command(namespace, model, "autostart:=false", *OPEN_THRESHOLDS))
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as client:
        assert client.wait_diagnostics(lambda v: v["message"] == "inactive")
        change = client.node.create_client(ChangeState, f"{namespace}/lapx_pose/change_state")
        assert change.wait_for_service(timeout_sec=10.0)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = change.call_async(ChangeState.Request(transition=Transition(id=transition)))
            assert client.wait(future.done, 15) and future.result().success
        client.wait_for_node()
        assert client.wait_pose(client.publish_image(frame)) is not None
    node.wait_for(READY, timeout=5)


def test_qos_mismatch_is_reported_with_the_fix(ros_process, model, namespace):
    from rclpy.qos import qos_profile_sensor_data

    node = ros_process(*node_command(namespace, model, "qos_reliability:=reliable"), ready=READY)
    with PoseClient(namespace) as client:
        best_effort = client.node.create_publisher(Image, f"{namespace}/camera/image_raw",
                                                   qos_profile_sensor_data)
        node.wait_for(r"incompatible.*qos_reliability: auto", timeout=15)
        client.node.destroy_publisher(best_effort)


def test_invalid_start_parameters_fall_back_to_defaults(ros_process, model, namespace):
    # A -p value of another type than the params file's for the same '/**' key never
    # reaches the node (rcl keeps the file's value), so wrong types are not tried here.
    node = ros_process(*node_command(namespace, model, "threads:=0", "backend:=tensorrt",
                                     "marker_depth:=-1.0", "keypoint_threshold:=7.0"), ready=READY)
    text = node.output
    for name in ("threads", "backend", "marker_depth", "keypoint_threshold"):
        assert f"parameter refused: {name}" in text, text
    with PoseClient(namespace) as client:
        values = set_parameters(client, namespace, keypoint_threshold=0.5)
        assert values[0].successful


def test_camera_stop_and_resolution_change_recover(ros_process, model, namespace):
    ros_process(*node_command(namespace, model, "stale_timeout:=0.5", "diagnostics_period:=0.2",
                              *OPEN_THRESHOLDS), ready=READY)
    big, small = lspet_frames(2)
    with PoseClient(namespace) as client:
        client.wait_for_node()
        published = time.monotonic()
        first = client.wait_pose(client.publish_image(big))
        seen = len(client.diagnostics)
        assert client.wait_diagnostics(lambda v: v["level"] == 3, after=seen)  # STALE: camera stopped
        # A STALE report sent before `first` was handled can arrive late; only the stamps'
        # gap (more than stale_timeout) decides that tracking restarts, so make sure of it.
        time.sleep(max(0.0, published + 0.8 - time.monotonic()))
        seen = len(client.diagnostics)
        again = client.wait_pose(client.publish_image(big))
        assert again.people[0].id != first.people[0].id  # tracking restarted after the gap
        assert client.wait_diagnostics(lambda v: v["level"] == 0, after=seen)
        resized = client.wait_pose(client.publish_image(small))
        assert (resized.image_width, resized.image_height) == (small.shape[1], small.shape[0])
        assert resized.people[0].id != again.people[0].id  # and after the resolution change


def test_two_nodes_in_different_namespaces_do_not_interfere(ros_process, model, namespace):
    other = namespace + "_b"
    ros_process(*node_command(namespace, model, *OPEN_THRESHOLDS), ready=READY)
    ros_process(*node_command(other, model, *OPEN_THRESHOLDS), ready=READY)
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as a, PoseClient(other) as b:
        a.wait_for_node()
        b.wait_for_node()
        stamp = a.publish_image(frame)
        assert a.wait_pose(stamp) is not None
        assert b.wait_pose(stamp, timeout=1.0) is None
        assert a.wait_diagnostics(lambda v: v["input_topic"] == f"{namespace}/camera/image_raw")
        assert b.wait_diagnostics(lambda v: v["input_topic"] == f"{other}/camera/image_raw")


def test_detector_mode_finds_people_on_real_photos(ros_process, model, namespace):
    # The default detector is MoveNet when set-up built its file; else HOG, which looks for
    # upright pedestrians and finds the athlete of im09001 only upscaled 1.5x.
    ros_process(*node_command(namespace, model, "mode:=detector", "detector_interval:=1",
                              "detector_scale:=1.5", *OPEN_THRESHOLDS), ready=READY)
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as client:
        client.wait_for_node()
        # The detector runs on its own thread: the first frames may go out before its
        # first boxes are ready, so send the same photo until people appear.
        for _ in range(20):
            msg = client.wait_pose(client.publish_image(frame))
            assert msg is not None
            if msg.people:
                break
            client.wait(lambda: False, 0.3)
        assert msg.people, "the built-in detector found nobody in a sports photo"
        check_pose_message(msg, frame)
        expected = "movenet" if default_detector_path() else "hog"
        assert client.wait_diagnostics(lambda v: v.get("detector_error") == ""
                                       and v.get("detector", "").startswith(expected))


@pytest.mark.parametrize("bad", ["missing", "truncated"])
def test_bad_detector_model_falls_back_to_hog_and_says_why(ros_process, model, namespace, tmp_path, bad):
    """A detector file that cannot be used: an error naming it in the log and a WARN in the
    diagnostics, and the node stays up on HOG and answers frames."""
    path = tmp_path / "detector.onnx"
    if bad == "truncated":
        path.write_bytes(Path(model).read_bytes()[:200])
    problem = "file does not exist" if bad == "missing" else "not a loadable ONNX model"
    node = ros_process(*node_command(namespace, model, "mode:=detector", f"detector_model:={path}",
                                     "diagnostics_period:=0.2", *OPEN_THRESHOLDS), ready=READY)
    assert re.search(rf"detector model '{re.escape(str(path))}': {problem}.*falls back to HOG instead of MoveNet",
                     node.output), node.output
    (frame,) = lspet_frames(1)
    with PoseClient(namespace) as client:
        client.wait_for_node()
        assert client.wait_pose(client.publish_image(frame)) is not None
        values = client.wait_diagnostics(lambda v: v["level"] == 1 and "detector" in v["message"])
        assert values, client.diagnostic_values()
        assert str(path) in values["detector_problem"] and problem in values["message"]
        assert values["detector"].startswith("hog")


# --- bad input and faults -------------------------------------------------------------------
# Each kind of bad input goes to a node shared by its catalogue (a node start costs
# seconds): it must be dropped with a rate-limited warning, counted under its kind in the
# diagnostics, get no pose, and not stop the node from answering the next good frame.

@contextlib.contextmanager
def running_node(model, *params, compressed=False):
    """(node process, client) for a module's catalogue of cases."""
    namespace = unique_namespace()
    node = RosProcess(*node_command(namespace, model, "diagnostics_period:=0.1", *OPEN_THRESHOLDS, *params))
    try:
        node.wait_for(READY, timeout=30)
        with PoseClient(namespace) as client:
            client.wait_for_node(compressed=compressed)
            yield node, client
    finally:
        node.stop()


@pytest.fixture(scope="module")
def raw_node(model):
    with running_node(model) as started:
        yield started


@pytest.fixture(scope="module")
def compressed_node(model):
    with running_node(model, "input_transport:=compressed", compressed=True) as started:
        yield started


@pytest.fixture(scope="module")
def boxes_node(model):
    # stale_timeout: no tracking restart between cases, which forgets boxes that came before their frame
    with running_node(model, "mode:=boxes", "boxes_wait:=0.2", "stale_timeout:=60.0") as (node, client):
        yield node, client, boxes_sender(client)


def shifted(stamp: Time, seconds: float) -> Time:
    ns = stamp.sec * 10**9 + stamp.nanosec + round(seconds * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def image_msg(client, as_encoding="bgr8", frame_id="camera_optical_frame", stamp_offset=0.0, **fields):
    """GOOD_FRAME as an Image stamped ``stamp_offset`` s from now, with ``fields`` overridden."""
    header = client.header(stamp=shifted(client.next_stamp(), stamp_offset), frame_id=frame_id)
    msg = to_image_msg(GOOD_FRAME, as_encoding, header)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def warned_kinds(lines) -> list[str]:
    """The kinds of drop (as the diagnostics count them) that warning lines name."""
    return [reason_kind(line.split("dropped frame: ", 1)[1]) for line in lines if "dropped frame: " in line]


def counter(values, key) -> int:
    return int(values.get(key) or 0)


def check_dropped(node, client, send_bad, send_good, kind, times=2):
    """send_bad() -> stamp, ``times`` over: each frame is counted in dropped_invalid under
    ``kind``, warned about at most once (rate-limited) and gets no pose; then a good frame
    sent with send_good() -> stamp gets one."""
    before = client.wait_diagnostics(lambda v: True)
    assert before, "no diagnostics from the node"
    key = f"dropped: {kind}"
    first_line = len(node.lines)
    stamps = []
    for sent in range(1, times + 1):
        stamps.append(send_bad())
        # Waiting for each count also keeps the next frame from replacing this one unread.
        values = client.wait_diagnostics(
            lambda v, n=sent: counter(v, "dropped_invalid") >= counter(before, "dropped_invalid") + n)
        assert values, f"bad frame {sent} not counted: {client.diagnostic_values()}"
    assert counter(values, "dropped_invalid") == counter(before, "dropped_invalid") + times, values
    assert counter(values, key) == counter(before, key) + times, values
    assert client.wait(lambda: kind in warned_kinds(node.lines), 5), f"no warning for {kind!r}: {node.lines[-20:]}"
    assert warned_kinds(node.lines[first_line:]).count(kind) <= 1, node.lines[first_line:]
    assert client.wait_pose(send_good()) is not None, "no pose for a good frame after bad ones"
    # Poses go out in order: one for a bad frame would have come before the good one's.
    assert all(client.wait_pose(s, timeout=0.05) is None for s in stamps)


BAD_IMAGES = [
    pytest.param(dict(encoding="hsv8"), "unsupported encoding", id="hsv8"),
    pytest.param(dict(encoding=""), "unsupported encoding", id="empty_encoding"),
    pytest.param(dict(encoding="nv21"), "unsupported encoding", id="nv21"),
    pytest.param(dict(encoding="8UC2"), "unsupported encoding", id="8UC2"),
    pytest.param(dict(encoding="16UC1", step=2 * W, data=bytes(2 * W * H)), "N-bit/float encoding", id="16UC1"),
    pytest.param(dict(encoding="32FC1", step=4 * W, data=bytes(4 * W * H)), "N-bit/float encoding", id="32FC1"),
    pytest.param(dict(encoding="mono16", step=2 * W, data=bytes(2 * W * H)), "N-bit/float encoding",
                 id="mono16"),
    pytest.param(dict(step=3 * W - 1), "step N < width N x N bytes", id="step_shorter_than_a_row"),
    pytest.param(dict(width=W + 1), "step N < width N x N bytes", id="width_beyond_step"),
    pytest.param(dict(step=3 * W + 4), "data length N != step N x height N", id="step_beyond_data"),
    pytest.param(dict(height=H + 1), "data length N != step N x height N", id="height_beyond_data"),
    pytest.param(dict(data=GOOD_FRAME.tobytes()[:-1]), "data length N != step N x height N",
                 id="data_one_byte_short"),
    pytest.param(dict(data=GOOD_FRAME.tobytes() + b"\0"), "data length N != step N x height N",
                 id="data_one_byte_long"),
    pytest.param(dict(encoding="yuyv", width=W - 1, step=2 * (W - 1), data=bytes(2 * (W - 1) * H)),
                 "yuyv needs an even width, got N", id="yuyv_odd_width"),
    pytest.param(dict(width=0, height=0, step=0, data=b""), "image too small", id="zero_sized"),
    pytest.param(dict(width=1, height=1, step=3, data=bytes(3)), "image too small", id="one_pixel"),
    # max_image_pixels (config/lapx.yaml) is 3840x2160: refused before the data is read.
    pytest.param(dict(width=7680, height=4320, step=3 * 7680, data=b""), "image too large", id="8K_declared"),
    pytest.param(dict(is_bigendian=7), "is_bigendian must be N or N, got N", id="is_bigendian_7"),
    pytest.param(dict(frame_id=""), "empty frame_id", id="empty_frame_id"),
    pytest.param(dict(stamp_offset=60.0), "stamp N s in the future", id="stamp_60s_ahead"),
    pytest.param(dict(stamp_offset=-10.0), "stamp went backwards by N s", id="stamp_going_backwards"),
]


@pytest.mark.parametrize("fields, kind", BAD_IMAGES)
def test_bad_image_is_dropped_counted_and_warned(raw_node, fields, kind):
    node, client = raw_node

    def send_bad():
        msg = image_msg(client, **fields)
        client.publish_raw(msg)
        return msg.header.stamp
    check_dropped(node, client, send_bad, lambda: client.publish_image(GOOD_FRAME), kind)


@pytest.mark.parametrize("encoding, fields", [
    pytest.param("bgr8", dict(is_bigendian=1), id="bgr8_is_bigendian_1"),
    pytest.param("mono8", dict(is_bigendian=1), id="mono8_is_bigendian_1"),
    pytest.param("mono8", dict(encoding="bayer_rggb8"), id="bayer_rggb8"),
])
def test_unusual_but_valid_image_is_processed(raw_node, encoding, fields):
    """8-bit samples have no byte order, and Bayer mosaics are a supported encoding: no drop."""
    _, client = raw_node
    before = client.wait_diagnostics(lambda v: True)
    msg = image_msg(client, encoding, **fields)
    client.publish_raw(msg)
    pose = client.wait_pose(msg.header.stamp)
    assert pose is not None and (pose.image_width, pose.image_height) == (W, H) and len(pose.people) == 1
    after = client.wait_diagnostics(
        lambda v: counter(v, "frames_processed") > counter(before, "frames_processed"))
    assert after and counter(after, "dropped_invalid") == counter(before, "dropped_invalid"), after


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height (its checksum no longer matches)."""
    png = bytearray(compress_bgr(GOOD_FRAME, "png"))
    png[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(png)


JPEG = compress_bgr(GOOD_FRAME, "jpeg")
PNG = compress_bgr(GOOD_FRAME, "png")
GARBAGE = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
BAD_COMPRESSED = [
    pytest.param("jpeg", JPEG[: len(JPEG) // 2], "compressed image is truncated or corrupt", id="truncated_jpeg"),
    pytest.param("png", PNG[: len(PNG) // 2], "compressed image is truncated or corrupt", id="truncated_png"),
    pytest.param("jpeg", GARBAGE, "compressed data is neither JPEG nor PNG", id="garbage"),
    pytest.param("jpeg", JPEG[:3] + GARBAGE, "compressed image is truncated or corrupt",
                 id="garbage_after_a_jpeg_signature"),
    pytest.param("jpeg", b"", "compressed image has only N bytes", id="empty"),
    pytest.param("tiff", b"II*\0" + GARBAGE, "unsupported compressed format", id="tiff"),
    pytest.param("16UC1; compressedDepth png", PNG, "compressed depth image", id="compressed_depth"),
    pytest.param("png", png_declaring(7680, 4320), "image too large", id="8K_declared_png"),
]


@pytest.mark.parametrize("fmt, data, kind", BAD_COMPRESSED)
def test_bad_compressed_image_is_dropped_counted_and_warned(compressed_node, fmt, data, kind):
    node, client = compressed_node

    def send_bad():
        msg = CompressedImage(header=client.header(), format=fmt, data=data)
        client.compressed_pub.publish(msg)
        return msg.header.stamp
    check_dropped(node, client, send_bad, lambda: client.publish_compressed(GOOD_FRAME), kind)


GOOD_BOX = (10, 10, 60, 90)
NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("box, score", [
    pytest.param((-50, -50, -10, -10), 0.9, id="outside_top_left"),
    pytest.param((W + 10, 0, W + 60, H), 0.9, id="outside_right"),
    pytest.param((80, 20, 80, 80), 0.9, id="zero_width"),
    pytest.param((70, 40, 120, 40), 0.9, id="zero_height"),
    pytest.param((120, 10, 70, 80), 0.9, id="x_max_before_x_min"),
    pytest.param((70, 80, 120, 10), 0.9, id="y_max_before_y_min"),
    pytest.param((NAN, 10, 120, 80), 0.9, id="nan_corner"),
    pytest.param((70, 10, INF, 80), 0.9, id="infinite_corner"),
    pytest.param((70, 10, 120, 80), NAN, id="nan_score"),
])
def test_bad_person_box_is_ignored_counted_and_warned(boxes_node, box, score):
    """The frame still gets a pose: for the good box beside the bad one, and only for it."""
    node, client, send_boxes = boxes_node
    before = client.wait_diagnostics(lambda v: True)
    stamp = client.next_stamp()
    send_boxes(stamp, [GOOD_BOX, box], [0.9, score])
    client.publish_image(GOOD_FRAME, stamp=stamp)
    pose = client.wait_pose(stamp)
    assert pose is not None and len(pose.people) == 1
    values = client.wait_diagnostics(lambda v: counter(v, "dropped_boxes") > counter(before, "dropped_boxes"))
    assert values and counter(values, "dropped_boxes") == counter(before, "dropped_boxes") + 1, values
    assert counter(values, "dropped_invalid") == counter(before, "dropped_invalid")
    node.wait_for(r"ignored 1 person box\(es\): NaN, degenerate or outside the image", timeout=5)


def test_person_boxes_matching_no_frame_are_counted_and_warned(boxes_node):
    """Boxes wait in a buffer for a late frame; 2 s of frame stamps later, a message that
    matched no frame is counted and warned about."""
    node, client, send_boxes = boxes_node
    before = client.wait_diagnostics(lambda v: True)
    earlier = client.publish_image(GOOD_FRAME)
    assert client.wait_pose(earlier) is not None
    time.sleep(0.1)
    assert client.wait_pose(client.publish_image(GOOD_FRAME)) is not None
    send_boxes(shifted(earlier, 0.05), [GOOD_BOX])  # between two frames already answered
    deadline = time.monotonic() + 20
    values = None
    while values is None and time.monotonic() < deadline:
        assert client.wait_pose(client.publish_image(GOOD_FRAME)) is not None
        values = client.wait_diagnostics(
            lambda v: counter(v, "unmatched_box_messages") > counter(before, "unmatched_box_messages"),
            timeout=0.2)
    assert values, client.diagnostic_values()
    assert counter(values, "unmatched_box_messages") == counter(before, "unmatched_box_messages") + 1
    node.wait_for(r"person box message\(s\) so far matched no frame", timeout=5)

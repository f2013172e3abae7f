"""3D keypoints from a depth camera, over real DDS: the pose node in its own process with
the shipped model, a real photo as the colour frame, and a synthetic depth scene of known
geometry as the registered depth image (16UC1, and compressedDepth once), each with a
CameraInfo of known K.

The scene is built from the keypoints a node without depth reports for the photo (a
person-shaped region on a tilted plane, a wall farther back, a hole of zero depth at one
joint), and the truth for each frame from the keypoints reported for that frame, so what
is checked is the depth path, not the model's accuracy."""
import contextlib
import math
import threading
import time

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from lapx_ros.layouts import MPII_16
from lapx_ros.ros.replay import compressed_depth_msg, depth_image_msg
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.depth import torso_joints
from lapx_ros.runtime.engine import default_model_path
from lapx_ros.runtime.frames import reason_kind
from lapx_ros.testing.depth_scenes import TiltedPlane, body_mask, millimetres, person_scene
from lapx_ros.testing.harness import busy_cpu
from lapx_ros.testing.node_client import LSPET, READY, PoseClient, node_command, unique_namespace
from lapx_ros.testing.ros_processes import RosProcess

PHOTO = "im09006.jpg"  # one athlete whose 16 joints the shipped model sees
SCALE = 2  # the LSPET photos are small: twice the size gives limbs of a few depth windows
DEPTH_TOPIC = "camera/aligned_depth_to_color/image_raw"
PLANE = TiltedPlane(z0=2.5, tilt_x=0.3, tilt_y=-0.2)
WALL = 4.5  # metres: the background, far behind the person
HOLE_JOINT = MPII_16.joint_names.index("head_top")  # its depth is zero: position NaN
HOLE_RADIUS = 20  # pixels
THICKNESS = 26  # pixels, limbs of the depth silhouette
THRESHOLD = 0.2  # keypoint_threshold of config/lapx.yaml
TORSO = torso_joints(MPII_16.joint_names)
DEPTH_WAIT = 0.5  # the bound: depth that comes this long after its frame still gives it 3D
COMMON = ("diagnostics_period:=0.2", f"depth_wait:={DEPTH_WAIT}", "stale_timeout:=60.0")


@pytest.fixture(scope="module")
def photo():
    path = LSPET / "images" / PHOTO
    if not path.is_file():
        pytest.skip(f"LSPET photo missing: {PHOTO} in the shared data's lspet/images (see the data notes)")
    image = cv2.imread(str(path))
    return cv2.resize(image, (image.shape[1] * SCALE, image.shape[0] * SCALE), interpolation=cv2.INTER_CUBIC)


@pytest.fixture(scope="module")
def camera(photo):
    height, width = photo.shape[:2]
    return PinholeCamera(1.1 * width, 1.1 * width, (width - 1) / 2 + 7.0, (height - 1) / 2 - 5.0,
                         width, height)


class RgbdCamera:
    """A PoseClient plus the depth side of an RGB-D camera: registered depth (raw and
    compressedDepth) and a CameraInfo beside each image topic."""

    def __init__(self, client: PoseClient, camera: PinholeCamera):
        from lapx_ros.testing.node_client import RELIABLE

        self.client, self.camera = client, camera
        node, ns = client.node, client.ns
        self.depth_pub = node.create_publisher(Image, f"{ns}/{DEPTH_TOPIC}", RELIABLE)
        self.compressed_pub = node.create_publisher(CompressedImage, f"{ns}/{DEPTH_TOPIC}/compressedDepth",
                                                    RELIABLE)
        self.colour_info_pub = node.create_publisher(CameraInfo, f"{ns}/camera/camera_info", RELIABLE)
        self.depth_info_pub = node.create_publisher(
            CameraInfo, f"{ns}/camera/aligned_depth_to_color/camera_info", RELIABLE)

    def camera_info(self, header, camera=None) -> CameraInfo:
        c = camera or self.camera
        info = CameraInfo(header=header, width=c.width, height=c.height, distortion_model="plumb_bob")
        info.k = [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]
        info.p = [c.fx, 0.0, c.cx, 0.0, 0.0, c.fy, c.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        info.d = [0.0] * 5
        return info

    def wait_connected(self, compressed: bool) -> None:
        depth_pub = self.compressed_pub if compressed else self.depth_pub
        pubs = (depth_pub, self.colour_info_pub, self.depth_info_pub)
        assert self.client.wait(lambda: all(p.get_subscription_count() > 0 for p in pubs), 15), \
            "the node did not subscribe to the depth topics"
        # the node's depth QoS follows our (reliable) publisher within a quarter second
        assert self.client.wait_diagnostics(lambda v: v.get("depth_qos") == "reliable", timeout=10), \
            self.client.diagnostic_values()
        self.send_infos()  # volatile: the node keeps the latest, so send them once early
        self.client.wait(lambda: False, 0.3)

    def send_infos(self, depth_camera=None) -> None:
        header = self.client.header()
        self.colour_info_pub.publish(self.camera_info(header))
        self.depth_info_pub.publish(self.camera_info(header, depth_camera))

    def send_depth(self, depth_metres, stamp, compressed=False, spoil=None) -> None:
        """Depth in millimetres; ``spoil(msg)`` damages the raw message first."""
        header = self.client.header(stamp=stamp)
        mm = millimetres(depth_metres)
        if compressed:
            self.compressed_pub.publish(compressed_depth_msg(mm, header))
            return
        msg = depth_image_msg(mm, header)
        if spoil is not None:
            spoil(msg)
        self.depth_pub.publish(msg)

    def late_frames(self, photo, depth_metres, latenesses, period: float) -> list:
        """A colour frame every ``period`` seconds, each one's depth image ``latenesses[i]``
        seconds after it, sent from this thread in time order, so depth keeps stamp order
        as from one camera however late a busy CPU lets a send be; their stamps."""
        events = sorted([(i * period, 0, i) for i in range(len(latenesses))]
                        + [(i * period + late, 1, i) for i, late in enumerate(latenesses)])
        stamps = [None] * len(latenesses)
        start = time.monotonic()
        for due, is_depth, i in events:
            time.sleep(max(0.0, start + due - time.monotonic()))
            if is_depth:
                self.send_depth(depth_metres, stamps[i])
            else:
                self.send_infos()
                stamps[i] = self.client.next_stamp()
                self.client.publish_image(photo, stamp=stamps[i])
        return stamps

    def frame(self, photo, depth_metres, depth_first=True, compressed=False):
        """A colour frame and its depth image (same stamp) in either order; its pose message."""
        self.send_infos()
        stamp = self.client.next_stamp()
        if depth_first:
            self.send_depth(depth_metres, stamp, compressed)
            self.client.publish_image(photo, stamp=stamp)
        else:  # the node has the poses before the depth comes: it waits (depth_wait)
            self.client.publish_image(photo, stamp=stamp)
            sender = threading.Timer(0.1, self.send_depth, args=(depth_metres, stamp, compressed))
            sender.start()
        pose = self.client.wait_pose(stamp)
        assert pose is not None, "no /human_pose for the frame"
        return pose


@contextlib.contextmanager
def started_nodes(model, *variants):
    """Every node of ``variants`` (extra parameters) started at once: model loading takes
    seconds, so in parallel. Yields [(node, client)]."""
    started = []
    try:
        for params in variants:
            namespace = unique_namespace()
            started.append((RosProcess(*node_command(namespace, model, *COMMON, *params)), namespace))
        for node, _ in started:
            node.wait_for(READY, timeout=60)
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(PoseClient(ns)) for _, ns in started]
            for client in clients:
                client.wait_for_node()
            yield [(node, client) for (node, _), client in zip(started, clients)]
    finally:
        for node, _ in started:
            node.stop()


@pytest.fixture(scope="module")
def nodes(photo, camera):
    model = default_model_path()
    if not model:
        pytest.fail("no shipped model in models/")
    with started_nodes(model, (), (f"depth_topic:={DEPTH_TOPIC}",),
                       (f"depth_topic:={DEPTH_TOPIC}", "depth_transport:=compressedDepth")) as found:
        (plain, plain_client), (raw, raw_client), (comp, comp_client) = found
        raw_cam, comp_cam = RgbdCamera(raw_client, camera), RgbdCamera(comp_client, camera)
        raw_cam.wait_connected(compressed=False)
        comp_cam.wait_connected(compressed=True)
        yield {"plain": (plain, plain_client), "raw": (raw, raw_cam), "compressed": (comp, comp_cam)}


def pixels_of(pose_msg) -> tuple[np.ndarray, np.ndarray]:
    """(J, 2) OpenCV pixels and (J,) confidences of the message's one person."""
    (person,) = pose_msg.people
    pixels = np.array([(k.x - 0.5, k.y - 0.5) for k in person.keypoints])  # messages: centres at +0.5
    return pixels, np.array([k.confidence for k in person.keypoints])


def positions_of(pose_msg) -> np.ndarray:
    (person,) = pose_msg.people
    return np.array([(k.position.x, k.position.y, k.position.z) for k in person.keypoints])


@pytest.fixture(scope="module")
def scene(nodes, photo, camera):
    """(depth image [m], silhouette, hole) built around the pose of the photo that the node
    without depth reports."""
    _, client = nodes["plain"]
    pose = client.wait_pose(client.publish_image(photo))
    assert pose is not None and len(pose.people) == 1, "the shipped model found nobody in the photo"
    pixels, confidences = pixels_of(pose)
    assert (confidences >= THRESHOLD).sum() >= 14, confidences
    mask = body_mask(photo.shape[:2], pixels, MPII_16.skeleton, TORSO, thickness=THICKNESS)
    depth = person_scene(camera, PLANE, mask, WALL)
    v, u = np.mgrid[0:depth.shape[0], 0:depth.shape[1]]
    hole = np.hypot(u - pixels[HOLE_JOINT, 0], v - pixels[HOLE_JOINT, 1]) <= HOLE_RADIUS
    depth[hole] = 0.0  # 16UC1 0 = no measurement
    return depth, mask, hole


def inside(region: np.ndarray, pixel, margin: int) -> bool:
    """Whether the square of 2 * margin + 1 pixels around ``pixel`` lies in ``region``."""
    u, v = (int(round(c)) for c in pixel)
    height, width = region.shape
    if not (margin <= u < width - margin and margin <= v < height - margin):
        return False
    return bool(region[v - margin:v + margin + 1, u - margin:u + margin + 1].all())


def check_against_the_scene(pose_msg, scene, camera):
    """Joints on the person within 2 cm of the plane's points, NaN in the hole and for
    unseen joints, nothing anywhere else but the plane; the torso centre on the plane."""
    depth, mask, hole = scene
    pixels, confidences = pixels_of(pose_msg)
    got = positions_of(pose_msg)
    truth = PLANE.points(camera, pixels)
    finite = np.isfinite(got).all(axis=1)
    assert (np.isnan(got).all(axis=1) | finite).all(), "x, y, z are NaN together"
    errors = np.linalg.norm(got - truth, axis=1)
    assert (errors[finite] < 0.02).all(), (errors, confidences)
    checked = 0
    for j, (pixel, confidence) in enumerate(zip(pixels, confidences)):
        if confidence < THRESHOLD:
            assert not finite[j], f"joint {j} not seen but has a position"
        elif inside(mask & ~hole, pixel, 3):
            assert finite[j], f"joint {MPII_16.joint_names[j]} on the person has no position"
            checked += 1
        elif inside(hole, pixel, 3):
            assert not finite[j], f"joint {MPII_16.joint_names[j]} in the zero-depth hole has a position"
    assert checked >= 10, f"only {checked} joints well inside the person"
    assert inside(hole, pixels[HOLE_JOINT], 3), "the hole moved off its joint"
    (person,) = pose_msg.people
    centre = np.array([person.position.x, person.position.y, person.position.z])
    seen_torso = [j for j in TORSO if confidences[j] >= THRESHOLD]
    torso_z = got[list(TORSO), 2]
    assert np.isfinite(centre).all()
    assert centre[2] == pytest.approx(np.median(torso_z[np.isfinite(torso_z)]), abs=1e-9)
    assert truth[seen_torso, 2].min() - 0.02 < centre[2] < truth[seen_torso, 2].max() + 0.02
    pixel = camera.project(centre[None])[0]
    assert np.allclose(pixel, pixels[seen_torso].mean(axis=0), atol=0.01)  # the mean torso pixel
    return got


def test_joints_are_where_the_depth_scene_puts_them_depth_before_and_after_colour(nodes, scene, photo,
                                                                                   camera):
    node, rgbd = nodes["raw"]
    client = rgbd.client
    before = client.wait_diagnostics(lambda v: "frames_with_depth" in v)
    for depth_first in (True, False):
        pose = rgbd.frame(photo, scene[0], depth_first=depth_first)
        got = check_against_the_scene(pose, scene, camera)
        # the markers show the same points
        markers = client.wait(lambda s=pose.header.stamp: next(
            (m for m in client.markers if m.markers and m.markers[0].header.stamp == s), None), 5)
        assert markers is not None
        joints = next(m for m in markers.markers if m.ns == "joints")
        shown = np.array([(p.x, p.y, p.z) for p in joints.points])
        assert np.allclose(shown, got[np.isfinite(got).all(axis=1)])
    values = client.wait_diagnostics(
        lambda v: int(v["frames_with_depth"]) >= int(before["frames_with_depth"]) + 2)
    assert values and int(values["joints_with_depth"]) >= int(before["joints_with_depth"]) + 20, values
    assert values["depth_topic"].endswith(DEPTH_TOPIC) and values["depth_qos"] == "reliable"


def test_compressed_depth_gives_the_same_joints(nodes, scene, photo, camera):
    _, rgbd = nodes["compressed"]
    check_against_the_scene(rgbd.frame(photo, scene[0], compressed=True), scene, camera)


def test_without_depth_the_node_answers_as_before(nodes, photo):
    _, client = nodes["plain"]
    pose = client.wait_pose(client.publish_image(photo))
    assert pose is not None and len(pose.people) == 1
    (person,) = pose.people
    assert all(math.isnan(v) for k in person.keypoints for v in (k.position.x, k.position.y, k.position.z))
    assert all(math.isnan(v) for v in (person.position.x, person.position.y, person.position.z))
    markers = client.wait(lambda: next((m for m in client.markers if m.markers
                                        and m.markers[0].header.stamp == pose.header.stamp), None), 5)
    assert markers is not None
    assert all(p.z == pytest.approx(2.0) for m in markers.markers for p in m.points)  # marker_depth
    values = client.wait_diagnostics(lambda v: True)
    assert "frames_with_depth" not in values and "depth_topic" not in values


def shifted(stamp: Time, seconds: float) -> Time:
    ns = stamp.sec * 10**9 + stamp.nanosec + round(seconds * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def truncate(msg):
    msg.data = bytes(msg.data)[:-2]


# (how the depth image is spoilt, the stamp's offset from the colour frame's, crop to
# half its height, the kind of problem counted)
BAD_DEPTH = [
    pytest.param(lambda m: setattr(m, "encoding", "rgb8"), 0.0, False, "unsupported depth encoding",
                 id="wrong_encoding"),
    pytest.param(truncate, 0.0, False, "depth data length N != step N x height N", id="data_truncated"),
    pytest.param(lambda m: setattr(m, "encoding", "32FC1"), 0.0, False, "depth step N < width N x N bytes",
                 id="16_bit_rows_called_32FC1"),
    # the depth CameraInfo describes the whole view, the image is its upper half
    pytest.param(None, 0.0, True, "depth image size differs", id="size_mismatch"),
    # stamped a second early: it never matches, the frame waits depth_wait in vain
    pytest.param(None, -1.0, False, "no depth image in time", id="stamps_never_match"),
]


def counter(values, key) -> int:
    return int(values.get(key) or 0)


@pytest.mark.parametrize("spoil, offset, crop, kind", BAD_DEPTH)
def test_bad_depth_is_counted_and_warned_and_the_poses_still_go_out(nodes, scene, photo, camera,
                                                                     spoil, offset, crop, kind):
    node, rgbd = nodes["raw"]
    client = rgbd.client
    key = f"no depth: {kind}"
    before = client.wait_diagnostics(lambda v: "frames_without_depth" in v)
    first_line = len(node.lines)
    depth = scene[0][: scene[0].shape[0] // 2] if crop else scene[0]
    for _ in range(2):
        rgbd.send_infos()
        stamp = client.next_stamp()
        rgbd.send_depth(depth, shifted(stamp, offset), spoil=spoil)
        client.publish_image(photo, stamp=stamp)
        pose = client.wait_pose(stamp)
        assert pose is not None and len(pose.people) == 1, "the colour poses must still go out"
        assert np.isnan(positions_of(pose)).all()
    values = client.wait_diagnostics(lambda v: counter(v, key) >= counter(before, key) + 2)
    assert values, client.diagnostic_values()
    assert counter(values, key) == counter(before, key) + 2
    assert counter(values, "frames_without_depth") == counter(before, "frames_without_depth") + 2
    def said(line: str) -> bool:
        _, sep, reason = line.partition("no 3D for this frame: ")
        return bool(sep) and reason_kind(reason) == kind

    assert client.wait(lambda: any(said(line) for line in node.lines), 5), node.lines[-10:]
    assert sum(said(line) for line in node.lines[first_line:]) <= 1  # rate-limited per kind
    # alive, and good depth works again at once
    check_against_the_scene(rgbd.frame(photo, scene[0]), scene, camera)


def test_corrupt_compressed_depth_is_counted(nodes, scene, photo, camera):
    node, rgbd = nodes["compressed"]
    client = rgbd.client
    key = "no depth: compressedDepth corrupt"
    before = client.wait_diagnostics(lambda v: "frames_without_depth" in v)
    stamp = client.next_stamp()
    msg = compressed_depth_msg(millimetres(scene[0]), client.header(stamp=stamp))
    msg.data = bytes(msg.data)[: len(msg.data) // 2]  # truncated PNG
    rgbd.compressed_pub.publish(msg)
    client.publish_image(photo, stamp=stamp)
    pose = client.wait_pose(stamp)
    assert pose is not None and np.isnan(positions_of(pose)).all()
    values = client.wait_diagnostics(lambda v: counter(v, key) == counter(before, key) + 1)
    assert values, client.diagnostic_values()
    node.wait_for(r"no 3D for this frame: compressedDepth corrupt", timeout=5)
    check_against_the_scene(rgbd.frame(photo, scene[0], compressed=True), scene, camera)


def test_depth_settings_change_at_run_time_and_bad_combinations_are_refused(nodes, scene, photo, camera):
    from lapx_ros.testing.node_client import set_parameters

    _, rgbd = nodes["raw"]
    client = rgbd.client
    namespace = client.ns
    (ok,) = set_parameters(client, namespace, depth_max=1.0)  # the person at 2.5 m is out of range
    assert ok.successful
    try:
        assert np.isnan(positions_of(rgbd.frame(photo, scene[0]))).all()
        (refused,) = set_parameters(client, namespace, depth_min=2.0)  # not below depth_max
        assert not refused.successful and "depth_min" in refused.reason
        (read_only,) = set_parameters(client, namespace, depth_topic="elsewhere")
        assert not read_only.successful
    finally:
        (ok,) = set_parameters(client, namespace, depth_max=10.0)
        assert ok.successful
    check_against_the_scene(rgbd.frame(photo, scene[0]), scene, camera)


def test_depth_up_to_150_ms_late_gives_every_frame_its_3d_on_a_busy_cpu(nodes, scene, photo, camera):
    """Depth that comes within depth_wait of its frame gives it 3D, however busy the CPU:
    the frame's poses wait for it (the bound is generous against a slow shared machine:
    depth sent 150 ms late has 350 ms to arrive)."""
    _, rgbd = nodes["raw"]
    client = rgbd.client
    before = client.wait_diagnostics(lambda v: "frames_depth_too_late" in v)
    with busy_cpu(2):
        # 10 Hz, the lateness growing (depth in stamp order); the node may skip frames while busy
        stamps = rgbd.late_frames(photo, scene[0], [0.02] * 3 + [0.06] * 3 + [0.1] * 3 + [0.15] * 3,
                                  period=0.1)
        poses = [client.wait_pose(stamp, timeout=15) for stamp in stamps]
    answered = [pose for pose in poses if pose is not None]
    assert len(answered) >= 4, f"only {len(answered)} of {len(stamps)} frames answered"
    for pose in answered:  # each with its 3D, where the scene puts it
        check_against_the_scene(pose, scene, camera)
    values = client.wait_diagnostics(lambda v: int(v["frames_with_depth"]) >= int(before["frames_with_depth"])
                                     + len(answered))
    assert values, client.diagnostic_values()
    assert counter(values, "frames_depth_too_late") == counter(before, "frames_depth_too_late")
    assert counter(values, "frames_without_depth") == counter(before, "frames_without_depth")


def test_depth_later_than_depth_wait_is_counted_and_the_poses_go_out_without_it(nodes, scene, photo, camera):
    from lapx_ros.testing.node_client import set_parameters

    node, rgbd = nodes["raw"]
    client = rgbd.client
    before = client.wait_diagnostics(lambda v: "frames_depth_too_late" in v)
    (ok,) = set_parameters(client, client.ns, depth_wait=0.05)
    assert ok.successful
    try:
        for stamp in rgbd.late_frames(photo, scene[0], [0.6, 0.6], period=1.0):
            pose = client.wait_pose(stamp)
            assert pose is not None and len(pose.people) == 1, "the poses must go out all the same"
            assert np.isnan(positions_of(pose)).all()
        values = client.wait_diagnostics(
            lambda v: counter(v, "frames_depth_too_late") >= counter(before, "frames_depth_too_late") + 2)
        assert values, client.diagnostic_values()
        assert counter(values, "frames_depth_too_late") == counter(before, "frames_depth_too_late") + 2
        node.wait_for(r"its depth image came .* s after the frame stopped waiting .* raise depth_wait",
                      timeout=5)
    finally:
        (ok,) = set_parameters(client, client.ns, depth_wait=DEPTH_WAIT)
        assert ok.successful
    check_against_the_scene(rgbd.frame(photo, scene[0], depth_first=False), scene, camera)

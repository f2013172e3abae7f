"""Bags for tests, written with ``rosbags`` as a robot's recorder would have written
them: an RGB-D camera's colour frames (real footage), registered depth, both
CameraInfos, and a topic of a type the tools do not publish.

    frames = exercise_frames(6)          # BGR, one clip of the shared footage
    depth = person_depths(frames)        # uint16 mm: the person found, on a plane, before a wall
    write_rgbd_bag(tmp_path / "run", frames, depth, storage="mcap", start_ns=...)

Messages are built with rclpy and serialized by rclpy, so the bytes are what a ROS 2
recorder stores; the log time of each message is its stamp plus a small transport
delay, and depth is recorded after its colour frame (an aligned depth image is made
once both exist), unless ``depth_first``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.testing.depth_scenes import TiltedPlane, body_mask, millimetres, person_scene

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = REPO.parent / "shared" / "data" / "footage" / "exercise"
CLIP = "kaiakol_squat_correct_001"  # one man squatting, whole body in view, 640x360

COLOUR = "/camera/color/image_raw"
COLOUR_INFO = "/camera/color/camera_info"
DEPTH = "/camera/aligned_depth_to_color/image_raw"
DEPTH_INFO = "/camera/aligned_depth_to_color/camera_info"
NOTES = "/operator_notes"  # std_msgs/msg/String: not a camera topic
FRAME_ID = "camera_color_optical_frame"
PERIOD_NS = 66_666_667  # 15 Hz
DELAY_NS = 4_000_000  # from stamp to recorder, colour
DEPTH_DELAY_NS = 9_000_000  # from stamp to recorder, registered depth


def exercise_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` frames of CLIP; skips the test when the footage is missing."""
    paths = [FOOTAGE / f"{CLIP}_{i:02d}.jpg" for i in range(count)]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"exercise footage missing: expected {CLIP}_NN.jpg in {FOOTAGE} (shared data)")
    return [cv2.imread(str(p)) for p in paths]


def camera_for(frame) -> PinholeCamera:
    """The recorded camera's intrinsics: a plausible pinhole, principal point off centre."""
    height, width = frame.shape[:2]
    return PinholeCamera(0.9 * width, 0.9 * width, (width - 1) / 2 + 3.0, (height - 1) / 2 - 2.0, width, height)


def camera_info(header, c: PinholeCamera):
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(header=header, width=c.width, height=c.height, distortion_model="plumb_bob")
    info.k = [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [c.fx, 0.0, c.cx, 0.0, 0.0, c.fy, c.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.d = [0.0] * 5
    return info


def person_depths(frames, plane: TiltedPlane = TiltedPlane(z0=2.6, tilt_x=0.2, tilt_y=-0.1),
                  wall: float = 4.5) -> list[np.ndarray]:
    """Registered depth (uint16 mm) for each frame: the person the pipeline finds in it
    (its skeleton drawn thick, torso filled) on a tilted plane, a wall behind; a frame
    without a person is all wall."""
    from lapx_ros.layouts import MPII_16
    from lapx_ros.ros.bag_poses import OfflinePoser, load_config
    from lapx_ros.ros.convert import to_image_msg
    from lapx_ros.runtime.depth import torso_joints

    poser = OfflinePoser(load_config(None, ["threads:=1"]))
    torso = torso_joints(MPII_16.joint_names)
    out = []
    for i, frame in enumerate(frames):
        stamp = 1_000_000_000 + i * PERIOD_NS
        result = poser.frame(to_image_msg(frame, "bgr8", header_at(stamp)), False, stamp / 1e9)
        mask = np.zeros(frame.shape[:2], bool)
        for person in result.poses.people:
            joints = [(k.x - 0.5, k.y - 0.5) for k in person.keypoints]
            mask |= body_mask(frame.shape[:2], joints, MPII_16.skeleton, torso, thickness=24)
        out.append(millimetres(person_scene(camera_for(frame), plane, mask, wall)))
    return out


def header_at(stamp_ns: int, frame_id: str = FRAME_ID):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    return header


def write_rgbd_bag(path: Path, frames, depth_mm=None, *, storage: str = "mcap", start_ns: int,
                   depth_first: bool = False, notes: bool = True, compressed: bool = False,
                   depth_delay_ns: dict | None = None) -> list[int]:
    """A bag of ``frames`` (BGR) as a 15 Hz colour stream with CameraInfo, and the
    uint16 ``depth_mm`` images (None entries: that frame's depth was not recorded)
    with theirs, recorded DEPTH_DELAY_NS after their stamp or, for the frame indices
    in ``depth_delay_ns``, that long after it. Returns the colour stamps (ns)."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from std_msgs.msg import String

    from lapx_ros.ros.convert import to_compressed_msg, to_image_msg
    from lapx_ros.ros.replay import depth_image_msg

    store = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    colour_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    colour_topic = COLOUR + "/compressed" if compressed else COLOUR
    stamps = []
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        conns = {
            colour_topic: writer.add_connection(colour_topic, colour_type, typestore=store),
            COLOUR_INFO: writer.add_connection(COLOUR_INFO, "sensor_msgs/msg/CameraInfo", typestore=store),
        }
        if depth_mm is not None:
            conns[DEPTH] = writer.add_connection(DEPTH, "sensor_msgs/msg/Image", typestore=store)
            conns[DEPTH_INFO] = writer.add_connection(DEPTH_INFO, "sensor_msgs/msg/CameraInfo", typestore=store)
        if notes:
            conns[NOTES] = writer.add_connection(NOTES, "std_msgs/msg/String", typestore=store)

        def write(topic, log_ns, msg):
            writer.write(conns[topic], log_ns, serialize_message(msg))

        for i, frame in enumerate(frames):
            stamp = start_ns + i * PERIOD_NS
            stamps.append(stamp)
            header = header_at(stamp)
            colour = (to_compressed_msg(frame, "jpeg", header) if compressed
                      else to_image_msg(frame, "bgr8", header))
            info = camera_info(header, camera_for(frame))
            depth = None if depth_mm is None or depth_mm[i] is None else depth_image_msg(depth_mm[i], header)
            colour_log = stamp + DELAY_NS
            depth_log = stamp + (DELAY_NS - 1_000_000 if depth_first
                                 else (depth_delay_ns or {}).get(i, DEPTH_DELAY_NS))
            if depth is not None and depth_first:
                write(DEPTH, depth_log, depth)
                write(DEPTH_INFO, depth_log, info)
            write(colour_topic, colour_log, colour)
            write(COLOUR_INFO, colour_log + 1000, info)
            if depth is not None and not depth_first:
                write(DEPTH, depth_log, depth)
                write(DEPTH_INFO, depth_log, info)
            if notes and i == 1:
                write(NOTES, max(colour_log, depth_log) + 2000, String(data="operator: squat starts"))
    return stamps

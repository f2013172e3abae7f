"""Poses -> lapx_ros/HumanPoseArray, and person-box messages -> arrays.

Internally pixel coordinates follow OpenCV (integer = pixel centre); the messages put
pixel centres at +0.5 (see msg/Keypoint.msg), so the shift happens here, once.

Person boxes come from another node as ``vision_msgs/Detection2DArray`` when that
package is installed, otherwise as ``lapx_ros/HumanPoseArray`` whose people carry
only a box and a score (keypoints may be empty): a header plus boxes, which this
machine can build and test without vision_msgs.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
from geometry_msgs.msg import Point

from lapx_ros.msg import HumanPoseArray, Keypoint, PersonPose

PIXEL_CENTRE = 0.5
# Detection2D class ids taken as a person ("" = detectors that publish one class).
PERSON_CLASS_IDS = ("person", "0", "")


def vision_msgs_available() -> bool:
    return importlib.util.find_spec("vision_msgs") is not None


def pose_array_msg(header, poses, width: int, height: int, joint_names, skeleton,
                   body=None) -> HumanPoseArray:
    """The message of one frame. ``body`` (runtime.depth.BodyDepth of these poses, or
    None without depth) gives Keypoint.position and PersonPose.position in metres; every
    value it does not know stays NaN."""
    msg = HumanPoseArray()
    msg.header = header
    msg.image_width, msg.image_height = int(width), int(height)
    msg.joint_names = list(joint_names)
    msg.skeleton_a = [int(a) for a, _ in skeleton]
    msg.skeleton_b = [int(b) for _, b in skeleton]
    joints = len(joint_names)
    if body is None:
        positions = np.full((len(poses), joints, 3), np.nan)
        centres = np.full((len(poses), 3), np.nan)
    else:
        positions, centres = body.positions, body.centres
    for p, xyz, centre in zip(poses, positions.tolist(), centres.tolist()):
        person = PersonPose()
        person.id = int(p.track_id)
        person.score = float(p.score)
        x0, y0, x1, y1 = (float(v) + PIXEL_CENTRE for v in p.box)
        person.x_min, person.y_min, person.x_max, person.y_max = x0, y0, x1, y1
        for name, (x, y), conf, (px, py, pz) in zip(joint_names, p.keypoints.tolist(),
                                                    p.confidences.tolist(), xyz):
            person.keypoints.append(Keypoint(name=name, x=x + PIXEL_CENTRE, y=y + PIXEL_CENTRE,
                                             confidence=conf, position=Point(x=px, y=py, z=pz)))
        person.position = Point(x=centre[0], y=centre[1], z=centre[2])
        msg.people.append(person)
    return msg


def boxes_message_type():
    """The box message class this machine can subscribe to, and its name."""
    if vision_msgs_available():
        from vision_msgs.msg import Detection2DArray

        return Detection2DArray, "vision_msgs/Detection2DArray"
    return HumanPoseArray, "lapx_ros/HumanPoseArray"


def boxes_from_msg(msg):
    """(boxes (N, 4) in OpenCV pixels, scores (N,)) from either box message type."""
    boxes, scores = [], []
    if isinstance(msg, HumanPoseArray):
        for p in msg.people:
            boxes.append((p.x_min, p.y_min, p.x_max, p.y_max))
            scores.append(p.score)
        arr = np.asarray(boxes, np.float64).reshape(-1, 4) - PIXEL_CENTRE
        return arr, np.asarray(scores, np.float64)
    for det in msg.detections:
        hyps = [h.hypothesis for h in det.results]
        people = [h.score for h in hyps if h.class_id.lower() in PERSON_CLASS_IDS]
        if hyps and not people:
            continue
        c, sx, sy = det.bbox.center.position, det.bbox.size_x, det.bbox.size_y
        boxes.append((c.x - sx / 2, c.y - sy / 2, c.x + sx / 2, c.y + sy / 2))
        scores.append(max(people) if people else 1.0)
    arr = np.asarray(boxes, np.float64).reshape(-1, 4) - PIXEL_CENTRE
    return arr, np.asarray(scores, np.float64)


def input_topics(input_topic: str, transport: str, camera_info_topic: str = "") -> tuple[str, bool, str]:
    """(image topic to subscribe, whether it carries CompressedImage, its CameraInfo topic)
    for the input_topic, input_transport and camera_info_topic parameters: the node and
    lapx-bag-poses read the same topics of one configuration."""
    compressed = transport == "compressed"
    topic = input_topic.rstrip("/") + "/compressed" if compressed else input_topic
    return topic, compressed, camera_info_topic or sibling_topic(input_topic, "camera_info")


def sibling_topic(topic: str, name: str) -> str:
    """``name`` in the same namespace as ``topic`` (camera/image_raw -> camera/camera_info)."""
    head, sep, _ = topic.rstrip("/").rpartition("/")
    return f"{head}{sep}{name}" if sep else name


def depth_topics(depth_topic: str, transport: str) -> tuple[str, bool, str]:
    """(topic to subscribe, whether it carries compressedDepth, its CameraInfo topic) for
    the depth_topic and depth_transport parameters. A topic named .../compressedDepth is
    image_transport's compressed topic whatever the transport says: subscribing to it
    as a raw Image would match nothing."""
    base = depth_topic.rstrip("/")
    compressed = transport == "compressedDepth"
    if base.endswith("/compressedDepth"):
        base, compressed = base[: -len("/compressedDepth")], True
    return (f"{base}/compressedDepth" if compressed else base), compressed, sibling_topic(base, "camera_info")


def locate_in_depth(depth, stamp: float, poses, joint_names, keypoint_threshold: float,
                    colour_camera, size: tuple[int, int], tolerance: float, wait: float):
    """(BodyDepth or None, reason or None): ``poses`` of the frame stamped ``stamp`` and
    ``size`` (width, height) in metres from a runtime.depth.DepthStream. Only joints at
    or above ``keypoint_threshold`` are looked up: a joint the network did not see has
    no place to read depth at."""
    joints = len(joint_names)
    keypoints = np.asarray([p.keypoints for p in poses], np.float64).reshape(-1, joints, 2)
    seen = np.asarray([p.confidences >= keypoint_threshold for p in poses], bool).reshape(-1, joints)
    return depth.locate(stamp, keypoints, seen, colour_camera, size, tolerance, wait)


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def finite_poses(poses) -> bool:
    return all(math.isfinite(p.score) and np.isfinite(p.keypoints).all() for p in poses)

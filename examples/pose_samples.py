"""Synthetic HumanPoseArray messages and a plain-data view of any ROS message.

Shared by the talker/listener examples, `make demo` and the round-trip tests, so
that what is sent and what is expected are built by the same code.
"""
from __future__ import annotations

import math
from typing import Any

# A small sample layout (the MPII 16 joints); the node takes its layout from the
# model file, this module only needs something realistic to send.
SAMPLE_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder",
    "left_shoulder", "left_elbow", "left_wrist",
)
SAMPLE_BONES = (
    (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
)
FRAME_ID = "camera_color_optical_frame"
IMAGE_WIDTH, IMAGE_HEIGHT = 1280, 720


def make_pose_array(seq: int, people: int = 3):
    """The seq-th sample message: `people` people, every joint present.

    float32 fields get values that float32 holds exactly (multiples of 1/64 within
    range), float64 fields get arbitrary doubles, so a round trip must reproduce every
    value bit for bit. Some 3D positions are NaN (unknown), as the message allows.
    """
    from geometry_msgs.msg import Point
    from lapx_ros.msg import HumanPoseArray, Keypoint, PersonPose

    msg = HumanPoseArray()
    msg.header.stamp.sec = 1_700_000_000 + seq
    msg.header.stamp.nanosec = (123_456_789 * (seq + 1)) % 1_000_000_000
    msg.header.frame_id = FRAME_ID
    msg.image_width = IMAGE_WIDTH
    msg.image_height = IMAGE_HEIGHT
    msg.joint_names = list(SAMPLE_JOINTS)
    msg.skeleton_a = [a for a, _ in SAMPLE_BONES]
    msg.skeleton_b = [b for _, b in SAMPLE_BONES]
    for p in range(people):
        person = PersonPose()
        person.id = 10 * seq + p + 1
        person.score = (40 + 7 * p + seq % 5) / 64.0
        x0, y0 = 100.0 + 300.0 * p + seq, 80.0 + 5.0 * p
        person.x_min, person.y_min = x0, y0
        person.x_max, person.y_max = x0 + 180.5, y0 + 520.25
        for j, name in enumerate(SAMPLE_JOINTS):
            kp = Keypoint()
            kp.name = name
            kp.x = x0 + 90.0 + 40.0 * math.sin(0.7 * j + p) + seq / 3.0
            kp.y = y0 + 500.0 - 31.0 * j + math.cos(j + seq) / 7.0
            kp.confidence = ((j * 5 + p * 3 + seq) % 64) / 64.0
            if (j + p) % 4 == 0:
                kp.position = Point(x=float("nan"), y=float("nan"), z=float("nan"))
            else:
                kp.position = Point(x=(j - 8) / 10.0, y=(p - 1) / 3.0, z=2.0 + seq / 7.0 + j / 100.0)
            person.keypoints.append(kp)
        msg.people.append(person)
    return msg


def to_plain(msg: Any) -> Any:
    """A ROS message as nested dicts/lists of plain values (NaN becomes the string 'nan').

    Equal plain forms mean equal messages, NaN included, which `==` on messages misses.
    """
    if hasattr(msg, "get_fields_and_field_types"):
        return {name: to_plain(getattr(msg, name)) for name in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple)) or type(msg).__name__ == "array" or hasattr(msg, "tolist"):
        return [to_plain(v) for v in (msg.tolist() if hasattr(msg, "tolist") else msg)]
    if isinstance(msg, float) and math.isnan(msg):
        return "nan"
    return msg


def describe(msg: Any) -> str:
    """A few human-readable lines about one HumanPoseArray."""
    stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
    lines = [
        f"HumanPoseArray stamp={stamp} frame_id={msg.header.frame_id} "
        f"image={msg.image_width}x{msg.image_height} joints={len(msg.joint_names)} "
        f"bones={len(msg.skeleton_a)} people={len(msg.people)}"
    ]
    for person in msg.people:
        seen = sum(1 for k in person.keypoints if k.confidence >= 0.5)
        best = max(person.keypoints, key=lambda k: k.confidence, default=None)
        lines.append(
            f"  person id={person.id} score={person.score:.3f} "
            f"box=({person.x_min:.1f},{person.y_min:.1f})-({person.x_max:.1f},{person.y_max:.1f}) "
            f"keypoints={len(person.keypoints)} (confidence>=0.5: {seen})"
            + (f" best={best.name}@({best.x:.1f},{best.y:.1f}) c={best.confidence:.2f}" if best else "")
        )
    return "\n".join(lines)

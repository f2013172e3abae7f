"""Marker building, pose messages and person-box messages (ROS types, no DDS)."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
from lapx_ros.msg import HumanPoseArray, PersonPose
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from lapx_ros.layouts import MPII_16
from lapx_ros.ros.markers import MarkerBuilder, marker_points
from lapx_ros.ros.messages import boxes_from_msg, depth_topics, pose_array_msg, sibling_topic
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.depth import BodyDepth
from lapx_ros.runtime.estimator import Pose


def pose(track_id, offset=0.0, conf=0.9):
    kps = np.stack([np.linspace(100, 160, 16) + offset, np.linspace(50, 250, 16)], axis=1)
    confidences = np.full(16, conf, np.float32)
    confidences[3] = 0.05  # one joint not seen
    return Pose(kps, confidences, np.array([100.0 + offset, 50, 160 + offset, 250]), 0.8, track_id)


def header():
    return Header(frame_id="cam")


def test_the_flat_plane_puts_the_principal_point_on_the_axis():
    camera = PinholeCamera(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    flat = pose(1)
    flat.keypoints[:2] = [[320.0, 240.0], [820.0, 240.0]]
    ((xyz, shown),) = marker_points([flat], camera, 2.0, 0.2)
    assert xyz[:2].tolist() == [[0.0, 0.0, 2.0], [2.0, 0.0, 2.0]]
    assert shown.sum() == 15  # joint 3 not seen


def body_of(poses, z=1.5, unknown=()):
    """BodyDepth of ``poses`` with every joint at depth ``z`` but ``unknown`` ones."""
    camera = PinholeCamera.guess(640, 480)
    depths = np.full((len(poses), 16), z)
    for person, joint in unknown:
        depths[person, joint] = np.nan
    positions = np.stack([camera.back_project(p.keypoints, d) for p, d in zip(poses, depths)])
    return BodyDepth(depths, positions, positions[:, 6])


def test_markers_with_depth_are_drawn_where_the_joints_are():
    poses = [pose(1), pose(2, 200)]
    body = body_of(poses, 1.5, unknown=[(0, 0)] + [(1, j) for j in range(16)])
    markers = MarkerBuilder().build(header(), poses, MPII_16.skeleton, PinholeCamera.guess(640, 480),
                                    3.0, 0.2, 0.5, body.positions)
    by_key = {(m.ns, m.id): m for m in markers.markers}
    first, second = by_key[("joints", 1)], by_key[("joints", 2)]
    assert len(first.points) == 14  # joint 3 not seen, joint 0 without depth
    assert all(p.z == 1.5 for p in first.points) and first.scale.x == pytest.approx(0.015 * 1.5)
    xyz = [(p.x, p.y, p.z) for p in first.points]
    assert np.allclose(xyz, np.delete(body.positions[0], [0, 3], axis=0))
    assert len(by_key[("bones", 1)].points) == 2 * sum(1 for a, b in MPII_16.skeleton
                                                        if not {a, b} & {0, 3})
    assert all(p.z == 3.0 for p in second.points)  # no depth at all: the flat plane


def test_markers_per_person_and_deletes_for_people_who_left():
    builder = MarkerBuilder()
    k = PinholeCamera.guess(640, 480)
    first = builder.build(header(), [pose(1), pose(2, 200)], MPII_16.skeleton, k, 3.0, 0.2, 0.5)
    by_key = {(m.ns, m.id): m for m in first.markers}
    assert set(by_key) == {(ns, i) for ns in ("joints", "bones", "ids") for i in (1, 2)}
    joints = by_key[("joints", 1)]
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 15  # joint 3 not seen
    assert all(p.z == 3.0 for p in joints.points) and joints.header.frame_id == "cam"
    bones = by_key[("bones", 1)]
    assert bones.type == Marker.LINE_LIST and len(bones.points) % 2 == 0
    n_bones = sum(1 for a, b in MPII_16.skeleton if 3 not in (a, b))
    assert len(bones.points) == 2 * n_bones
    assert by_key[("ids", 2)].text == "2"
    assert joints.color != by_key[("joints", 2)].color  # coloured by id
    assert joints.lifetime.nanosec == 500_000_000
    second = builder.build(header(), [pose(2, 200)], MPII_16.skeleton, k, 3.0, 0.2, 0.5)
    deleted = {(m.ns, m.id) for m in second.markers if m.action == Marker.DELETE}
    assert deleted == {("joints", 1), ("bones", 1), ("ids", 1)}
    third = builder.build(header(), [pose(2, 200)], MPII_16.skeleton, k, 3.0, 0.2, 0.5)
    assert all(m.action == Marker.ADD for m in third.markers)


def test_pose_array_message_has_every_joint_and_msg_pixel_convention():
    msg = pose_array_msg(header(), [pose(7)], 640, 480, MPII_16.joint_names, MPII_16.skeleton)
    assert (msg.image_width, msg.image_height) == (640, 480)
    assert list(msg.joint_names) == list(MPII_16.joint_names)
    assert list(zip(msg.skeleton_a, msg.skeleton_b)) == list(MPII_16.skeleton)
    (person,) = msg.people
    assert person.id == 7 and len(person.keypoints) == 16
    assert person.keypoints[0].x == pytest.approx(100.5)  # pixel centres at +0.5
    assert person.keypoints[3].confidence == pytest.approx(0.05)
    assert math.isnan(person.keypoints[0].position.z)
    assert all(math.isnan(v) for v in (person.position.x, person.position.y, person.position.z))
    assert person.x_min == pytest.approx(100.5)


def test_pose_array_message_carries_the_measured_positions():
    poses = [pose(7), pose(8, 200)]
    body = body_of(poses, 2.5, unknown=[(0, 4), (1, 9)])
    body.centres[1] = np.nan
    msg = pose_array_msg(header(), poses, 640, 480, MPII_16.joint_names, MPII_16.skeleton, body)
    for person, xyz, centre in zip(msg.people, body.positions, body.centres):
        got = np.array([(k.position.x, k.position.y, k.position.z) for k in person.keypoints])
        assert np.array_equal(got, xyz, equal_nan=True)
        assert np.array_equal([person.position.x, person.position.y, person.position.z], centre,
                              equal_nan=True)
    assert math.isnan(msg.people[0].keypoints[4].position.x) and msg.people[0].position.z == 2.5


def test_boxes_from_our_own_message_type():
    msg = HumanPoseArray()
    msg.people = [PersonPose(score=0.7, x_min=10.5, y_min=20.5, x_max=50.5, y_max=120.5)]
    boxes, scores = boxes_from_msg(msg)
    assert boxes.tolist() == [[10.0, 20.0, 50.0, 120.0]] and scores.tolist() == pytest.approx([0.7])
    boxes, scores = boxes_from_msg(HumanPoseArray())
    assert boxes.shape == (0, 4)


def test_boxes_from_detection2d_shaped_messages():
    def det(cls, score, cx, cy, w, h):
        hyp = SimpleNamespace(hypothesis=SimpleNamespace(class_id=cls, score=score))
        bbox = SimpleNamespace(center=SimpleNamespace(position=SimpleNamespace(x=cx, y=cy)),
                               size_x=w, size_y=h)
        return SimpleNamespace(results=[hyp], bbox=bbox)

    msg = SimpleNamespace(detections=[det("person", 0.9, 100.5, 100.5, 40, 80),
                                      det("car", 0.99, 300, 300, 10, 10)])
    boxes, scores = boxes_from_msg(msg)
    assert boxes.tolist() == [[80.0, 60.0, 120.0, 140.0]] and scores.tolist() == [0.9]


@pytest.mark.parametrize("topic, expected", [
    ("camera/image_raw", "camera/camera_info"), ("/cam/left/image", "/cam/left/camera_info"),
    ("/image_raw", "/camera_info"), ("image_raw", "camera_info"),
])
def test_sibling_topic(topic, expected):
    assert sibling_topic(topic, "camera_info") == expected


@pytest.mark.parametrize("topic, transport, expected", [
    ("camera/aligned_depth_to_color/image_raw", "raw",
     ("camera/aligned_depth_to_color/image_raw", False, "camera/aligned_depth_to_color/camera_info")),
    ("/cam/depth/image_raw", "compressedDepth",
     ("/cam/depth/image_raw/compressedDepth", True, "/cam/depth/camera_info")),
    ("/cam/depth/image_raw/compressedDepth", "raw",
     ("/cam/depth/image_raw/compressedDepth", True, "/cam/depth/camera_info")),
])
def test_depth_topics(topic, transport, expected):
    assert depth_topics(topic, transport) == expected


def test_warnings_are_rate_limited_per_kind_with_a_count():
    import time

    from lapx_ros.runtime.throttle import WarningThrottle

    said = []
    throttle = WarningThrottle(SimpleNamespace(warning=said.append), period=0.2)
    for _ in range(5):
        throttle.warn("image", "bad frame")
    throttle.warn("stamp", "old stamp")
    time.sleep(0.25)
    throttle.warn("image", "bad frame")
    assert said == ["bad frame", "old stamp", "bad frame (and 4 more since last report)"]

"""The generated messages import and have exactly the documented fields and types."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# name -> rosidl type string, in declaration order (the .msg files are the spec)
EXPECTED = {
    "Keypoint": {
        "name": "string",
        "x": "double",
        "y": "double",
        "confidence": "float",
        "position": "geometry_msgs/Point",
    },
    "PersonPose": {
        "id": "uint32",
        "score": "float",
        "x_min": "float",
        "y_min": "float",
        "x_max": "float",
        "y_max": "float",
        "keypoints": "sequence<lapx_ros/Keypoint>",
        "position": "geometry_msgs/Point",
    },
    "HumanPoseArray": {
        "header": "std_msgs/Header",
        "image_width": "uint32",
        "image_height": "uint32",
        "joint_names": "sequence<string>",
        "skeleton_a": "sequence<uint16>",
        "skeleton_b": "sequence<uint16>",
        "people": "sequence<lapx_ros/PersonPose>",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fields_and_types(name):
    import lapx_ros.msg

    cls = getattr(lapx_ros.msg, name)
    fields = cls.get_fields_and_field_types()
    assert list(fields.items()) == list(EXPECTED[name].items())


def test_msg_files_are_the_interfaces():
    """Every msg/*.msg is generated, and nothing else."""
    import lapx_ros.msg

    files = sorted(p.stem for p in (REPO / "msg").glob("*.msg"))
    assert files == sorted(EXPECTED)
    for name in files:
        assert hasattr(lapx_ros.msg, name)


def test_values_hold_and_types_are_enforced():
    from geometry_msgs.msg import Point
    from lapx_ros.msg import HumanPoseArray, Keypoint, PersonPose

    kp = Keypoint(name="head_top", x=12.25, y=480.5, confidence=0.75,
                  position=Point(x=math.nan, y=math.nan, z=math.nan))
    assert kp.name == "head_top" and (kp.x, kp.y, kp.confidence) == (12.25, 480.5, 0.75)
    assert all(math.isnan(v) for v in (kp.position.x, kp.position.y, kp.position.z))

    person = PersonPose(id=7, score=0.5, x_min=1.0, y_min=2.0, x_max=3.0, y_max=4.0,
                        keypoints=[kp, Keypoint(name="pelvis")])
    assert [k.name for k in person.keypoints] == ["head_top", "pelvis"]

    arr = HumanPoseArray(image_width=640, image_height=480, joint_names=["head_top", "pelvis"],
                         skeleton_a=[0], skeleton_b=[1], people=[person])
    arr.header.frame_id = "camera_optical_frame"
    arr.header.stamp.sec, arr.header.stamp.nanosec = 12, 34
    assert list(arr.skeleton_a) == [0] and list(arr.skeleton_b) == [1]
    assert arr.people[0].id == 7

    # field checks (on when ROS_PYTHON_CHECK_FIELDS=1 or check_fields=True)
    with pytest.raises(AssertionError):
        PersonPose(id=-1, check_fields=True)  # uint32: no negative ids
    with pytest.raises((AssertionError, OverflowError)):
        HumanPoseArray(skeleton_a=[70000], check_fields=True)  # uint16 indices
    with pytest.raises(AssertionError):
        Keypoint(x="12", check_fields=True)


def test_serialization_round_trip():
    from rclpy.serialization import deserialize_message, serialize_message

    from lapx_ros.msg import HumanPoseArray
    from pose_samples import make_pose_array, to_plain

    msg = make_pose_array(3, people=4)
    back = deserialize_message(serialize_message(msg), HumanPoseArray)
    assert to_plain(back) == to_plain(msg)


def test_messages_import_outside_the_source_tree(tmp_path):
    """From a folder without the sources: the installed lapx_ros and its messages."""
    code = (
        "import rclpy, lapx_ros\n"
        "from lapx_ros.msg import HumanPoseArray, PersonPose, Keypoint\n"
        "print(lapx_ros.__path__[0])\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p and Path(p).resolve() != REPO
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not Path(out.stdout.strip()).is_relative_to(REPO / "lapx_ros")

"""PCKh@0.5 and PCK@0.2-torso on hand-computed cases."""
import numpy as np

from lapx_ros.layouts import MPII_16
from lapx_ros.metrics import LIMB_JOINTS, pck_torso, pckh


def person(neck=(50.0, 10.0), head=(50.0, 0.0)):
    labels = np.zeros((16, 3))
    labels[:, 2] = 1
    labels[:, 0] = np.arange(16) * 10.0
    labels[:, 1] = 50.0
    labels[MPII_16.index("upper_neck"), :2] = neck
    labels[MPII_16.index("head_top"), :2] = head
    labels[MPII_16.index("left_shoulder"), :2] = (0.0, 0.0)
    labels[MPII_16.index("right_hip"), :2] = (30.0, 40.0)   # torso length 50
    return labels


def test_pckh_threshold_is_half_the_head_segment():
    labels = person()[None]                   # head segment 10 px -> threshold 5 px
    pred = labels[..., :2].copy()
    pred[0, LIMB_JOINTS[0], 0] += 4.9         # correct
    pred[0, LIMB_JOINTS[1], 0] += 5.1         # wrong
    result = pckh(pred, labels)
    assert result.scored_joints == 12 and result.scored_images == 1
    assert np.isclose(result.accuracy, 11 / 12)
    assert result.per_joint[MPII_16.joint_names[LIMB_JOINTS[1]]] == 0.0


def test_invisible_joints_and_images_without_head_are_not_scored():
    a, b = person()[None], person()[None]
    a[0, LIMB_JOINTS[0], 2] = 0
    b[0, MPII_16.index("head_top"), 2] = 0
    labels = np.concatenate([a, b])
    pred = labels[..., :2].copy()
    result = pckh(pred, labels)
    assert result.scored_images == 1 and result.scored_joints == 11
    assert result.accuracy == 1.0


def test_missing_person_counts_as_wrong():
    labels = np.concatenate([person()[None], person()[None]])
    pred = labels[..., :2].copy()
    pred[1] = np.nan
    assert np.isclose(pckh(pred, labels).accuracy, 0.5)


def test_pck_torso_threshold():
    labels = person()[None]                   # torso 50 px -> threshold 10 px
    pred = labels[..., :2].copy()
    pred[0, LIMB_JOINTS, 1] += 9.0
    assert pck_torso(pred, labels).accuracy == 1.0
    pred[0, LIMB_JOINTS, 1] += 2.0
    assert pck_torso(pred, labels).accuracy == 0.0

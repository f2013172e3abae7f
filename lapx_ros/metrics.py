"""PCKh@0.5 and PCK@0.2-torso on LSP-style labels, as the project's dashboard defines them.

Scored on the 12 limb joints, only on joints labelled visible. PCKh uses only images whose
neck and head top are visible; a joint is correct within 0.5 x the neck-head top
distance. PCK-torso uses images whose left shoulder and right hip are visible, with
0.2 x their distance. A person the system did not return (NaN keypoints) counts as wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.layouts import MPII_16

LIMB_JOINTS = tuple(MPII_16.index(n) for n in (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"))
_NECK, _HEAD = MPII_16.index("upper_neck"), MPII_16.index("head_top")
_LSHOULDER, _RHIP = MPII_16.index("left_shoulder"), MPII_16.index("right_hip")


@dataclass(frozen=True)
class PckResult:
    accuracy: float                       # fraction of scored joints that were correct
    per_joint: dict[str, float]           # joint name -> accuracy (NaN when never scored)
    scored_joints: int
    scored_images: int


def pck(pred: np.ndarray, labels: np.ndarray, ref_a: int, ref_b: int, factor: float,
        joints=LIMB_JOINTS) -> PckResult:
    """PCK of predictions (N, 16, 2) against labels (N, 16, 3) in MPII order.

    The threshold of each image is ``factor`` x the distance between its labelled joints
    ``ref_a`` and ``ref_b``; images where either is not visible are left out.
    """
    pred = np.asarray(pred, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    usable = (labels[:, ref_a, 2] > 0) & (labels[:, ref_b, 2] > 0)
    ref = np.linalg.norm(labels[:, ref_a, :2] - labels[:, ref_b, :2], axis=1)
    joints = list(joints)
    dist = np.linalg.norm(pred[:, joints, :2] - labels[:, joints, :2], axis=2)
    correct = np.nan_to_num(dist, nan=np.inf) <= factor * ref[:, None]
    scored = (labels[:, joints, 2] > 0) & usable[:, None]
    per_joint = {}
    for col, j in enumerate(joints):
        n = scored[:, col].sum()
        per_joint[MPII_16.joint_names[j]] = float(correct[:, col][scored[:, col]].mean()) if n else float("nan")
    total = int(scored.sum())
    return PckResult(float(correct[scored].mean()) if total else float("nan"), per_joint,
                     total, int(usable.sum()))


def pckh(pred, labels, factor: float = 0.5) -> PckResult:
    return pck(pred, labels, _NECK, _HEAD, factor)


def pck_torso(pred, labels, factor: float = 0.2) -> PckResult:
    return pck(pred, labels, _LSHOULDER, _RHIP, factor)


# The usual MPII PCKh mean leaves out pelvis and thorax.
MPII_PCKH_JOINTS = tuple(j for j in range(MPII_16.num_joints)
                         if MPII_16.joint_names[j] not in ("pelvis", "thorax"))


def mpii_pckh(pred, labels, factor: float = 0.5) -> PckResult:
    """MPII PCKh over 14 joints, with the neck-head top distance as the head size.

    MPII's official tool uses 0.6 x the diagonal of each person's annotated head box,
    which the common JSON annotations do not carry; the labelled neck-head top segment
    stands in for it (as on LSP), so figures are close to but not the official ones.
    """
    return pck(pred, labels, _NECK, _HEAD, factor, joints=MPII_PCKH_JOINTS)


# COCO's per-keypoint OKS constants (sigmas), in COCO-17 order.
COCO_OKS_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                            1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0
# COCO-17's 12 limb joints (shoulders to ankles), the joints an MPII-16 model shares with it.
COCO_LIMB_JOINTS = tuple(range(5, 17))


def oks_pck(pred: np.ndarray, labels: np.ndarray, areas: np.ndarray, threshold: float = 0.5,
            joints=COCO_LIMB_JOINTS) -> tuple[float, np.ndarray, int]:
    """OKS-PCK: the fraction of labelled joints whose own keypoint similarity,
    exp(-d^2 / (2 * area * (2 sigma)^2)) as in COCO's OKS, reaches ``threshold``.

    ``pred`` (N, 17, 2) and ``labels`` (N, 17, 3) in COCO-17 order, ``areas`` (N,) the
    people's segment areas; a missing prediction (NaN) is wrong. Returns the accuracy,
    the per-joint accuracies (len(joints),) and the number of joints scored.
    """
    joints = list(joints)
    pred = np.asarray(pred, dtype=np.float64)[:, joints, :2]
    labels = np.asarray(labels, dtype=np.float64)[:, joints]
    d2 = ((pred - labels[..., :2]) ** 2).sum(-1)
    k2 = (2 * COCO_OKS_SIGMAS[joints]) ** 2
    similarity = np.exp(-d2 / (2 * np.asarray(areas, dtype=np.float64)[:, None] * k2[None]))
    correct = np.nan_to_num(similarity, nan=0.0) >= threshold
    scored = labels[..., 2] > 0
    per_joint = np.array([correct[scored[:, j], j].mean() if scored[:, j].any() else np.nan
                          for j in range(len(joints))])
    total = int(scored.sum())
    return (float(correct[scored].mean()) if total else float("nan")), per_joint, total

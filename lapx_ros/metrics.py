"""PCKh@0.5 and PCK@0.2-torso on LSP-style labels, as the project's dashboard defines them,
and COCO's per-keypoint OKS scores.

Scored on the 12 limb joints, only on joints labelled visible. PCKh uses only images whose
head-size joints (neck and head top) are visible; a joint is correct within 0.5 x their
distance. PCK-torso uses images whose left shoulder and right hip are visible, with
0.2 x their distance. A person the system did not return (NaN keypoints) counts as wrong.
Labels and predictions are in one layout (``lapx_ros.layouts.convert_joints`` moves
predictions into the labels' layout).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lapx_ros.layouts import COCO_17, MPII_16, JointLayout

LIMB_JOINTS = MPII_16.limb_joints


@dataclass(frozen=True)
class PckResult:
    accuracy: float                       # fraction of scored joints that were correct
    per_joint: dict[str, float]           # joint name -> accuracy (NaN when never scored)
    scored_joints: int
    scored_images: int


def pck(pred: np.ndarray, labels: np.ndarray, ref_a: int, ref_b: int, factor: float,
        joints=LIMB_JOINTS, layout: JointLayout = MPII_16) -> PckResult:
    """PCK of predictions (N, K, 2) against labels (N, K, 3) of ``layout``.

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
        per_joint[layout.joint_names[j]] = float(correct[:, col][scored[:, col]].mean()) if n else float("nan")
    total = int(scored.sum())
    return PckResult(float(correct[scored].mean()) if total else float("nan"), per_joint,
                     total, int(usable.sum()))


def pckh(pred, labels, factor: float = 0.5, layout: JointLayout = MPII_16) -> PckResult:
    """PCKh of the limb joints, with ``layout``'s head-size segment."""
    if layout.head_size is None or not layout.limb_joints:
        raise ValueError(f"PCKh needs labels with a head size and limb joints; {layout.name} lacks them")
    neck, head = layout.indices(layout.head_size)
    return pck(pred, labels, neck, head, factor, layout.limb_joints, layout)


def pck_torso(pred, labels, factor: float = 0.2, layout: JointLayout = MPII_16) -> PckResult:
    names = layout.common_names
    return pck(pred, labels, names.index("left_shoulder"), names.index("right_hip"), factor,
               layout.limb_joints, layout)


# The usual MPII PCKh mean leaves out pelvis and thorax.
MPII_PCKH_JOINTS = tuple(j for j in range(MPII_16.num_joints)
                         if MPII_16.joint_names[j] not in ("pelvis", "thorax"))


def mpii_pckh(pred, labels, factor: float = 0.5) -> PckResult:
    """MPII PCKh over 14 joints, with the neck-head top distance as the head size.

    MPII's official tool uses 0.6 x the diagonal of each person's annotated head box,
    which the common JSON annotations do not carry; the labelled neck-head top segment
    stands in for it (as on LSP), so figures are close to but not the official ones.
    """
    neck, head = MPII_16.indices(MPII_16.head_size)
    return pck(pred, labels, neck, head, factor, joints=MPII_PCKH_JOINTS)


COCO_OKS_SIGMAS = COCO_17.sigmas()
COCO_LIMB_JOINTS = COCO_17.limb_joints


def keypoint_similarity(pred: np.ndarray, labels: np.ndarray, areas: np.ndarray,
                        sigmas: np.ndarray) -> np.ndarray:
    """Per-keypoint OKS, exp(-d^2 / (2 * area * (2 sigma)^2)) as in COCO's OKS: (N, K);
    0 where the prediction is missing (NaN)."""
    d2 = ((np.asarray(pred, dtype=np.float64)[..., :2] - np.asarray(labels, dtype=np.float64)[..., :2]) ** 2).sum(-1)
    k2 = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2
    similarity = np.exp(-d2 / (2 * np.asarray(areas, dtype=np.float64)[:, None] * k2[None]))
    return np.nan_to_num(similarity, nan=0.0)


def oks_pck(pred: np.ndarray, labels: np.ndarray, areas: np.ndarray, threshold: float = 0.5,
            joints=COCO_LIMB_JOINTS) -> tuple[float, np.ndarray, int]:
    """OKS-PCK: the fraction of labelled joints whose own keypoint similarity reaches
    ``threshold``.

    ``pred`` (N, 17, 2) and ``labels`` (N, 17, 3) in COCO-17 order, ``areas`` (N,) the
    people's areas; a missing prediction (NaN) is wrong. Returns the accuracy,
    the per-joint accuracies (len(joints),) and the number of joints scored.
    """
    joints = list(joints)
    labels = np.asarray(labels, dtype=np.float64)[:, joints]
    correct = keypoint_similarity(np.asarray(pred)[:, joints], labels, areas, COCO_OKS_SIGMAS[joints]) >= threshold
    scored = labels[..., 2] > 0
    per_joint = np.array([correct[scored[:, j], j].mean() if scored[:, j].any() else np.nan
                          for j in range(len(joints))])
    total = int(scored.sum())
    return (float(correct[scored].mean()) if total else float("nan")), per_joint, total


def median_relative_error(pred: np.ndarray, labels: np.ndarray, areas: np.ndarray,
                          joints=COCO_LIMB_JOINTS) -> float:
    """Median over labelled ``joints`` of pixel error / sqrt(area); a missing prediction is
    an infinite error."""
    joints = list(joints)
    labels = np.asarray(labels, dtype=np.float64)[:, joints]
    d = np.linalg.norm(np.asarray(pred, dtype=np.float64)[:, joints, :2] - labels[..., :2], axis=-1)
    d = np.nan_to_num(d, nan=np.inf) / np.sqrt(np.asarray(areas, dtype=np.float64))[:, None]
    scored = labels[..., 2] > 0
    return float(np.median(d[scored])) if scored.any() else float("nan")

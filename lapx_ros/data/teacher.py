"""MediaPipe Pose landmarks of the LSPET images as a second training target (distillation).

The landmarks file (``mediapipe_heavy_landmarks.npz`` beside the LSPET data) holds
BlazePose's 33 landmarks per image. Its 12 limb joints (and the pelvis and thorax derived
from them as the labels derive theirs) become MPII-16 joints; BlazePose has no upper neck
or head top, so those two never carry a teacher target.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from lapx_ros.data.lsp import PoseRecord
from lapx_ros.layouts import MPII_16

# MPII-16 joint -> BlazePose landmark index.
BLAZEPOSE_OF_MPII = {
    "right_ankle": 28, "right_knee": 26, "right_hip": 24, "left_hip": 23, "left_knee": 25,
    "left_ankle": 27, "right_wrist": 16, "right_elbow": 14, "right_shoulder": 12,
    "left_shoulder": 11, "left_elbow": 13, "left_wrist": 15,
}
DERIVED = {"pelvis": ("right_hip", "left_hip"), "thorax": ("right_shoulder", "left_shoulder")}


def load_teacher_joints(landmarks_file, min_visibility: float = 0.5) -> dict[int, np.ndarray]:
    """{image index (1-based): MPII-16 joints (16, 3) = x, y, weight} for the images the
    teacher found a person in; a landmark below ``min_visibility`` gets weight 0."""
    data = np.load(landmarks_file)
    landmarks, found, indices = data["landmarks"], data["found"], data["image_index"]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (33, 4):
        raise ValueError(f"{landmarks_file}: landmarks must be (N, 33, 4), got {landmarks.shape}")
    teacher = {}
    for marks, ok, index in zip(landmarks, found, indices):
        if not ok:
            continue
        joints = np.zeros((MPII_16.num_joints, 3))
        for name, landmark in BLAZEPOSE_OF_MPII.items():
            x, y, _, visibility = marks[landmark]
            joints[MPII_16.index(name)] = (x, y, float(visibility >= min_visibility))
        for name, (a, b) in DERIVED.items():
            ja, jb = joints[MPII_16.index(a)], joints[MPII_16.index(b)]
            joints[MPII_16.index(name)] = (*(ja[:2] + jb[:2]) / 2, min(ja[2], jb[2]))
        if np.isfinite(joints).all():
            teacher[int(index)] = joints
    return teacher


def attach_teacher(records: list[PoseRecord], first_index: int, teacher: dict[int, np.ndarray]):
    """``records`` of images first_index, first_index + 1, ... with their teacher joints;
    an image the teacher missed gets all-zero weights, so every sample has a target."""
    empty = np.zeros((MPII_16.num_joints, 3))
    return [dataclasses.replace(r, teacher=teacher.get(first_index + i, empty))
            for i, r in enumerate(records)]

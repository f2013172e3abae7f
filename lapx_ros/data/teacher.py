"""MediaPipe Pose landmarks of the LSPET images as a second training target (distillation).

The landmarks file (``mediapipe_heavy_landmarks.npz`` beside the LSPET data) holds
BlazePose's 33 landmarks per image; they become the joints of the training layout by name
(``blazepose_joints``): limbs and, for COCO-17, face points as they are, MPII's pelvis and
thorax derived as the labels derive theirs; BlazePose has no upper neck or head top, so
those never carry a teacher target.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from lapx_ros.data.lsp import PoseRecord
from lapx_ros.layouts import BLAZEPOSE_33, MPII_16, JointLayout, convert_joints


def blazepose_joints(landmarks: np.ndarray, layout: JointLayout = MPII_16,
                     min_visibility: float = 0.5) -> np.ndarray:
    """BlazePose landmarks (..., 33, 4) = x, y, z, visibility -> (..., K, 3) = x, y, weight
    in ``layout``; weight 1 where the landmark's visibility reaches ``min_visibility``, 0 for
    joints BlazePose lacks and for missing (NaN) landmarks, whose x, y become 0."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape[-2:] != (BLAZEPOSE_33.num_joints, 4):
        raise ValueError(f"landmarks must be (..., 33, 4), got {landmarks.shape}")
    ok = np.isfinite(landmarks[..., :2]).all(-1) & (np.nan_to_num(landmarks[..., 3]) >= min_visibility)
    marks = np.concatenate([np.nan_to_num(landmarks[..., :2]), ok[..., None]], axis=-1)
    return convert_joints(marks, BLAZEPOSE_33, layout)


def load_teacher_joints(landmarks_file, min_visibility: float = 0.5,
                        layout: JointLayout = MPII_16) -> dict[int, np.ndarray]:
    """{image index (1-based): joints (K, 3) = x, y, weight} in ``layout`` for the images the
    teacher found a person in; a landmark below ``min_visibility`` gets weight 0."""
    data = np.load(landmarks_file)
    landmarks, found, indices = data["landmarks"], data["found"], data["image_index"]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (33, 4):
        raise ValueError(f"{landmarks_file}: landmarks must be (N, 33, 4), got {landmarks.shape}")
    joints = blazepose_joints(landmarks, layout, min_visibility)
    return {int(index): person for person, ok, index in zip(joints, found, indices) if ok}


def attach_teacher(records: list[PoseRecord], first_index: int, teacher: dict[int, np.ndarray]):
    """``records`` of images first_index, first_index + 1, ... with their teacher joints;
    an image the teacher missed gets all-zero weights, so every sample has a target."""
    empty = np.zeros_like(records[0].joints) if records else None
    return [dataclasses.replace(r, teacher=teacher.get(first_index + i, empty))
            for i, r in enumerate(records)]

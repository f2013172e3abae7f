"""Training-time crops and augmentation for top-down pose estimation (numpy + OpenCV).

A sample is cropped around the person's labelled joints with random scale, rotation,
flip, half-body and colour jitter; now and then the crop is the whole image instead, so
that the network also learns the first, whole-frame pass of two-pass inference.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lapx_ros.geometry import apply_affine, box_to_center_size, crop_transform, keypoints_to_box, warp_crop
from lapx_ros.heatmaps import encode, to_heatmap_coords
from lapx_ros.layouts import JointLayout
from lapx_ros.topdown import whole_frame_region


@dataclass(frozen=True)
class AugmentConfig:
    scale_sigma: float = 0.25        # crop size jitter, relative (clipped to +-1.4 sigma)
    rotation_sigma: float = 30.0     # degrees (clipped to +-2 sigma)
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.1
    whole_image_prob: float = 0.2    # crop the whole image, as the first inference pass does
    color_jitter: float = 0.3
    center_shift: float = 0.08       # of the crop size


NO_AUGMENT = AugmentConfig(scale_sigma=0, rotation_sigma=0, rotation_prob=0, flip_prob=0,
                           half_body_prob=0, whole_image_prob=0, color_jitter=0, center_shift=0)


class TopDownTransform:
    """Turns (image, joints) into (crop, heatmap targets, joint weights)."""

    def __init__(self, layout: JointLayout, input_size, heatmap_stride: int = 4,
                 sigma: float = 2.0, augment: AugmentConfig = NO_AUGMENT):
        self.layout = layout
        self.input_w, self.input_h = int(input_size[0]), int(input_size[1])
        self.stride = heatmap_stride
        self.sigma = sigma
        self.augment = augment
        self.flip_perm = layout.flip_permutation()
        self._upper = np.array([("hip" not in n and "knee" not in n and "ankle" not in n
                                 and n != "pelvis") for n in layout.joint_names])

    @property
    def aspect_ratio(self) -> float:
        return self.input_w / self.input_h

    def region(self, image_shape, joints: np.ndarray, rng: np.random.Generator, box=None):
        """Centre, size and rotation of the crop for one sample.

        Around the labelled ``box`` when there is one (a few visible joints of a COCO
        person span far less than the person), else around the visible joints.
        """
        aug = self.augment
        visible = joints[:, 2] > 0
        if rng.random() < aug.whole_image_prob or not visible.any():
            center, size, rotation = whole_frame_region(image_shape, self.aspect_ratio)
            return center, size * (1 + 0.1 * rng.uniform(-1, 1)), rotation
        if rng.random() < aug.half_body_prob:
            part = self._upper if rng.random() < 0.5 else ~self._upper
            if (visible & part).sum() >= 3:
                visible, box = visible & part, None
        if box is None:
            box = keypoints_to_box(joints[:, :2], visible)
        center, size = box_to_center_size(box, self.aspect_ratio)
        if aug.scale_sigma:
            size = size * np.clip(1 + rng.normal() * aug.scale_sigma, 1 - 1.4 * aug.scale_sigma,
                                  1 + 1.4 * aug.scale_sigma)
        if aug.center_shift:
            center = center + rng.uniform(-1, 1, 2) * aug.center_shift * size
        rotation = 0.0
        if aug.rotation_prob and rng.random() < aug.rotation_prob:
            rotation = float(np.clip(rng.normal() * aug.rotation_sigma, -2 * aug.rotation_sigma,
                                     2 * aug.rotation_sigma))
        return center, size, rotation

    def __call__(self, image_rgb: np.ndarray, joints: np.ndarray, rng: np.random.Generator, box=None,
                 teacher: np.ndarray | None = None):
        """(crop, targets, weights), and the ``teacher`` joints' targets and weights after
        them when given: both sets of joints go through the same crop and flip."""
        center, size, rotation = self.region(image_rgb.shape, joints, rng, box)
        matrix = crop_transform(center, size, (self.input_w, self.input_h), rotation)
        crop = warp_crop(image_rgb, matrix, (self.input_w, self.input_h))
        flip = rng.random() < self.augment.flip_prob
        if flip:
            crop = crop[:, ::-1]
        if self.augment.color_jitter:
            crop = color_jitter(crop, self.augment.color_jitter, rng)
        encoded = self._encode(joints, matrix, flip)
        if teacher is not None:
            encoded += self._encode(teacher, matrix, flip)
        return (np.ascontiguousarray(crop),) + encoded

    def _encode(self, joints: np.ndarray, matrix: np.ndarray, flip: bool):
        """Heatmap targets and weights of ``joints`` (K, 3) in the crop ``matrix`` makes."""
        points = apply_affine(joints[:, :2], matrix)
        weights = (joints[:, 2] > 0).astype(np.float32)
        if flip:
            points[:, 0] = self.input_w - 1 - points[:, 0]
            points, weights = points[self.flip_perm], weights[self.flip_perm]
        heatmap_size = (self.input_w // self.stride, self.input_h // self.stride)
        return encode(to_heatmap_coords(points, self.stride), weights, heatmap_size, self.sigma)


def color_jitter(crop: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each within +-strength."""
    img = crop.astype(np.float32)
    brightness, contrast, saturation = 1 + rng.uniform(-strength, strength, 3)
    gray = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    img = img * brightness
    img = (img - gray.mean() * brightness) * contrast + gray.mean() * brightness
    gray = (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    img = (img - gray) * saturation + gray
    return np.clip(img, 0, 255).astype(np.uint8)


def normalize(crops_rgb: np.ndarray, mean, std) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB crops -> float32 (N, 3, H, W) network input."""
    x = crops_rgb.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def read_rgb(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

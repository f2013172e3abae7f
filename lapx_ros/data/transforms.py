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
    neighbour_prob: float = 0.0      # paste another person beside or behind the centred one
    neighbour_behind: float = 0.5    # share of the pasted people put behind the centred one


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

    def region(self, image_shape, joints: np.ndarray, rng: np.random.Generator, box=None,
               whole_image: bool = True):
        """Centre, size and rotation of the crop for one sample.

        Around the labelled ``box`` when there is one (a few visible joints of a COCO
        person span far less than the person), else around the visible joints. Now and
        then the whole image, unless ``whole_image`` is false (images of several people).
        """
        return self._region(image_shape, joints, rng, box, whole_image)[:3]

    def _region(self, image_shape, joints, rng, box, whole_image):
        """region() and whether it is the whole image."""
        aug = self.augment
        visible = joints[:, 2] > 0
        if (rng.random() < aug.whole_image_prob and whole_image) or not visible.any():
            center, size, rotation = whole_frame_region(image_shape, self.aspect_ratio)
            return center, size * (1 + 0.1 * rng.uniform(-1, 1)), rotation, True
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
        return center, size, rotation, False

    def __call__(self, image_rgb: np.ndarray, joints: np.ndarray, rng: np.random.Generator, box=None,
                 teacher: np.ndarray | None = None, whole_image: bool = True, neighbour=None):
        """(crop, targets, weights), and the ``teacher`` joints' targets and weights after
        them when given: both sets of joints go through the same crop and flip.

        ``neighbour`` = (image, joints (K, 3)) of another person, pasted into a person crop
        beside or behind this one (never into a whole-image sample); the targets stay
        this person's."""
        center, size, rotation, whole = self._region(image_rgb.shape, joints, rng, box, whole_image)
        matrix = crop_transform(center, size, (self.input_w, self.input_h), rotation)
        crop = warp_crop(image_rgb, matrix, (self.input_w, self.input_h))
        if neighbour is not None and not whole:
            behind = rng.random() < self.augment.neighbour_behind
            crop = paste_neighbour(crop, apply_affine(joints[:, :2], matrix), joints[:, 2] > 0,
                                   *neighbour, self.layout, rng, behind)
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


def person_mask(points: np.ndarray, visible: np.ndarray, layout: JointLayout, shape,
                thickness: float) -> np.ndarray:
    """A soft float32 mask (H, W) of a person drawn from its joints: a thick stroke along
    each bone whose two joints are visible, the torso filled, a disc for the head."""
    mask = np.zeros(shape[:2], np.uint8)
    t = max(int(round(thickness)), 1)
    pts = np.round(points).astype(np.int32)
    for a, b in layout.skeleton:
        if visible[a] and visible[b]:
            cv2.line(mask, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1, t)
    names = layout.joint_names
    torso = [names.index(n) for n in ("right_shoulder", "left_shoulder", "left_hip", "right_hip") if n in names]
    if len(torso) == 4 and visible[torso].all():
        cv2.fillConvexPoly(mask, cv2.convexHull(pts[torso]), 1)
    if "head_top" in names and "upper_neck" in names:
        head, neck = names.index("head_top"), names.index("upper_neck")
        if visible[head] and visible[neck]:
            centre = (points[head] + points[neck]) / 2
            radius = max(int(0.6 * np.linalg.norm(points[head] - points[neck])), t // 2, 1)
            cv2.circle(mask, tuple(int(v) for v in np.round(centre)), radius, 1, -1)
    soft = mask.astype(np.float32)
    k = 2 * max(t // 3, 1) + 1
    return cv2.GaussianBlur(soft, (k, k), 0)


def paste_neighbour(crop: np.ndarray, points: np.ndarray, visible: np.ndarray, image: np.ndarray,
                    joints: np.ndarray, layout: JointLayout, rng: np.random.Generator,
                    behind: bool) -> np.ndarray:
    """``crop`` with another person (``image``, ``joints`` (K, 3) of that image) pasted in.

    The other person is scaled to 0.8-1.2 times this one's extent (``points`` in crop
    pixels, ``visible``), placed to its left or right, sometimes mirrored, and cut out
    by a mask drawn from its skeleton. ``behind``: closer to the centre, but this
    person's own mask stays on top, so the neighbour is occluded by it; otherwise it is
    beside, farther out, and drawn over whatever it overlaps."""
    h, w = crop.shape[:2]
    other_visible = joints[:, 2] > 0
    other_box = keypoints_to_box(joints[:, :2], other_visible)
    own_box = keypoints_to_box(points, visible)
    if other_box is None or own_box is None or other_visible.sum() < 4:
        return crop
    own_extent = max(own_box[2] - own_box[0], own_box[3] - own_box[1], 8.0)
    other_extent = max(other_box[2] - other_box[0], other_box[3] - other_box[1], 1.0)
    scale = own_extent / other_extent * rng.uniform(0.8, 1.2)
    side = 1.0 if rng.random() < 0.5 else -1.0
    reach = rng.uniform(0.15, 0.45) if behind else rng.uniform(0.4, 0.8)
    target = np.array([(own_box[0] + own_box[2]) / 2 + side * reach * own_extent,
                       (own_box[1] + own_box[3]) / 2 + rng.uniform(-0.12, 0.12) * own_extent])
    source = np.array([(other_box[0] + other_box[2]) / 2, (other_box[1] + other_box[3]) / 2])
    sx = -scale if rng.random() < 0.5 else scale
    matrix = np.array([[sx, 0.0, target[0] - sx * source[0]], [0.0, scale, target[1] - scale * source[1]]])
    pasted = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.float32), matrix, (w, h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    thickness = 0.09 * own_extent
    mask = person_mask(apply_affine(joints[:, :2], matrix), other_visible, layout, (h, w), thickness) * inside
    if behind:
        mask = mask * (1.0 - person_mask(points, visible, layout, (h, w), 1.3 * thickness))
    blended = crop.astype(np.float32) * (1 - mask[..., None]) + pasted.astype(np.float32) * mask[..., None]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


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

"""Box and crop geometry shared by training, evaluation, the runtime and the tools: the
one place for boxes (overlap, suppression), letterboxing and crops.

A person is cropped by an affine warp defined from a box: its centre, a size padded to
the network's aspect ratio, and an optional rotation. Keypoints found in the crop are
mapped back to the source image with the inverse transform. Boxes are (x0, y0, x1, y1)
in pixels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# Context kept around the box of a person's joints (the training crops' own): a box
# through the joints cuts off hands, feet and the head's outline.
JOINTS_BOX_PADDING = 1.25
# Context kept around a person's own box (a label's or a detector's, which already holds
# the body): on the COCO sliver's train2017 people the crop of the box itself scored best
# (OKS-PCK 0.502 at 1.0, 0.474 at 1.1, 0.459 at 1.25, 0.444 at 1.5; MODEL.md).
PERSON_BOX_PADDING = 1.0


def box_to_center_size(box, aspect_ratio: float, padding: float = JOINTS_BOX_PADDING):
    """Centre and (w, h) of the region to crop around ``box`` = (x0, y0, x1, y1).

    The shorter side is grown so that w / h equals ``aspect_ratio`` (the network input's
    width / height), then both are scaled by ``padding``.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    center = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0], dtype=np.float64)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return center, np.array([w * padding, h * padding], dtype=np.float64)


def keypoints_to_box(points: np.ndarray, valid: np.ndarray | None = None):
    """Bounding box (x0, y0, x1, y1) of the valid points, or None when there are none."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    mask = np.isfinite(pts).all(axis=1)
    if valid is not None:
        mask &= np.asarray(valid, dtype=bool)
    if not mask.any():
        return None
    sel = pts[mask]
    return (sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max(), sel[:, 1].max())


def crop_transform(center, size, output_size, rotation_deg: float = 0.0) -> np.ndarray:
    """2x3 affine matrix taking source pixels to a crop of ``output_size`` = (w, h).

    The region of ``size`` = (w, h) around ``center``, rotated by ``rotation_deg``
    (counter-clockwise in the image), fills the output.
    """
    out_w, out_h = output_size
    scale = out_w / float(size[0])
    theta = math.radians(rotation_deg)
    cos, sin = math.cos(theta) * scale, math.sin(theta) * scale
    # Rotate+scale about the centre, then move the centre to the middle of the output.
    matrix = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]], dtype=np.float64)
    matrix[:, 2] = np.array([out_w / 2.0, out_h / 2.0]) - matrix[:, :2] @ np.asarray(center, dtype=np.float64)
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to points of shape (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size, out: np.ndarray | None = None) -> np.ndarray:
    """Crop by the affine ``matrix``; what falls outside the image is black. ``out``, when
    given, receives the crop (one slot of a batch, without a copy)."""
    return cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])), dst=out,
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


CHANNEL_ORDERS = ("bgr", "rgb")


class CropBatcher:
    """Warps regions of a frame (BGR by default) into a network's RGB, normalised NCHW
    input, all crops of a frame in one batch (much cheaper than a call per person on a
    CPU). ``metadata`` names the input size, mean and std (a ModelMetadata)."""

    def __init__(self, metadata, channel_order: str = "bgr"):
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        # Which frame channel feeds each of the network's R, G, B inputs.
        self._source_channel = (2, 1, 0) if channel_order == "bgr" else (0, 1, 2)
        self.size = (metadata.input_width, metadata.input_height)
        std = np.asarray(metadata.std, np.float32)
        mean = np.asarray(metadata.mean, np.float32)
        # (px / 255 - mean) / std == px * scale - shift, per RGB channel.
        self._scale = 1.0 / (255.0 * std)
        self._shift = mean / std

    @property
    def aspect_ratio(self) -> float:
        return self.size[0] / self.size[1]

    def __call__(self, frame: np.ndarray, regions):
        """Batch (N, 3, H, W) float32 and the N crop matrices (source -> crop pixels).

        ``regions`` is a sequence of (centre, size) pairs in source pixels, as returned
        by :func:`box_to_center_size`, or (centre, size, rotation in degrees) triples.
        """
        w, h = self.size
        crops = np.empty((len(regions), h, w, 3), np.uint8)
        matrices = np.empty((len(regions), 2, 3), np.float64)
        for i, (center, size, *rotation) in enumerate(regions):
            matrices[i] = crop_transform(center, size, self.size, *rotation)
            warp_crop(frame, matrices[i], self.size, out=crops[i])
        # Channel by channel straight into the NCHW batch: several times faster than a
        # transpose of the whole array followed by broadcasting.
        batch = np.empty((len(regions), 3, h, w), np.float32)
        for i in range(len(regions)):
            for c, source in enumerate(self._source_channel):
                np.multiply(crops[i, :, :, source], self._scale[c], out=batch[i, c], casting="unsafe")
                batch[i, c] -= self._shift[c]
        return batch, matrices


def letterbox(image: np.ndarray, height: int, width: int, centred: bool = False, fill: int = 0):
    """``image`` scaled to fit (height, width) with its aspect kept, padded with ``fill``:
    on the right and bottom, or on both sides with ``centred``. Returns the padded image,
    the scale of each axis (sx, sy) and the offset (x, y) of the scaled image in it:
    padded pixel = image pixel * s + offset (corner coordinates)."""
    h, w = image.shape[:2]
    s = min(height / h, width / w)
    rw, rh = max(1, min(width, round(w * s))), max(1, min(height, round(h * s)))
    x, y = ((width - rw) // 2, (height - rh) // 2) if centred else (0, 0)
    out = np.full((height, width) + image.shape[2:], fill, image.dtype)
    interpolation = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out[y:y + rh, x:x + rw] = cv2.resize(image, (rw, rh), interpolation=interpolation)
    return out, (rw / w, rh / h), (x, y)


def box_intersection(a, b) -> float:
    """Area the two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_iou(a, b) -> float:
    """Intersection over union of two boxes; 0 when they have no area."""
    inter = box_intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_ious(box, others) -> np.ndarray:
    """``box_iou`` of one box with each row of ``others`` (M, 4)."""
    return np.array([box_iou(box, o) for o in np.asarray(others, np.float64).reshape(-1, 4)])


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first: a
    box overlapping a kept one by more than ``iou`` is dropped."""
    kept: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if all(box_iou(boxes[i], boxes[k]) <= iou for k in kept):
            kept.append(int(i))
    return np.asarray(kept, int)

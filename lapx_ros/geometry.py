"""Top-down crop geometry shared by training, evaluation and the runtime.

A person is cropped by an affine warp defined from a box: its centre, a size padded to
the network's aspect ratio, and an optional rotation. Keypoints found in the crop are
mapped back to the source image with the inverse transform.
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


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size) -> np.ndarray:
    """Crop by the affine ``matrix``; what falls outside the image is black."""
    return cv2.warpAffine(image, matrix, (int(output_size[0]), int(output_size[1])),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

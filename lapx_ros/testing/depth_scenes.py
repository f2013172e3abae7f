"""Synthetic depth scenes of known geometry for tests: a person-shaped region on a
tilted plane in front of a farther wall, and the exact 3D point behind any pixel.

    plane = TiltedPlane(z0=2.0, tilt_x=0.3, tilt_y=-0.2)
    mask = body_mask((480, 640), joints, MPII_16.skeleton, torso_joints(MPII_16.joint_names))
    depth = person_scene(camera, plane, mask, wall=4.5)   # float32 metres
    mm = millimetres(depth)                               # uint16, to publish as 16UC1
    expected = plane.points(camera, joints)               # (N, 3) metres

Pixels follow OpenCV (integer = pixel centre), like runtime/camera.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lapx_ros.runtime.camera import PinholeCamera


@dataclass(frozen=True)
class TiltedPlane:
    """The plane Z = z0 + tilt_x * X + tilt_y * Y in the optical frame [m]."""

    z0: float
    tilt_x: float = 0.0
    tilt_y: float = 0.0

    def depth_at(self, camera: PinholeCamera, pixels) -> np.ndarray:
        """Z where each pixel's viewing ray meets the plane."""
        ray = camera.back_project(pixels, 1.0)  # (x/z, y/z, 1)
        return self.z0 / (1.0 - self.tilt_x * ray[:, 0] - self.tilt_y * ray[:, 1])

    def points(self, camera: PinholeCamera, pixels) -> np.ndarray:
        """(N, 3) points of the plane seen at ``pixels``."""
        return camera.back_project(pixels, self.depth_at(camera, pixels))

    def image(self, camera: PinholeCamera) -> np.ndarray:
        """(height, width) depth of the plane at every pixel centre of ``camera``'s image."""
        v, u = np.mgrid[0:camera.height, 0:camera.width]
        pixels = np.column_stack([u.ravel(), v.ravel()]).astype(np.float64)
        return self.depth_at(camera, pixels).reshape(camera.height, camera.width)


def body_mask(shape, joints, skeleton, torso, thickness: float = 22.0) -> np.ndarray:
    """A silhouette: every bone drawn ``thickness`` pixels wide, the torso filled."""
    mask = np.zeros(shape, np.uint8)
    points = np.round(np.asarray(joints, np.float64)).astype(np.int32)
    for a, b in skeleton:
        cv2.line(mask, tuple(map(int, points[a])), tuple(map(int, points[b])), 1,
                 max(1, int(round(thickness))))
    cv2.fillConvexPoly(mask, cv2.convexHull(points[list(torso)]), 1)
    return mask.astype(bool)


def person_scene(camera: PinholeCamera, plane: TiltedPlane, mask: np.ndarray,
                 wall: float) -> np.ndarray:
    """float32 metres: the plane inside ``mask``, a wall at ``wall`` metres elsewhere."""
    return np.where(mask, plane.image(camera), wall).astype(np.float32)


def millimetres(depth_metres: np.ndarray) -> np.ndarray:
    """uint16 millimetres (16UC1, REP 118), 0 where the depth is NaN or not positive."""
    mm = np.nan_to_num(np.asarray(depth_metres, np.float64) * 1000.0, nan=0.0)
    return np.clip(np.round(mm), 0, np.iinfo(np.uint16).max).astype(np.uint16)

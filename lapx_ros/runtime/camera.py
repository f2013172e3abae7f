"""A pinhole camera model from CameraInfo-like values, without ROS.

Pixel convention: like CameraInfo (and OpenCV), integer coordinates are pixel centres,
so the top-left pixel's centre is (0, 0). The estimator's poses use the same convention;
this package's messages put pixel centres at +0.5 (see msg/Keypoint.msg), so a pixel
read from a message needs 0.5 subtracted before it is used here.

Lens distortion: CameraInfo's D is applied for the "plumb_bob" and
"rational_polynomial" models (OpenCV's coefficient order k1 k2 p1 p2 k3 [k4 k5 k6]), so
that a raw image's pixel becomes the right viewing ray; other models are taken as
undistorted. A depth image registered to a raw colour image shares its distortion, so
pixels map between the two linearly (``pixels_in``) and only the ray needs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial")
# undistortion is iterative; this reaches well below a thousandth of a pixel
_UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-10)


@dataclass(frozen=True)
class PinholeCamera:
    """Focal lengths and principal point [px] of an image of ``width`` x ``height``.

    A size of 0 means "unknown": the model is then taken to fit whatever image it is
    used with, as the node did before it knew camera sizes. ``distortion`` holds
    OpenCV's coefficients; empty or all zero means none.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int = 0
    height: int = 0
    distortion: tuple[float, ...] = ()

    @classmethod
    def from_matrices(cls, k, p=None, width: int = 0, height: int = 0, d=(),
                      distortion_model: str = "") -> PinholeCamera | None:
        """From CameraInfo's K (3x3, row-major) with D, or, when K is unset, P (3x4, for
        the rectified image: no distortion); None when neither holds a usable pinhole
        (drivers send all zeros before calibration)."""
        # (matrix, its size, where fx fy cx cy are, whether it is the raw image's)
        for values, size, (fx_i, fy_i, cx_i, cy_i), raw in ((k, 9, (0, 4, 2, 5), True),
                                                            (p, 12, (0, 5, 2, 6), False)):
            if values is None:
                continue
            m = np.asarray([float(v) for v in values], np.float64)
            if m.size != size or not np.isfinite(m).all() or m[fx_i] <= 0 or m[fy_i] <= 0:
                continue
            coefficients = tuple(float(c) for c in (() if d is None else d))
            usable = (raw and distortion_model in DISTORTION_MODELS
                      and len(coefficients) in (4, 5, 8) and np.isfinite(coefficients).all())
            return cls(float(m[fx_i]), float(m[fy_i]), float(m[cx_i]), float(m[cy_i]),
                       int(width), int(height), coefficients if usable else ())
        return None

    @classmethod
    def from_camera_info(cls, msg) -> PinholeCamera | None:
        """From a sensor_msgs/CameraInfo (or anything with k, p, d, distortion_model,
        width, height)."""
        return cls.from_matrices(msg.k, msg.p, int(msg.width), int(msg.height), msg.d,
                                 str(msg.distortion_model))

    @property
    def distorted(self) -> bool:
        return any(c != 0.0 for c in self.distortion)

    @classmethod
    def guess(cls, width: int, height: int) -> PinholeCamera:
        """A focal length of one image width (about 53 degrees horizontal field of view),
        centred: plausible enough to draw with when no CameraInfo arrives."""
        return cls(float(width), float(width), (width - 1) / 2.0, (height - 1) / 2.0,
                   int(width), int(height))

    def scaled_to(self, width: int, height: int) -> PinholeCamera:
        """The same camera for the image resized to ``width`` x ``height``.

        Scaling keeps the image's outer edges in place, so pixel centres (at +0.5 from
        the edge) scale as (c + 0.5) * s - 0.5, not as c * s.
        """
        if (self.width, self.height) == (width, height) or not (self.width and self.height):
            return PinholeCamera(self.fx, self.fy, self.cx, self.cy, int(width), int(height),
                                 self.distortion)
        # distortion acts on normalised coordinates, which scaling leaves alone
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                             (self.cy + 0.5) * sy - 0.5, int(width), int(height), self.distortion)

    def back_project(self, pixels, depth) -> np.ndarray:
        """(N, 2) pixels with depth Z [m] (one value, or one per pixel) -> (N, 3) points
        (X, Y, Z) in the optical frame: x right, y down, z forward. A NaN depth or pixel
        gives a point that is NaN in all three coordinates."""
        px = np.asarray(pixels, np.float64).reshape(-1, 2)
        z = np.broadcast_to(np.asarray(depth, np.float64), (len(px),))
        ray = self._rays(px)
        z = np.where(np.isfinite(ray).all(axis=1), z, np.nan)
        return np.column_stack([ray[:, 0] * z, ray[:, 1] * z, z])

    def project(self, points) -> np.ndarray:
        """(N, 3) points in the optical frame -> (N, 2) pixels (inverse of back_project)."""
        xyz = np.asarray(points, np.float64).reshape(-1, 3)
        if self.distorted and len(xyz):
            pixels, _ = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), self._matrix(),
                                          np.asarray(self.distortion))
            return pixels.reshape(-1, 2)
        return np.column_stack([xyz[:, 0] / xyz[:, 2] * self.fx + self.cx,
                                xyz[:, 1] / xyz[:, 2] * self.fy + self.cy])

    def pixels_in(self, other: PinholeCamera, pixels) -> np.ndarray:
        """Where ``pixels`` of this camera's image fall in ``other``'s image, for two
        images seen from the same optical centre (a depth image registered to this one,
        at another resolution or crop): the viewing ray is kept, only K changes."""
        px = np.asarray(pixels, np.float64).reshape(-1, 2)
        return np.column_stack([(px[:, 0] - self.cx) * (other.fx / self.fx) + other.cx,
                                (px[:, 1] - self.cy) * (other.fy / self.fy) + other.cy])

    def _rays(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) normalised coordinates x/z, y/z of their rays."""
        finite = np.isfinite(pixels).all(axis=1)
        if not self.distorted or not finite.any():
            return np.column_stack([(pixels[:, 0] - self.cx) / self.fx,
                                    (pixels[:, 1] - self.cy) / self.fy])
        rays = np.full(pixels.shape, np.nan)
        rays[finite] = cv2.undistortPointsIter(
            pixels[finite].reshape(-1, 1, 2), self._matrix(), np.asarray(self.distortion),
            None, None, _UNDISTORT_CRITERIA).reshape(-1, 2)
        return rays

    def _matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

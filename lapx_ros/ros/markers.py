"""RViz markers for poses: joints as spheres, bones as lines, a text id per person.

The skeleton is drawn on the camera's image plane at a chosen depth: each pixel is
back-projected through the intrinsics (CameraInfo K, or a plausible pinhole model
when no camera_info arrives), in the camera's optical frame (x right, y down, z
forward). Markers of people who left are deleted explicitly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from lapx_ros.runtime.drawing import track_colour

NAMESPACES = ("joints", "bones", "ids")


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_camera_info(cls, msg) -> Intrinsics | None:
        """From CameraInfo K (row-major 3x3), or None when K is unset or invalid."""
        k = [float(v) for v in msg.k]
        if len(k) != 9 or not (np.isfinite(k).all() and k[0] > 0 and k[4] > 0):
            return None
        return cls(k[0], k[4], k[2], k[5])

    @classmethod
    def guess(cls, width: int, height: int) -> Intrinsics:
        """A pinhole with a focal length of one image width (about 53 deg horizontal FOV)."""
        return cls(float(width), float(width), (width - 1) / 2.0, (height - 1) / 2.0)

    def back_project(self, pixels: np.ndarray, depth: float) -> np.ndarray:
        """(N, 2) pixels (OpenCV convention: integer = pixel centre) -> (N, 3) metres."""
        px = np.asarray(pixels, np.float64)
        x = (px[:, 0] - self.cx) / self.fx * depth
        y = (px[:, 1] - self.cy) / self.fy * depth
        return np.column_stack([x, y, np.full(len(px), depth)])


class MarkerBuilder:
    """Builds one MarkerArray per frame and remembers who is shown, to delete leavers."""

    def __init__(self):
        self._shown: set[int] = set()

    def build(self, header, poses, skeleton, intrinsics: Intrinsics, depth: float,
              threshold: float, lifetime: float) -> MarkerArray:
        out = MarkerArray()
        size = 0.015 * depth
        current = set()
        for p in poses:
            seen = p.confidences >= threshold
            if not seen.any():
                continue
            current.add(p.track_id)
            xyz = intrinsics.back_project(p.keypoints, depth)
            r, g, b = track_colour(p.track_id)
            colour = ColorRGBA(r=r, g=g, b=b, a=1.0)
            joints = self._marker(header, "joints", p.track_id, Marker.SPHERE_LIST, lifetime)
            joints.scale.x = joints.scale.y = joints.scale.z = size
            joints.color = colour
            joints.points = [_point(v) for v in xyz[seen]]
            bones = self._marker(header, "bones", p.track_id, Marker.LINE_LIST, lifetime)
            bones.scale.x = 0.4 * size
            bones.color = colour
            bones.points = [_point(xyz[k]) for a, c in skeleton if seen[a] and seen[c] for k in (a, c)]
            text = self._marker(header, "ids", p.track_id, Marker.TEXT_VIEW_FACING, lifetime)
            top = xyz[seen][np.argmin(xyz[seen][:, 1])]
            text.pose.position = _point(top - np.array([0.0, 3 * size, 0.0]))
            text.scale.z = 3 * size
            text.color = colour
            text.text = str(p.track_id)
            out.markers += [joints, bones, text]
        for tid in sorted(self._shown - current):
            for ns in NAMESPACES:
                gone = self._marker(header, ns, tid, Marker.SPHERE_LIST, 0.0)
                gone.action = Marker.DELETE
                out.markers.append(gone)
        self._shown = current
        return out

    def clear(self, header) -> MarkerArray:
        """Delete everything shown (e.g. when the node deactivates)."""
        out = MarkerArray()
        for ns in NAMESPACES:
            m = self._marker(header, ns, 0, Marker.SPHERE_LIST, 0.0)
            m.action = Marker.DELETEALL
            out.markers.append(m)
        self._shown = set()
        return out

    @staticmethod
    def _marker(header, ns, marker_id, kind, lifetime) -> Marker:
        m = Marker()
        m.header = header
        m.ns = ns
        m.id = int(marker_id)
        m.type = kind
        m.action = Marker.ADD
        m.pose.orientation.w = 1.0
        m.lifetime.sec = int(lifetime)
        m.lifetime.nanosec = int(round((lifetime - int(lifetime)) * 1e9))
        return m


def _point(v) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))

"""RViz markers for poses: joints as spheres, bones as lines, a text id per person.

With depth, a person's skeleton is drawn where its joints are (their 3D positions,
joints without depth left out), beside the camera's own point cloud. Without depth
there is no distance to draw at, so the skeleton goes on the camera's image plane at
a chosen distance: each pixel is back-projected through the camera model (CameraInfo,
or a plausible pinhole when none arrives). Both are in the camera's optical frame (x
right, y down, z forward). Markers of people who left are deleted explicitly.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.drawing import track_colour

NAMESPACES = ("joints", "bones", "ids")


def marker_points(poses, camera: PinholeCamera, plane_depth: float, threshold: float,
                  positions=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per person, (J, 3) points to draw and which of them to draw (J,): the measured
    positions of the seen joints that have depth when the person has any (``positions``
    (P, J, 3), NaN where unknown), else every seen joint on the plane ``plane_depth``
    metres away."""
    out = []
    for i, p in enumerate(poses):
        seen = np.asarray(p.confidences) >= threshold
        xyz = None if positions is None else np.asarray(positions[i], np.float64)
        measured = seen & np.isfinite(xyz).all(axis=1) if xyz is not None else np.zeros_like(seen)
        if measured.any():
            out.append((xyz, measured))
        else:
            out.append((camera.back_project(p.keypoints, plane_depth), seen))
    return out


def drawing_camera(colour_camera: PinholeCamera | None, width: int, height: int) -> PinholeCamera:
    """The colour camera scaled to this image, or a plausible guess without camera_info
    (only for drawing: 3D positions are never computed with a guess)."""
    if colour_camera is None:
        return PinholeCamera.guess(width, height)
    return colour_camera.scaled_to(width, height)


class MarkerBuilder:
    """Builds one MarkerArray per frame and remembers who is shown, to delete leavers."""

    def __init__(self):
        self._shown: set[int] = set()

    def build(self, header, poses, skeleton, camera: PinholeCamera, depth: float,
              threshold: float, lifetime: float, positions=None) -> MarkerArray:
        """Markers of one frame: ``camera`` sized to the image, ``depth`` the image plane's
        distance for people without 3D, ``positions`` (P, J, 3) metres or None."""
        out = MarkerArray()
        current = set()
        for p, (xyz, shown) in zip(poses, marker_points(poses, camera, depth, threshold, positions)):
            if not shown.any():
                continue
            current.add(p.track_id)
            size = 0.015 * float(np.median(xyz[shown, 2]))  # as big on screen at any distance
            r, g, b = track_colour(p.track_id)
            colour = ColorRGBA(r=r, g=g, b=b, a=1.0)
            joints = self._marker(header, "joints", p.track_id, Marker.SPHERE_LIST, lifetime)
            joints.scale.x = joints.scale.y = joints.scale.z = size
            joints.color = colour
            joints.points = [_point(v) for v in xyz[shown]]
            bones = self._marker(header, "bones", p.track_id, Marker.LINE_LIST, lifetime)
            bones.scale.x = 0.4 * size
            bones.color = colour
            bones.points = [_point(xyz[k]) for a, c in skeleton if shown[a] and shown[c] for k in (a, c)]
            text = self._marker(header, "ids", p.track_id, Marker.TEXT_VIEW_FACING, lifetime)
            top = xyz[shown][np.argmin(xyz[shown][:, 1])]
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

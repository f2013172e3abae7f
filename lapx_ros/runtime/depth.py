"""Depth images -> 3D joints in metres, without ROS.

Two parts, each usable on its own:
- sampling: JointDepthEstimator finds a trustworthy depth per joint (a window of pixels,
  the nearest surface in it, checked against the person's own depth and a plausible
  range) and back-projects joints and a torso point through the colour camera;
- the stream: DepthStream keeps a depth topic's messages until the colour frame of
  their stamp takes one (runtime.frames.StampBuffer), has it decoded by the caller's
  decoder (the ROS side: ros/convert.py) and locates the frame's people in it.

Depth must be registered to the colour image (same optical centre, like a driver's
"aligned_depth_to_color" stream); its resolution may differ. Pixel coordinates follow
OpenCV like the estimator's poses: integer = pixel centre (see runtime/camera.py).
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np

from lapx_ros.layouts import TORSO_JOINT_NAMES
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.frames import DropCounter, StampBuffer


class DepthError(ValueError):
    """A depth image that cannot be related to the colour frame; the text says why, its
    head (``frames.reason_kind``) the kind of problem, for counting and warnings."""


# ------------------------------------------------------------------------ sampling
def torso_joints(joint_names) -> tuple[int, ...]:
    """Indices of the joints that place a person's body (``layouts.TORSO_JOINT_NAMES``:
    shoulders, hips, pelvis, thorax): large, slow and rarely in front of or behind it."""
    found = tuple(i for i, name in enumerate(joint_names) if name in TORSO_JOINT_NAMES)
    if not found:
        raise ValueError(f"no torso joint ({', '.join(TORSO_JOINT_NAMES)}) among {list(joint_names)}")
    return found


@dataclass(frozen=True)
class DepthSettings:
    """How much depth evidence a joint needs.

    window        side [depth pixels, odd] of the square read around each joint; more
                  than one pixel, since depth has holes and noise exactly at joints
    min_depth,    plausible range [m]; pixels outside it are ignored (a camera's blind
    max_depth     zone, far walls)
    surface_gap   sorted window depths further apart than this [m] belong to different
                  surfaces (a limb and the wall behind it)
    min_pixels    the nearest surface must cover this many window pixels; fewer are
                  taken as flying pixels at an edge and skipped
    max_behind,   a joint deeper than the person's reference depth by more than
    max_in_front  max_behind, or nearer by more than max_in_front [m], lies on the
                  background or on something else: rejected. In front is allowed
                  more, for an arm reaching towards the camera.
    """

    window: int = 5
    min_depth: float = 0.2
    max_depth: float = 10.0
    surface_gap: float = 0.1
    min_pixels: int = 4
    max_behind: float = 0.5
    max_in_front: float = 1.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be odd and >= 1, got {self.window}")
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, "
                             f"{self.max_depth}")
        if not 1 <= self.min_pixels <= self.window ** 2:
            raise ValueError(f"min_pixels must be in [1, window^2 = {self.window ** 2}], "
                             f"got {self.min_pixels}")
        if min(self.surface_gap, self.max_behind, self.max_in_front) <= 0:
            raise ValueError("surface_gap, max_behind and max_in_front must be > 0")


@dataclass(frozen=True)
class BodyDepth:
    """3D results for P people of J joints, NaN wherever depth was not trustworthy.

    depths     (P, J) depth Z of each joint [m]
    positions  (P, J, 3) joints in the colour camera's optical frame [m]
    centres    (P, 3) torso centre: the mean pixel of the person's seen torso joints at
               the median depth of their torso joints; a point on the body's front
    """

    depths: np.ndarray
    positions: np.ndarray
    centres: np.ndarray

    @property
    def joints_with_depth(self) -> int:
        return int(np.isfinite(self.depths).sum())


class JointDepthEstimator:
    """Per-joint depth that is measured, never guessed, and its 3D points.

    For each joint: the window's valid in-range pixels, sorted, split into surfaces at
    gaps; the nearest surface with enough pixels wins (a limb is in front of what is
    behind it) and its median is the joint's depth. Each person's reference depth is
    the median over its torso joints (or, with fewer than two of those, over all its
    joints when at least three have depth); joints too far behind or in front of it are
    dropped: at the body's edge the window can hold only background.
    """

    def __init__(self, settings: DepthSettings, torso: tuple[int, ...]):
        self.settings = settings
        self.torso = np.asarray(torso, np.int64)

    def locate(self, depth: np.ndarray, keypoints, seen, colour_camera: PinholeCamera,
               depth_camera: PinholeCamera | None = None) -> BodyDepth:
        """3D joints for (P, J, 2) colour-image ``keypoints`` (OpenCV pixels) of which
        ``seen`` (P, J) are trusted in 2D, given a float32 metre ``depth`` image.

        ``colour_camera`` must describe the colour image (its width and height set);
        ``depth_camera`` the depth image when a CameraInfo came with it, else the depth
        is taken as the colour image rescaled (refused when their aspect ratios differ).
        """
        keypoints = np.asarray(keypoints, np.float64)
        people, joints = keypoints.shape[:2]
        flat = keypoints.reshape(-1, 2)
        at = _depth_pixels(flat, colour_camera, depth_camera, depth.shape)
        z = self._nearest_surface(self._windows(depth, at)).reshape(people, joints)
        z[~np.asarray(seen, bool).reshape(people, joints)] = np.nan
        z = self._on_body(z)
        positions = colour_camera.back_project(flat, z.ravel()).reshape(people, joints, 3)
        return BodyDepth(z, positions, self._centres(keypoints, seen, z, colour_camera))

    def _windows(self, depth: np.ndarray, at: np.ndarray) -> np.ndarray:
        """(N, window^2) depths around each pixel, NaN outside the image or range."""
        height, width = depth.shape
        col, row = np.rint(at[:, 0]), np.rint(at[:, 1])
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)  # False for NaN
        col = np.where(inside, col, 0).astype(np.int64)
        row = np.where(inside, row, 0).astype(np.int64)
        offsets = np.arange(self.settings.window) - self.settings.window // 2
        cols = col[:, None, None] + offsets[None, None, :]
        rows = row[:, None, None] + offsets[None, :, None]
        valid = inside[:, None, None] & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
        values = depth[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)].astype(np.float64)
        s = self.settings
        values[~valid | ~(values >= s.min_depth) | ~(values <= s.max_depth)] = np.nan
        return values.reshape(len(at), self.settings.window ** 2)

    def _nearest_surface(self, windows: np.ndarray) -> np.ndarray:
        """Median of the nearest run of sorted depths (no gap > surface_gap) holding at
        least min_pixels values, per row; NaN when no run does."""
        count = len(windows)
        ordered = np.sort(windows, axis=1)  # NaN last
        valid = ~np.isnan(ordered)
        surface = np.zeros(ordered.shape, np.int64)
        with np.errstate(invalid="ignore"):
            surface[:, 1:] = np.cumsum(np.diff(ordered, axis=1) > self.settings.surface_gap, axis=1)
        width = ordered.shape[1]
        flat = (np.arange(count)[:, None] * width + surface)[valid]
        sizes = np.bincount(flat, minlength=count * width).reshape(count, width)
        big = sizes >= self.settings.min_pixels
        choice = np.argmax(big, axis=1)
        rows = np.arange(count)
        first = (np.cumsum(sizes, axis=1) - sizes)[rows, choice]
        median = _run_median(ordered, first, sizes[rows, choice])
        return np.where(big.any(axis=1), median, np.nan)

    def _on_body(self, z: np.ndarray) -> np.ndarray:
        torso_z = z[:, self.torso]
        torso_count = np.isfinite(torso_z).sum(axis=1)
        reference = np.where(torso_count >= 2, _nan_median(torso_z),
                             np.where(np.isfinite(z).sum(axis=1) >= 3, _nan_median(z), np.nan))
        offset = z - reference[:, None]
        with np.errstate(invalid="ignore"):
            keep = (offset <= self.settings.max_behind) & (-offset <= self.settings.max_in_front)
        return np.where(keep, z, np.nan)

    def _centres(self, keypoints, seen, z, camera: PinholeCamera) -> np.ndarray:
        torso_seen = np.asarray(seen, bool)[:, self.torso]
        seen_count = torso_seen.sum(axis=1)
        pixel_sum = np.where(torso_seen[..., None], keypoints[:, self.torso], 0.0).sum(axis=1)
        pixel = pixel_sum / np.maximum(seen_count, 1)[:, None]
        torso_z = z[:, self.torso]
        known = (seen_count > 0) & (np.isfinite(torso_z).sum(axis=1) >= 2)
        return camera.back_project(pixel, np.where(known, _nan_median(torso_z), np.nan))


def _depth_pixels(pixels: np.ndarray, colour: PinholeCamera, depth_camera: PinholeCamera | None,
                  shape) -> np.ndarray:
    """Colour-image pixels -> depth-image pixels for a registered depth image."""
    height, width = shape
    if not (colour.width and colour.height):
        raise DepthError("colour camera size unknown: scale its model to the colour image first")
    if depth_camera is None:
        if (width, height) == (colour.width, colour.height):
            return pixels
        if abs(width / height - colour.width / colour.height) > 0.01 * colour.width / colour.height:
            raise DepthError(f"depth image size differs: {width}x{height} has another aspect ratio "
                             f"than the colour image {colour.width}x{colour.height}, and no depth "
                             f"CameraInfo says how they relate")
        depth_camera = colour
    return colour.pixels_in(depth_camera.scaled_to(width, height), pixels)


def _nan_median(values: np.ndarray) -> np.ndarray:
    """Median along axis 1 ignoring NaN (NaN for all-NaN rows), without numpy's
    warnings for the empty rows that are normal here."""
    ordered = np.sort(values, axis=1)  # NaN last
    count = np.isfinite(ordered).sum(axis=1)
    return np.where(count > 0, _run_median(ordered, np.zeros_like(count), count), np.nan)


def _run_median(ordered: np.ndarray, first: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Per row, the median of the sorted values ordered[row, first:first + size]
    (meaningless where size is 0: the caller masks those rows)."""
    rows = np.arange(len(ordered))
    last = ordered.shape[1] - 1
    low = np.minimum(first + np.maximum(size - 1, 0) // 2, last)
    high = np.minimum(first + size // 2, last)
    return 0.5 * (ordered[rows, low] + ordered[rows, high])


# --------------------------------------------------------------------- the stream
@dataclass(frozen=True)
class DepthReport:
    """A DepthStream's totals since start, for diagnostics."""

    received: int
    frames_with_depth: int
    frames_without_depth: int
    frames_too_late: int  # of those without: their depth image came after their wait
    joints_with_depth: int
    unused: int  # depth images no frame took
    dropped: dict  # frames without depth, by kind of reason
    last_reason: str  # why the last frame without depth went without


class DepthStream:
    """A depth topic's messages -> 3D joints per colour frame, without ROS.

    The caller hands over what arrives (``add`` for depth messages, ``set_camera`` for the
    depth CameraInfo) and asks ``locate`` for each colour frame once its poses are known.
    Messages are kept as they came and turned into metres by ``decode(message,
    max_pixels)`` only once a frame takes one, so depth images no frame uses cost nothing
    but their copy; a ValueError from ``decode`` is the reason that frame goes without 3D.
    Every reason a frame goes without depth is counted by kind and returned, so the
    caller can warn once per kind; nothing here raises for bad input, and a frame never
    waits longer than the wait it asks for.
    """

    def __init__(self, settings: DepthSettings, torso, decode, capacity: int = 10,
                 max_age: float = 2.0, max_pixels: int = 3840 * 2160):
        self.buffer = StampBuffer(capacity, max_age, skip_waits_when_silent=True)
        self.estimator = JointDepthEstimator(settings, torso)
        self.decode = decode
        self.max_pixels = max_pixels
        self.depth_camera: PinholeCamera | None = None
        # received, frames_with_depth, frames_without_depth, joints_with_depth (DepthReport)
        self._totals: collections.Counter = collections.Counter()
        self.drops = DropCounter()
        self.last_reason = ""
        self._lock = threading.Lock()

    @property
    def settings(self) -> DepthSettings:
        return self.estimator.settings

    @settings.setter
    def settings(self, settings: DepthSettings) -> None:
        # a new object: a frame being located keeps the estimator it started with
        self.estimator = JointDepthEstimator(settings, tuple(self.estimator.torso))

    def add(self, stamp: float, msg) -> float | None:
        """A depth message stamped ``stamp``. Returns None, or, when its frame already went
        out without 3D, how many seconds after that frame stopped waiting it came."""
        with self._lock:
            self._totals["received"] += 1
        late = self.buffer.add(stamp, msg)
        if late is not None:
            with self._lock:
                self.last_reason = (f"depth image too late: it came {late:.3f} s after its frame stopped "
                                    "waiting")
        return late

    def set_camera(self, camera: PinholeCamera | None) -> None:
        """The depth image's own camera model (from its CameraInfo), when it has one."""
        self.depth_camera = camera

    def locate(self, stamp: float, keypoints, seen, colour_camera: PinholeCamera | None,
               colour_size: tuple[int, int], tolerance: float, wait: float):
        """(BodyDepth or None, reason or None) for the colour frame stamped ``stamp``, of
        ``colour_size`` (width, height), whose people have (P, J, 2) ``keypoints``
        (OpenCV pixels) of which ``seen`` (P, J) are trusted; the depth image may take up
        to ``wait`` seconds to come (StampBuffer.take).

        ``colour_camera`` is the colour CameraInfo's model (any size: it is scaled to
        the frame); without one the depth image's CameraInfo stands in, which describes
        the same view when the depth is registered to the colour image. Nothing is
        guessed: without either, no 3D. The reason's head (``reason_kind``) is its kind."""
        msg = self.buffer.take(stamp, tolerance, wait)
        if msg is None:
            return self._without(self._unpaired_reason(stamp, tolerance))
        try:
            depth = self.decode(msg, self.max_pixels)
        except ValueError as exc:
            return self._without(str(exc))
        depth_camera = self.depth_camera
        if depth_camera is not None and depth_camera.width and (
                depth_camera.width, depth_camera.height) != (depth.shape[1], depth.shape[0]):
            depth_camera = None  # it describes another image than this one
        camera = colour_camera if colour_camera is not None else depth_camera
        if camera is None:
            return self._without("no camera model: neither the colour nor the depth image "
                                 "has a CameraInfo with a valid K")
        try:
            body = self.estimator.locate(depth, keypoints, seen, camera.scaled_to(*colour_size),
                                         depth_camera)
        except DepthError as exc:
            return self._without(str(exc))
        with self._lock:
            self._totals["frames_with_depth"] += 1
            self._totals["joints_with_depth"] += body.joints_with_depth
        return body, None

    def report(self) -> DepthReport:
        with self._lock:
            totals = self._totals
            return DepthReport(totals["received"], totals["frames_with_depth"],
                               totals["frames_without_depth"], self.buffer.late, totals["joints_with_depth"],
                               self.buffer.unused, dict(self.drops.kinds), self.last_reason)

    def _without(self, reason: str):
        with self._lock:
            self._totals["frames_without_depth"] += 1
            self.drops.count(reason)
            self.last_reason = reason
        return None, reason

    def _unpaired_reason(self, stamp: float, tolerance: float) -> str:
        newest = self.buffer.newest
        if newest is None:
            return "no depth image received yet"
        if newest > stamp + tolerance:
            return (f"depth stamps do not match: the newest depth image is {newest - stamp:+.3f} s "
                    f"from the frame, more than the tolerance {tolerance:g} s")
        return (f"no depth image in time: none within {tolerance:g} s of the frame's stamp came while it "
                f"waited (the newest is {newest - stamp:+.3f} s from it)")

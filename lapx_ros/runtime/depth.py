"""Depth images -> 3D joints in metres, without ROS.

Three parts, each usable on its own:
- decoding: a depth Image (16UC1 in millimetres, 32FC1 in metres) or image_transport's
  compressedDepth CompressedImage (PNG or RVL) -> float32 metres, NaN where invalid.
  Messages are read by attribute only, so any object shaped like them works. Bad input
  raises DepthError with the reason, never anything else;
- pairing: DepthPairer hands each colour frame the depth image of its stamp;
- sampling: JointDepthEstimator finds a trustworthy depth per joint (a window of pixels,
  the nearest surface in it, checked against the person's own depth and a plausible
  range) and back-projects joints and a torso point through the colour camera.

Depth must be registered to the colour image (same optical centre, like a driver's
"aligned_depth_to_color" stream); its resolution may differ. Pixel coordinates follow
OpenCV like the estimator's poses: integer = pixel centre (see runtime/camera.py).
"""
from __future__ import annotations

import collections
import struct
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from lapx_ros.layouts import TORSO_JOINT_NAMES
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.frames import nearest_by_stamp

# encoding -> numpy sample type; REP 118: 16-bit in millimetres, 32-bit float in metres.
DEPTH_ENCODINGS = {"16UC1": "u2", "mono16": "u2", "32FC1": "f4"}
DEFAULT_MAX_PIXELS = 3840 * 2160
# image_transport's compressedDepth: int32 format (0 = inverse depth, the only one),
# float32 A, float32 B; then a PNG or an RVL stream.
_COMPRESSED_HEADER = struct.Struct("<iff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An RVL value is a count or a delta of at most 32 bits: 11 nibbles of 3 bits.
_RVL_MAX_NIBBLES = 11


class DepthError(ValueError):
    """A depth input that cannot be used; the text says why (and its head, up to ':',
    names the kind of problem, for counting and for rate-limited warnings)."""


# ------------------------------------------------------------------------ decoding
def depth_from_image(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image of depth -> new (H, W) float32 array in metres, NaN where
    the camera measured nothing (0 in 16UC1; NaN, +-Inf or <= 0 in 32FC1)."""
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise DepthError(f"unsupported depth encoding: {encoding!r}; depth images must be "
                         f"16UC1 (mm) or 32FC1 (m)")
    sample = DEPTH_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    size = np.dtype(sample).itemsize
    if width < 1 or height < 1:
        raise DepthError(f"depth image empty: {width}x{height}")
    if width * height > max_pixels:
        raise DepthError(f"depth image too large: {width}x{height} > {max_pixels} pixels")
    if int(msg.is_bigendian) not in (0, 1):
        raise DepthError(f"depth is_bigendian must be 0 or 1: got {msg.is_bigendian}")
    if step < width * size:
        raise DepthError(f"depth step too small: {step} < width {width} x {size} bytes")
    data = msg.data
    if len(data) != step * height:
        raise DepthError(f"depth data length wrong: {len(data)} != step {step} x height {height}")
    try:
        buf = np.frombuffer(data, np.uint8)
    except TypeError:  # a list of ints
        buf = np.frombuffer(bytes(data), np.uint8)
    order = ">" if int(msg.is_bigendian) else "<"
    raw = buf.reshape(height, step)[:, :width * size].view(order + sample)
    return _metres_from_float(raw) if sample == "f4" else _metres_from_millimetres(raw)


def depth_from_compressed(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A compressedDepth CompressedImage (format "16UC1; compressedDepth png", "...rvl",
    or "32FC1; ..." as image_transport publishes it) -> float32 metres, NaN invalid."""
    encoding, codec = _parse_compressed_format(str(msg.format))
    data = bytes(msg.data)
    if len(data) <= _COMPRESSED_HEADER.size:
        raise DepthError(f"compressedDepth too short: {len(data)} bytes")
    kind, quant_a, quant_b = _COMPRESSED_HEADER.unpack_from(data)
    if kind != 0:
        raise DepthError(f"compressedDepth header unknown: format {kind} (expected 0)")
    payload = data[_COMPRESSED_HEADER.size:]
    raw = _decode_png(payload, max_pixels) if codec == "png" else _decode_rvl(payload, max_pixels)
    if encoding != "32FC1":
        return _metres_from_millimetres(raw)
    # Inverse depth v = A / d + B, quantised to 16 bits; v = 0 means no depth.
    if not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a > 0):
        raise DepthError(f"compressedDepth quantisation invalid: A={quant_a} B={quant_b}")
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = (np.float32(quant_a) / (raw.astype(np.float32) - np.float32(quant_b)))
    metres[(raw == 0) | ~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def depth_from_message(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Either kind of depth message, told apart by its fields: a CompressedImage has a
    format, an Image an encoding. For a pairer that stores messages of both kinds."""
    if hasattr(msg, "format"):
        return depth_from_compressed(msg, max_pixels)
    return depth_from_image(msg, max_pixels)


def encode_compressed_depth(depth_mm: np.ndarray, png_level: int = 3) -> tuple[str, bytes]:
    """(format, data) of a 16UC1 millimetre image as image_transport's compressedDepth
    PNG, for publishing (replay); ``png_level`` trades CPU for size."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(depth_mm, np.uint16),
                           [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise DepthError("compressedDepth encoding failed: OpenCV could not write the PNG")
    return "16UC1; compressedDepth png", _COMPRESSED_HEADER.pack(0, 0.0, 0.0) + png.tobytes()


def _metres_from_millimetres(raw: np.ndarray) -> np.ndarray:
    metres = np.multiply(raw, np.float32(0.001), dtype=np.float32)
    metres[raw == 0] = np.nan
    return metres


def _metres_from_float(raw: np.ndarray) -> np.ndarray:
    metres = raw.astype(np.float32)  # a native-order copy
    with np.errstate(invalid="ignore"):
        metres[~((metres > 0) & (metres < np.inf))] = np.nan
    return metres


def _parse_compressed_format(fmt: str) -> tuple[str, str]:
    """(encoding, codec) from a compressedDepth format string. Formats without a
    "; compressedDepth ..." part come from old publishers, which only wrote PNG."""
    encoding, _, transport = (part.strip() for part in fmt.partition(";"))
    if encoding not in ("16UC1", "32FC1"):
        raise DepthError(f"unsupported compressedDepth encoding: {encoding!r} in format "
                         f"{fmt!r}; expected 16UC1 or 32FC1")
    words = transport.split()
    if not words or words == ["compressedDepth"] or words == ["compressedDepth", "png"]:
        return encoding, "png"
    if words == ["compressedDepth", "rvl"]:
        return encoding, "rvl"
    raise DepthError(f"unsupported compressed depth format: {fmt!r}; expected "
                     f"'<encoding>; compressedDepth png' or '... rvl'")


def _decode_png(payload: bytes, max_pixels: int) -> np.ndarray:
    if not payload.startswith(_PNG_SIGNATURE) or len(payload) < 24:
        raise DepthError("compressedDepth corrupt: payload is not a PNG")
    width, height = (int.from_bytes(payload[i:i + 4], "big") for i in (16, 20))
    if width * height > max_pixels:  # checked before decoding: a tiny file can claim anything
        raise DepthError(f"depth image too large: {width}x{height} > {max_pixels} pixels")
    try:
        raw = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise DepthError(f"compressedDepth corrupt: {exc}") from None
    if raw is None:
        raise DepthError("compressedDepth corrupt: the PNG is truncated or damaged")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise DepthError(f"compressedDepth corrupt: PNG holds {raw.dtype} x "
                         f"{1 if raw.ndim == 2 else raw.shape[2]} channels, not 16-bit grey")
    return raw


def _decode_rvl(payload: bytes, max_pixels: int) -> np.ndarray:
    """RVL (run-length, variable-length nibbles; Wilson 2017) as image_transport writes
    it: uint32 width, uint32 height, then 32-bit words whose nibbles, most significant
    first, spell values of 3 bits per nibble (low bits first, bit 4 = more follow).
    The values repeat: count of zero pixels, count of non-zero pixels, then one
    zigzag-coded difference to the previous non-zero pixel per non-zero pixel."""
    if len(payload) < 8 or (len(payload) - 8) % 4:
        raise DepthError(f"compressedDepth corrupt: RVL stream of {len(payload)} bytes")
    width, height = struct.unpack_from("<II", payload)
    pixels = width * height
    if pixels == 0:
        raise DepthError(f"compressedDepth corrupt: RVL image size {width}x{height}")
    if pixels > max_pixels:
        raise DepthError(f"depth image too large: {width}x{height} > {max_pixels} pixels")
    # each little-endian word's bytes, most significant first, split into nibbles
    word_bytes = np.frombuffer(payload, np.uint8, offset=8).reshape(-1, 4)[:, ::-1]
    nibbles = np.stack([word_bytes >> 4, word_bytes & 0xF], axis=-1).ravel()
    ends = np.flatnonzero(nibbles < 8)  # a value ends at a nibble without the "more" bit
    if not ends.size:
        raise DepthError("compressedDepth corrupt: RVL stream holds no value")
    lengths = np.diff(ends, prepend=-1)
    if lengths.max() > _RVL_MAX_NIBBLES:
        raise DepthError("compressedDepth corrupt: RVL value longer than 32 bits")
    bits = nibbles & 7
    starts = ends - lengths + 1
    values = bits[starts].astype(np.int64)
    longer = np.flatnonzero(lengths > 1)  # most values are one or two nibbles
    for place in range(1, int(lengths.max())):
        longer = longer[lengths[longer] > place]
        values[longer] |= bits[starts[longer] + place].astype(np.int64) << (3 * place)
    run_pixel, run_value, run_length = _rvl_runs(values, pixels)
    deltas = values[_inside_runs(run_value, run_length, values.size)]
    deltas = (deltas >> 1) ^ -(deltas & 1)  # zigzag back to signed
    out = np.zeros(pixels, np.uint16)
    out[_inside_runs(run_pixel, run_length, pixels)] = np.cumsum(deltas) & 0xFFFF
    return out.reshape(height, width)


def _inside_runs(starts: np.ndarray, lengths: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of ``size`` that is True inside each run [start, start + length)."""
    edges = np.zeros(size + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, starts + lengths, -1)
    return np.cumsum(edges[:-1]) > 0


def _rvl_runs(values: np.ndarray, pixels: int):
    """Walk the (zeros, non-zeros, deltas...) groups: for each run of non-zero pixels
    its first pixel, the index of its first delta in ``values``, and its length. Only
    two values per run are read, so a few runs cost little however many pixels."""
    run_pixel, run_value, run_length = [], [], []
    index = filled = 0
    while filled < pixels:
        if index + 1 >= len(values):
            raise DepthError("compressedDepth corrupt: RVL stream ends early")
        zeros, nonzeros = int(values[index]), int(values[index + 1])
        filled += zeros
        if nonzeros:
            run_pixel.append(filled)
            run_value.append(index + 2)
            run_length.append(nonzeros)
        filled += nonzeros
        index += 2 + nonzeros
        if filled > pixels or index > len(values):
            raise DepthError("compressedDepth corrupt: RVL runs do not fit the image")
    return (np.asarray(run_pixel, np.int64), np.asarray(run_value, np.int64),
            np.asarray(run_length, np.int64))


# ------------------------------------------------------------------------- pairing
@dataclass
class _Pending:
    stamp: float
    depth: object
    used: bool = False


class DepthPairer:
    """Depth images kept until the colour frame of their stamp comes (thread-safe).

    Colour and depth arrive on separate callbacks in either order. ``add`` stores a
    depth image; ``pair`` returns the one whose stamp is nearest a colour frame's,
    within a tolerance, waiting a bounded time if it has not come yet, so the colour
    path never stalls for long. What is stored is up to the caller: keeping the message
    and decoding it once paired skips the depth images that no frame uses.

    ``capacity`` depth images are kept: at the depth rate they must span the delay of
    the colour path (10 at 30 Hz span 0.33 s); any older than ``max_age`` seconds
    before the frame being paired are dropped.

    Counters: ``paired`` and ``unpaired_colour`` colour frames, ``unused_depth`` depth
    images dropped without ever being paired.
    """

    def __init__(self, capacity: int = 10, max_age: float = 2.0):
        self.capacity = capacity
        self.max_age = max_age
        self.paired = 0
        self.unpaired_colour = 0
        self.unused_depth = 0
        self._items: collections.deque[_Pending] = collections.deque()
        self._cond = threading.Condition()

    def add(self, stamp: float, depth) -> None:
        with self._cond:
            self._items.append(_Pending(stamp, depth))
            while len(self._items) > self.capacity:
                self._drop_oldest()
            self._cond.notify_all()

    def pair(self, stamp: float, tolerance: float, wait: float = 0.0):
        """The depth stored with the stamp nearest ``stamp`` within ``tolerance`` [s],
        waiting up to ``wait`` seconds for it; None when there is none. The wait ends
        early once a depth image newer than the tolerance window came: depth arrives in
        stamp order, so the one that would match is lost."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                found = nearest_by_stamp(self._items, stamp, tolerance)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or self._passed(stamp + tolerance):
                    break
                self._cond.wait(remaining)
            while self._items and self._items[0].stamp < stamp - self.max_age:
                self._drop_oldest()
            if found is None:
                self.unpaired_colour += 1
                return None
            found.used = True
            self.paired += 1
            return found.depth

    def restart(self) -> None:
        """Forget every stored depth image (the input's clock restarted); unused ones
        are counted."""
        with self._cond:
            while self._items:
                self._drop_oldest()

    def counts(self) -> dict:
        with self._cond:
            return {"paired": self.paired, "unpaired_colour": self.unpaired_colour,
                    "unused_depth": self.unused_depth}

    def _passed(self, stamp: float) -> bool:
        return any(item.stamp > stamp for item in self._items)

    def _drop_oldest(self) -> None:
        if not self._items.popleft().used:
            self.unused_depth += 1


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
    joints_with_depth: int
    unused: int
    dropped: dict


class DepthStream:
    """A depth topic's messages -> 3D joints per colour frame, without ROS.

    The node hands over what arrives (``add`` for depth images, ``set_camera`` for the
    depth CameraInfo) and asks ``locate`` for each colour frame once its poses are
    known. Messages are stored undecoded and decoded once paired, so depth images no
    frame uses cost nothing but their copy. Every reason a frame goes without depth is
    counted by kind (``drops``) and returned, so the caller can warn once per kind;
    nothing here raises for bad input, and the colour path never waits longer than
    the wait it asks for.
    """

    MAX_KINDS = 16  # distinct reasons kept, whatever a sender puts in its messages

    def __init__(self, settings: DepthSettings, torso, capacity: int = 10, max_age: float = 2.0,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.pairer = DepthPairer(capacity, max_age)
        self.estimator = JointDepthEstimator(settings, torso)
        self.max_pixels = max_pixels
        self.depth_camera: PinholeCamera | None = None
        self.received = 0
        self.frames_with_depth = 0
        self.frames_without_depth = 0
        self.joints_with_depth = 0
        self.drops: collections.Counter = collections.Counter()
        self._newest: float | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> DepthSettings:
        return self.estimator.settings

    @settings.setter
    def settings(self, settings: DepthSettings) -> None:
        # a new object: a frame being located keeps the estimator it started with
        self.estimator = JointDepthEstimator(settings, tuple(self.estimator.torso))

    def add(self, stamp: float, msg) -> None:
        """A depth message (Image or compressedDepth CompressedImage) stamped ``stamp``.
        A stamp far behind the newest means the depth camera's clock restarted: what
        is stored belongs to the old timeline and would only end waits early."""
        with self._lock:
            self.received += 1
            restarted = self._newest is not None and stamp < self._newest - self.pairer.max_age
            self._newest = stamp if self._newest is None or restarted else max(stamp, self._newest)
        if restarted:
            self.pairer.restart()
        self.pairer.add(stamp, msg)

    def set_camera(self, camera: PinholeCamera | None) -> None:
        """The depth image's own camera model (from its CameraInfo), when it has one."""
        self.depth_camera = camera

    def locate(self, stamp: float, keypoints, seen, colour_camera: PinholeCamera | None,
               colour_size: tuple[int, int], tolerance: float, wait: float):
        """(BodyDepth or None, reason or None) for the colour frame stamped ``stamp``, of
        ``colour_size`` (width, height), whose people have (P, J, 2) ``keypoints``
        (OpenCV pixels) of which ``seen`` (P, J) are trusted.

        ``colour_camera`` is the colour CameraInfo's model (any size: it is scaled to
        the frame); without one the depth image's CameraInfo stands in, which describes
        the same view when the depth is registered to the colour image. Nothing is
        guessed: without either, no 3D. The reason's head (up to ':') names its kind."""
        msg = self.pairer.pair(stamp, tolerance, wait)
        if msg is None:
            return self._without(self._unpaired_reason(stamp, tolerance))
        try:
            depth = depth_from_message(msg, self.max_pixels)
            depth_camera = self.depth_camera
            if depth_camera is not None and depth_camera.width and (
                    depth_camera.width, depth_camera.height) != (depth.shape[1], depth.shape[0]):
                depth_camera = None  # it describes another image than this one
            camera = colour_camera if colour_camera is not None else depth_camera
            if camera is None:
                return self._without("no camera model: neither the colour nor the depth image "
                                     "has a CameraInfo with a valid K")
            body = self.estimator.locate(depth, keypoints, seen, camera.scaled_to(*colour_size),
                                         depth_camera)
        except DepthError as exc:
            return self._without(str(exc))
        with self._lock:
            self.frames_with_depth += 1
            self.joints_with_depth += body.joints_with_depth
        return body, None

    def report(self) -> DepthReport:
        unused = self.pairer.counts()["unused_depth"]
        with self._lock:
            return DepthReport(self.received, self.frames_with_depth, self.frames_without_depth,
                               self.joints_with_depth, unused, dict(self.drops))

    def _without(self, reason: str):
        kind = reason.split(":", 1)[0].strip()
        with self._lock:
            self.frames_without_depth += 1
            if kind not in self.drops and len(self.drops) >= self.MAX_KINDS:
                kind = "other"
            self.drops[kind] += 1
        return None, reason

    def _unpaired_reason(self, stamp: float, tolerance: float) -> str:
        with self._lock:
            newest = self._newest
        if newest is None:
            return "no depth image received yet"
        return (f"depth stamps do not match: the newest depth image is {newest - stamp:+.3f} s "
                f"from the frame, more than the tolerance {tolerance:g} s")

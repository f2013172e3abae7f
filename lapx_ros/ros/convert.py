"""sensor_msgs Image / CompressedImage <-> numpy arrays, with strict validation: colour
frames (BGR) and depth images (metres).

A camera driver can send anything: the decoders either return an array or raise
ImageConversionError with the reason, which the node counts (a dropped frame, or a frame
without 3D). Every raw Image, colour or depth, passes the one check of ``image_rows``.
The decoding side only reads message attributes, so it works on any object shaped like
the messages (and is tested without ROS).
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

# encoding -> (channels, cv2 conversion to BGR or None when already BGR)
_COLOUR_ENCODINGS = {
    "bgr8": (3, None),
    "8UC3": (3, None),
    "rgb8": (3, cv2.COLOR_RGB2BGR),
    "bgra8": (4, cv2.COLOR_BGRA2BGR),
    "8UC4": (4, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, cv2.COLOR_RGBA2BGR),
    "mono8": (1, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, cv2.COLOR_GRAY2BGR),
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2BGR),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2BGR),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2BGR),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2BGR),
}
# Packed 4:2:2, two bytes per pixel. ROS's "yuv422" is UYVY byte order.
_YUV422_ENCODINGS = {
    "yuv422": cv2.COLOR_YUV2BGR_UYVY,
    "uyvy": cv2.COLOR_YUV2BGR_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2BGR_YUY2,
    "yuyv": cv2.COLOR_YUV2BGR_YUY2,
}
SUPPORTED_ENCODINGS = tuple(_COLOUR_ENCODINGS) + tuple(_YUV422_ENCODINGS)
# What the encoder (replay, annotated image) can produce.
OUTPUT_ENCODINGS = ("bgr8", "rgb8", "bgra8", "rgba8", "mono8", "yuv422", "uyvy",
                    "yuyv", "yuv422_yuy2")
COMPRESSED_FORMATS = ("jpeg", "png")

DEFAULT_MAX_PIXELS = 3840 * 2160
# depth encoding -> numpy sample type; REP 118: 16-bit in millimetres, 32-bit float in metres.
DEPTH_ENCODINGS = {"16UC1": "u2", "mono16": "u2", "32FC1": "f4"}
# image_transport's compressedDepth: int32 format (0 = inverse depth, the only one),
# float32 A, float32 B; then a PNG or an RVL stream.
_COMPRESSED_HEADER = struct.Struct("<iff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An RVL value is a count or a delta of at most 32 bits: 11 nibbles of 3 bits.
_RVL_MAX_NIBBLES = 11


class ImageConversionError(ValueError):
    """The message cannot be turned into a frame; the text says why."""


def _explain_unsupported(encoding: str) -> str:
    e = encoding.lower()
    if any(tag in e for tag in ("16", "32", "64", "float")):
        return (f"16-bit/float encoding {encoding!r} (a depth image?); the pose input "
                f"needs 8-bit colour or mono: {', '.join(SUPPORTED_ENCODINGS)}")
    return f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"


def image_rows(msg, pixel_bytes: int, max_pixels: int, prefix: str = "", min_side: int = 1) -> np.ndarray:
    """The (height, width * pixel_bytes) uint8 rows of a sensor_msgs/Image, padding cut
    off, once its size, byte order flag, step and data length agree: the one check of
    raw image messages, colour and depth. ``prefix`` ("depth ") starts each reason."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if width < min_side or height < min_side:
        raise ImageConversionError(f"{prefix}image too small: {width}x{height}")
    if width * height > max_pixels:
        raise ImageConversionError(f"{prefix}image too large: {width}x{height} > {max_pixels} pixels")
    if int(msg.is_bigendian) not in (0, 1):
        raise ImageConversionError(f"{prefix}is_bigendian must be 0 or 1, got {msg.is_bigendian}")
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(f"{prefix}step {step} < width {width} x {pixel_bytes} bytes")
    data = msg.data
    if len(data) != step * height:
        raise ImageConversionError(f"{prefix}data length {len(data)} != step {step} x height {height}")
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a list of ints
        buf = np.frombuffer(bytes(data), dtype=np.uint8)
    return buf.reshape(height, step)[:, :row_bytes]


def image_to_bgr(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into a new (H, W, 3) uint8 BGR array."""
    encoding = str(msg.encoding)
    if encoding in _COLOUR_ENCODINGS:
        channels, code = _COLOUR_ENCODINGS[encoding]
    elif encoding in _YUV422_ENCODINGS:
        code, channels = _YUV422_ENCODINGS[encoding], 2
        if int(msg.width) % 2:
            raise ImageConversionError(f"{encoding} needs an even width, got {msg.width}")
    else:
        raise ImageConversionError(_explain_unsupported(encoding))
    # (8-bit samples have no byte order, so is_bigendian = 1 changes nothing here.)
    rows = image_rows(msg, channels, max_pixels, min_side=2)
    pixels = rows.reshape(rows.shape[0], -1, channels)
    if code is None:
        return np.ascontiguousarray(pixels)
    if channels == 1:
        pixels = pixels[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def compressed_to_bgr(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG) into a BGR array."""
    fmt = str(msg.format).lower()
    if "compresseddepth" in fmt:
        raise ImageConversionError(f"compressed depth image (format {msg.format!r}); "
                                   "the pose input needs a colour image")
    if fmt and not any(name in fmt for name in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"unsupported compressed format {msg.format!r}; "
                                   "send JPEG or PNG")
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if data.size < 8:
        raise ImageConversionError(f"compressed image has only {data.size} bytes")
    if not (data[:3].tobytes() == b"\xff\xd8\xff" or data[:8].tobytes() == _PNG_SIGNATURE):
        raise ImageConversionError("compressed data is neither JPEG nor PNG")
    # Check the declared size before decoding, so a tiny file cannot claim 100k x 100k.
    header_size = _declared_size(data.tobytes())
    if header_size and header_size[0] * header_size[1] > max_pixels:
        raise ImageConversionError(f"image too large: {header_size[0]}x{header_size[1]}")
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if frame is None:
        raise ImageConversionError("compressed image is truncated or corrupt")
    if min(frame.shape[:2]) < 2:
        raise ImageConversionError(f"image too small: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def _declared_size(raw: bytes):
    """(width, height) from a PNG IHDR or JPEG SOF header, or None."""
    if raw.startswith(b"\x89PNG") and len(raw) >= 24:
        return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    i = 2
    while i + 9 < len(raw):
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        length = int.from_bytes(raw[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(raw[i + 7:i + 9], "big"), int.from_bytes(raw[i + 5:i + 7], "big")
        i += 2 + length
    return None


# ----------------------------------------------------------------------- depth
def depth_from_image(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image of depth -> new (H, W) float32 array in metres, NaN where
    the camera measured nothing (0 in 16UC1; NaN, +-Inf or <= 0 in 32FC1)."""
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError(f"unsupported depth encoding: {encoding!r}; depth images must be "
                                   f"16UC1 (mm) or 32FC1 (m)")
    sample = DEPTH_ENCODINGS[encoding]
    rows = image_rows(msg, np.dtype(sample).itemsize, max_pixels, prefix="depth ")
    raw = rows.view((">" if int(msg.is_bigendian) else "<") + sample)
    return _metres_from_float(raw) if sample == "f4" else _metres_from_millimetres(raw)


def depth_from_compressed(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A compressedDepth CompressedImage (format "16UC1; compressedDepth png", "...rvl",
    or "32FC1; ..." as image_transport publishes it) -> float32 metres, NaN invalid."""
    encoding, codec = _parse_compressed_format(str(msg.format))
    data = bytes(msg.data)
    if len(data) <= _COMPRESSED_HEADER.size:
        raise ImageConversionError(f"compressedDepth too short: {len(data)} bytes")
    kind, quant_a, quant_b = _COMPRESSED_HEADER.unpack_from(data)
    if kind != 0:
        raise ImageConversionError(f"compressedDepth header unknown: format {kind} (expected 0)")
    payload = data[_COMPRESSED_HEADER.size:]
    raw = _decode_png(payload, max_pixels) if codec == "png" else _decode_rvl(payload, max_pixels)
    if encoding != "32FC1":
        return _metres_from_millimetres(raw)
    # Inverse depth v = A / d + B, quantised to 16 bits; v = 0 means no depth.
    if not (np.isfinite(quant_a) and np.isfinite(quant_b) and quant_a > 0):
        raise ImageConversionError(f"compressedDepth quantisation invalid: A={quant_a} B={quant_b}")
    with np.errstate(divide="ignore", invalid="ignore"):
        metres = (np.float32(quant_a) / (raw.astype(np.float32) - np.float32(quant_b)))
    metres[(raw == 0) | ~(metres > 0) | ~np.isfinite(metres)] = np.nan
    return metres


def depth_from_message(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Either kind of depth message, told apart by its fields: a CompressedImage has a
    format, an Image an encoding."""
    if hasattr(msg, "format"):
        return depth_from_compressed(msg, max_pixels)
    return depth_from_image(msg, max_pixels)


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
        raise ImageConversionError(f"unsupported compressedDepth encoding: {encoding!r} in format "
                         f"{fmt!r}; expected 16UC1 or 32FC1")
    words = transport.split()
    if not words or words == ["compressedDepth"] or words == ["compressedDepth", "png"]:
        return encoding, "png"
    if words == ["compressedDepth", "rvl"]:
        return encoding, "rvl"
    raise ImageConversionError(f"unsupported compressed depth format: {fmt!r}; expected "
                     f"'<encoding>; compressedDepth png' or '... rvl'")


def _decode_png(payload: bytes, max_pixels: int) -> np.ndarray:
    if not payload.startswith(_PNG_SIGNATURE) or len(payload) < 24:
        raise ImageConversionError("compressedDepth corrupt: payload is not a PNG")
    width, height = _declared_size(payload)
    if width * height > max_pixels:  # checked before decoding: a tiny file can claim anything
        raise ImageConversionError(f"depth image too large: {width}x{height} > {max_pixels} pixels")
    try:
        raw = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageConversionError(f"compressedDepth corrupt: {exc}") from None
    if raw is None:
        raise ImageConversionError("compressedDepth corrupt: the PNG is truncated or damaged")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise ImageConversionError(f"compressedDepth corrupt: PNG holds {raw.dtype} x "
                         f"{1 if raw.ndim == 2 else raw.shape[2]} channels, not 16-bit grey")
    return raw


def _decode_rvl(payload: bytes, max_pixels: int) -> np.ndarray:
    """RVL (run-length, variable-length nibbles; Wilson 2017) as image_transport writes
    it: uint32 width, uint32 height, then 32-bit words whose nibbles, most significant
    first, spell values of 3 bits per nibble (low bits first, bit 4 = more follow).
    The values repeat: count of zero pixels, count of non-zero pixels, then one
    zigzag-coded difference to the previous non-zero pixel per non-zero pixel."""
    if len(payload) < 8 or (len(payload) - 8) % 4:
        raise ImageConversionError(f"compressedDepth corrupt: RVL stream of {len(payload)} bytes")
    width, height = struct.unpack_from("<II", payload)
    pixels = width * height
    if pixels == 0:
        raise ImageConversionError(f"compressedDepth corrupt: RVL image size {width}x{height}")
    if pixels > max_pixels:
        raise ImageConversionError(f"depth image too large: {width}x{height} > {max_pixels} pixels")
    # each little-endian word's bytes, most significant first, split into nibbles
    word_bytes = np.frombuffer(payload, np.uint8, offset=8).reshape(-1, 4)[:, ::-1]
    nibbles = np.stack([word_bytes >> 4, word_bytes & 0xF], axis=-1).ravel()
    ends = np.flatnonzero(nibbles < 8)  # a value ends at a nibble without the "more" bit
    if not ends.size:
        raise ImageConversionError("compressedDepth corrupt: RVL stream holds no value")
    lengths = np.diff(ends, prepend=-1)
    if lengths.max() > _RVL_MAX_NIBBLES:
        raise ImageConversionError("compressedDepth corrupt: RVL value longer than 32 bits")
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
            raise ImageConversionError("compressedDepth corrupt: RVL stream ends early")
        zeros, nonzeros = int(values[index]), int(values[index + 1])
        filled += zeros
        if nonzeros:
            run_pixel.append(filled)
            run_value.append(index + 2)
            run_length.append(nonzeros)
        filled += nonzeros
        index += 2 + nonzeros
        if filled > pixels or index > len(values):
            raise ImageConversionError("compressedDepth corrupt: RVL runs do not fit the image")
    return (np.asarray(run_pixel, np.int64), np.asarray(run_value, np.int64),
            np.asarray(run_length, np.int64))


# -------------------------------------------------------------------- encoding
def encode_bgr(frame_bgr: np.ndarray, encoding: str):
    """Raw bytes and step of ``frame_bgr`` in ``encoding`` (one of OUTPUT_ENCODINGS)."""
    h, w = frame_bgr.shape[:2]
    if encoding == "bgr8":
        out = frame_bgr
    elif encoding == "rgb8":
        out = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
    elif encoding == "bgra8":
        out = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2BGRA)
    elif encoding == "rgba8":
        out = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGBA)
    elif encoding == "mono8":
        out = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    elif encoding in _YUV422_ENCODINGS:
        if w % 2:
            raise ImageConversionError(f"{encoding} needs an even width, got {w}")
        out = _bgr_to_yuv422(frame_bgr, uyvy=_YUV422_ENCODINGS[encoding] == cv2.COLOR_YUV2BGR_UYVY)
    else:
        raise ImageConversionError(f"cannot encode to {encoding!r}; use one of {OUTPUT_ENCODINGS}")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.nbytes // h


# BT.601 limited range ("video" levels), what cameras send and OpenCV's decoder expects.
_BGR_TO_YCBCR = np.array([[24.966, 128.553, 65.481],
                          [112.0, -74.203, -37.797],
                          [-18.214, -93.786, 112.0]]) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def _bgr_to_yuv422(frame_bgr: np.ndarray, uyvy: bool) -> np.ndarray:
    ycc = frame_bgr.astype(np.float32) @ _BGR_TO_YCBCR.T.astype(np.float32) + _YCBCR_OFFSET
    y = ycc[:, :, 0]
    u = (ycc[:, 0::2, 1] + ycc[:, 1::2, 1]) / 2
    v = (ycc[:, 0::2, 2] + ycc[:, 1::2, 2]) / 2
    h, w = y.shape
    planes = (u, y[:, 0::2], v, y[:, 1::2]) if uyvy else (y[:, 0::2], u, y[:, 1::2], v)
    out = np.stack(planes, axis=-1).round().clip(0, 255).astype(np.uint8)
    return out.reshape(h, w * 2)


def compress_bgr(frame_bgr: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(f"cannot compress to {fmt!r}; use one of {COMPRESSED_FORMATS}")
    ext, params = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]) if fmt == "jpeg" else (".png", [])
    ok, buf = cv2.imencode(ext, frame_bgr, params)
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode {fmt}")
    return buf.tobytes()


def encode_compressed_depth(depth_mm: np.ndarray, png_level: int = 3) -> tuple[str, bytes]:
    """(format, data) of a 16UC1 millimetre image as image_transport's compressedDepth
    PNG, for publishing (replay); ``png_level`` trades CPU for size."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(depth_mm, np.uint16),
                           [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise ImageConversionError("compressedDepth encoding failed: OpenCV could not write the PNG")
    return "16UC1; compressedDepth png", _COMPRESSED_HEADER.pack(0, 0.0, 0.0) + png.tobytes()


def to_image_msg(frame_bgr: np.ndarray, encoding: str, header=None):
    """A sensor_msgs/Image holding ``frame_bgr`` in ``encoding``."""
    from sensor_msgs.msg import Image

    data, step = encode_bgr(frame_bgr, encoding)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = frame_bgr.shape[:2]
    msg.encoding, msg.is_bigendian, msg.step = encoding, 0, step
    msg.data = data
    return msg


def to_compressed_msg(frame_bgr: np.ndarray, fmt: str = "jpeg", header=None, quality: int = 90):
    """A sensor_msgs/CompressedImage holding ``frame_bgr`` as JPEG or PNG."""
    from sensor_msgs.msg import CompressedImage

    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = fmt
    msg.data = compress_bgr(frame_bgr, fmt, quality)
    return msg

"""sensor_msgs Image / CompressedImage <-> numpy BGR frames, with strict validation.

A camera driver can send anything: this module either returns a (H, W, 3) uint8 BGR
frame or raises ImageConversionError with the reason, which the node counts as a
dropped frame. The decoding side only reads message attributes, so it works on any
object shaped like the messages (and is tested without ROS).
"""
from __future__ import annotations

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


class ImageConversionError(ValueError):
    """The message cannot be turned into a frame; the text says why."""


def _explain_unsupported(encoding: str) -> str:
    e = encoding.lower()
    if any(tag in e for tag in ("16", "32", "64", "float")):
        return (f"16-bit/float encoding {encoding!r} (a depth image?); the pose input "
                f"needs 8-bit colour or mono: {', '.join(SUPPORTED_ENCODINGS)}")
    return f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"


def image_to_bgr(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into a new (H, W, 3) uint8 BGR array."""
    encoding = str(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if encoding in _COLOUR_ENCODINGS:
        channels, code = _COLOUR_ENCODINGS[encoding]
        row_bytes = width * channels
    elif encoding in _YUV422_ENCODINGS:
        code, channels, row_bytes = _YUV422_ENCODINGS[encoding], 2, width * 2
        if width % 2:
            raise ImageConversionError(f"{encoding} needs an even width, got {width}")
    else:
        raise ImageConversionError(_explain_unsupported(encoding))
    if width < 2 or height < 2:
        raise ImageConversionError(f"image too small: {width}x{height}")
    if width * height > max_pixels:
        raise ImageConversionError(f"image too large: {width}x{height} > {max_pixels} pixels")
    if int(msg.is_bigendian) not in (0, 1):
        raise ImageConversionError(f"is_bigendian must be 0 or 1, got {msg.is_bigendian}")
    # (8-bit samples have no byte order, so is_bigendian = 1 changes nothing here.)
    if step < row_bytes:
        raise ImageConversionError(f"step {step} < width {width} x {channels} bytes")
    data = msg.data
    size = len(data)
    if size != step * height:
        raise ImageConversionError(f"data length {size} != step {step} x height {height}")
    try:
        buf = np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a list of ints
        buf = np.frombuffer(bytes(data), dtype=np.uint8)
    rows = buf.reshape(height, step)[:, :row_bytes]
    pixels = rows.reshape(height, width, channels)
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
    if not (data[:3].tobytes() == b"\xff\xd8\xff" or data[:8].tobytes() == b"\x89PNG\r\n\x1a\n"):
        raise ImageConversionError("compressed data is neither JPEG nor PNG")
    # Check the declared size before decoding, so a tiny file cannot claim 100k x 100k.
    header_size = _declared_size(data)
    if header_size and header_size[0] * header_size[1] > max_pixels:
        raise ImageConversionError(f"image too large: {header_size[0]}x{header_size[1]}")
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if frame is None:
        raise ImageConversionError("compressed image is truncated or corrupt")
    if min(frame.shape[:2]) < 2:
        raise ImageConversionError(f"image too small: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def _declared_size(data: np.ndarray):
    """(width, height) from a PNG IHDR or JPEG SOF header, or None."""
    raw = data.tobytes()
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

"""Image message <-> numpy conversion: every supported encoding, and every way a
message can be malformed (the node must drop those, never crash)."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lapx_ros.ros.convert import (
    OUTPUT_ENCODINGS,
    ImageConversionError,
    compress_bgr,
    compressed_to_bgr,
    encode_bgr,
    image_to_bgr,
)


def image_msg(frame_bgr, as_encoding, **overrides):
    data, step = encode_bgr(frame_bgr, as_encoding)
    fields = dict(height=frame_bgr.shape[0], width=frame_bgr.shape[1], encoding=as_encoding,
                  is_bigendian=0, step=step, data=data)
    fields.update(overrides)
    return SimpleNamespace(**fields)


def smooth_frame(h=24, w=32):
    """A frame without sharp colour edges, so chroma subsampling loses little."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (h + w)], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "bgra8", "rgba8"])
def test_colour_encodings_round_trip_exactly(encoding):
    frame = np.random.default_rng(0).integers(0, 256, (7, 10, 3), dtype=np.uint8)
    assert np.array_equal(image_to_bgr(image_msg(frame, encoding)), frame)


def test_mono8_gives_grey_bgr():
    frame = smooth_frame()
    out = image_to_bgr(image_msg(frame, "mono8"))
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert out.shape == frame.shape and np.array_equal(out[:, :, 0], grey)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuyv", "yuv422_yuy2"])
def test_yuv422_round_trip_close(encoding):
    frame = smooth_frame()
    out = image_to_bgr(image_msg(frame, encoding))
    assert np.abs(out.astype(int) - frame).mean() < 4


def test_row_padding_is_skipped():
    frame = smooth_frame(5, 6)
    data = b"".join(frame[r].tobytes() + b"\xee" * 6 for r in range(5))
    msg = SimpleNamespace(height=5, width=6, encoding="bgr8", is_bigendian=0, step=24, data=data)
    assert np.array_equal(image_to_bgr(msg), frame)


def test_rclpy_style_array_data():
    import array
    frame = smooth_frame(4, 4)
    msg = image_msg(frame, "bgr8")
    msg.data = array.array("B", msg.data)
    assert np.array_equal(image_to_bgr(msg), frame)


@pytest.mark.parametrize("overrides, words", [
    (dict(encoding="16UC1"), "16-bit"),
    (dict(encoding="32FC1"), "16-bit/float"),
    (dict(encoding="rgb16"), "16-bit"),
    (dict(encoding="hsv8"), "unsupported encoding"),
    (dict(encoding=""), "unsupported encoding"),
    (dict(step=10), "step"),
    (dict(height=9), "data length"),
    (dict(width=11), "step"),
    (dict(data=b""), "data length"),
    (dict(width=0, height=0, step=0, data=b""), "too small"),
    (dict(width=1, height=1, step=3, data=b"abc"), "too small"),
    (dict(is_bigendian=7), "is_bigendian"),
])
def test_malformed_images_raise_with_reason(overrides, words):
    msg = image_msg(smooth_frame(8, 10), "bgr8", **overrides)
    with pytest.raises(ImageConversionError, match=words):
        image_to_bgr(msg)


def test_big_endian_flag_on_8bit_data_is_harmless():
    frame = smooth_frame(4, 6)
    assert np.array_equal(image_to_bgr(image_msg(frame, "bgr8", is_bigendian=1)), frame)


def test_odd_width_yuv_refused():
    msg = SimpleNamespace(height=2, width=3, encoding="yuyv", is_bigendian=0, step=6, data=bytes(12))
    with pytest.raises(ImageConversionError, match="even width"):
        image_to_bgr(msg)


def test_huge_frame_refused_before_reading_data():
    msg = SimpleNamespace(height=4320, width=7680, encoding="bgr8", is_bigendian=0,
                          step=7680 * 3, data=b"")
    with pytest.raises(ImageConversionError, match="too large"):
        image_to_bgr(msg, max_pixels=3840 * 2160)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(fmt):
    frame = smooth_frame(32, 48)
    out = compressed_to_bgr(SimpleNamespace(format=fmt, data=compress_bgr(frame, fmt)))
    assert out.shape == frame.shape and np.abs(out.astype(int) - frame).mean() < 6


@pytest.mark.parametrize("fmt, data, words", [
    ("jpeg", b"", "only 0 bytes"),
    ("jpeg", b"not an image at all", "neither JPEG nor PNG"),
    ("tiff", b"II*\x00" + bytes(100), "unsupported compressed format"),
    ("16UC1; compressedDepth png", bytes(100), "depth"),
])
def test_bad_compressed_raise(fmt, data, words):
    with pytest.raises(ImageConversionError, match=words):
        compressed_to_bgr(SimpleNamespace(format=fmt, data=data))


def test_truncated_jpeg_refused():
    data = compress_bgr(smooth_frame(64, 64), "jpeg")
    with pytest.raises(ImageConversionError):
        compressed_to_bgr(SimpleNamespace(format="jpeg", data=data[:40]))


def test_compressed_claiming_huge_size_refused():
    png = bytearray(compress_bgr(smooth_frame(8, 8), "png"))
    png[16:20] = (100000).to_bytes(4, "big")
    png[20:24] = (100000).to_bytes(4, "big")
    with pytest.raises(ImageConversionError, match="too large"):
        compressed_to_bgr(SimpleNamespace(format="png", data=bytes(png)))


# --- property tests: random messages either convert to a valid frame or raise ------------

fields = st.fixed_dictionaries({
    "height": st.integers(0, 12),
    "width": st.integers(0, 12),
    "encoding": st.sampled_from(list(OUTPUT_ENCODINGS) + ["mono16", "32FC1", "bayer_rggb8", "x"]),
    "is_bigendian": st.integers(0, 2),
    "step": st.integers(0, 60),
    "data": st.binary(max_size=600),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields)
def test_fuzzed_images_never_crash(msg_fields):
    msg = SimpleNamespace(**msg_fields)
    try:
        frame = image_to_bgr(msg)
    except ImageConversionError:
        return
    assert frame.dtype == np.uint8 and frame.shape == (msg.height, msg.width, 3)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20), st.integers(1, 20), st.sampled_from(["bgr8", "rgb8", "bgra8", "rgba8"]),
       st.integers(0, 2), st.data())
def test_any_valid_frame_round_trips(h, w, encoding, pad, data):
    frame = np.frombuffer(data.draw(st.binary(min_size=h * w * 3, max_size=h * w * 3)),
                          np.uint8).reshape(h, w, 3)
    if min(h, w) < 2:
        return
    raw, step = encode_bgr(frame, encoding)
    rows = [raw[r * step:(r + 1) * step] + b"\0" * pad for r in range(h)]
    msg = SimpleNamespace(height=h, width=w, encoding=encoding, is_bigendian=0,
                          step=step + pad, data=b"".join(rows))
    assert np.array_equal(image_to_bgr(msg), frame)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400), st.sampled_from(["jpeg", "png", ""]))
def test_fuzzed_compressed_never_crash(data, fmt):
    for payload in (data, b"\xff\xd8\xff" + data, b"\x89PNG\r\n\x1a\n" + data):
        try:
            frame = compressed_to_bgr(SimpleNamespace(format=fmt, data=payload))
        except ImageConversionError:
            continue
        assert frame.ndim == 3 and frame.shape[2] == 3

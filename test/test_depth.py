"""Depth: decoding depth messages (ros/convert.py), robust depth per joint and the stream
that pairs depth images with frames (runtime/depth.py)."""
import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from lapx_ros.layouts import MPII_16
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.ros.convert import (ImageConversionError, depth_from_compressed, depth_from_image,
                                  depth_from_message, encode_compressed_depth)
from lapx_ros.runtime.depth import (BodyDepth, DepthError, DepthSettings, DepthStream,
                                    JointDepthEstimator, torso_joints)
from lapx_ros.runtime.frames import reason_kind
from lapx_ros.testing.depth_scenes import TiltedPlane, body_mask, millimetres, person_scene


# ------------------------------------------------------------------ message builders
def image_msg(array: np.ndarray, encoding: str, big_endian: bool = False, pad: int = 0):
    order = ">" if big_endian else "<"
    typed = array.astype(array.dtype.newbyteorder(order))
    rows = typed.view(np.uint8).reshape(array.shape[0], -1)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return SimpleNamespace(encoding=encoding, height=array.shape[0], width=array.shape[1],
                           step=rows.shape[1], is_bigendian=int(big_endian), data=rows.tobytes())


PNG16 = "16UC1; compressedDepth png"
RVL16 = "16UC1; compressedDepth rvl"


def compressed_msg(fmt: str, data: bytes):
    return SimpleNamespace(format=fmt, data=data)


def header(a: float = 0.0, b: float = 0.0, kind: int = 0) -> bytes:
    return struct.pack("<iff", kind, a, b)


def png16(raw: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", raw.astype(np.uint16))
    assert ok
    return buf.tobytes()


# Inverse-depth quantisation of image_transport's defaults (depth_max 10 m, Z0 100).
QUANT_A = 100.0 * 101.0
QUANT_B = 1.0 - QUANT_A / 10.0


def inverse_depth(metres: np.ndarray) -> np.ndarray:
    """16-bit inverse depth as the 32FC1 compressedDepth publisher computes it."""
    out = np.zeros(metres.shape, np.uint16)
    near = metres < 10.0  # False for NaN
    out[near] = (np.float32(QUANT_A) / metres[near] + np.float32(QUANT_B)).astype(np.uint16)
    return out


def rvl(raw: np.ndarray) -> bytes:
    """RVL stream (with its width/height prefix) written from the format's description."""
    values, previous, flat, i = [], 0, raw.ravel().astype(np.int64), 0
    while i < flat.size:
        start = i
        while i < flat.size and flat[i] == 0:
            i += 1
        values.append(i - start)
        start = i
        while i < flat.size and flat[i] != 0:
            i += 1
        values.append(i - start)
        for v in flat[start:i]:
            delta = int(v) - previous
            values.append((delta << 1) if delta >= 0 else ((-delta) << 1) - 1)
            previous = int(v)
    nibbles = []
    for value in values:
        while True:
            low, value = value & 7, value >> 3
            nibbles.append(low | (8 if value else 0))
            if not value:
                break
    nibbles += [0] * (-len(nibbles) % 8)
    words = [int("".join(f"{n:x}" for n in nibbles[k:k + 8]), 16)
             for k in range(0, len(nibbles), 8)]
    return struct.pack("<II", raw.shape[1], raw.shape[0]) + struct.pack(f"<{len(words)}I", *words)


def sample_millimetres(height=6, width=7, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mm = rng.integers(300, 9000, (height, width)).astype(np.uint16)
    mm[0, :3] = 0
    mm[-1, -2:] = 0
    mm[2, 4] = 0
    return mm


# ------------------------------------------------------------------ raw depth images
def test_16uc1_millimetres_become_metres_with_nan_for_zero():
    mm = sample_millimetres()
    metres = depth_from_image(image_msg(mm, "16UC1"))
    assert metres.dtype == np.float32 and metres.shape == mm.shape
    assert np.array_equal(np.isnan(metres), mm == 0)
    assert np.allclose(metres[mm > 0], mm[mm > 0] / 1000.0)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_16_bit_big_endian_rows_with_padding(encoding):
    mm = sample_millimetres(seed=1)
    metres = depth_from_image(image_msg(mm, encoding, big_endian=True, pad=6))
    assert np.allclose(metres[mm > 0], mm[mm > 0] / 1000.0)
    assert np.isnan(metres[mm == 0]).all()


def test_32fc1_keeps_metres_and_refuses_nan_inf_zero_and_negative():
    m = np.array([[1.25, np.nan, np.inf], [-np.inf, 0.0, -2.0], [3.5, 0.001, 9.75]], np.float32)
    metres = depth_from_image(image_msg(m, "32FC1", pad=4))
    assert np.array_equal(np.isnan(metres), ~(np.isfinite(m) & (m > 0)))
    assert np.array_equal(metres[[0, 2, 2, 2], [0, 0, 1, 2]], m[[0, 2, 2, 2], [0, 0, 1, 2]])


def test_data_given_as_a_list_of_ints():
    mm = sample_millimetres(seed=2)
    msg = image_msg(mm, "16UC1")
    msg.data = list(msg.data)
    expected = depth_from_image(image_msg(mm, "16UC1"))
    assert np.allclose(depth_from_image(msg), expected, equal_nan=True)


@pytest.mark.parametrize("change, reason", [
    (dict(encoding="bgr8"), "unsupported depth encoding"),
    (dict(encoding="8UC1"), "unsupported depth encoding"),
    (dict(data=b"\0" * 10), "depth data length 10 != step"),
    (dict(step=4), "depth step 4 < width"),
    (dict(width=0), "depth image too small"),
    (dict(is_bigendian=7), "is_bigendian"),
])
def test_bad_raw_depth_is_refused_with_its_reason(change, reason):
    msg = image_msg(sample_millimetres(), "16UC1")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ImageConversionError, match=reason):
        depth_from_image(msg)


def test_oversized_depth_is_refused_before_copying():
    with pytest.raises(ImageConversionError, match="depth image too large"):
        depth_from_image(image_msg(sample_millimetres(), "16UC1"), max_pixels=20)


# ------------------------------------------------------------------ compressedDepth
@pytest.mark.parametrize("fmt", ["16UC1; compressedDepth png", "16UC1; compressedDepth", "16UC1"])
def test_compressed_16uc1_png_round_trip(fmt):
    mm = sample_millimetres(40, 30)
    metres = depth_from_compressed(compressed_msg(fmt, header() + png16(mm)))
    assert np.array_equal(np.isnan(metres), mm == 0)
    assert np.allclose(metres[mm > 0], mm[mm > 0] / 1000.0)


def test_compressed_32fc1_png_inverse_depth_round_trip():
    rng = np.random.default_rng(3)
    m = rng.uniform(0.3, 9.0, (24, 32)).astype(np.float32)
    m[0, 0], m[1, 1], m[2, 2] = np.nan, 12.0, 2.0
    msg = compressed_msg("32FC1; compressedDepth png",
                         header(QUANT_A, QUANT_B) + png16(inverse_depth(m)))
    metres = depth_from_compressed(msg)
    assert np.isnan(metres[0, 0]) and np.isnan(metres[1, 1])  # no depth, beyond depth_max
    known = np.isfinite(m) & (m < 10)
    step = m[known] ** 2 / QUANT_A  # one quantisation step at that depth
    assert (np.abs(metres[known] - m[known]) <= step * 1.01 + 1e-6).all()
    assert abs(metres[2, 2] - 2.0) < 0.0005


def test_compressed_rvl_round_trips_16uc1_and_32fc1():
    mm = sample_millimetres(20, 17, seed=4)
    mm[5:9] = 0  # long zero runs, and a delta wrapping below zero
    mm[10, 3], mm[10, 4] = 65535, 1
    metres = depth_from_compressed(compressed_msg("16UC1; compressedDepth rvl", header() + rvl(mm)))
    assert np.array_equal(np.isnan(metres), mm == 0)
    assert np.allclose(metres[mm > 0], mm[mm > 0] / 1000.0)

    m = np.random.default_rng(5).uniform(0.5, 8.0, (12, 9)).astype(np.float32)
    m[3, :] = np.nan
    inv = inverse_depth(m)
    got = depth_from_compressed(compressed_msg("32FC1; compressedDepth rvl",
                                               header(QUANT_A, QUANT_B) + rvl(inv)))
    assert np.isnan(got[3]).all()
    rows = np.arange(12) != 3
    assert np.allclose(got[rows], m[rows], atol=8.0 ** 2 / QUANT_A * 1.01)


def test_an_all_zero_rvl_image_is_all_nan():
    zeros = np.zeros((8, 8), np.uint16)
    metres = depth_from_compressed(compressed_msg(RVL16, header() + rvl(zeros)))
    assert metres.shape == (8, 8) and np.isnan(metres).all()


def test_the_encoder_for_replay_round_trips():
    mm = sample_millimetres(30, 40, seed=6)
    fmt, data = encode_compressed_depth(mm)
    assert fmt == "16UC1; compressedDepth png" and data[:12] == header()
    metres = depth_from_compressed(compressed_msg(fmt, data))
    assert np.allclose(metres[mm > 0], mm[mm > 0] / 1000.0) and np.isnan(metres[mm == 0]).all()


def test_either_kind_of_message_is_decoded():
    mm = sample_millimetres(seed=10)
    expected = depth_from_image(image_msg(mm, "16UC1"))
    for msg in (image_msg(mm, "16UC1"), compressed_msg(PNG16, header() + png16(mm))):
        assert np.array_equal(depth_from_message(msg), expected, equal_nan=True)


def good_png_payload() -> bytes:
    return header() + png16(sample_millimetres(30, 40))


EIGHT_BIT_PNG = cv2.imencode(".png", np.ones((4, 4), np.uint8))[1].tobytes()
ONES_RVL = rvl(np.ones((4, 4), np.uint16))


@pytest.mark.parametrize("fmt, data, reason", [
    (PNG16, header()[:10], "compressedDepth too short"),
    (PNG16, header(), "compressedDepth too short"),
    (PNG16, good_png_payload()[:60], "corrupt"),
    (PNG16, header() + b"\x89PNG\r\n\x1a\n" + bytes(200), "corrupt"),
    (PNG16, header() + b"not a png at all, junk", "not a PNG"),
    (PNG16, header(kind=3) + png16(np.ones((4, 4))), "header unknown"),
    (PNG16, header() + EIGHT_BIT_PNG, "not 16-bit grey"),
    ("32FC1; compressedDepth png", header(0.0, 1.0) + png16(np.ones((4, 4))),
     "quantisation invalid"),
    ("jpeg", good_png_payload(), "unsupported compressedDepth encoding"),
    ("bgr8; compressedDepth png", good_png_payload(), "unsupported compressedDepth encoding"),
    ("16UC1; compressedDepth zstd", good_png_payload(), "unsupported compressed depth format"),
    (RVL16, header() + ONES_RVL[:-4], "RVL"),
    (RVL16, header() + ONES_RVL[:-1], "RVL stream of"),
    (RVL16, header() + struct.pack("<II", 0, 5) + bytes(4), "RVL image size"),
    (RVL16, header() + struct.pack("<II", 4, 4) + b"\xff" * 8 + bytes(4), "longer than 32 bits"),
    (RVL16, header() + struct.pack("<II", 2, 2) + struct.pack("<I", 0x7000_0000), "do not fit"),
])
def test_bad_compressed_depth_is_refused_with_its_reason(fmt, data, reason):
    with pytest.raises(ImageConversionError, match=reason):
        depth_from_compressed(compressed_msg(fmt, data))


def test_a_tiny_compressed_image_claiming_a_huge_size_is_refused_before_decoding():
    png = bytearray(png16(np.ones((4, 4))))
    png[16:24] = struct.pack(">II", 100_000, 100_000)
    with pytest.raises(ImageConversionError, match="too large"):
        depth_from_compressed(compressed_msg("16UC1; compressedDepth png", header() + bytes(png)))
    claim = struct.pack("<II", 100_000, 100_000) + bytes(4)
    with pytest.raises(ImageConversionError, match="too large"):
        depth_from_compressed(compressed_msg("16UC1; compressedDepth rvl", header() + claim))


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_damaged_compressed_depth_never_raises_anything_but_a_conversion_error(codec):
    mm = sample_millimetres(16, 16, seed=7)
    good = header() + (png16(mm) if codec == "png" else rvl(mm))
    rng = np.random.default_rng(8)
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(good)
        for pos in rng.integers(12, len(data), rng.integers(1, 6)):
            data[pos] = rng.integers(0, 256)
        data = bytes(data[:rng.integers(13, len(data) + 1)])
        try:
            metres = depth_from_compressed(compressed_msg(f"16UC1; compressedDepth {codec}", data))
        except ImageConversionError:
            outcomes["refused"] += 1
        else:
            assert metres.dtype == np.float32 and metres.ndim == 2
            outcomes["decoded"] += 1
    assert outcomes["refused"] > 0


# ------------------------------------------------------------------------ sampling
CAMERA = PinholeCamera(525.0, 525.0, 319.5, 239.5, 640, 480)
TORSO = torso_joints(MPII_16.joint_names)
# MPII-16 joints of a person standing facing the camera, in colour pixels.
BODY_PIXELS = np.array([
    [290, 420], [292, 370], [295, 310], [345, 310], [348, 370], [350, 420],  # legs, hips
    [320, 310], [320, 210], [320, 190], [320, 150],                          # pelvis .. head
    [250, 300], [262, 250], [285, 210], [355, 210], [378, 250], [390, 300],  # arms
], np.float64)
WALL = 4.5


def silhouette(pixels=BODY_PIXELS, shape=(480, 640), scale=1.0):
    return body_mask(shape, pixels * scale, MPII_16.skeleton, TORSO, thickness=22 * scale)


def scene(z0=2.0, tilt_x=0.3, tilt_y=-0.2):
    """A person on a tilted plane at about z0 in front of a wall; and that plane."""
    plane = TiltedPlane(z0, tilt_x, tilt_y)
    return person_scene(CAMERA, plane, silhouette(), WALL), plane


def estimator(**settings):
    return JointDepthEstimator(DepthSettings(**settings), TORSO)


def locate(depth, pixels=BODY_PIXELS, seen=None, camera=CAMERA, depth_camera=None, **settings):
    people = pixels[None] if pixels.ndim == 2 else pixels
    seen = np.ones(people.shape[:2], bool) if seen is None else seen
    return estimator(**settings).locate(depth, people, seen, camera, depth_camera)


def truth(plane, pixels=BODY_PIXELS):
    return plane.points(CAMERA, pixels)


def test_joints_on_a_tilted_person_are_within_2_cm():
    depth, person = scene()
    result = locate(depth)
    assert isinstance(result, BodyDepth) and result.joints_with_depth == 16
    error = np.linalg.norm(result.positions[0] - truth(person), axis=1)
    assert error.max() < 0.02, error


def test_noise_holes_and_edge_shadows_keep_joints_within_2_cm():
    # What a stereo camera adds: noise growing with distance, scattered holes, and a band
    # without depth beside the body where one camera sees the wall the other cannot.
    depth, person = scene()
    rng = np.random.default_rng(9)
    depth *= 1.0 + rng.normal(0.0, 0.005, depth.shape).astype(np.float32)
    depth[rng.random(depth.shape) < 0.1] = 0.0
    mask = silhouette()
    shadow = cv2.dilate(mask.astype(np.uint8), np.ones((1, 15), np.uint8)).astype(bool) & ~mask
    depth[shadow] = 0.0
    result = locate(depth)
    assert result.joints_with_depth == 16
    assert np.linalg.norm(result.positions[0] - truth(person), axis=1).max() < 0.02


def test_a_published_16uc1_scene_decodes_to_joints_within_2_cm():
    depth, plane = scene()
    depth[200:230, 400:460] = np.nan  # no depth there: 0 in the message
    msg = image_msg(millimetres(depth), "16UC1")
    result = locate(depth_from_image(msg))
    assert np.linalg.norm(result.positions[0] - truth(plane), axis=1).max() < 0.02


def test_joints_at_the_body_edge_take_the_limb_not_the_wall():
    depth, person = scene()
    edge = BODY_PIXELS.copy()
    edge[10] += (-11, 0)  # the wrist moved to its limb's edge: window part limb, part wall
    edge[0] += (12, 0)    # the ankle likewise
    for joint in (0, 10):
        u, v = edge[joint].astype(int)
        wall_share = (depth[v - 2:v + 3, u - 2:u + 3] == WALL).mean()
        assert 0.5 < wall_share < 0.8  # the case really is mixed, mostly wall
    result = locate(depth, edge)
    error = np.linalg.norm(result.positions[0] - truth(person, edge), axis=1)
    assert error[[0, 10]].max() < 0.02


def test_a_joint_off_the_body_on_the_wall_is_rejected():
    depth, _ = scene()
    off = BODY_PIXELS.copy()
    off[15] = (440, 300)  # the left wrist estimated beside the arm, on the wall
    result = locate(depth, off)
    assert np.isnan(result.depths[0, 15]) and np.isnan(result.positions[0, 15]).all()
    assert result.joints_with_depth == 15


def test_zero_depth_holes_give_nan_not_a_guess():
    depth, person = scene()
    depth[195:226, 270:301] = np.nan  # a hole around the right shoulder (285, 210)
    result = locate(depth)
    assert np.isnan(result.positions[0, 12]).all()
    others = np.arange(16) != 12
    assert np.linalg.norm(result.positions[0, others] - truth(person)[others], axis=1).max() < 0.02


def test_a_few_valid_pixels_in_a_hole_are_not_enough():
    depth, _ = scene()
    hole = np.full((5, 5), np.nan, np.float32)
    hole[0, 0], hole[4, 4], hole[2, 2] = 2.0, 2.0, 2.0  # 3 valid pixels < min_pixels 4
    depth[248:253, 260:265] = hole  # the right elbow (262, 250)
    assert np.isnan(locate(depth).depths[0, 11])


def test_flying_pixels_in_front_are_ignored():
    depth, person = scene()
    depth[208:211, 284] = 0.9  # three pixels a metre in front of the right shoulder
    result = locate(depth)
    assert np.linalg.norm(result.positions[0, 12] - truth(person)[12]) < 0.02


def test_depth_outside_the_plausible_range_is_refused():
    depth, _ = scene(z0=5.0, tilt_x=0.0, tilt_y=0.0)
    assert np.isnan(locate(depth, max_depth=4.0).depths).all()
    near = np.full((480, 640), 0.15, np.float32)
    result = locate(near, min_depth=0.2)
    assert np.isnan(result.positions).all() and np.isnan(result.centres).all()


def test_a_hand_reaching_towards_the_camera_is_kept_an_occluder_is_not():
    depth, person = scene(tilt_x=0.0, tilt_y=0.0)
    u, v = BODY_PIXELS[10].astype(int)
    depth[v - 15:v + 16, u - 15:u + 16] = 1.4   # 0.6 m in front of the body: a hand reaching out
    depth[270:330, 380:400] = 0.5  # something 1.5 m in front of the left wrist (390, 300)
    result = locate(depth)
    assert abs(result.depths[0, 10] - 1.4) < 0.01
    assert np.isnan(result.depths[0, 15])


def test_unseen_joints_and_joints_outside_the_image_get_no_depth():
    depth, _ = scene()
    seen = np.ones((1, 16), bool)
    seen[0, 5] = False
    pixels = BODY_PIXELS.copy()
    pixels[9] = (320, -40)
    pixels[0] = (np.nan, np.nan)
    result = locate(depth, pixels, seen)
    assert np.isnan(result.depths[0, [0, 5, 9]]).all()
    assert result.joints_with_depth == 13


def test_the_torso_centre_is_the_mean_torso_pixel_at_the_median_torso_depth():
    depth, _ = scene(z0=2.0, tilt_x=0.0, tilt_y=0.0)
    result = locate(depth)
    centre_pixel = BODY_PIXELS[list(TORSO)].mean(axis=0)
    assert np.allclose(result.centres[0], CAMERA.back_project([centre_pixel], 2.0)[0], atol=1e-6)


def test_no_torso_depth_means_no_centre_but_limbs_keep_theirs():
    depth, person = scene()
    for i in TORSO:  # holes at every torso joint
        u, v = BODY_PIXELS[i].astype(int)
        depth[v - 4:v + 5, u - 4:u + 5] = np.nan
    result = locate(depth)
    assert np.isnan(result.centres).all()
    limbs = [0, 1, 4, 5, 10, 11, 14, 15]
    assert np.linalg.norm(result.positions[0, limbs] - truth(person)[limbs], axis=1).max() < 0.02


def test_a_lone_joint_with_depth_is_not_trusted():
    depth = np.full((480, 640), np.nan, np.float32)
    depth[145:156, 315:326] = 2.0  # depth only at the head: nothing to check it against
    assert np.isnan(locate(depth).depths).all()


def test_each_person_is_checked_against_their_own_depth():
    near_depth, near_person = scene(z0=1.8)
    far_pixels = BODY_PIXELS + (150, 0)
    far_mask = silhouette(far_pixels) & ~silhouette()
    depth = np.where(far_mask, TiltedPlane(3.5).image(CAMERA), near_depth).astype(np.float32)
    result = locate(depth, np.stack([BODY_PIXELS, far_pixels]))
    assert result.depths.shape == (2, 16) and result.centres.shape == (2, 3)
    assert abs(np.nanmedian(result.depths[1]) - 3.5) < 0.01
    near_ok = np.isfinite(result.depths[0])
    assert near_ok.sum() >= 14
    error = np.linalg.norm(result.positions[0, near_ok] - truth(near_person)[near_ok], axis=1)
    assert error.max() < 0.02


def test_no_people_gives_empty_results():
    result = locate(scene()[0], np.zeros((0, 16, 2)), np.zeros((0, 16), bool))
    assert result.depths.shape == (0, 16) and result.positions.shape == (0, 16, 3)
    assert result.centres.shape == (0, 3) and result.joints_with_depth == 0


def test_the_window_is_centred_on_the_pixel_the_joint_falls_in():
    depth = np.tile(1.0 + 0.001 * np.arange(640, dtype=np.float32), (480, 1))
    pixels = np.tile([[100.4, 200.0]], (16, 1))
    pixels[1] = (100.6, 200.0)
    result = locate(depth, pixels, window=1, min_pixels=1)
    assert result.depths[0, 0] == pytest.approx(1.100)
    assert result.depths[0, 1] == pytest.approx(1.101)


def test_a_half_resolution_depth_image_is_rescaled():
    half = PinholeCamera(262.5, 262.5, 159.5, 119.5, 320, 240)  # CAMERA.scaled_to(320, 240)
    assert CAMERA.scaled_to(320, 240) == half
    plane = TiltedPlane(2.0, 0.3, -0.2)
    depth = person_scene(half, plane, silhouette(shape=(240, 320), scale=0.5), WALL)
    result = locate(depth, window=3, min_pixels=3)
    assert np.linalg.norm(result.positions[0] - truth(plane), axis=1).max() < 0.02


def test_a_depth_image_of_another_aspect_ratio_needs_its_camera_info():
    depth = np.full((360, 640), 2.0, np.float32)  # the middle 360 rows of the colour view
    with pytest.raises(DepthError, match="depth image size differs"):
        locate(depth)
    cropped = PinholeCamera(525.0, 525.0, 319.5, 179.5, 640, 360)
    u, v = BODY_PIXELS[7].astype(int)
    depth[v - 60 - 5:v - 60 + 6, u - 5:u + 6] = 2.2  # the thorax, 60 rows higher in the crop
    result = locate(depth, depth_camera=cropped)
    assert result.depths[0, 7] == pytest.approx(2.2)
    assert np.isnan(result.depths[0, [0, 5]]).all()  # the ankles fall below the crop
    assert np.allclose(np.delete(result.depths[0], [0, 5, 7]), 2.0)


def test_a_distorted_colour_camera_gives_the_undistorted_rays():
    depth, _ = scene(tilt_x=0.0, tilt_y=0.0)
    lens = PinholeCamera(525.0, 525.0, 319.5, 239.5, 640, 480, (0.1, -0.05, 0.0, 0.0, 0.0))
    result = locate(depth, camera=lens)
    expected = lens.back_project(BODY_PIXELS, 2.0)
    assert np.allclose(result.positions[0], expected)
    assert not np.allclose(expected, CAMERA.back_project(BODY_PIXELS, 2.0), atol=0.005)


def test_the_colour_camera_must_know_its_image_size():
    with pytest.raises(DepthError, match="colour camera size unknown"):
        locate(scene()[0], camera=PinholeCamera(525.0, 525.0, 319.5, 239.5))


def test_torso_joints_of_the_layouts():
    assert TORSO == (2, 3, 6, 7, 12, 13)
    with pytest.raises(ValueError, match="no torso joint"):
        torso_joints(["nose", "left_eye"])


@pytest.mark.parametrize("bad", [dict(window=4), dict(window=0), dict(min_depth=3.0, max_depth=2.0),
                                 dict(min_pixels=26), dict(max_behind=0.0)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        DepthSettings(**bad)


# -------------------------------------------------------------------------- stream
def stream_of(**settings):
    return DepthStream(DepthSettings(**settings), TORSO, depth_from_message)


def scene_msg(stamp_depth=None):
    depth, plane = scene()
    return image_msg(millimetres(depth), "16UC1"), plane


def stream_locate(stream, stamp, camera=CAMERA, size=(640, 480), wait=0.0):
    return stream.locate(stamp, BODY_PIXELS[None], np.ones((1, 16), bool), camera, size,
                         tolerance=0.01, wait=wait)


def test_the_stream_pairs_decodes_and_locates():
    stream = stream_of()
    msg, plane = scene_msg()
    stream.add(5.0, msg)
    body, reason = stream_locate(stream, 5.002)
    assert reason is None and body.joints_with_depth == 16
    assert np.linalg.norm(body.positions[0] - truth(plane), axis=1).max() < 0.02
    report = stream.report()
    assert (report.received, report.frames_with_depth, report.frames_without_depth,
            report.joints_with_depth, report.dropped) == (1, 1, 0, 16, {})


def test_the_colour_camera_info_of_another_resolution_is_scaled_to_the_frame():
    stream = stream_of()
    msg, plane = scene_msg()
    stream.add(5.0, msg)
    body, _ = stream_locate(stream, 5.0, camera=CAMERA.scaled_to(1280, 960))
    assert np.linalg.norm(body.positions[0] - truth(plane), axis=1).max() < 0.02


def test_without_a_colour_camera_the_depth_camera_info_stands_in_and_nothing_is_guessed():
    stream = stream_of()
    msg, plane = scene_msg()
    stream.add(5.0, msg)
    stream.add(6.0, msg)
    body, reason = stream_locate(stream, 5.0, camera=None)
    assert body is None and reason.startswith("no camera model:")
    stream.set_camera(CAMERA)
    body, reason = stream_locate(stream, 6.0, camera=None)
    assert reason is None and np.linalg.norm(body.positions[0] - truth(plane), axis=1).max() < 0.02


@pytest.mark.parametrize("change, kind", [
    (dict(encoding="rgb8"), "unsupported depth encoding"),
    (dict(data=b"\0" * 10), "depth data length N != step N x height N"),
    (dict(width=200, height=100, step=400, data=bytes(400 * 100)), "depth image size differs"),
])
def test_bad_depth_is_counted_by_kind_and_gives_no_3d(change, kind):
    stream = stream_of()
    msg, _ = scene_msg()
    vars(msg).update(change)
    stream.add(5.0, msg)
    body, reason = stream_locate(stream, 5.0)
    assert body is None and reason_kind(reason) == kind
    report = stream.report()
    assert report.dropped == {kind: 1} and report.frames_without_depth == 1


def test_corrupt_compressed_depth_is_counted():
    stream = stream_of()
    stream.add(1.0, compressed_msg(PNG16, header() + b"not a png"))
    body, reason = stream_locate(stream, 1.0)
    assert body is None and stream.report().dropped == {"compressedDepth corrupt": 1}


def test_unmatched_stamps_are_counted_with_the_gap():
    stream = stream_of()
    body, reason = stream_locate(stream, 1.0)
    assert reason == "no depth image received yet"
    msg, _ = scene_msg()
    stream.add(2.0, msg)
    body, reason = stream_locate(stream, 1.0, wait=5.0)  # newer depth came: no wait
    assert body is None and "+1.000 s" in reason
    assert stream.report().dropped == {"no depth image received yet": 1, "depth stamps do not match": 1}


def test_depth_that_comes_after_its_frame_went_on_is_counted_too_late():
    stream = stream_of()
    msg, _ = scene_msg()
    stream.add(0.9, msg)
    body, reason = stream_locate(stream, 1.0, wait=0.05)
    assert body is None and reason.startswith("no depth image in time:") and "-0.100 s" in reason
    assert stream.add(1.0, msg) is not None  # its depth, after the frame went out
    report = stream.report()
    assert (report.frames_without_depth, report.frames_too_late) == (1, 1)
    assert report.dropped == {"no depth image in time": 1}
    assert report.last_reason.startswith("depth image too late:")


def test_a_depth_clock_that_jumps_back_starts_afresh():
    stream = stream_of()
    msg, _ = scene_msg()
    stream.add(100.0, msg)
    stream.add(1.0, msg)  # the camera restarted: 100.0 would only end waits early
    assert stream.report().unused == 1
    body, reason = stream_locate(stream, 1.0)
    assert reason is None


def test_new_settings_apply_to_the_next_frame():
    stream = stream_of()
    msg, _ = scene_msg()
    stream.add(1.0, msg)
    stream.add(2.0, msg)
    assert stream_locate(stream, 1.0)[0].joints_with_depth == 16
    stream.settings = DepthSettings(max_depth=1.0)  # the person at about 2 m is out of range
    body, reason = stream_locate(stream, 2.0)
    assert reason is None and body.joints_with_depth == 0 and stream.settings.max_depth == 1.0

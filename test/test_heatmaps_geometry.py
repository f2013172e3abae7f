"""Heatmap encoding/decoding, box and crop geometry and joint layouts (numpy only)."""
import numpy as np
import pytest

from lapx_ros.geometry import (apply_affine, box_intersection, box_iou, box_to_center_size, crop_transform,
                               invert_affine, keypoints_to_box, letterbox, non_max_suppression)
from lapx_ros.heatmaps import dark_blur_kernel, decode, encode, flip_heatmaps, from_heatmap_coords, to_heatmap_coords
from lapx_ros.layouts import COCO_17, LAYOUTS, LSP_14, MPII_16, get_layout


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_permutation_is_an_involution_that_swaps_left_and_right(layout):
    perm = layout.flip_permutation()
    assert [perm[p] for p in perm] == list(range(layout.num_joints))
    for i, j in enumerate(perm):
        name = layout.joint_names[i]
        if "left" in name:
            assert layout.joint_names[j] == name.replace("left", "right")
        elif "right" in name:
            assert layout.joint_names[j] == name.replace("right", "left")
        else:
            assert i == j


def test_layout_sizes_and_lookup():
    assert (MPII_16.num_joints, LSP_14.num_joints, COCO_17.num_joints) == (16, 14, 17)
    assert get_layout("mpii16") is MPII_16
    with pytest.raises(ValueError):
        get_layout("nope")


@pytest.mark.parametrize("method,tolerance", [("dark", 0.05), ("quarter", 0.3), ("argmax", 0.5)])
def test_encode_decode_round_trip_is_sub_pixel(method, tolerance):
    rng = np.random.default_rng(1)
    points = rng.uniform(4, 27, size=(16, 2))
    targets, weights = encode(points, np.ones(16), (32, 32), sigma=1.5)
    assert targets.shape == (16, 32, 32) and weights.min() == 1
    coords, peaks = decode(targets[None], method)
    error = np.abs(coords[0] - points).max()
    assert error <= tolerance, error
    assert np.all(peaks > 0.7) and np.all(peaks <= 1.0)


def test_dark_decodes_stride_2_heatmaps_with_a_window_of_the_same_input_size():
    """The fine head's targets have twice the sigma in heatmap pixels; DARK's window follows,
    and decodes its blurred, noisy peaks as well as stride 4's window decodes its own."""
    assert (dark_blur_kernel(4), dark_blur_kernel(2)) == (5, 11)
    rng = np.random.default_rng(2)
    points = rng.uniform(40, 88, size=(16, 2))  # input pixels, inside a 128 crop
    errors = {}
    for stride, sigma in ((4, 1.5), (2, 3.0)):
        size = 128 // stride
        targets, _ = encode(to_heatmap_coords(points, stride), np.ones(16), (size, size), sigma=sigma)
        noisy = targets + rng.normal(0, 0.03, targets.shape).astype(np.float32)
        coords, _ = decode(noisy[None], "dark", dark_blur_kernel(stride))
        errors[stride] = np.abs(from_heatmap_coords(coords[0], stride) - points).mean()
    assert errors[2] <= 0.15 and errors[4] <= 0.15, errors  # argmax: 0.5 and 1.0 input pixels


def test_encode_drops_joints_outside_or_invisible():
    points = np.array([[10.0, 10.0], [-5.0, 3.0], [3.0, 3.0], [np.nan, 1.0]])
    targets, weights = encode(points, np.array([1, 1, 0, 1]), (16, 16))
    assert weights.tolist() == [1, 0, 0, 0]
    assert targets[1:].max() == 0


def test_decode_rejects_bad_input():
    with pytest.raises(ValueError):
        decode(np.zeros((16, 8, 8)))
    with pytest.raises(ValueError):
        decode(np.zeros((1, 16, 8, 8)), method="magic")


def test_heatmap_coordinates_round_trip():
    pts = np.array([[0.0, 0.0], [127.0, 63.5]])
    assert np.allclose(from_heatmap_coords(to_heatmap_coords(pts, 4), 4), pts)


def test_flip_heatmaps_mirrors_and_swaps():
    hm = np.zeros((1, 16, 8, 8), np.float32)
    hm[0, 0, 2, 1] = 1  # right ankle near the left edge
    flipped = flip_heatmaps(hm, MPII_16.flip_permutation())
    assert flipped[0, 5, 2, 6] == 1  # becomes the left ankle near the right edge


def test_crop_transform_maps_region_to_output_and_back():
    center, size = box_to_center_size((100, 50, 160, 250), aspect_ratio=0.75, padding=1.0)
    assert np.isclose(size[0] / size[1], 0.75)
    m = crop_transform(center, size, (96, 128), rotation_deg=30)
    assert np.allclose(apply_affine(center, m), [48, 64])
    pts = np.array([[110.0, 60.0], [150.0, 240.0]])
    assert np.allclose(apply_affine(apply_affine(pts, m), invert_affine(m)), pts)


def test_keypoints_to_box_ignores_invalid_points():
    pts = np.array([[1.0, 2.0], [5.0, 9.0], [np.nan, 0.0], [100.0, 100.0]])
    assert keypoints_to_box(pts, np.array([1, 1, 1, 0])) == (1.0, 2.0, 5.0, 9.0)
    assert keypoints_to_box(pts, np.zeros(4)) is None


def test_letterbox_keeps_the_aspect_and_pads_right_and_bottom():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:200, 300:400] = (255, 0, 0)  # blue in BGR
    image, (sx, sy), offset = letterbox(frame, 384, 384)
    assert image.shape == (384, 384, 3) and image.dtype == np.uint8 and offset == (0, 0)
    assert sx == pytest.approx(0.6) and sy == pytest.approx(0.6)
    assert not image[288:].any() and image[:288].any()  # padding below the scaled frame
    blue = np.argwhere(image[:, :, 0] > 128)  # channels kept: blue is the first
    assert blue[:, 0].min() == pytest.approx(60, abs=1) and blue[:, 0].max() == pytest.approx(119, abs=1)
    assert blue[:, 1].min() == pytest.approx(180, abs=1) and blue[:, 1].max() == pytest.approx(239, abs=1)
    tall = np.full((400, 100, 3), 7, np.uint8)
    image, (sx, sy), _ = letterbox(tall, 256, 128)
    assert (sx, sy) == (pytest.approx(0.64), pytest.approx(0.64))
    assert (image[:, :64] == 7).all() and not image[:, 64:].any()


def test_letterbox_centred_with_a_fill():
    image, scale, (x, y) = letterbox(np.full((100, 100, 3), 9, np.uint8), 60, 80, centred=True, fill=3)
    assert scale == (0.6, 0.6) and (x, y) == (10, 0)
    assert (image[:, 10:70] == 9).all() and (image[:, :10] == 3).all() and (image[:, 70:] == 3).all()


def test_box_overlap_and_suppression():
    assert box_intersection((0, 0, 10, 10), (5, 5, 20, 20)) == 25
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0 and box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.5, 0.9, 0.7, 0.5])
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [1, 2]  # ties: the first kept
    assert non_max_suppression(boxes, scores, 1.0).tolist() == [1, 2, 0, 3]

"""Heatmap encoding/decoding, crop geometry and joint layouts (numpy only)."""
import numpy as np
import pytest

from lapx_ros.geometry import apply_affine, box_to_center_size, crop_transform, invert_affine, keypoints_to_box
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

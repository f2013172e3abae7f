"""PinholeCamera: CameraInfo values, rescaling, back-projection and pixel conventions."""
from types import SimpleNamespace

import numpy as np
import pytest

from lapx_ros.runtime.camera import PinholeCamera

K = [500.0, 0.0, 320.0, 0.0, 400.0, 240.0, 0.0, 0.0, 1.0]
P = [510.0, 0.0, 321.0, 0.0, 0.0, 410.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def camera_info(k=K, p=P, d=(), model="plumb_bob", width=640, height=480):
    return SimpleNamespace(k=k, p=p, d=list(d), distortion_model=model, width=width, height=height)


def test_from_camera_info_reads_k():
    cam = PinholeCamera.from_camera_info(camera_info(d=[0.0] * 5))
    assert cam == PinholeCamera(500.0, 400.0, 320.0, 240.0, 640, 480, (0.0,) * 5)
    assert not cam.distorted


def test_distortion_is_kept_for_the_models_opencv_shares():
    d = [0.1, -0.02, 0.001, 0.0, 0.003]
    assert PinholeCamera.from_camera_info(camera_info(d=d)).distortion == tuple(d)
    assert PinholeCamera.from_matrices(K, None, 640, 480, np.array(d), "plumb_bob").distorted
    eight = d + [0.01, 0.0, 0.0]
    assert PinholeCamera.from_camera_info(camera_info(d=eight, model="rational_polynomial")).distorted
    assert PinholeCamera.from_camera_info(camera_info(d=d[:4], model="equidistant")).distortion == ()
    # P describes the rectified image: no distortion there
    rectified = PinholeCamera.from_camera_info(camera_info(k=[0.0] * 9, d=d))
    assert rectified.fx == 510.0 and rectified.distortion == ()


def test_p_is_used_when_k_is_unset_and_nothing_when_both_are():
    assert PinholeCamera.from_matrices([0.0] * 9, P, 640, 480) == \
        PinholeCamera(510.0, 410.0, 321.0, 241.0, 640, 480)
    assert PinholeCamera.from_matrices([0.0] * 9, [0.0] * 12) is None
    assert PinholeCamera.from_matrices([float("nan")] * 9) is None
    assert PinholeCamera.from_matrices([1.0, 2.0]) is None
    assert PinholeCamera.from_matrices(P, None) is None  # a 3x4 matrix is not a K


def test_guess_is_centred_with_a_focal_length_of_one_width():
    cam = PinholeCamera.guess(640, 480)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (640.0, 640.0, 319.5, 239.5)


def test_scaling_keeps_the_image_edges_in_place():
    cam = PinholeCamera(500.0, 400.0, 319.5, 239.5, 640, 480)
    double = cam.scaled_to(1280, 960)
    assert (double.fx, double.fy, double.cx, double.cy) == (1000.0, 800.0, 639.5, 479.5)
    assert (double.width, double.height) == (1280, 960)
    # the left edge of the image (-0.5) stays the left edge: same ray before and after
    ray = cam.back_project([[-0.5, -0.5]], 1.0)
    assert np.allclose(double.back_project([[-0.5, -0.5]], 1.0), ray)


def test_scaling_a_model_of_unknown_size_only_records_the_size():
    cam = PinholeCamera(500.0, 400.0, 320.0, 240.0)
    assert cam.scaled_to(800, 600) == PinholeCamera(500.0, 400.0, 320.0, 240.0, 800, 600)


def test_back_projection_matches_hand_computed_points():
    cam = PinholeCamera(500.0, 400.0, 320.0, 240.0, 640, 480)
    points = cam.back_project([[420.0, 140.0], [320.0, 240.0], [0.0, 480.0]], [2.0, 3.0, 1.0])
    assert np.allclose(points, [[0.4, -0.5, 2.0],   # 100 px right of centre at fx 500, Z 2
                                [0.0, 0.0, 3.0],    # the principal point lies on the axis
                                [-0.64, 0.6, 1.0]])


def test_back_projection_with_one_depth_and_nan_depth():
    cam = PinholeCamera(500.0, 500.0, 320.0, 240.0)
    assert np.allclose(cam.back_project([[570.0, 240.0], [320.0, 490.0]], 2.0),
                       [[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]])
    assert np.isnan(cam.back_project([[10.0, 10.0]], [np.nan])).all()


def test_project_inverts_back_project():
    cam = PinholeCamera(612.3, 611.8, 318.2, 243.9, 640, 480)
    pixels = np.array([[0.0, 0.0], [639.0, 479.0], [100.25, 300.75]])
    points = cam.back_project(pixels, [0.5, 2.0, 7.0])
    assert np.allclose(cam.project(points), pixels)


def test_message_pixels_are_half_a_pixel_right_of_camera_pixels():
    # In this package's messages the middle of a 640 px wide image is x = 320 (pixel
    # centres at +0.5); CameraInfo puts it at 319.5. Subtracting 0.5 lands on the axis.
    cam = PinholeCamera.guess(640, 480)
    message_xy = np.array([[320.0, 240.0]])
    assert np.allclose(cam.back_project(message_xy - 0.5, 2.0), [[0.0, 0.0, 2.0]])


def test_back_projection_undoes_radial_distortion():
    cam = PinholeCamera(500.0, 500.0, 320.0, 240.0, 640, 480, (0.1, 0.0, 0.0, 0.0, 0.0))
    # the ray x = 0.5 is imaged at 0.5 * (1 + 0.1 * 0.5^2) = 0.5125 -> u = 320 + 256.25
    assert np.allclose(cam.back_project([[576.25, 240.0]], 1.0), [[0.5, 0.0, 1.0]], atol=1e-9)
    assert np.allclose(cam.project([[0.5, 0.0, 1.0]]), [[576.25, 240.0]])
    assert np.allclose(cam.back_project([[320.0, 240.0]], 2.0), [[0.0, 0.0, 2.0]])


def test_distorted_round_trip_and_rescaling():
    cam = PinholeCamera(612.0, 611.0, 318.0, 244.0, 640, 480, (0.12, -0.25, 0.001, -0.002, 0.1))
    pixels = np.array([[0.0, 0.0], [639.0, 479.0], [100.0, 400.0], [np.nan, np.nan]])
    points = cam.back_project(pixels, 3.0)
    assert np.isnan(points[3]).all()
    assert np.allclose(cam.project(points[:3]), pixels[:3], atol=1e-6)
    # the same ray from the image at twice the size
    double = cam.scaled_to(1280, 960)
    assert double.distortion == cam.distortion
    assert np.allclose(double.back_project((pixels[:3] + 0.5) * 2 - 0.5, 3.0), points[:3], atol=1e-9)


def test_pixels_map_between_a_colour_image_and_a_half_size_depth_image():
    colour = PinholeCamera(900.0, 900.0, 639.5, 359.5, 1280, 720)
    depth = colour.scaled_to(640, 360)
    # colour pixels 0 and 1 both fall into depth pixel 0, whose centre is colour 0.5
    mapped = colour.pixels_in(depth, [[0.5, 0.5], [1279.0, 719.0], [0.0, 1.0]])
    assert np.allclose(mapped, [[0.0, 0.0], [639.25, 359.25], [-0.25, 0.25]])


def test_pixels_map_through_a_cropped_depth_camera():
    colour = PinholeCamera(600.0, 600.0, 319.5, 239.5, 640, 480)
    # the same lens, depth cropped to the middle 640x360 rows (60 rows off the top)
    depth = PinholeCamera(600.0, 600.0, 319.5, 179.5, 640, 360)
    assert np.allclose(colour.pixels_in(depth, [[10.0, 60.0], [300.0, 400.0]]),
                       [[10.0, 0.0], [300.0, 340.0]])


@pytest.mark.parametrize("bad", [[0.0] * 9, [-500.0, 0, 320, 0, 400, 240, 0, 0, 1]])
def test_invalid_k_without_p_gives_no_camera(bad):
    assert PinholeCamera.from_matrices(bad, None, 640, 480) is None

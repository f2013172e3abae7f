"""The annotated image: a person's id label stays readable at the frame's edges."""
import cv2
import numpy as np
import pytest

from lapx_ros.layouts import MPII_16
from lapx_ros.runtime.drawing import LABEL_FONT, draw_poses, label_origin
from lapx_ros.runtime.estimator import Pose

FRAME_H, FRAME_W = 576, 768


def person_in(box) -> Pose:
    x0, y0, x1, y1 = box
    kps = np.stack([np.linspace(x0, x1, 16), np.linspace(y0, y1, 16)], axis=1)
    return Pose(kps, np.full(16, 0.9, np.float32), np.array(box, float), 0.75, track_id=66)


def label_pixels(box) -> int:
    """Pixels drawn well above the box (clear of its edge and of the joint dots): the label."""
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    draw_poses(frame, [person_in(box)], MPII_16.skeleton, threshold=0.2)
    top = int(box[1])
    return int(np.count_nonzero(frame[:top - 6].any(axis=2)))


@pytest.mark.parametrize("box", [(700, 260, 768, 350), (740, 100, 790, 200), (-30, 100, 40, 200)])
def test_a_label_at_the_frame_edge_is_drawn_whole(box):
    assert label_pixels(box) == label_pixels((300, box[1], 370, box[3]))


@pytest.mark.parametrize("box", [(700, 260, 768, 350), (100, 0, 200, 80), (-50, -20, 10, 30),
                                 (760, 570, 800, 600)])
def test_label_origin_keeps_the_text_inside_the_frame(box):
    text, scale, thickness = "66 0.75", 0.8, 2
    (width, height), baseline = cv2.getTextSize(text, LABEL_FONT, scale, thickness)
    x, y = label_origin(text, box, (FRAME_H, FRAME_W, 3), scale, thickness)
    assert 0 <= x and x + width <= FRAME_W
    assert y - height >= 0 and y + baseline <= FRAME_H


def test_label_origin_sits_just_above_a_box_in_the_middle():
    assert label_origin("1 0.50", (300, 200, 360, 300), (FRAME_H, FRAME_W, 3), 0.8, 2) == (300, 196)

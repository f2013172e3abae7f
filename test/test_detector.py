"""The built-in person detectors (lapx_ros.runtime.detectors): MoveNet MultiPose's
input and decoding maths, loading and refusing files, the real converted file on COCO
photos, the table of detectors by name with its HOG fallback, and the (boxes, scores)
contract the pipeline reads.

The real file is the one `make setup` builds (scripts/make_detector.sh); tests that need
it are skipped with that reason when it is absent. Tiny stand-in models built here with
onnx.helper cover the rest without it.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from lapx_ros.geometry import JOINTS_BOX_PADDING, box_iou, box_to_center_size
from lapx_ros.runtime import detectors
from lapx_ros.runtime.detectors import (
    BackgroundDetector,
    DetectorSettings,
    create_person_detector,
    detector_class,
    fallback_text,
)
from lapx_ros.runtime.detectors.base import DetectorModelError, Detections
from lapx_ros.runtime.detectors.hog import HogPersonDetector
from lapx_ros.runtime.detectors.movenet import (
    MOVENET_ROW,
    MoveNetDetector,
    decode_movenet,
    default_detector_path,
    movenet_input_shape,
)

REPO = Path(__file__).resolve().parents[1]
COCO = REPO.parent / "shared" / "data" / "coco-mini"
BACKENDS = ["openvino", "onnxruntime"]


# ------------------------------------------------------------------------- helpers
def movenet_row(box, score, keypoints=None):
    """One output row: keypoints (17, 2) as normalised (x, y) (default: the box centre),
    box (x0, y0, x1, y1) normalised, and the person's score."""
    x0, y0, x1, y1 = box
    kps = np.tile([(x0 + x1) / 2, (y0 + y1) / 2], (17, 1)) if keypoints is None else np.asarray(keypoints)
    row = np.zeros(MOVENET_ROW)
    row[0:51:3], row[1:51:3], row[2:51:3] = kps[:, 1], kps[:, 0], 0.5
    row[51:56] = [y0, x0, y1, x1, score]
    return row


def build_fake_movenet(path, rows, input_shape=(1, "h", "w", 3), input_type=TensorProto.INT32,
                       output_shape=(1, 6, MOVENET_ROW)):
    """An ONNX file shaped like MoveNet MultiPose that outputs ``rows`` (6, 56) whatever
    the image (the image only passes through a mean times zero)."""
    rows = np.asarray(rows, np.float32)
    inits = [numpy_helper.from_array(rows[None], "rows"),
             numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    nodes = [
        helper.make_node("Cast", ["input"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["rows", "nothing"], ["output_0"]),
    ]
    graph = helper.make_graph(nodes, "fake_movenet",
                              [helper.make_tensor_value_info("input", input_type, list(input_shape))],
                              [helper.make_tensor_value_info("output_0", TensorProto.FLOAT,
                                                             list(output_shape))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


FAKE_ROWS = np.stack([movenet_row((0.5, 0.25, 0.75, 0.75), 0.8)] + [movenet_row((0, 0, 0.1, 0.1), 0.01)] * 5)


@pytest.fixture(scope="module")
def fake_movenet(tmp_path_factory):
    return build_fake_movenet(tmp_path_factory.mktemp("det") / "fake.onnx", FAKE_ROWS)


@pytest.fixture(scope="module")
def movenet_file():
    path = default_detector_path()
    if not path:
        pytest.skip("no MoveNet file installed (share/lapx_ros/detectors): run `make setup`, whose "
                    "step 7 (scripts/make_detector.sh) builds it")
    return path


def coco_val():
    """(image path, [non-crowd person annotations]) of the COCO sliver's val2017."""
    ann_file = COCO / "person_keypoints_val2017.json"
    if not ann_file.is_file():
        pytest.skip(f"shared data missing: no COCO sliver at {COCO} (../shared/data/coco-mini beside "
                    "the repository)")
    data = json.loads(ann_file.read_text())
    people: dict[int, list] = {}
    for a in data["annotations"]:
        people.setdefault(a["image_id"], []).append(a)
    return [(COCO / "val2017" / im["file_name"], people.get(im["id"], [])) for im in data["images"]]


# ------------------------------------------------------------------- input and decoding maths
def test_input_shape_square_or_padded_to_multiples_of_32():
    assert movenet_input_shape((480, 640), 384) == (384, 384)
    assert movenet_input_shape((480, 640), 384, square=False) == (288, 384)
    assert movenet_input_shape((720, 1280), 384, square=False) == (224, 384)  # 216 padded up
    assert movenet_input_shape((640, 480), 256, square=False) == (256, 192)
    assert movenet_input_shape((100, 50), 256, square=False) == (256, 128)
    assert movenet_input_shape((10, 1000), 256, square=False) == (32, 256)  # never below 32


def test_decode_maps_normalised_rows_to_frame_pixels():
    row = movenet_row((0.5, 0.25, 0.75, 0.75), 0.8, keypoints=np.tile([0.5, 0.5], (17, 1)))
    # 640x480 frame in a 384x288 input: scale 0.6, 1 normalised unit = 640 px (x), 480 px (y)
    found = decode_movenet(row[None], (288, 384), (0.6, 0.6), (480, 640), threshold=0.1)
    np.testing.assert_allclose(found.boxes, [[320, 120, 480, 360]], atol=1e-9)
    np.testing.assert_allclose(found.keypoints[0, :, :2], np.tile([320, 240], (17, 1)))
    assert found.scores.tolist() == [0.8]
    # the same frame in a 384x384 square: 1 normalised unit = 640 px on both axes
    found = decode_movenet(row[None], (384, 384), (0.6, 0.6), (480, 640), threshold=0.1)
    np.testing.assert_allclose(found.boxes, [[320, 160, 480, 480]], atol=1e-9)


def test_decode_threshold_duplicates_order_and_clipping():
    rows = np.stack([
        movenet_row((0.1, 0.1, 0.3, 0.5), 0.05),  # below the threshold
        movenet_row((0.5, 0.1, 0.7, 0.9), 0.6),
        movenet_row((0.51, 0.1, 0.71, 0.9), 0.9),  # the same person, better score
        movenet_row((0.8, 0.5, 1.2, 1.1), 0.3),  # reaches past the frame
        np.full(MOVENET_ROW, np.nan),  # a broken row is dropped, not decoded
    ])
    found = decode_movenet(rows, (100, 100), (1.0, 1.0), (100, 100), threshold=0.1)
    assert found.scores.tolist() == [0.9, 0.3]
    np.testing.assert_allclose(found.boxes, [[51, 10, 71, 90], [80, 50, 100, 100]], atol=1e-6)
    grown = decode_movenet(rows, (100, 100), (1.0, 1.0), (100, 100), threshold=0.1, box_scale=1.5)
    np.testing.assert_allclose(grown.boxes[0], [46, 0, 76, 100], atol=1e-6)  # about the centre, clipped
    assert len(decode_movenet(rows, (100, 100), (1.0, 1.0), (100, 100), threshold=0.95)) == 2
    assert len(decode_movenet(rows, (100, 100), (1.0, 1.0), (100, 100), threshold=0.95).boxes) == 0


def test_detections_unpack_like_every_detector():
    d = Detections(np.zeros((1, 4)), np.ones(1), np.zeros((1, 17, 3)))
    boxes, scores = d  # what PosePipeline does with a detection
    assert boxes.shape == (1, 4) and scores.tolist() == [1.0] and d.keypoints.shape == (1, 17, 3)


# --------------------------------------------------------------- loading and running
@pytest.mark.parametrize("backend", BACKENDS)
def test_fake_file_end_to_end(fake_movenet, backend):
    det = MoveNetDetector(fake_movenet, 384, 0.1, backend=backend, threads=1)
    assert det.input_hw is None and backend in det.description and "384" in det.description
    found = det(np.zeros((480, 640, 3), np.uint8))
    np.testing.assert_allclose(found.boxes, [[320, 120, 480, 360]], atol=1e-3)
    found = det(np.zeros((720, 1280, 3), np.uint8))  # another frame size: another input shape
    # 1280x720 -> 384x216 padded to 384x224: x unit = 1280 px, y unit = 224 / 0.3 px
    np.testing.assert_allclose(found.boxes, [[640, 0.25 * 224 / 0.3, 960, 0.75 * 224 / 0.3]], atol=1e-3)
    det.score_threshold = 0.9  # runtime change
    assert len(det(np.zeros((480, 640, 3), np.uint8)).boxes) == 0


def test_a_file_with_a_fixed_input_size_uses_it(tmp_path):
    path = build_fake_movenet(tmp_path / "fixed.onnx", FAKE_ROWS, input_shape=(1, 256, 256, 3))
    det = MoveNetDetector(path, 384, 0.1, threads=1)
    assert det.input_hw == (256, 256) and "fixed by the file" in det.description
    found = det(np.zeros((480, 640, 3), np.uint8))  # letterboxed into 256x256: unit = 640 px
    np.testing.assert_allclose(found.boxes, [[320, 160, 480, 480]], atol=1e-3)


def truncated(path, good):
    path.write_bytes(Path(good).read_bytes()[:300])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make, problem", [
    pytest.param(None, "file does not exist", id="missing"),
    pytest.param(lambda p, good: p.write_bytes(b""), "file is empty", id="empty"),
    pytest.param(truncated, "not a loadable ONNX model", id="truncated"),
    pytest.param(lambda p, good: p.write_text("not a model"), "not a loadable ONNX model", id="text"),
    pytest.param(lambda p, good: build_fake_movenet(p, FAKE_ROWS, input_type=TensorProto.FLOAT),
                 "expected int32", id="float_input"),
    pytest.param(lambda p, good: build_fake_movenet(p, FAKE_ROWS, input_shape=(1, 3, 256, 256)),
                 "expected (1, H, W, 3)", id="nchw_input"),
    pytest.param(lambda p, good: build_fake_movenet(p, FAKE_ROWS[:, :10], output_shape=(1, 6, 10)),
                 "expected (1, N, 56)", id="wrong_output"),
    pytest.param(lambda p, good: build_fake_movenet(p, FAKE_ROWS[:, :10], output_shape=(1, 6, "n")),
                 "[1, 6, 10]", id="output_wrong_when_run"),
])
def test_bad_detector_file_is_refused_with_its_name_and_reason(tmp_path, fake_movenet, backend, make,
                                                               problem):
    path = tmp_path / "bad.onnx"
    if make:
        make(path, fake_movenet)
    with pytest.raises(DetectorModelError) as err:
        MoveNetDetector(str(path), 256, 0.1, backend=backend, threads=1)
    text = str(err.value)
    assert text.startswith(f"detector model {str(path)!r}: ") and problem in text, text


def test_settings_are_checked():
    with pytest.raises(ValueError, match="multiple of 32"):
        MoveNetDetector("x.onnx", 300)
    with pytest.raises(ValueError, match="backend"):
        MoveNetDetector("x.onnx", 256, backend="tensorrt")


# ------------------------------------------------------------ the choice, fallback
def test_create_person_detector_movenet_or_hog_with_the_reason(fake_movenet, tmp_path, monkeypatch):
    det, problem = create_person_detector(DetectorSettings(model=fake_movenet, threads=1))
    assert isinstance(det, MoveNetDetector) and problem == ""
    det, problem = create_person_detector(DetectorSettings(kind="hog", model=fake_movenet))
    assert isinstance(det, HogPersonDetector) and problem == ""
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    det, problem = create_person_detector(DetectorSettings(model=str(bad), hog_scale=1.5))
    assert isinstance(det, HogPersonDetector) and det.scale == 1.5
    assert str(bad) in problem and "not a loadable ONNX model" in problem
    from lapx_ros.runtime.detectors import movenet

    monkeypatch.setattr(movenet, "default_detector_path", lambda: "")
    det, problem = create_person_detector(DetectorSettings())
    assert isinstance(det, HogPersonDetector) and "make setup" in problem
    assert fallback_text(DetectorSettings()) == "HOG instead of MoveNet"


def test_runtime_settings_reach_the_detector(fake_movenet):
    det, _ = create_person_detector(DetectorSettings(model=fake_movenet, threads=1))
    det.update(DetectorSettings(threshold=0.5, box_scale=1.25))
    assert (det.score_threshold, det.box_scale) == (0.5, 1.25)
    hog, _ = create_person_detector(DetectorSettings(kind="hog"))
    hog.update(DetectorSettings(hog_scale=2.0, hog_threshold=-1.0))
    assert (hog.scale, hog.score_threshold) == (2.0, -1.0)
    assert "hog" in hog.description


class EveryFrameOneBox:
    """A detector added to the table by one row: the whole frame's box, every time."""

    label = "whole frame"
    summary = "the whole frame as one person"

    def __init__(self, score: float):
        self.score = score

    @classmethod
    def from_settings(cls, settings, log=None):
        if settings.model == "broken":
            raise DetectorModelError(settings.model, "cannot be used")
        return cls(settings.threshold)

    @property
    def description(self):
        return f"whole frame, score {self.score:g}"

    def update(self, settings):
        self.score = settings.threshold

    def __call__(self, frame_bgr):
        h, w = frame_bgr.shape[:2]
        return np.array([[0.0, 0.0, w, h]]), np.array([self.score])


def test_a_detector_added_by_one_row_is_made_by_name_and_falls_back_like_the_others(monkeypatch):
    monkeypatch.setitem(detectors.DETECTORS, "whole", EveryFrameOneBox)
    det, problem = create_person_detector(DetectorSettings(kind="whole", threshold=0.4))
    assert isinstance(det, EveryFrameOneBox) and problem == "" and detector_class("whole") is EveryFrameOneBox
    boxes, scores = det(np.zeros((48, 64, 3), np.uint8))
    assert boxes.tolist() == [[0, 0, 64, 48]] and scores.tolist() == [0.4]
    det, problem = create_person_detector(DetectorSettings(kind="whole", model="broken"))
    assert isinstance(det, HogPersonDetector) and "cannot be used" in problem
    assert fallback_text(DetectorSettings(kind="whole")) == "HOG instead of whole frame"


def test_an_unknown_detector_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"detector must be one of \['movenet', 'hog'\], got 'yolo'"):
        create_person_detector(DetectorSettings(kind="yolo"))


def test_pipeline_takes_movenet_detections(fake_movenet, tmp_path):
    """Detector mode end to end without ROS: the person the detector reports is estimated."""
    from tiny_models import build_model

    from lapx_ros.ros import params
    from lapx_ros.runtime.engine import create_engine
    from lapx_ros.runtime.estimator import PoseEstimator
    from lapx_ros.runtime.pipeline import PosePipeline

    engine = create_engine(build_model(tmp_path / "pose.onnx", input_size=(64, 64)), "onnxruntime", 1)
    cfg = params.NodeConfig(mode="detector", detector_interval=1, person_threshold=0.0,
                            keypoint_threshold=0.0)
    det, problem = create_person_detector(params.detector_settings(cfg.replace(detector_model=fake_movenet)))
    assert problem == ""
    pipe = PosePipeline(PoseEstimator(engine), params.pipeline_config(cfg),
                        BackgroundDetector(det, synchronous=True))
    _y, _x = np.mgrid[0:480, 0:640]
    frame = np.stack([_x % 256, _y % 256, (_x + _y) % 256], axis=-1).astype(np.uint8)
    poses = pipe.process(frame, 0.0)
    assert len(poses) == 1
    # the crop is the detected box (320, 120, 480, 360) grown by the joints' padding, squared
    centre, size = box_to_center_size(det(frame).boxes[0], 1.0, 1.0)
    assert (np.abs(poses[0].keypoints - centre) <= size / 2 + 1e-6).all()
    assert size[0] == pytest.approx(240 * JOINTS_BOX_PADDING)


# ------------------------------------------------------------- the real converted file
@pytest.mark.parametrize("backend", BACKENDS)
def test_real_file_finds_the_person_in_coco_photos(movenet_file, backend):
    """The three val2017 photos with the largest single labelled person (12+ keypoints):
    found at IoU >= 0.5 with the default settings, keypoints inside the frame."""
    singles = [(p, a[0]) for p, a in coco_val()
               if len(a) == 1 and not a[0]["iscrowd"] and a[0]["num_keypoints"] >= 12]
    singles = sorted(singles, key=lambda s: -s[1]["area"])[:3]
    assert len(singles) == 3, "the COCO sliver has changed"
    det = MoveNetDetector(movenet_file, 384, 0.07, backend=backend, threads=1)
    for path, ann in singles:
        frame = cv2.imread(str(path))
        found = det(frame)
        x, y, w, h = ann["bbox"]
        ious = [box_iou(b, (x, y, x + w, y + h)) for b in found.boxes]
        assert ious and max(ious) >= 0.5, (path.name, found.boxes, found.scores)
        best = int(np.argmax(ious))
        kps = found.keypoints[best]
        seen = kps[:, 2] >= 0.3
        assert seen.sum() >= 8, (path.name, kps)
        fh, fw = frame.shape[:2]
        assert ((kps[seen, 0] >= -5) & (kps[seen, 0] <= fw + 5) & (kps[seen, 1] >= -5)
                & (kps[seen, 1] <= fh + 5)).all()


def test_real_file_same_people_on_both_backends_and_nobody_in_black(movenet_file):
    frames = [cv2.imread(str(p)) for p, a in coco_val() if len(a) >= 2][:2]
    results = [[MoveNetDetector(movenet_file, 384, 0.07, backend=b, threads=1)(f) for f in frames]
               for b in BACKENDS]
    for ov, ort in zip(*results):
        assert len(ov.boxes) == len(ort.boxes)
        np.testing.assert_allclose(ov.boxes, ort.boxes, atol=1.0)
        np.testing.assert_allclose(ov.scores, ort.scores, atol=1e-3)
    det = MoveNetDetector(movenet_file, 256, 0.07, threads=1)
    assert len(det(np.zeros((480, 640, 3), np.uint8)).boxes) == 0


def test_real_file_truncated_is_refused(movenet_file, tmp_path):
    path = tmp_path / "truncated.onnx"
    path.write_bytes(Path(movenet_file).read_bytes()[: 1 << 20])
    with pytest.raises(DetectorModelError, match="not a loadable ONNX model"):
        MoveNetDetector(str(path), 384, 0.07, threads=1)

"""Crops and batching, the estimator's coordinate mapping, and the pipeline's modes."""
import time

import numpy as np
import pytest

from lapx_ros.geometry import CropBatcher, box_iou, box_to_center_size
from lapx_ros.layouts import MPII_16
from lapx_ros.metadata import ModelMetadata
from lapx_ros.runtime.detectors import BackgroundDetector
from lapx_ros.runtime.engine import Engine, InferenceError
from lapx_ros.ros.params import NodeConfig, pipeline_config
from lapx_ros.runtime.estimator import PoseEstimator, sanitize_boxes
from lapx_ros.runtime import modes
from lapx_ros.runtime.modes import DUPLICATE_IOU
from lapx_ros.runtime.pipeline import PosePipeline

META = ModelMetadata.for_layout(MPII_16, 128, 96)


# A standing figure, joint offsets from its centre in pixels (MPII order).
FIGURE = np.array([[-10, 60], [-10, 30], [-10, 0], [10, 0], [10, 30], [10, 60],
                   [0, 0], [0, -35], [0, -45], [0, -60],
                   [-30, -10], [-25, -25], [-15, -35], [15, -35], [25, -25], [30, -10]], float)


def joint_blue(k):
    return 12 * (k + 1)


class MarkerEngine(Engine):
    """Fake engine: joint k's heatmap is where the crop shows the marker colour of joint k."""

    name = "fake"
    description = "fake"

    def __init__(self, fail=False):
        super().__init__("fake.onnx", META)
        self.batches = []
        self.fail = fail

    def _run(self, batch):
        self.batches.append(batch.shape[0])
        if self.fail:
            return np.full((batch.shape[0],) + self.output_shape, np.nan, np.float32)
        std, mean = np.array(META.std)[:, None, None], np.array(META.mean)[:, None, None]
        rgb = (batch * std + mean) * 255.0  # (N, 3, H, W), RGB
        k, h, w = self.output_shape
        out = np.zeros((batch.shape[0], k, h, w), np.float32)
        for j in range(k):
            hit = (np.abs(rgb[:, 2] - joint_blue(j)) < 3) & (rgb[:, 0] > 200)
            cover = hit.reshape(-1, h, 4, w, 4).mean(axis=(2, 4))
            peak = cover.reshape(len(cover), -1).max(axis=1)[:, None, None]
            out[:, j] = np.where(peak > 0, 0.9 * cover / np.maximum(peak, 1e-9), 0.0)
        return out


def frame_with_person(x, y, shape=(240, 320), joints=None):
    """A frame showing the FIGURE at (x, y); only ``joints`` (indices) when given."""
    frame = np.zeros(shape + (3,), np.uint8)
    for k, (dx, dy) in enumerate(FIGURE):
        if joints is not None and k not in joints:
            continue
        cx, cy = int(x + dx), int(y + dy)
        frame[cy - 3:cy + 4, cx - 3:cx + 4] = (joint_blue(k), 0, 255)  # BGR
    return frame


def test_crop_batch_normalises_rgb():
    batcher = CropBatcher(META)
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[..., 2] = 255  # red in BGR
    batch, matrices = batcher(frame, [box_to_center_size((0, 0, 100, 100), 0.75, 1.0)] * 2)
    assert batch.shape == (2, 3, 128, 96) and batch.dtype == np.float32 and matrices.shape == (2, 2, 3)
    red = batch[0, :, 64, 48]
    expected = (np.array([1.0, 0.0, 0.0]) - META.mean) / META.std
    assert np.allclose(red, expected, atol=1e-5)


def test_estimator_maps_keypoints_back_to_the_frame():
    engine = MarkerEngine()
    estimator = PoseEstimator(engine)
    frame = frame_with_person(200, 120)
    box_pose, frame_pose = estimator(frame, [(160, 50, 240, 190), (0, 0, 320, 240)], 1.0, "argmax")
    assert engine.batches == [2]  # both crops in one call
    truth = FIGURE + (200, 120)
    assert box_pose.keypoints.shape == (16, 2) and box_pose.confidences.shape == (16,)
    assert np.abs(box_pose.keypoints - truth).max() < 8  # about one heatmap cell
    assert np.abs(frame_pose.keypoints - truth).max() < 24


def settings(**changes):
    """The pipeline's settings: the node's defaults with ``changes``."""
    return pipeline_config(NodeConfig().replace(**changes))


def pipeline(**cfg):
    """Nearly every pose reported, at once (the cases on tracking set their thresholds)."""
    engine = MarkerEngine()
    return engine, PosePipeline(PoseEstimator(engine), settings(**{
        "person_threshold": 0.01, "track_confirm_frames": 1, **cfg}))


def test_single_mode_searches_then_follows():
    engine, pipe = pipeline()
    poses = pipe.process(frame_with_person(200, 120), 0.0)
    assert len(poses) == 1 and poses[0].track_id == 1
    assert engine.batches == [1, 1, 1]  # whole frame, then twice a crop around the keypoints
    assert np.abs(poses[0].keypoints - (FIGURE + (200, 120))).max() < 8
    engine.batches.clear()
    poses = pipe.process(frame_with_person(210, 118), 0.1)
    assert engine.batches == [1] and poses[0].track_id == 1
    assert np.abs(poses[0].keypoints - (FIGURE + (210, 118))).max() < 8


def test_single_mode_searches_again_when_the_person_is_lost():
    engine, pipe = pipeline(person_threshold=0.3)
    pipe.process(frame_with_person(80, 120), 0.0)
    engine.batches.clear()
    poses = pipe.process(frame_with_person(240, 120), 0.1)  # jumped out of the followed crop
    assert engine.batches == [1, 1, 1, 1]  # the lost crop, then a three-call search
    assert len(poses) == 1 and np.abs(poses[0].keypoints - (FIGURE + (240, 120))).max() < 8


def test_single_mode_reports_nobody_below_threshold():
    _, pipe = pipeline(person_threshold=0.95)
    assert pipe.process(frame_with_person(200, 120), 0.0) == []


def test_single_mode_searches_every_search_interval_frames_while_nobody_is_followed():
    engine, pipe = pipeline(person_threshold=0.95, search_interval=3)
    calls = []
    for k in range(7):
        engine.batches.clear()
        assert pipe.process(frame_with_person(200, 120), 0.1 * k) == []
        calls.append(len(engine.batches))
    assert calls == [3, 1, 1, 3, 1, 1, 3]  # a search (three calls), then one crop per frame


def test_single_mode_crops_where_the_last_search_looked():
    engine, pipe = pipeline(person_threshold=0.95, search_interval=5)
    pipe.process(frame_with_person(200, 120), 0.0)
    pipe.config.person_threshold = 0.5
    engine.batches.clear()
    poses = pipe.process(frame_with_person(205, 120), 0.1)  # reported from the one crop
    assert engine.batches == [1] and len(poses) == 1
    assert np.abs(poses[0].keypoints - (FIGURE + (205, 120))).max() < 8
    engine.batches.clear()
    pipe.process(frame_with_person(210, 120), 0.2)
    assert engine.batches == [1]  # followed now


def test_single_mode_search_interval_1_searches_every_frame_without_a_person():
    engine, pipe = pipeline(person_threshold=0.95, search_interval=1)
    for k in range(3):
        pipe.process(frame_with_person(200, 120), 0.1 * k)
    assert engine.batches == [1, 1, 1] * 3


def test_search_passes_sets_the_calls_of_a_search_and_switches_at_run_time():
    engine, pipe = pipeline(person_threshold=0.95, search_interval=1, search_passes=1)
    poses = pipe.process(frame_with_person(200, 120), 0.0)
    assert engine.batches == [1] and poses == []
    pipe.config.search_passes = 2
    pipe.config.person_threshold = 0.01
    engine.batches.clear()
    poses = pipe.process(frame_with_person(200, 120), 0.1)
    assert engine.batches == [1, 1]
    assert len(poses) == 1 and np.abs(poses[0].keypoints - (FIGURE + (200, 120))).max() < 8


def test_flip_test_runs_every_crop_mirrored_too_and_switches_at_run_time():
    engine, pipe = pipeline()
    pipe.process(frame_with_person(200, 120), 0.0)
    engine.batches.clear()
    pipe.config.flip_test = True
    pipe.process(frame_with_person(202, 120), 0.1)
    assert engine.batches == [1, 1]  # the followed crop, then its mirror image
    engine.batches.clear()
    pipe.config.flip_test = False
    pipe.process(frame_with_person(204, 120), 0.2)
    assert engine.batches == [1]


def test_boxes_mode_batches_given_boxes_and_keeps_ids():
    engine, pipe = pipeline(mode="boxes")
    frame = frame_with_person(80, 120) + frame_with_person(240, 120)
    boxes = np.array([[40, 50, 120, 190], [200, 50, 280, 190], [np.nan, 0, 5, 5]])
    first = pipe.process(frame, 0.0, boxes, np.array([0.9, 0.8, 0.7]))
    assert engine.batches == [2] and len(first) == 2
    ids = {p.track_id for p in first}
    second = pipe.process(frame, 0.1, boxes[:2] + 3, None)
    assert {p.track_id for p in second} == ids
    third = pipe.process(frame, 0.2)  # no boxes: follow the people seen
    assert {p.track_id for p in third} == ids


def test_detector_mode_runs_detector_every_n_frames():
    calls = []

    def detector(frame):
        calls.append(1)
        return np.array([[150.0, 50.0, 250.0, 190.0]]), np.array([1.0])

    engine = MarkerEngine()
    pipe = PosePipeline(PoseEstimator(engine), settings(
        mode="detector", detector_interval=3, person_threshold=0.01, track_confirm_frames=1),
        BackgroundDetector(detector, synchronous=True))
    for i in range(7):
        poses = pipe.process(frame_with_person(200, 120), i * 0.1)
        assert len(poses) == 1 and poses[0].track_id == 1
    assert len(calls) == 3  # frames 0, 3 and 6


def test_resolution_change_resets_tracking():
    _, pipe = pipeline()
    assert pipe.process(frame_with_person(200, 120), 0.0)[0].track_id == 1
    assert pipe.process(frame_with_person(200, 120, (300, 400)), 0.1)[0].track_id == 2


def test_smoothing_lags_behind_a_jump():
    _, pipe = pipeline(smoothing=True)
    pipe.process(frame_with_person(190, 120), 0.0)
    moved = pipe.process(frame_with_person(200, 120), 0.033)[0].keypoints[:, 0] - FIGURE[:, 0]
    assert 190 < np.median(moved) < 199


def test_non_finite_output_raises():
    pipe = PosePipeline(PoseEstimator(MarkerEngine(fail=True)), settings())
    with pytest.raises(InferenceError):
        pipe.process(frame_with_person(100, 100), 0.0)


def test_sanitize_boxes():
    boxes = [[-50, -50, 40, 60], [10, 10, 11, 200], [np.inf, 0, 1, 1], [500, 500, 600, 600],
             [90, 80, 20, 10], [20, 80, 90, 10], [20, 10, 90, 80]]
    out, scores, dropped = sanitize_boxes(boxes, [1, 1, 1, 1, 1, 1, 0.5], 320, 240)
    assert dropped == 5  # too thin, infinite, off the image, corners swapped (twice)
    assert out.tolist() == [[0, 0, 40, 60], [20, 10, 90, 80]]
    assert scores.tolist() == [1, 0.5]


def test_detector_mode_keeps_following_people_the_detector_misses():
    detections = iter([[[40.0, 50.0, 120.0, 190.0], [200.0, 50.0, 280.0, 190.0]],
                       [[40.0, 50.0, 120.0, 190.0]]])

    def detector(frame):
        boxes = np.array(next(detections))
        return boxes, np.ones(len(boxes))

    _, pipe = pipeline(mode="detector", detector_interval=2)
    pipe.detector = BackgroundDetector(detector, synchronous=True)
    frame = frame_with_person(80, 120) + frame_with_person(240, 120)
    ids = [sorted(p.track_id for p in pipe.process(frame, i * 0.1)) for i in range(3)]
    assert ids == [[1, 2]] * 3


def test_background_detector_survives_errors_and_returns_each_result_once():
    def broken(frame):
        raise RuntimeError("boom")

    det = BackgroundDetector(broken, synchronous=True)
    assert det.submit(np.zeros((4, 4, 3), np.uint8)) and det.take() is None
    assert "boom" in det.last_error
    det = BackgroundDetector(lambda f: (np.zeros((0, 4)), np.zeros(0)))
    assert det.submit(np.zeros((4, 4, 3), np.uint8))
    for _ in range(100):
        result = det.take()
        if result is not None:
            break
        time.sleep(0.01)
    assert result is not None and det.take() is None


def test_background_detector_runs_every_detection_on_one_thread():
    """One long-lived thread (a thread per run spread allocations over new malloc arenas),
    which refuses new frames while busy and takes them again once done."""
    import threading

    threads = []
    det = BackgroundDetector(lambda f: threads.append(threading.current_thread()) or
                             (np.zeros((0, 4)), np.zeros(0)))
    frame = np.zeros((4, 4, 3), np.uint8)
    for _ in range(3):
        assert det.submit(frame)
        for _ in range(200):
            if det.take() is not None:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("no detection finished")
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] is not threading.current_thread()


def test_duplicate_boxes_give_one_person():
    _, pipe = pipeline(mode="boxes")
    frame = frame_with_person(200, 120)
    boxes = np.array([[160, 50, 240, 190], [162, 52, 242, 192]])
    assert len(pipe.process(frame, 0.0, boxes, None)) == 1


def test_smoothing_parameters_change_for_people_already_tracked():
    _, pipe = pipeline(smoothing=True)
    pipe.process(frame_with_person(190, 120), 0.0)
    pipe.config = settings(person_threshold=0.01, smoothing=True, smoothing_min_cutoff=1000.0,
                           smoothing_beta=0.0)
    moved = pipe.process(frame_with_person(200, 120), 0.033)[0].keypoints[:, 0] - FIGURE[:, 0]
    assert np.median(moved) > 199  # a very high cut-off: no lag any more


def test_a_box_inside_another_around_one_person_gives_one_pose():
    """An upper-body box inside the whole-body box: their seen joints' boxes overlap
    less than DUPLICATE_IOU, but the joints seen in both coincide."""
    _, pipe = pipeline(mode="boxes", box_padding=1.0)
    frame = frame_with_person(200, 120)
    boxes = np.array([[170, 50, 230, 100], [160, 50, 240, 190]])
    poses = pipe.estimator(frame, boxes, 1.0, "dark")
    upper, whole = (pipe.published_box(p) for p in poses)
    assert box_iou(upper, whole) < DUPLICATE_IOU  # not caught by overlap
    (pose,) = pipe.process(frame, 0.0, boxes, np.array([0.9, 0.8]))
    assert (pose.confidences > 0.5).all()  # the better pose of the two: all joints seen


def detector_pipeline(detections, **cfg):
    """Detector mode with a synchronous detector returning ``detections(frame_index)``,
    the node's defaults otherwise."""
    calls = []

    def detect(frame):
        boxes = np.array(detections(len(calls)), float).reshape(-1, 4)
        calls.append(len(boxes))
        return boxes, np.ones(len(boxes))

    engine = MarkerEngine()
    pipe = PosePipeline(PoseEstimator(engine), settings(**{
        "mode": "detector", "detector_interval": 1, **cfg}),
        BackgroundDetector(detect, synchronous=True))
    return engine, pipe


def test_a_detection_the_pose_network_does_not_confirm_is_never_published():
    """Defaults: a new person is reported on its second frame at person_threshold; the
    box with nobody in it never is, and is not followed."""
    engine, pipe = detector_pipeline(lambda i: [[40, 50, 120, 190], [200, 50, 280, 190]],
                                     detector_interval=3)
    frame = frame_with_person(80, 120)  # nobody in the second box
    published, crops = [], []
    for i in range(5):
        engine.batches.clear()
        published.append([p.track_id for p in pipe.process(frame, 0.1 * i)])
        crops.append(sum(engine.batches))
    assert published == [[], [1], [1], [1], [1]]
    assert crops == [2, 1, 1, 2, 1]  # both boxes on detector frames, else the person only
    assert pipe.tracker.active_ids == [1]


def test_a_one_frame_spurious_detection_costs_no_id():
    """track_confirm_frames 2: a person is reported from its second frame; someone seen
    on one frame only never is, and the next real person gets the next id."""
    person, flash = [40, 50, 120, 190], [200, 50, 280, 190]
    second = {0} | set(range(5, 8))  # frames showing someone at the second box

    _, pipe = detector_pipeline(lambda i: [person, flash] if i in second else [person],
                                track_confirm_frames=2)
    published = []
    for i in range(8):
        frame = frame_with_person(80, 120)
        if i in second:
            frame = frame + frame_with_person(240, 120)
        published.append(sorted(p.track_id for p in pipe.process(frame, 0.1 * i)))
    assert published == [[], [1], [1], [1], [1], [1], [1, 2], [1, 2]]


def test_a_known_person_stays_published_through_dips_below_person_threshold():
    """Confirm at 0.6, keep down to 0.3: half the joints (score ~0.45) keep the id and
    the report; three joints (~0.17) are a miss, and the id survives it."""
    _, pipe = pipeline(mode="boxes", person_threshold=0.6, person_keep_margin=0.3)
    assert pipe.tracker.settings.confirm_frames == 1
    box = np.array([[160, 50, 240, 190]])
    half, few = set(range(0, 16, 2)), {6, 7, 8}

    def ids(joints, t):
        return [p.track_id for p in pipe.process(frame_with_person(200, 120, joints=joints), t, box)]

    assert ids(None, 0.0) == [1]
    assert ids(half, 0.1) == [1]
    assert ids(few, 0.2) == []
    assert ids(few, 0.3) == []
    assert ids(half, 0.4) == [1]
    assert ids(None, 0.5) == [1]
    # A new person at half strength is never confirmed.
    other = np.array([[20, 50, 100, 190]])
    frame = frame_with_person(60, 120, joints=half)
    for k in range(3):
        assert pipe.process(frame, 1.0 + k, other) == []


def test_a_walker_hidden_for_a_few_frames_is_found_again_with_its_id():
    """Detected once, then followed: 25 px a frame, hidden on frames 4-6, back 100 px from
    where it was last seen; the crop goes where its motion takes it."""
    engine, pipe = detector_pipeline(lambda i: [[0, 50, 80, 190]], detector_interval=1000,
                                     track_confirm_frames=1)
    for i in range(10):
        x = 40 + 25 * i
        frame = np.zeros((240, 320, 3), np.uint8) if 4 <= i <= 6 else frame_with_person(x, 120)
        poses = pipe.process(frame, 0.1 * i)
        if 4 <= i <= 6:
            assert poses == []
        else:
            assert [p.track_id for p in poses] == [1], i
            assert np.abs(poses[0].keypoints - (FIGURE + (x, 120))).max() < 8


@pytest.mark.parametrize("mode, threshold", [("single", 0.3), ("detector", 0.0)])
def test_mode_single_and_person_threshold_0_report_a_new_person_at_once(mode, threshold):
    _, pipe = detector_pipeline(lambda i: [[160, 50, 240, 190]], mode=mode,
                                person_threshold=threshold)
    assert pipe.config.track_confirm_frames == 2
    assert [p.track_id for p in pipe.process(frame_with_person(200, 120), 0.0)] == [1]


class WholeFrameMode:
    """A mode added by one row: the whole frame as one person's box, every frame."""

    summary = "the whole frame as one person"
    takes_boxes = False
    runs_detector = False
    reports_at_once = True

    def reset(self):
        pass

    def look(self, pipeline, frame, boxes, box_scores):
        h, w = frame.shape[:2]
        return pipeline.estimate(frame, [np.array([0.0, 0.0, w, h])], 1.0)


def test_a_mode_added_by_one_row_runs_inside_the_pipeline(monkeypatch):
    monkeypatch.setitem(modes.MODES, "whole", WholeFrameMode)
    engine = MarkerEngine()
    pipe = PosePipeline(PoseEstimator(engine), settings(mode="whole", person_threshold=0.01))
    assert pipe.tracker.settings.confirm_frames == 1  # it reports at once, whatever track_confirm_frames
    for k in range(2):
        poses = pipe.process(frame_with_person(200, 120), 0.1 * k)
        assert [p.track_id for p in poses] == [1]
    assert engine.batches == [1, 1]
    assert np.abs(poses[0].keypoints - (FIGURE + (200, 120))).max() < 24


def test_an_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"mode must be one of \['single', 'boxes', 'detector'\], got 'crowd'"):
        PosePipeline(PoseEstimator(MarkerEngine()), settings(mode="crowd"))


def test_a_fitted_person_score_takes_the_detection_and_carries_it_between_runs():
    """With a model file's person score, a pose carries the detection it came from and
    is scored on it; on the frames between detector runs its track keeps that score,
    decayed, even where the pose alone would score lower."""
    from lapx_ros.runtime.person_score import PersonScorer
    from lapx_ros.runtime.pipeline import VOUCHED_DECAY

    _, pipe = detector_pipeline(lambda i: [[40, 50, 120, 190]], detector_interval=3, person_threshold=0.5)
    pipe.scorer = PersonScorer(bias=-4.0, pose=1.0, detector=6.0, agreement=0.0, no_detection=0.0)
    frame = frame_with_person(80, 120)
    first = pipe.mode.look(pipe, frame, None, None)
    assert first[0].detection is not None and first[0].detection.score == 1.0
    assert first[0].score == pytest.approx(pipe.scorer(pipe.evidence(first[0])))
    pipe.reset()
    scores = []
    for i in range(3):
        (pose,) = pipe.process(frame, 0.1 * i) or [None]
        scores.append(pipe.tracker.tracks[0].vouched)
    assert scores[1] == pytest.approx(VOUCHED_DECAY * scores[0]) and scores[2] == pytest.approx(VOUCHED_DECAY * scores[1])
    assert pose is not None and pose.score >= VOUCHED_DECAY ** 2 * scores[0] - 1e-9

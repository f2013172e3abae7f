"""The whole-frame search: how its refinements crop, and, under a live stream, that passes
beyond search_passes_when_busy run only while no newer frame waits, so a search never
makes the node fall behind."""
import threading

import numpy as np
import pytest

from lapx_ros.geometry import JOINTS_BOX_PADDING
from lapx_ros.layouts import MPII_16
from lapx_ros.metadata import ModelMetadata
from lapx_ros.ros.params import NodeConfig, pipeline_config
from lapx_ros.runtime.engine import Engine
from lapx_ros.runtime.estimator import PoseEstimator
from lapx_ros.runtime.pipeline import PosePipeline
from lapx_ros.runtime.frames import NewestFrameWorker, PipelineStats
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING, TopDownPredictor

META = ModelMetadata.for_layout(MPII_16, 128, 128)


class NobodyEngine(Engine):
    """Flat, low heatmaps: nobody is ever found, so every frame searches."""

    name = description = "nobody"

    def __init__(self):
        super().__init__("nobody.onnx", META)
        self.calls = 0

    def _run(self, batch):
        self.calls += 1
        return np.full((batch.shape[0],) + self.output_shape, 0.01, np.float32)


def searching_pipeline(**params):
    engine = NobodyEngine()
    cfg = NodeConfig(mode="single", search_interval=1, search_passes=3, **params)
    return engine, PosePipeline(PoseEstimator(engine), pipeline_config(cfg))


FRAME = np.full((240, 320, 3), 90, np.uint8)


def test_idle_node_runs_every_pass():
    engine, pipe = searching_pipeline(search_passes_when_busy=1)
    pipe.process(FRAME, 0.0)
    assert engine.calls == 3


def test_busy_node_stops_after_the_busy_passes():
    engine, pipe = searching_pipeline(search_passes_when_busy=1)
    pipe.newer_frame_waiting = lambda: True
    pipe.process(FRAME, 0.0)
    assert engine.calls == 1
    engine.calls = 0
    pipe.config.search_passes_when_busy = 2  # a runtime change applies at the next search
    pipe.process(FRAME, 0.1)
    assert engine.calls == 2


def test_busy_passes_equal_to_passes_always_search_in_full():
    engine, pipe = searching_pipeline(search_passes_when_busy=3)
    pipe.newer_frame_waiting = lambda: True
    pipe.process(FRAME, 0.0)
    assert engine.calls == 3


def test_a_frame_arriving_mid_search_ends_the_refinement():
    engine, pipe = searching_pipeline(search_passes_when_busy=1)
    waiting = []
    pipe.newer_frame_waiting = lambda: bool(waiting)
    original = engine._run

    def run_then_frame_arrives(batch):
        waiting.append(True)  # the camera's next frame lands during the first pass
        return original(batch)

    engine._run = run_then_frame_arrives
    pipe.process(FRAME, 0.0)
    assert engine.calls == 1


def test_worker_reports_a_waiting_frame():
    stats = PipelineStats()
    release = threading.Event()
    seen = []

    def process(item):
        seen.append((item, worker.has_waiting()))
        release.wait(5)

    worker = NewestFrameWorker(process, lambda exc: None, stats)
    assert not worker.has_waiting()
    worker.start()
    try:
        worker.put("a")
        for _ in range(500):  # until the thread holds "a"
            if seen:
                break
            threading.Event().wait(0.01)
        assert seen == [("a", False)]
        worker.put("b")
        assert worker.has_waiting()
        release.set()
    finally:
        worker.stop()


class PeakEngine(Engine):
    """Every joint peaks at the crop's centre with confidence ``value``."""

    name = description = "peak"

    def __init__(self, value: float):
        super().__init__("peak.onnx", META)
        self.value, self.calls = value, 0

    def _run(self, batch):
        self.calls += 1
        out = np.zeros((batch.shape[0],) + self.output_shape, np.float32)
        k, h, w = self.output_shape
        out[:, :, h // 2, w // 2] = self.value
        return out


def test_followed_person_is_kept_down_to_the_keep_threshold_without_a_search():
    engine = PeakEngine(0.6)
    cfg = NodeConfig(mode="single", search_passes=3, person_threshold=0.3, person_keep_margin=0.1)
    pipe = PosePipeline(PoseEstimator(engine), pipeline_config(cfg))
    assert len(pipe.process(FRAME, 0.0)) == 1  # found by a search
    engine.value, engine.calls = 0.25, 0  # a dip below person_threshold, above keep (0.2)
    people = pipe.process(FRAME, 0.1)
    assert engine.calls == 1 and len(people) == 1  # followed: one crop, still reported
    engine.value, engine.calls = 0.1, 0  # below keep: lost, the whole frame is searched
    assert pipe.process(FRAME, 0.2) == [] and engine.calls == 1 + 3


class RecordingPredictor(TopDownPredictor):
    """Answers every region with the same joints, spanning a 40 x 100 px box, and
    records the regions asked for."""

    def __init__(self):
        super().__init__(lambda batch: None, META)
        self.regions = []

    def predict_regions(self, image, regions, decode_method=None):
        self.regions += list(regions)
        keypoints = np.zeros((1, META.num_joints, 2))
        keypoints[0, :, 0] = np.linspace(100, 140, META.num_joints)
        keypoints[0, :, 1] = np.linspace(50, 150, META.num_joints)
        return keypoints, np.full((1, META.num_joints), 0.9, np.float32)


def test_first_refinement_is_grown_more_than_the_later_ones():
    predictor = RecordingPredictor()
    predictor.estimate_single(FRAME, passes=3)
    whole, first, second = predictor.regions
    np.testing.assert_allclose(whole[1], [320, 320])  # the frame, padded square
    np.testing.assert_allclose(first[1], [100 * FIRST_REFINEMENT_PADDING] * 2)
    np.testing.assert_allclose(second[1], [100 * JOINTS_BOX_PADDING] * 2)
    np.testing.assert_allclose(first[0], [120, 100])


class UnsurePersonEngine(Engine):
    """Each joint a weak peak (0.1: never confirmed) on a diagonal of the heatmap."""

    name = description = "unsure"

    def __init__(self):
        super().__init__("unsure.onnx", META)

    def _run(self, batch):
        heatmaps = np.zeros((batch.shape[0],) + self.output_shape, np.float32)
        for j in range(META.num_joints):
            heatmaps[:, j, 8 + j, 8 + j] = 0.1
        return heatmaps


def crops_of_three_frames(busy: bool):
    """Sizes of the crops the pipeline asks for over three frames, and the joints each
    call found."""
    cfg = NodeConfig(mode="single", search_interval=5, search_passes=3, search_passes_when_busy=1)
    pipe = PosePipeline(PoseEstimator(UnsurePersonEngine()), pipeline_config(cfg))
    predict, calls = pipe.estimator.predictor.predict_regions, []

    def spy(image, regions, decode_method=None):
        keypoints, confidences = predict(image, regions, decode_method)
        calls.append((regions[0][1][0], keypoints[0]))
        return keypoints, confidences

    pipe.estimator.predictor.predict_regions = spy
    pipe.newer_frame_waiting = lambda: busy
    for stamp in (0.0, 0.1, 0.2):
        pipe.process(FRAME, stamp)
    return calls


def joints_side(keypoints):
    return float(np.ptp(keypoints, axis=0).max())


def test_crop_after_a_search_cut_short_is_grown_as_the_first_refinement():
    calls = crops_of_three_frames(busy=True)
    assert len(calls) == 3  # whole frame, then one crop a frame
    (_, whole_joints), (first_size, first_joints), (second_size, _) = calls
    assert first_size == pytest.approx(joints_side(whole_joints) * FIRST_REFINEMENT_PADDING)
    assert second_size == pytest.approx(joints_side(first_joints) * JOINTS_BOX_PADDING)


def test_crop_after_a_full_search_keeps_the_joints_padding():
    calls = crops_of_three_frames(busy=False)
    assert len(calls) == 5  # the three passes, then one crop a frame
    (_, last_joints), (size, _) = calls[2], calls[3]
    assert size == pytest.approx(joints_side(last_joints) * JOINTS_BOX_PADDING)

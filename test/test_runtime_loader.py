"""The node's pipeline built from plain settings, without ROS (runtime/loader.py)."""
import numpy as np

from lapx_ros.ros import params
from lapx_ros.runtime.detectors import DetectorSettings
from lapx_ros.runtime.loader import ModelSettings, load_pipeline
from tiny_models import build_model

CONFIG = params.pipeline_config(params.NodeConfig())
DETECTOR_CONFIG = params.pipeline_config(params.NodeConfig(mode="detector"))


def test_a_model_file_becomes_a_pipeline_with_its_description(tmp_path):
    path = build_model(tmp_path / "tiny.onnx")
    loaded = load_pipeline(ModelSettings(path=path, backend="onnxruntime", threads=1), CONFIG)
    status = loaded.status
    assert loaded.pipeline is not None and loaded.pipeline.detector is None
    assert (status.path, status.problem) == (path, "")
    assert status.engine.startswith("onnxruntime") and status.summary == "mpii16 16 joints, input 64x64"
    assert loaded.pipeline.process(np.zeros((96, 128, 3), np.uint8), 0.0) is not None


def test_a_file_that_cannot_be_used_is_a_status_not_an_exception(tmp_path):
    missing = str(tmp_path / "missing.onnx")
    loaded = load_pipeline(ModelSettings(path=missing, backend="onnxruntime"), CONFIG)
    assert loaded.pipeline is None and missing in loaded.status.problem and not loaded.status.engine


def test_detector_falls_back_to_hog_and_says_why(tmp_path):
    broken = tmp_path / "movenet.onnx"
    broken.write_bytes(b"not a model")
    loaded = load_pipeline(ModelSettings(path=build_model(tmp_path / "tiny.onnx"), backend="onnxruntime"),
                           DETECTOR_CONFIG, DetectorSettings(model=str(broken)), synchronous_detector=True)
    detector = loaded.pipeline.detector
    assert detector is not None and detector.synchronous
    assert loaded.status.detector.startswith("hog") and str(broken) in loaded.status.detector_problem
    assert loaded.status.detector_fallback == "HOG instead of MoveNet"
    assert loaded.notes  # the fallbacks on the way, for the caller's log


def test_the_detector_is_built_only_for_a_mode_that_runs_one(tmp_path):
    loaded = load_pipeline(ModelSettings(path=build_model(tmp_path / "tiny.onnx"), backend="onnxruntime"),
                           CONFIG, DetectorSettings(kind="hog"))
    assert loaded.pipeline.detector is None and loaded.status.detector == ""


def test_node_parameters_name_the_model_settings():
    config = params.NodeConfig().replace(model_path="x.onnx", threads=3)
    assert params.model_settings(config) == ModelSettings(path="x.onnx", preset="default", backend="auto",
                                                          threads=3, precision="auto")

"""The pose pipeline the node runs, built from plain settings: the model file (or the
shipped file of a preset) on an engine and, in a mode that runs one, the built-in person
detector on a thread of its own. No ROS here, so that a tool can build exactly the
node's pipeline without starting a node."""
from __future__ import annotations

from dataclasses import dataclass, field

from lapx_ros.runtime.backend import ModelError
from lapx_ros.runtime.detectors import BackgroundDetector, DetectorSettings, create_person_detector, fallback_text
from lapx_ros.runtime.engine import create_engine, default_model_path
from lapx_ros.runtime.estimator import PoseEstimator
from lapx_ros.runtime.modes import mode_class
from lapx_ros.runtime.pipeline import PipelineConfig, PosePipeline


@dataclass(frozen=True)
class ModelSettings:
    """Which network file runs, and on what (the node's model_* and engine parameters)."""

    path: str = ""  # "" = the shipped file of ``preset``
    preset: str = "default"
    backend: str = "auto"
    threads: int = 2
    precision: str = "auto"


@dataclass(frozen=True)
class ModelStatus:
    """What runs, or why nothing does: for the log and the diagnostics."""

    path: str = ""
    problem: str = ""  # why no pipeline could be built
    engine: str = ""  # the engine's own description of what runs
    summary: str = ""  # the file's joint layout and input size
    detector: str = ""  # mode detector: the detector that runs
    detector_problem: str = ""  # why the detector asked for is not the one that runs
    detector_fallback: str = ""  # with a detector_problem: what runs instead ("HOG instead of MoveNet")


@dataclass
class LoadedPipeline:
    """``pipeline`` is None when the model could not be loaded (``status.problem`` says
    why); ``notes`` are the fallbacks taken on the way, for the caller's log."""

    pipeline: PosePipeline | None
    status: ModelStatus
    notes: list[str] = field(default_factory=list)


def load_pipeline(model: ModelSettings, config: PipelineConfig, detector: DetectorSettings | None = None,
                  synchronous_detector: bool = False) -> LoadedPipeline:
    """The pipeline of ``config`` on the network of ``model``; when the config's mode runs
    a detector, also the built-in detector of ``detector`` (synchronous: it runs inside
    the frame that asks for it, for offline measurements). A file that cannot be used is
    a status, not an exception."""
    notes: list[str] = []
    try:
        path = model.path or default_model_path(model.preset)
        engine = create_engine(path or f"(no {model.preset} model file found in models/)", model.backend,
                               model.threads, model.precision, log=notes.append)
    except (ModelError, ValueError) as exc:
        return LoadedPipeline(None, ModelStatus(problem=str(exc)), notes)
    background, detector_text, detector_problem, detector_fallback = None, "", "", ""
    if detector is not None and mode_class(config.mode).runs_detector:
        detect, detector_problem = create_person_detector(detector, log=notes.append)
        background = BackgroundDetector(detect, synchronous=synchronous_detector)
        detector_text = detect.description
        detector_fallback = fallback_text(detector) if detector_problem else ""
    meta = engine.metadata
    status = ModelStatus(path=path, engine=engine.description,
                         summary=(f"{meta.layout_name} {meta.num_joints} joints, input "
                                  f"{meta.input_width}x{meta.input_height}"),
                         detector=detector_text, detector_problem=detector_problem,
                         detector_fallback=detector_fallback)
    return LoadedPipeline(PosePipeline(PoseEstimator(engine), config, background), status, notes)

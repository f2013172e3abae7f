"""Inference backends for exported LAPX models, behind one small interface.

A model file is validated once, when it is loaded, so that a wrong file is refused
with a message naming the file and the problem instead of failing on the first frame.
ONNX Runtime is always available; OpenVINO is used when importable because it runs
this network several times faster on x86 CPUs.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from lapx_ros.metadata import METADATA_KEY, ModelMetadata

BACKENDS = ("auto", "onnxruntime", "openvino")
# Crops per network call at most (Engine.infer splits larger batches).
MAX_BATCH = 4
PRECISIONS = ("auto", "f32", "bf16")


class ModelError(Exception):
    """The model file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"model {path!r}: {problem}")
        self.path = path
        self.problem = problem


class InferenceError(RuntimeError):
    """The network produced unusable output (NaN/Inf, wrong shape)."""


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


OPENVINO_CONVERTER = "openvino.tools.ovc"


def import_openvino():
    """``import openvino`` without its model converter.

    openvino's ``__init__`` also imports ``convert_model`` when it can (TensorFlow frontend,
    telemetry, http/ssl): 14 MB of resident memory in a node that only compiles ONNX files.
    The converter is hidden during that import only, so it can still be imported later.
    """
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    sys.modules[OPENVINO_CONVERTER] = None  # makes openvino's optional import of it fail
    try:
        import openvino
    finally:
        del sys.modules[OPENVINO_CONVERTER]
    return openvino


def _check_dims(path: str, what: str, shape, expected) -> None:
    """Compare a model's declared dims with the expected ones (None = dynamic, passes)."""
    if len(shape) != len(expected):
        raise ModelError(path, f"{what} has rank {len(shape)} {list(shape)}, "
                               f"expected rank {len(expected)} (N, C, H, W)")
    for axis, (got, want) in enumerate(zip(shape, expected)):
        if want is not None and got is not None and got != want:
            raise ModelError(path, f"{what} dim {axis} is {got}, expected {want} "
                                   f"(shape {list(shape)})")


def check_file(path: str) -> None:
    """ModelError unless ``path`` names a non-empty file."""
    if not path:
        raise ModelError(path, "no model file given")
    if not os.path.isfile(path):
        raise ModelError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise ModelError(path, "file is empty")


def validate_model(path: str, metadata_json: str | None, inputs: dict, outputs: dict) -> ModelMetadata:
    """The metadata of a loaded model, checked against its input/output shapes.

    ``inputs`` / ``outputs`` map tensor names to shapes (None for dynamic dims), as each
    backend reads them from the file.
    """
    if metadata_json is None:
        raise ModelError(path, f"no '{METADATA_KEY}' metadata (joint layout, input size); "
                               "export the model with lapx-export")
    try:
        meta = ModelMetadata.from_json(metadata_json)
    except ValueError as exc:
        raise ModelError(path, str(exc)) from None
    if meta.input_name not in inputs:
        raise ModelError(path, f"no input named {meta.input_name!r} (has {sorted(inputs)})")
    if meta.output_name not in outputs:
        raise ModelError(path, f"no output named {meta.output_name!r} (has {sorted(outputs)})")
    h, w, s = meta.input_height, meta.input_width, meta.heatmap_stride
    _check_dims(path, "input", inputs[meta.input_name], (None, 3, h, w))
    _check_dims(path, "output", outputs[meta.output_name], (None, meta.num_joints, h // s, w // s))
    return meta


# --- session creation, shared with other networks (lapx_ros.runtime.detector) -----------
def onnxruntime_session(path: str, threads: int):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads that sleep when idle
    (spinning ones slow whichever other network runs next on a small CPU); ModelError
    ("not a loadable ONNX model (...)") when the file cannot be read."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises several private exception types
        text = str(exc).strip()
        raise ModelError(path, "not a loadable ONNX model "
                               f"({text.splitlines()[0] if text else type(exc).__name__})") from None


def onnxruntime_shapes(tensors) -> dict:
    """Tensor name -> shape of an ORT session's inputs or outputs (None = dynamic)."""
    return {t.name: [d if isinstance(d, int) and d > 0 else None for d in t.shape] for t in tensors}


def openvino_read_model(core, path: str):
    """``core.read_model(path)``; ModelError ("not a loadable ONNX model (...)") on failure."""
    try:
        return core.read_model(path)
    except Exception as exc:
        raise ModelError(path, f"not a loadable ONNX model ({str(exc).strip().splitlines()[0]})") from None


def openvino_shapes(ports) -> dict:
    """Tensor name -> shape of an OpenVINO model's inputs or outputs (None = dynamic)."""
    return {name: [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
            for p in ports for name in p.get_names()}


def openvino_config(threads: int, precision: str) -> dict:
    """CPU compile settings: latency hint, ``threads``, and the precision unless auto."""
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = precision
    return config


class Engine(ABC):
    """Runs a batch of normalised crops (N, 3, H, W) and returns heatmaps (N, K, h, w)."""

    name = "engine"
    precision = "f32"  # what the engine really computes in (OpenVINO may choose bf16)

    def __init__(self, path: str, metadata: ModelMetadata):
        self.path = path
        self.metadata = metadata
        m = metadata
        self.output_shape = (m.num_joints, m.input_height // m.heatmap_stride,
                             m.input_width // m.heatmap_stride)

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Backend-specific inference."""

    @property
    @abstractmethod
    def description(self) -> str:
        """Backend, version and settings, for logs and diagnostics."""

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Heatmaps for ``batch``; raises InferenceError instead of returning NaN.

        Runs at most ``MAX_BATCH`` crops per call: OpenVINO keeps buffers for every batch
        size it has run, so a crowd's 10-12 crops grew the node by 150 MB, while batches
        beyond 3-4 crops are hardly cheaper per crop on a CPU."""
        if len(batch) > MAX_BATCH:
            return np.concatenate([self.infer(batch[i:i + MAX_BATCH])
                                   for i in range(0, len(batch), MAX_BATCH)])
        out = self._shaped_run(batch)
        if not np.isfinite(out).all():
            raise InferenceError("model output contains NaN or Inf (corrupted weights?)")
        return out

    def _shaped_run(self, batch: np.ndarray) -> np.ndarray:
        out = np.asarray(self._run(np.ascontiguousarray(batch, dtype=np.float32)))
        if out.shape != (batch.shape[0],) + self.output_shape:
            raise InferenceError(f"model output shape {list(out.shape)}, expected "
                                 f"{[batch.shape[0], *self.output_shape]}")
        return out

    def check(self) -> None:
        """One dry run on a black crop, so that shape faults surface at load time.

        Non-finite output is not a load error: it is reported per frame, where the
        node's diagnostics can show it.
        """
        m = self.metadata
        try:
            self._shaped_run(np.zeros((1, 3, m.input_height, m.input_width), np.float32))
        except InferenceError as exc:
            raise ModelError(self.path, str(exc)) from None
        except Exception as exc:
            raise ModelError(self.path, f"inference failed: {exc}") from None


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, path: str, threads: int):
        import onnxruntime as ort

        session = onnxruntime_session(path, threads)
        meta = validate_model(path, session.get_modelmeta().custom_metadata_map.get(METADATA_KEY),
                              onnxruntime_shapes(session.get_inputs()),
                              onnxruntime_shapes(session.get_outputs()))
        super().__init__(path, meta)
        self._session = session
        self._threads = threads
        self._version = ort.__version__

    def _run(self, batch):
        return self._session.run([self.metadata.output_name],
                                 {self.metadata.input_name: batch})[0]

    @property
    def description(self):
        return f"onnxruntime {self._version} (fp32, {self._threads} threads)"


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, path: str, threads: int, precision: str):
        ov = import_openvino()
        core = ov.Core()
        model = openvino_read_model(core, path)
        key = ["framework", METADATA_KEY]  # where OpenVINO keeps ONNX metadata_props
        meta_json = model.get_rt_info(key).astype(str) if model.has_rt_info(key) else None
        meta = validate_model(path, meta_json, openvino_shapes(model.inputs),
                              openvino_shapes(model.outputs))
        super().__init__(path, meta)
        self._compiled = core.compile_model(model, "CPU", openvino_config(threads, precision))
        self._request = self._compiled.create_infer_request()
        self.precision = self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._threads = threads
        self._version = ov.__version__.split("-")[0]

    def _run(self, batch):
        self._request.infer({0: batch})
        return self._request.get_output_tensor(0).data.copy()

    @property
    def description(self):
        return f"openvino {self._version} ({self.precision}, {self._threads} threads)"


def create_engine(path: str, backend: str = "auto", threads: int = 2,
                  precision: str = "auto", log=None) -> Engine:
    """Load and validate ``path`` on the requested backend.

    ``auto`` takes OpenVINO when it is installed and falls back to ONNX Runtime (with a
    message through ``log``) when OpenVINO cannot run the model. A file that is wrong
    in itself (metadata, shapes) is refused whatever the backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    check_file(path)

    def checked(engine: Engine) -> Engine:
        engine.check()
        return engine

    return load_with_fallback(path, backend, lambda: checked(OpenVinoEngine(path, threads, precision)),
                              lambda: checked(OnnxRuntimeEngine(path, threads)), log)


def load_with_fallback(path: str, backend: str, load_openvino, load_onnxruntime, log=None,
                       error=ModelError, what: str = ""):
    """The backend choice every network of the package shares: OpenVINO when asked or, for
    ``auto``, when installed; ``auto`` falls back to ONNX Runtime (said through ``log``) when
    OpenVINO cannot read, compile or run the file, while a file wrong in itself
    (a ``error`` other than "not a loadable ...") is refused whatever the backend."""
    if backend == "openvino" and not openvino_available():
        raise error(path, "backend 'openvino' requested but openvino is not installed")
    if backend in ("auto", "openvino") and openvino_available():
        try:
            return load_openvino()
        except ModelError as exc:
            if backend == "openvino" or not exc.problem.startswith("not a loadable"):
                raise
            reason = exc.problem
        except Exception as exc:  # OpenVINO could not compile or run it
            if backend == "openvino":
                raise error(path, f"openvino cannot run it: {exc}") from None
            reason = str(exc)
        if log:
            log(f"openvino cannot use {what}{path!r} ({reason}); trying onnxruntime")
    return load_onnxruntime()


# The shipped models, by preset: the default balances speed and accuracy; the accurate
# one averages more network runs a crop (MODEL.md) at that many times the cost.
MODEL_PRESETS = {"default": "lapx_mpii16.onnx", "accurate": "lapx_mpii16_accurate.onnx"}


def default_model_path(preset: str = "default") -> str:
    """The shipped model of ``preset``: in ``models/`` of a source checkout, else of the
    installed package's share folder. Returns "" when it is found nowhere."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"model preset must be one of {list(MODEL_PRESETS)}, got {preset!r}")
    package_dir = Path(__file__).resolve().parents[1]
    folders = [package_dir.parent / "models"]
    try:
        from ament_index_python.packages import get_package_share_directory

        folders.append(Path(get_package_share_directory("lapx_ros")) / "models")
    except Exception:  # not installed through ament, or ament_index absent
        pass
    folders.append(Path(sys.prefix) / "share" / "lapx_ros" / "models")
    for folder in folders:
        if (folder / MODEL_PRESETS[preset]).is_file():
            return str(folder / MODEL_PRESETS[preset])
    return ""

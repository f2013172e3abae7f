"""The one inference backend of the package: every network (the pose network, each person
detector) loads its ONNX file through ``load_network``.

It chooses the runtime (OpenVINO when asked or, for ``auto``, when installed, because it
runs these networks several times faster on x86 CPUs; ONNX Runtime otherwise, and as the
fallback when OpenVINO cannot use a file), sets threads and precision the same way for
all, and refuses a file that cannot be used with a message naming the file and the
problem, at load time rather than on the first frame.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

BACKENDS = ("auto", "onnxruntime", "openvino")
PRECISIONS = ("auto", "f32", "bf16")
# OpenVINO networks compiled per input shape kept at most (a camera rarely changes size).
MAX_COMPILED_SHAPES = 4
OPENVINO_CONVERTER = "openvino.tools.ovc"

Loaded = TypeVar("Loaded")


class ModelError(Exception):
    """The model file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"model {path!r}: {problem}")
        self.path = path
        self.problem = problem


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


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


def check_file(path: str) -> None:
    """ModelError unless ``path`` names a non-empty file."""
    if not path:
        raise ModelError(path, "no model file given")
    if not os.path.isfile(path):
        raise ModelError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise ModelError(path, "file is empty")


def installed_file(folder: str, name: str) -> str:
    """The network file ``name`` in ``folder`` (models, detectors) of a source checkout,
    else of the package's share folder (an ament install's, or this Python prefix's, where
    set-up puts it); "" when it is found nowhere."""
    folders = [Path(__file__).resolve().parents[2] / folder]
    try:
        from ament_index_python.packages import get_package_share_directory

        folders.append(Path(get_package_share_directory("lapx_ros")) / folder)
    except Exception:  # not installed through ament, or ament_index absent
        pass
    folders.append(Path(sys.prefix) / "share" / "lapx_ros" / folder)
    return next((str(f / name) for f in folders if (f / name).is_file()), "")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
        raise ModelError(path, f"not a loadable ONNX model ({_first_line(exc)})") from None


class Network(ABC):
    """One ONNX file on one runtime. The networks of this package have one input and one
    output; ``run`` feeds the one and returns the other."""

    name = "network"  # the runtime's

    def __init__(self, path: str, threads: int):
        self.path = path
        self.threads = threads
        self.inputs: dict[str, list] = {}  # tensor name -> shape, None where dynamic
        self.outputs: dict[str, list] = {}
        self.input_types: dict[str, str] = {}  # tensor name -> numpy dtype name

    @abstractmethod
    def metadata(self, key: str) -> str | None:
        """The file's metadata entry ``key`` (ONNX metadata_props), or None."""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """The output for input ``x``."""

    @property
    @abstractmethod
    def precision(self) -> str:
        """What the network computes in ("" before OpenVINO compiled it)."""

    @property
    def description(self) -> str:
        """Runtime, version and settings, for logs and diagnostics."""
        return (f"{self.name} {self._version} ({self.precision or 'not compiled'}, {self.threads} "
                f"thread{'s' * (self.threads != 1)})")


class OnnxRuntimeNetwork(Network):
    name = "onnxruntime"

    def __init__(self, path: str, threads: int):
        import onnxruntime as ort

        super().__init__(path, threads)
        self._session = onnxruntime_session(path, threads)
        self._version = ort.__version__
        self.inputs = self._shapes(self._session.get_inputs())
        self.outputs = self._shapes(self._session.get_outputs())
        types = {t.name: t.type.removeprefix("tensor(").removesuffix(")") for t in self._session.get_inputs()}
        self.input_types = {name: {"float": "float32", "double": "float64"}.get(t, t) for name, t in types.items()}
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name

    @staticmethod
    def _shapes(tensors) -> dict:
        return {t.name: [d if isinstance(d, int) and d > 0 else None for d in t.shape] for t in tensors}

    def metadata(self, key):
        return self._session.get_modelmeta().custom_metadata_map.get(key)

    def run(self, x):
        return self._session.run([self._output_name], {self._input_name: x})[0]

    @property
    def precision(self):
        return "f32"


class OpenVinoNetwork(Network):
    """A file whose input has dynamic dims beyond the batch is compiled once per input
    shape it is run at (OpenVINO runs a static shape fastest), when the shape is first
    seen; any other is compiled once, at load."""

    name = "openvino"

    def __init__(self, path: str, threads: int, precision: str):
        ov = import_openvino()
        super().__init__(path, threads)
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(path)
        except Exception as exc:
            raise ModelError(path, f"not a loadable ONNX model ({_first_line(exc)})") from None
        self._version = ov.__version__.split("-")[0]
        self.inputs = self._shapes(self._model.inputs)
        self.outputs = self._shapes(self._model.outputs)
        self.input_types = {name: p.get_element_type().to_dtype().name
                            for p in self._model.inputs for name in p.get_names()}
        self._config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
        if precision != "auto":
            self._config["INFERENCE_PRECISION_HINT"] = precision
        self._per_shape = any(not d.is_static for d in self._model.inputs[0].get_partial_shape()[1:])
        self._requests: dict = {}
        self._precision = ""
        if not self._per_shape:
            self._request(None)

    @staticmethod
    def _shapes(ports) -> dict:
        return {name: [d.get_length() if d.is_static else None for d in p.get_partial_shape()]
                for p in ports for name in p.get_names()}

    def _request(self, shape):
        request = self._requests.get(shape)
        if request is None:
            model = self._model
            if shape is not None:
                model = model.clone()
                model.reshape({0: list(shape)})
            compiled = self._core.compile_model(model, "CPU", self._config)
            self._precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
            if len(self._requests) >= MAX_COMPILED_SHAPES:
                self._requests.clear()
            request = self._requests[shape] = compiled.create_infer_request()
        return request

    def metadata(self, key):
        where = ["framework", key]  # where OpenVINO keeps ONNX metadata_props
        return self._model.get_rt_info(where).astype(str) if self._model.has_rt_info(where) else None

    def run(self, x):
        request = self._request(tuple(x.shape) if self._per_shape else None)
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()

    @property
    def precision(self):
        return self._precision


def load_network(path: str, backend: str = "auto", threads: int = 1, precision: str = "auto",
                 prepare: Callable[[Network], Loaded] = lambda network: network, log=None,
                 what: str = "") -> Loaded:
    """``prepare`` of ``path`` loaded on ``backend`` with ``threads`` and (OpenVINO)
    ``precision``.

    ``prepare`` turns the network into what the caller runs, checking it on the way (its
    inputs and outputs, a dry run). ``auto`` takes OpenVINO when it is installed and falls
    back to ONNX Runtime, said through ``log`` (``what`` names the network there), when
    OpenVINO cannot read, compile or run the file; a file wrong in itself (a ModelError
    from ``prepare``) is refused whatever the backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    check_file(path)
    if backend == "openvino" and not openvino_available():
        raise ModelError(path, "backend 'openvino' requested but openvino is not installed")
    if backend in ("auto", "openvino") and openvino_available():
        try:
            return prepare(OpenVinoNetwork(path, threads, precision))
        except ModelError as exc:
            if backend == "openvino" or not exc.problem.startswith("not a loadable"):
                raise
            reason = exc.problem
        except Exception as exc:  # OpenVINO could not compile or run it
            if backend == "openvino":
                raise ModelError(path, f"openvino cannot run it: {exc}") from None
            reason = str(exc)
        if log:
            log(f"openvino cannot use {what}{path!r} ({reason}); trying onnxruntime")
    return prepare(OnnxRuntimeNetwork(path, threads))

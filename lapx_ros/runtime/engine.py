"""The pose network of an exported LAPX file: heatmaps for a batch of crops.

The file is validated once, when it is loaded (its metadata against its input and output
shapes, then a dry run), so that a wrong file is refused with a message naming the file
and the problem instead of failing on the first frame. It runs on the package's one
inference backend (``runtime.backend``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from lapx_ros.metadata import METADATA_KEY, ModelMetadata
from lapx_ros.runtime.backend import ModelError, Network, installed_file, load_network

# Crops per network call at most (Engine.infer splits larger batches).
MAX_BATCH = 4


class InferenceError(RuntimeError):
    """The network produced unusable output (NaN/Inf, wrong shape)."""


def _check_dims(path: str, what: str, shape, expected) -> None:
    """Compare a model's declared dims with the expected ones (None = dynamic, passes)."""
    if len(shape) != len(expected):
        raise ModelError(path, f"{what} has rank {len(shape)} {list(shape)}, "
                               f"expected rank {len(expected)} (N, C, H, W)")
    for axis, (got, want) in enumerate(zip(shape, expected)):
        if want is not None and got is not None and got != want:
            raise ModelError(path, f"{what} dim {axis} is {got}, expected {want} "
                                   f"(shape {list(shape)})")


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


class NetworkEngine(Engine):
    """The pose network of a file, on a backend network."""

    def __init__(self, network: Network, metadata: ModelMetadata):
        super().__init__(network.path, metadata)
        self.network = network
        self.name = network.name

    @property
    def precision(self) -> str:
        return self.network.precision

    def _run(self, batch):
        return self.network.run(batch)

    @property
    def description(self):
        return self.network.description


def create_engine(path: str, backend: str = "auto", threads: int = 2,
                  precision: str = "auto", log=None) -> Engine:
    """Load and validate ``path`` on the requested backend (``backend.load_network``: for
    ``auto`` OpenVINO when installed, ONNX Runtime when OpenVINO cannot run the file). A
    file that is wrong in itself (metadata, shapes) is refused whatever the backend."""

    def validated(network: Network) -> Engine:
        meta = validate_model(path, network.metadata(METADATA_KEY), network.inputs, network.outputs)
        engine = NetworkEngine(network, meta)
        engine.check()
        return engine

    return load_network(path, backend, threads, precision, validated, log)


# The shipped models, by preset: the default balances speed and accuracy; the accurate
# one averages more network runs a crop (MODEL.md) at that many times the cost.
MODEL_PRESETS = {"default": "lapx_mpii16.onnx", "accurate": "lapx_mpii16_accurate.onnx"}


def default_model_path(preset: str = "default") -> str:
    """The shipped model of ``preset``: in ``models/`` of a source checkout, else of the
    installed package's share folder. Returns "" when it is found nowhere."""
    if preset not in MODEL_PRESETS:
        raise ValueError(f"model preset must be one of {list(MODEL_PRESETS)}, got {preset!r}")
    return installed_file("models", MODEL_PRESETS[preset])

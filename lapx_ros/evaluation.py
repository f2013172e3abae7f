"""Scoring a model on labelled images with the same two-pass inference the node uses."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lapx_ros.data.lsp import PoseRecord
from lapx_ros.data.transforms import read_rgb
from lapx_ros.metadata import ModelMetadata
from lapx_ros.metrics import pck_torso, pckh
from lapx_ros.topdown import HeatmapFn, TopDownPredictor


def torch_heatmap_fn(model) -> HeatmapFn:
    """Wraps an eval-mode PyTorch network as a numpy heatmap function."""
    import torch

    def infer(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return infer


def onnx_heatmap_fn(path, threads: int = 2) -> tuple[HeatmapFn, ModelMetadata]:
    """An ONNX Runtime session as a numpy heatmap function, with the file's metadata."""
    import onnxruntime as ort

    from lapx_ros.export import read_onnx_metadata

    meta = read_onnx_metadata(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def infer(batch: np.ndarray) -> np.ndarray:
        return session.run([meta.output_name], {meta.input_name: batch})[0]

    return infer, meta


def load_heatmap_fn(path, threads: int = 2) -> tuple[HeatmapFn, ModelMetadata]:
    """A heatmap function from a checkpoint (.pt) or an exported model (.onnx)."""
    path = Path(path)
    if path.suffix == ".onnx":
        return onnx_heatmap_fn(path, threads)
    import torch

    from lapx_ros.checkpoint import load_model

    torch.set_num_threads(threads)
    model, state = load_model(path)
    return torch_heatmap_fn(model), ModelMetadata.from_json(state["metadata"])


def predict_lsp(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord], passes: int = 2,
                decode_method: str = "dark", flip_test: bool = False, progress: bool = False):
    """Predicted keypoints (N, K, 2) and confidences (N, K) for each record's whole image."""
    predictor = TopDownPredictor(infer, meta, decode_method, flip_test)
    keypoints, confidence = [], []
    iterator = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="evaluating", mininterval=10)
    for record in iterator:
        k, c = predictor.estimate_single(read_rgb(record.image_path), passes=passes)
        keypoints.append(k)
        confidence.append(c)
    return np.stack(keypoints), np.stack(confidence)


def evaluate_lsp(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord], passes: int = 2,
                 decode_method: str = "dark", flip_test: bool = False, progress: bool = False) -> dict:
    """PCKh@0.5 and PCK@0.2-torso (with per-joint tables) of the two-pass predictions."""
    keypoints, _ = predict_lsp(infer, meta, records, passes, decode_method, flip_test, progress)
    labels = np.stack([r.joints for r in records])
    head, torso = pckh(keypoints, labels), pck_torso(keypoints, labels)
    return {"pckh": head.accuracy, "pck_torso": torso.accuracy, "images": len(records),
            "scored_joints_pckh": head.scored_joints, "scored_images_pckh": head.scored_images,
            "per_joint_pckh": head.per_joint, "per_joint_pck_torso": torso.per_joint}

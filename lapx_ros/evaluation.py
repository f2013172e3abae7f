"""Scoring a model on labelled images with the same whole-frame search the node uses."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from lapx_ros.data.coco import PERSON_CATEGORY, CocoPeople
from lapx_ros.data.lsp import PoseRecord
from lapx_ros.data.transforms import read_rgb
from lapx_ros.geometry import keypoints_to_box
from lapx_ros.layouts import COCO_17, MPII_16
from lapx_ros.metadata import ModelMetadata
from lapx_ros.metrics import mpii_pckh, pck_torso, pckh
from lapx_ros.topdown import SEARCH_PASSES, HeatmapFn, TopDownPredictor, box_region


def torch_heatmap_fn(model, stage: int = 0) -> HeatmapFn:
    """Wraps an eval-mode PyTorch network as a numpy heatmap function; ``stage`` (1-based)
    takes an earlier stage's heatmaps instead of the last's."""
    import torch

    def infer(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(batch)
            return (model.forward_all(x)[stage - 1] if stage else model(x)).numpy()

    return infer


def engine_heatmap_fn(path, backend: str = "auto", threads: int = 2,
                      precision: str = "auto") -> tuple[HeatmapFn, ModelMetadata]:
    """An exported model run by the node's own engine (same backend choice, precision and
    validation), so offline figures are the figures of what the node runs."""
    from lapx_ros.runtime.engine import create_engine

    engine = create_engine(str(path), backend, threads, precision)
    return engine.infer, engine.metadata


def load_heatmap_fn(path, threads: int = 2, backend: str = "auto", precision: str = "auto",
                    stage: int = 0) -> tuple[HeatmapFn, ModelMetadata]:
    """A heatmap function from a checkpoint (.pt) or an exported model (.onnx);
    ``stage`` picks a checkpoint's intermediate stage (0: the last)."""
    path = Path(path)
    if path.suffix == ".onnx":
        if stage:
            raise ValueError("--stage needs a checkpoint (.pt): exported models keep only the last stage")
        return engine_heatmap_fn(path, backend, threads, precision)
    import torch

    from lapx_ros.checkpoint import load_model

    torch.set_num_threads(threads)
    model, state = load_model(path)
    if not 0 <= stage <= model.config.num_stages:
        raise ValueError(f"--stage {stage}: the network has stages 1..{model.config.num_stages}")
    return torch_heatmap_fn(model, stage), ModelMetadata.from_json(state["metadata"])


def predict_lsp(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord], passes: int = SEARCH_PASSES,
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


def with_label_box(record: PoseRecord) -> PoseRecord:
    """The record with the box of its visible labelled joints."""
    visible = record.joints[:, 2] > 0
    return dataclasses.replace(record, box=keypoints_to_box(record.joints[:, :2], visible))


def evaluate_lsp(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord], passes: int = SEARCH_PASSES,
                 decode_method: str = "dark", flip_test: bool = False, progress: bool = False,
                 label_boxes: bool = False) -> dict:
    """PCKh@0.5 and PCK@0.2-torso (with per-joint tables) of the whole-frame search's predictions.

    ``label_boxes`` crops the labelled joints' box instead: not the dashboard metric (the
    labels place the person) but the ceiling that better person finding could reach.
    """
    if label_boxes:
        keypoints, _ = predict_in_boxes(infer, meta, [with_label_box(r) for r in records],
                                        decode_method, flip_test, progress)
    else:
        keypoints, _ = predict_lsp(infer, meta, records, passes, decode_method, flip_test, progress)
    labels = np.stack([r.joints for r in records])
    head, torso = pckh(keypoints, labels), pck_torso(keypoints, labels)
    return {"pckh": head.accuracy, "pck_torso": torso.accuracy, "images": len(records),
            "scored_joints_pckh": head.scored_joints, "scored_images_pckh": head.scored_images,
            "per_joint_pckh": head.per_joint, "per_joint_pck_torso": torso.per_joint}


def require_layout(meta: ModelMetadata, layout, dataset: str) -> None:
    """Scores compare joint i with label i, so the model must predict the dataset's joints."""
    if tuple(meta.joint_names) != layout.joint_names:
        raise ValueError(f"{dataset} needs a model of the {layout.name} layout "
                         f"({layout.num_joints} joints); this one is {meta.layout_name} ({meta.num_joints} joints)")


def _progress(items, enabled: bool, desc: str = "evaluating"):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, mininterval=10)


def predict_in_boxes(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord],
                     decode_method: str = "dark", flip_test: bool = False, progress: bool = False):
    """Keypoints (N, K, 2) and confidences (N, K), one crop per record's labelled box
    (MPII's protocol gives the person's position and scale)."""
    predictor = TopDownPredictor(infer, meta, decode_method, flip_test)
    keypoints, confidence = [], []
    for record in _progress(records, progress):
        k, c = predictor.predict_regions(read_rgb(record.image_path),
                                         [box_region(record.box, predictor.aspect_ratio)])
        keypoints.append(k[0])
        confidence.append(c[0])
    return np.stack(keypoints), np.stack(confidence)


def evaluate_mpii(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord],
                  decode_method: str = "dark", flip_test: bool = False, progress: bool = False) -> dict:
    """MPII PCKh@0.5 (neck-head top head size, see metrics.mpii_pckh) and PCK@0.2-torso."""
    require_layout(meta, MPII_16, "MPII")
    keypoints, _ = predict_in_boxes(infer, meta, records, decode_method, flip_test, progress)
    labels = np.stack([r.joints for r in records])
    head, torso = mpii_pckh(keypoints, labels), pck_torso(keypoints, labels)
    return {"pckh": head.accuracy, "pck_torso": torso.accuracy, "people": len(records),
            "scored_joints_pckh": head.scored_joints, "scored_people_pckh": head.scored_images,
            "per_joint_pckh": head.per_joint, "per_joint_pck_torso": torso.per_joint}


def keypoint_result(image_id: int, keypoints: np.ndarray, confidence: np.ndarray, box_score: float,
                    min_confidence: float = 0.2) -> dict:
    """One COCO keypoint result. Its score, box score x mean confidence of the confident
    joints, ranks people for AP the way top-down methods usually do."""
    confident = confidence > min_confidence
    joint_score = float(confidence[confident].mean()) if confident.any() else 0.0
    flat = np.concatenate([keypoints, confidence[:, None]], axis=1).reshape(-1)
    return {"image_id": int(image_id), "category_id": PERSON_CATEGORY,
            "keypoints": [round(float(v), 3) for v in flat], "score": box_score * joint_score}


def predict_coco(predictor: TopDownPredictor, people: CocoPeople, progress: bool = False) -> list[dict]:
    """COCO keypoint results for every box, all boxes of an image in one batch."""
    results = []
    for image_id in _progress(list(people.boxes), progress):
        scored = people.boxes[image_id]
        regions = [box_region(box, predictor.aspect_ratio) for box, _ in scored]
        keypoints, confidence = predictor.predict_regions(read_rgb(people.image_path(image_id)), regions)
        results += [keypoint_result(image_id, k, c, score)
                    for (_, score), k, c in zip(scored, keypoints, confidence)]
    return results


COCO_STATS = ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar", "ar50", "ar75", "ar_medium", "ar_large")


def coco_keypoint_ap(coco, results: list[dict], image_ids=None) -> dict:
    """COCOeval('keypoints') of ``results`` on ``image_ids`` (default: all images).

    -1 marks a figure COCO leaves undefined (no labelled person of that size).
    """
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(COCO_STATS, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        # loadRes adds fields to each result: give it copies.
        evaluator = COCOeval(coco, coco.loadRes([dict(r) for r in results]), "keypoints")
        if image_ids is not None:
            evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(COCO_STATS, evaluator.stats)}


def evaluate_coco(infer: HeatmapFn, meta: ModelMetadata, people: CocoPeople, decode_method: str = "dark",
                  flip_test: bool = False, progress: bool = False, results_file=None) -> dict:
    """COCO OKS AP/AR of top-down predictions in the given (labelled or detected) boxes;
    the keypoint results are written to ``results_file`` when given."""
    require_layout(meta, COCO_17, "COCO")
    results = predict_coco(TopDownPredictor(infer, meta, decode_method, flip_test), people, progress)
    if results_file is not None:
        Path(results_file).write_text(json.dumps(results))
    return {**coco_keypoint_ap(people.coco, results, people.image_ids), "images": len(people.image_ids),
            "people": sum(len(b) for b in people.boxes.values())}

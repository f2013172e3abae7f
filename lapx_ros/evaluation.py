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
from lapx_ros.geometry import JOINTS_BOX_PADDING, PERSON_BOX_PADDING, keypoints_to_box
from lapx_ros.layouts import COCO_17, MPII_16, JointLayout, convert_joints
from lapx_ros.metadata import ModelMetadata
from lapx_ros.metrics import mpii_pckh, pck_torso, pckh
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING, SEARCH_PASSES, HeatmapFn, TopDownPredictor, box_region


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
                decode_method: str = "dark", flip_test: bool = False, progress: bool = False,
                first_padding: float = FIRST_REFINEMENT_PADDING):
    """Predicted keypoints (N, K, 2) and confidences (N, K) for each record's whole image."""
    predictor = TopDownPredictor(infer, meta, decode_method, flip_test)
    keypoints, confidence = [], []
    iterator = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="evaluating", mininterval=10)
    for record in iterator:
        k, c = predictor.estimate_single(read_rgb(record.image_path), passes=passes,
                                         first_padding=first_padding)
        keypoints.append(k)
        confidence.append(c)
    return np.stack(keypoints), np.stack(confidence)


def with_label_box(record: PoseRecord) -> PoseRecord:
    """The record with the box of its visible labelled joints."""
    visible = record.joints[:, 2] > 0
    return dataclasses.replace(record, box=keypoints_to_box(record.joints[:, :2], visible))


def evaluate_lsp(infer: HeatmapFn, meta: ModelMetadata, records: list[PoseRecord], passes: int = SEARCH_PASSES,
                 decode_method: str = "dark", flip_test: bool = False, progress: bool = False,
                 label_boxes: bool = False, first_padding: float = FIRST_REFINEMENT_PADDING,
                 labels_layout: JointLayout = MPII_16) -> dict:
    """PCKh@0.5 and PCK@0.2-torso (with per-joint tables) of the whole-frame search's predictions,
    moved by joint name into the records' ``labels_layout``: a model of any layout with the
    twelve limb joints is scored on them.

    ``label_boxes`` crops the labelled joints' box instead: not the dashboard metric (the
    labels place the person) but the ceiling that better person finding could reach.
    """
    if label_boxes:
        keypoints, _ = predict_in_boxes(infer, meta, [with_label_box(r) for r in records],
                                        decode_method, flip_test, progress)
    else:
        keypoints, _ = predict_lsp(infer, meta, records, passes, decode_method, flip_test, progress,
                                   first_padding)
    labels = np.stack([r.joints for r in records])
    keypoints = convert_joints(keypoints, meta.layout, labels_layout, missing=np.nan)
    head = pckh(keypoints, labels, layout=labels_layout)
    torso = pck_torso(keypoints, labels, layout=labels_layout)
    return {"pckh": head.accuracy, "pck_torso": torso.accuracy, "images": len(records),
            "scored_joints_pckh": head.scored_joints, "scored_images_pckh": head.scored_images,
            "per_joint_pckh": head.per_joint, "per_joint_pck_torso": torso.per_joint}


def require_layout(meta: ModelMetadata, layout, dataset: str) -> None:
    """Scores compare joint i with label i, so the model must predict the dataset's joints."""
    if tuple(meta.joint_names) != layout.joint_names:
        raise ValueError(f"{dataset} needs a model of the {layout.name} layout "
                         f"({layout.num_joints} joints); this one is {meta.layout_name} ({meta.num_joints} joints)")


def require_limbs(meta: ModelMetadata, dataset: str) -> None:
    """Models of different layouts are compared on the twelve limb joints they share."""
    if not meta.layout.limb_joints:
        raise ValueError(f"{dataset} needs a model with the 12 limb joints (as {COCO_17.name} and "
                         f"{MPII_16.name} have); this one is {meta.layout_name} ({meta.num_joints} joints)")


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


def predict_coco(predictor: TopDownPredictor, people: CocoPeople, progress: bool = False,
                 box_padding: float = JOINTS_BOX_PADDING) -> list[dict]:
    """COCO keypoint results for every box, all boxes of an image in one batch."""
    results = []
    for image_id in _progress(list(people.boxes), progress):
        scored = people.boxes[image_id]
        regions = [box_region(box, predictor.aspect_ratio, box_padding) for box, _ in scored]
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
                  flip_test: bool = False, progress: bool = False, results_file=None,
                  box_padding: float = JOINTS_BOX_PADDING) -> dict:
    """COCO OKS AP/AR of a COCO-17 model's predictions in the given (labelled or detected)
    boxes, each grown by ``box_padding`` (1.25: what its training crops held around a COCO
    box); the keypoint results are written to ``results_file``."""
    require_layout(meta, COCO_17, "COCO")
    results = predict_coco(TopDownPredictor(infer, meta, decode_method, flip_test), people, progress,
                           box_padding)
    if results_file is not None:
        Path(results_file).write_text(json.dumps(results))
    return {**coco_keypoint_ap(people.coco, results, people.image_ids), "images": len(people.image_ids),
            "people": sum(len(b) for b in people.boxes.values())}


# COCO people scored by OKS-PCK must have at least this many labelled keypoints.
COCO_LIMBS_MIN_KEYPOINTS = 5


def coco_limb_people(coco, min_keypoints: int = COCO_LIMBS_MIN_KEYPOINTS) -> list[dict]:
    """The labelled people OKS-PCK scores: not crowds, at least ``min_keypoints`` keypoints."""
    from lapx_ros.data.coco import person_annotations

    return [a for a in person_annotations(coco) if a.get("num_keypoints", 0) >= min_keypoints]


def coco_limb_ap(coco, results: list[dict]) -> dict:
    """COCO keypoint AP/AR (pycocotools) on the 12 limb joints only: labels and results cut
    to shoulders..ankles, with those joints' OKS sigmas. Results are COCO-17 results."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from lapx_ros.metrics import COCO_LIMB_JOINTS, COCO_OKS_SIGMAS

    limbs = list(COCO_LIMB_JOINTS)

    def cut(keypoints):
        return np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)[limbs].reshape(-1).tolist()

    gt = {"images": coco.dataset["images"], "categories": coco.dataset["categories"], "annotations": []}
    for ann in coco.dataset["annotations"]:
        ann = dict(ann)
        if "keypoints" in ann:
            ann["keypoints"] = cut(ann["keypoints"])
            ann["num_keypoints"] = int((np.asarray(ann["keypoints"]).reshape(-1, 3)[:, 2] > 0).sum())
        gt["annotations"].append(ann)
    with contextlib.redirect_stdout(io.StringIO()):
        limb_coco = COCO()
        limb_coco.dataset = gt
        limb_coco.createIndex()
        if not results:
            return dict.fromkeys(COCO_STATS, 0.0)
        dt = limb_coco.loadRes([{**r, "keypoints": cut(r["keypoints"])} for r in results])
        evaluator = COCOeval(limb_coco, dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = COCO_OKS_SIGMAS[limbs]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(COCO_STATS, evaluator.stats)}


def score_coco_limbs(coco, annotations: list[dict], pred17: np.ndarray, threshold: float = 0.5) -> dict:
    """Scores of predictions (len, 17, 2) in COCO order (NaN: not found) on the 12 limb
    joints of ``annotations``: OKS-PCK@``threshold`` with the labelled segment areas (and
    its per-joint table); limb OKS-hit, the same with the box area, and the median error
    / sqrt(box area), the peers' comparison (``../shared/notes/teachers.md``)."""
    from lapx_ros.metrics import COCO_LIMB_JOINTS, median_relative_error, oks_pck

    labels = np.stack([np.asarray(a["keypoints"], dtype=np.float64).reshape(17, 3) for a in annotations])
    areas = np.array([max(float(a.get("area") or a["bbox"][2] * a["bbox"][3]), 1.0) for a in annotations])
    box_areas = np.array([max(float(a["bbox"][2] * a["bbox"][3]), 1.0) for a in annotations])
    accuracy, per_joint, scored = oks_pck(pred17, labels, areas, threshold)
    hit, per_joint_hit, _ = oks_pck(pred17, labels, box_areas, threshold)
    return {"oks_pck": accuracy, "limb_oks_hit": hit,
            "median_error": median_relative_error(pred17, labels, box_areas),
            "people": len(annotations), "scored_joints": scored,
            "per_joint_oks_pck": {COCO_17.joint_names[j]: float(v) for j, v in zip(COCO_LIMB_JOINTS, per_joint)},
            "per_joint_limb_oks_hit": {COCO_17.joint_names[j]: float(v)
                                       for j, v in zip(COCO_LIMB_JOINTS, per_joint_hit)}}


def evaluate_coco_limbs(infer: HeatmapFn, meta: ModelMetadata, coco, images_dir, decode_method: str = "dark",
                        flip_test: bool = False, progress: bool = False,
                        min_keypoints: int = COCO_LIMBS_MIN_KEYPOINTS,
                        box_padding: float = PERSON_BOX_PADDING, image_ids=None) -> dict:
    """A model of any layout with the limb joints on COCO people, one crop per labelled box
    grown by ``box_padding`` (the node's boxes path and its default box_padding):
    OKS-PCK@0.5 and limb OKS-hit of the 12 limb joints on people with ``min_keypoints``
    labelled keypoints, and COCO keypoint AP/AR on those joints over all labelled people;
    a COCO-17 model also gets COCO's OKS AP/AR on all 17 (``ap``...). ``image_ids``: only
    those images (default: all)."""
    from lapx_ros.data.coco import clipped_box, image_path, person_annotations

    require_limbs(meta, "COCO limbs")
    predictor = TopDownPredictor(infer, meta, decode_method, flip_test)
    people = person_annotations(coco)
    if image_ids is not None:
        wanted = set(image_ids)
        people = [a for a in people if a["image_id"] in wanted]
    by_image: dict[int, list[dict]] = {}
    for ann in people:
        by_image.setdefault(ann["image_id"], []).append(ann)
    predicted: dict[int, np.ndarray] = {}
    results = []
    for image_id in _progress(sorted(by_image), progress):
        anns = by_image[image_id]
        regions = [box_region(clipped_box(coco, image_id, a["bbox"]), predictor.aspect_ratio, box_padding)
                   for a in anns]
        keypoints, confidence = predictor.predict_regions(read_rgb(image_path(coco, image_id, Path(images_dir))),
                                                          regions)
        for ann, k, c in zip(anns, keypoints, confidence):
            k17 = convert_joints(np.concatenate([k, c[:, None]], axis=1), meta.layout, COCO_17, missing=np.nan)
            predicted[ann["id"]] = k17[:, :2]
            results.append(keypoint_result(image_id, np.nan_to_num(k17[:, :2]), np.nan_to_num(k17[:, 2]), 1.0))
    scored = [a for a in people if a.get("num_keypoints", 0) >= min_keypoints]
    result = score_coco_limbs(coco, scored, np.stack([predicted[a["id"]] for a in scored]))
    ap = coco_limb_ap(coco, results)
    if set(COCO_17.joint_names) <= set(meta.layout.common_names):
        result.update(coco_keypoint_ap(coco, results, sorted(by_image) if image_ids is not None else None))
    return {**result, **{f"limb_{k}": v for k, v in ap.items()}, "labelled_boxes": len(people),
            "images": len(set(image_ids)) if image_ids is not None else len(by_image)}

"""lapx-eval: score a model (checkpoint or ONNX) on LSP/LSPET, MPII or COCO keypoints.

LSP/LSPET, PCKh@0.5 and PCK@0.2-torso: every image is given whole; the model finds the
person itself (whole frame, then crops around its own keypoints, --passes), exactly as the node
does. Labels never place a box. MPII, PCKh@0.5 (neck-head top as the head size) and
PCK@0.2-torso: one crop per annotated person (centre and scale), MPII's protocol. A model
of any layout is scored on the joints it shares with the labels (by name). COCO, one crop
per labelled person box: OKS-PCK@0.5, limb OKS-hit and median error of the 12 limb joints
(people with at least 5 labelled keypoints), keypoint AP on those 12 joints and, for a
COCO-17 model, OKS AP on all 17 with pycocotools; or, for a COCO-17 model, OKS AP per
detected person box of a COCO detection results file (--coco-detections).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lapx_ros.data.coco import CocoPeople, load_coco_people
from lapx_ros.data.lsp import load_lsp_records, parse_range
from lapx_ros.data.mpii import load_mpii_records
from lapx_ros.evaluation import (evaluate_coco, evaluate_coco_limbs, evaluate_lsp, evaluate_mpii, load_heatmap_fn,
                                 predict_coco, predict_in_boxes, predict_lsp, require_layout,
                                 require_limbs)
from lapx_ros.geometry import JOINTS_BOX_PADDING, PERSON_BOX_PADDING
from lapx_ros.heatmaps import DECODE_METHODS
from lapx_ros.layouts import COCO_17, MPII_16
from lapx_ros.runtime.backend import BACKENDS, PRECISIONS, ModelError
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING, SEARCH_PASSES, TopDownPredictor
from lapx_ros.visualize import write_samples

# The flags each dataset needs, as argparse destinations.
DATASET_FLAGS = {
    "lsp": ("lsp_images", "lsp_joints"),
    "mpii": ("mpii_annotations", "mpii_images"),
    "coco": ("coco_annotations", "coco_images"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapx-eval", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="lapx-train checkpoint (.pt) or lapx-export file (.onnx)")
    lsp = p.add_argument_group("LSP/LSPET")
    lsp.add_argument("--lsp-images", help="folder of imNNNNN.jpg")
    lsp.add_argument("--lsp-joints", help="joints.mat")
    lsp.add_argument("--range", default="9001-9500", help="first-last image index, inclusive")
    lsp.add_argument("--passes", type=int, default=SEARCH_PASSES,
                     help="network calls per image: 1 = the whole image only, each further one crops "
                          "around the previous one's joints (default: the node's search_passes)")
    lsp.add_argument("--first-padding", type=float, default=FIRST_REFINEMENT_PADDING,
                     help="context around the whole-image call's joints for the first crop (the "
                          f"node's search; later crops keep {JOINTS_BOX_PADDING})")
    lsp.add_argument("--label-boxes", action="store_true",
                     help="crop the labelled joints' box instead of finding the person (a ceiling "
                          "for diagnosis, not the dashboard metric)")
    mpii = p.add_argument_group("MPII (a 16-joint model)")
    mpii.add_argument("--mpii-annotations", help="MPII people in the common JSON format (e.g. valid.json)")
    mpii.add_argument("--mpii-images", help="folder of MPII images")
    coco = p.add_argument_group("COCO keypoints (a 17-joint model)")
    coco.add_argument("--coco-annotations", help="person_keypoints_*.json")
    coco.add_argument("--coco-images", help="folder of the annotation file's images")
    coco.add_argument("--coco-detections", help="COCO detection results JSON: crop these person boxes "
                                                "instead of the labelled ones")
    coco.add_argument("--box-padding", type=float,
                      help=f"context kept around each person box (default: {PERSON_BOX_PADDING} for an "
                           f"MPII-16 model, the node's box_padding default; {JOINTS_BOX_PADDING} for a "
                           "COCO-17 model, as its training crops)"),
    coco.add_argument("--coco-min-box-score", type=float, default=0.0, help="ignore weaker detections")
    coco.add_argument("--coco-results", help="write the keypoint results JSON here")
    p.add_argument("--limit", type=int, default=0, help="MPII: first N people; COCO: first N images (0: all)")
    p.add_argument("--decode", choices=DECODE_METHODS, default="dark")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--stage", type=int, default=0,
                   help="checkpoints: score this stage's heatmaps (1-based; 0: the last), to see what "
                        "a network with fewer stages would give")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="engine for .onnx models, as the node's parameter (auto: OpenVINO when installed)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="OpenVINO precision, as the node's parameter (auto: bf16 where the CPU has it)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON object to FILE")
    p.add_argument("--vis", metavar="DIR", help="write PNGs of the predictions on the first images here")
    p.add_argument("--vis-count", type=int, default=8, help="how many images --vis draws")
    return p


def dataset_mode(args, parser: argparse.ArgumentParser) -> str:
    """The one dataset the flags name; a parser error when none, several or half of one."""
    given = [mode for mode, flags in DATASET_FLAGS.items() if any(getattr(args, f) for f in flags)]
    if len(given) != 1:
        parser.error("name one dataset: --lsp-images/--lsp-joints, --mpii-annotations/--mpii-images "
                     "or --coco-annotations/--coco-images")
    missing = [f"--{f.replace('_', '-')}" for f in DATASET_FLAGS[given[0]] if not getattr(args, f)]
    if missing:
        parser.error(f"{given[0]} evaluation also needs {' '.join(missing)}")
    return given[0]


def load_data(mode: str, args):
    if mode == "lsp":
        return load_lsp_records(args.lsp_images, args.lsp_joints, parse_range(args.range))
    if mode == "mpii":
        return load_mpii_records(args.mpii_annotations, args.mpii_images, args.limit)
    return load_coco_people(args.coco_annotations, args.coco_images, args.coco_detections, args.limit,
                            args.coco_min_box_score)


def coco_box_padding(args, meta) -> float:
    """--box-padding, else what suits the model: an MPII-16 model (trained on crops around
    joints) takes a COCO person box as it is, as the node's box_padding; a COCO-17 model
    the 1.25 its own training crops held around such boxes."""
    if args.box_padding:
        return args.box_padding
    return PERSON_BOX_PADDING if tuple(meta.joint_names) == MPII_16.joint_names else JOINTS_BOX_PADDING


def evaluate(mode: str, args, data, infer, meta) -> dict:
    progress = not args.json
    if mode == "lsp":
        return evaluate_lsp(infer, meta, data, args.passes, args.decode, args.flip, progress=progress,
                            label_boxes=args.label_boxes, first_padding=args.first_padding)
    if mode == "mpii":
        return evaluate_mpii(infer, meta, data, args.decode, args.flip, progress)
    if not args.coco_detections:
        return evaluate_coco_limbs(infer, meta, data.coco, data.images_dir, args.decode, args.flip, progress,
                                   box_padding=coco_box_padding(args, meta), image_ids=data.image_ids)
    return evaluate_coco(infer, meta, data, args.decode, args.flip, progress, args.coco_results,
                         box_padding=coco_box_padding(args, meta))


def run_settings(mode: str, args, meta) -> dict:
    """What was scored, for the JSON record beside the figures."""
    if mode == "lsp":
        return {"range": args.range, "passes": args.passes, "first_padding": args.first_padding,
                "label_boxes": args.label_boxes}
    if mode == "mpii":
        return {"annotations": args.mpii_annotations}
    return {"annotations": args.coco_annotations, "boxes": args.coco_detections or "ground truth",
            "box_padding": coco_box_padding(args, meta)}


def group_by_image(paths, keypoints, confidence):
    """(image path, (P, K, 2), (P, K)) per image: a PNG shows all of its people."""
    people: dict[Path, list[int]] = {}
    for index, path in enumerate(paths):
        people.setdefault(Path(path), []).append(index)
    return [(path, keypoints[idx], confidence[idx]) for path, idx in people.items()]


def first_images(records, count: int):
    """The records of the first ``count`` distinct images."""
    keep = set(list(dict.fromkeys(r.image_path for r in records))[:count])
    return [r for r in records if r.image_path in keep]


def coco_samples(data: CocoPeople, predictor: TopDownPredictor, count: int, box_padding: float):
    first = list(data.boxes)[:count]
    sub = CocoPeople(data.coco, data.images_dir, first, {i: data.boxes[i] for i in first})
    results = predict_coco(predictor, sub, box_padding=box_padding)
    points = np.array([r["keypoints"] for r in results], dtype=np.float64).reshape(len(results), -1, 3)
    return group_by_image([data.image_path(r["image_id"]) for r in results], points[..., :2], points[..., 2])


def vis_samples(mode: str, args, data, infer, meta):
    """Predictions on the first ``--vis-count`` images, made again (a few images only)."""
    if mode == "coco":
        return coco_samples(data, TopDownPredictor(infer, meta, args.decode, args.flip), args.vis_count,
                            coco_box_padding(args, meta))
    records = first_images(data, args.vis_count)
    if mode == "lsp":
        keypoints, confidence = predict_lsp(infer, meta, records, args.passes, args.decode, args.flip,
                                            first_padding=args.first_padding)
    else:
        keypoints, confidence = predict_in_boxes(infer, meta, records, args.decode, args.flip)
    return group_by_image([r.image_path for r in records], keypoints, confidence)


def print_pck_table(result: dict, total: str, counted: str) -> None:
    """Per-joint PCKh and PCK-torso (blank where a joint is not scored for torso PCK)."""
    print(f"{'joint':<16}{'PCKh@0.5':>10}{'PCK@0.2 torso':>15}")
    for name, value in result["per_joint_pckh"].items():
        torso = result["per_joint_pck_torso"].get(name)
        print(f"{name:<16}{value:>10.3f}" + (f"{torso:>15.3f}" if torso is not None else ""))
    print(f"{total:<16}{result['pckh']:>10.3f}{result['pck_torso']:>15.3f}")
    print(counted)


def print_table(mode: str, result: dict) -> None:
    if mode == "lsp":
        print_pck_table(result, "all limbs", f"{result['images']} images, {result['scored_joints_pckh']} joints scored for PCKh")
    elif mode == "mpii":
        print_pck_table(result, "all joints", f"{result['people']} people, {result['scored_joints_pckh']} joints scored for "
                                "PCKh (head size: neck-head top distance, not MPII's head boxes)")
    elif "oks_pck" in result:
        for name, value in result["per_joint_oks_pck"].items():
            print(f"{name:<16}{value:>8.3f}")
        print(f"{'OKS-PCK@0.5':<16}{result['oks_pck']:>8.3f}   ({result['people']} people, "
              f"{result['scored_joints']} limb joints)")
        print(f"{'limb OKS-hit':<16}{result['limb_oks_hit']:>8.3f}   (box area)")
        print(f"{'median error':<16}{result['median_error']:>8.3f}   (/ sqrt(box area))")
        if "ap" in result:
            print(f"{'OKS AP (17)':<16}{result['ap']:>8.3f}")
        for name in ("ap", "ap50", "ap75", "ar"):
            print(f"{'limb OKS ' + name.upper():<16}{result['limb_' + name]:>8.3f}")
        print(f"{result['images']} images, {result['labelled_boxes']} labelled boxes")
    else:
        for name in ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar"):
            print(f"{'OKS ' + name.upper():<16}{result[name]:>8.3f}")
        print(f"{result['images']} images, {result['people']} people in {result['boxes']} boxes")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    mode = dataset_mode(args, parser)
    try:
        data = load_data(mode, args)
        infer, meta = load_heatmap_fn(args.model, args.threads, args.backend, args.precision, args.stage)
        if mode == "mpii" or (mode == "coco" and args.coco_detections):
            require_layout(meta, MPII_16 if mode == "mpii" else COCO_17, mode.upper())
        elif mode == "coco":
            require_limbs(meta, "COCO")
    except (OSError, ValueError, ModelError) as exc:
        print(f"lapx-eval: {exc}", file=sys.stderr)
        return 2
    result = evaluate(mode, args, data, infer, meta)
    result.update(model=str(args.model), **run_settings(mode, args, meta), decode=args.decode, flip=args.flip,
                  backend=args.backend, precision=args.precision, stage=args.stage,
                  input_size=[meta.input_width, meta.input_height])
    if args.vis:
        written = write_samples(args.vis, vis_samples(mode, args, data, infer, meta), meta.skeleton)
        print(f"lapx-eval: {len(written)} images drawn in {Path(args.vis)}", file=sys.stderr)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print_table(mode, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

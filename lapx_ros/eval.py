"""lapx-eval: PCKh@0.5 and PCK@0.2-torso of a model (checkpoint or ONNX) on LSP/LSPET.

Every image is given whole; the model finds the person itself (whole frame, then a crop
around its own keypoints), exactly as the node does. Labels never place a box.
"""
from __future__ import annotations

import argparse
import json
import sys

from lapx_ros.data.lsp import load_lsp_records, parse_range
from lapx_ros.evaluation import evaluate_lsp, load_heatmap_fn
from lapx_ros.heatmaps import DECODE_METHODS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapx-eval", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="lapx-train checkpoint (.pt) or lapx-export file (.onnx)")
    p.add_argument("--lsp-images", required=True, help="folder of imNNNNN.jpg")
    p.add_argument("--lsp-joints", required=True, help="joints.mat")
    p.add_argument("--range", default="9001-9500", help="first-last image index, inclusive")
    p.add_argument("--passes", type=int, default=2, help="1: whole image only; 2+: refine on own crop")
    p.add_argument("--decode", choices=DECODE_METHODS, default="dark")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        records = load_lsp_records(args.lsp_images, args.lsp_joints, parse_range(args.range))
        infer, meta = load_heatmap_fn(args.model, args.threads)
    except (OSError, ValueError) as exc:
        print(f"lapx-eval: {exc}", file=sys.stderr)
        return 2
    result = evaluate_lsp(infer, meta, records, args.passes, args.decode, args.flip, progress=not args.json)
    result.update(model=str(args.model), range=args.range, passes=args.passes, decode=args.decode,
                  flip=args.flip, input_size=[meta.input_width, meta.input_height])
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'joint':<16}{'PCKh@0.5':>10}{'PCK@0.2 torso':>15}")
    for name, value in result["per_joint_pckh"].items():
        print(f"{name:<16}{value:>10.3f}{result['per_joint_pck_torso'][name]:>15.3f}")
    print(f"{'all limbs':<16}{result['pckh']:>10.3f}{result['pck_torso']:>15.3f}")
    print(f"{result['images']} images, {result['scored_joints_pckh']} joints scored for PCKh")
    return 0


if __name__ == "__main__":
    sys.exit(main())

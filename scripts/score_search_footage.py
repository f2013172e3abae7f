"""The whole-image search (lapx-eval's LSP path) on upright people: PCK@0.2 torso of a
model's search against MediaPipe heavy's labels of the exercise footage's validation clips
(held out of training by clip, lapx_ros.data.people.split_clips), for each
first-refinement padding given.

    usage: .venv/bin/python scripts/score_search_footage.py MODEL [--first-padding 1.25 1.75 ...]
"""
from __future__ import annotations

import argparse

import numpy as np

from lapx_ros.data.people import clip_names, load_footage_records, split_clips
from lapx_ros.evaluation import load_heatmap_fn, predict_lsp
from lapx_ros.metrics import pck_torso
from lapx_ros.topdown import FIRST_REFINEMENT_PADDING


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="checkpoint (.pt) or exported file (.onnx)")
    p.add_argument("--labels", default="training/teacher/footage_exercise_heavy.npz")
    p.add_argument("--images", default="../shared/data/footage/exercise")
    p.add_argument("--first-padding", type=float, nargs="+", default=[FIRST_REFINEMENT_PADDING])
    args = p.parse_args()
    _, val_clips = split_clips(clip_names(args.labels))
    records = load_footage_records(args.labels, args.images, val_clips)
    infer, meta = load_heatmap_fn(args.model)
    labels = np.stack([r.joints for r in records])
    print(f"{len(val_clips)} validation clips, {len(records)} frames with the teacher's person")
    for padding in args.first_padding:
        keypoints, _ = predict_lsp(infer, meta, records, first_padding=padding)
        print(f"first padding {padding}: PCK@0.2 torso {pck_torso(keypoints, labels).accuracy:.3f}")


if __name__ == "__main__":
    main()

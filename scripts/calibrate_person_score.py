"""Fits the person score of a model file (issue 27 item 1; lapx_ros.runtime.person_score).

The node's pipeline in mode detector (the parameters file, detector synchronous) looks at
each tuning image once; every pose its crops give is a sample: its evidence (the pose's
confident half, the detection's score and its keypoints' agreement with the pose) and
whether its box is a labelled person (IoU >= 0.5, the protocol of lapx_ros.testing.people;
poses inside an ``iscrowd`` region are left out). Each pose also counts once without its
detection, as the frames between detector runs see it. A logistic regression on these
samples gives the weights; ``--write`` stores them in the model file's metadata, which the
pipeline then scores people with (``person_threshold`` is then a probability).

Tuning sets: the COCO sliver's train2017 and the training files of people/scenes (every
file but the held-out tenth, lapx_ros.data.recipe.held_out_files); never COCO val2017.

    .venv/bin/python -m scripts.calibrate_person_score MODEL.onnx [--write] [-p NAME:=VALUE ...]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.data.recipe import DEFAULT_DATA, held_out_files
from lapx_ros.export import read_onnx_metadata, write_onnx_metadata
from lapx_ros.ros import params
from lapx_ros.ros.bag_poses import load_config
from lapx_ros.runtime.loader import load_pipeline
from lapx_ros.runtime.person_score import METADATA_KEY, PersonScorer, features, fit_logistic
from lapx_ros.testing.people import FALSE, IN_CROWD, coco_people, label_poses

ROOT = Path(__file__).resolve().parents[1]


def tuning_images(data: Path) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """(image, labelled person boxes xyxy, crowd boxes) of the tuning sets."""
    out = []
    coco = json.loads((data / "coco-mini" / "person_keypoints_train2017.json").read_text())
    by_image: dict[int, list] = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for im in coco["images"]:
        boxes, _, crowds = coco_people(by_image.get(im["id"], []))
        out.append((data / "coco-mini" / "train2017" / im["file_name"], boxes, crowds))
    scenes = data / "people" / "scenes"
    names = sorted(p.name for p in (scenes / "images").iterdir())
    held = held_out_files(names, 10)
    for name in names:
        if name in held:
            continue
        w, h = cv2.imread(str(scenes / "images" / name)).shape[1::-1]
        rows = np.loadtxt(scenes / "labels" / (Path(name).stem + ".txt"), ndmin=2)
        cx, cy, bw, bh = (rows[:, 1:5] * [w, h, w, h]).T
        out.append((scenes / "images" / name, np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1),
                    np.zeros((0, 4))))
    return out


def samples(pipeline, images) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 4) and labels (N,) of every pose of one look at each image."""
    x, y = [], []
    for path, labelled, crowds in images:
        frame = cv2.imread(str(path))
        pipeline.reset()
        poses = pipeline.mode.look(pipeline, frame, None, None)
        if not poses:
            continue
        boxes = [pipeline.published_box(p) for p in poses]
        kinds = label_poses(np.array(boxes), np.array([p.score for p in poses]), labelled,
                            np.ones(len(labelled), bool), crowds)
        for p, kind in zip(poses, kinds):
            if kind == IN_CROWD:
                continue
            evidence = pipeline.evidence(p)
            x += [features(evidence), features(dataclasses.replace(evidence, detector_score=None,
                                                                    detector_agreement=None))]
            y += [kind != FALSE] * 2
    return np.array(x), np.array(y, float)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--data", type=Path, default=Path(DEFAULT_DATA))
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE")
    p.add_argument("--write", action="store_true", help="store the fitted weights in the model file's metadata")
    args = p.parse_args(argv)
    config = load_config(ROOT / "config" / "lapx.yaml",
                         ["mode:=detector", f"model_path:={Path(args.model).resolve()}", *args.param])
    loaded = load_pipeline(params.model_settings(config), params.pipeline_config(config),
                           params.detector_settings(config), synchronous_detector=True)
    if loaded.pipeline is None:
        print(f"calibrate_person_score: {loaded.status.problem}", file=sys.stderr)
        return 2
    pipeline = loaded.pipeline
    pipeline.scorer = None              # the evidence, not an earlier fit, is what is measured
    x, y = samples(pipeline, tuning_images(args.data))
    bias, w = fit_logistic(x, y)
    scorer = PersonScorer(bias, *map(float, w))
    probability = 1 / (1 + np.exp(-(bias + x @ w)))
    report = {"samples": len(y), "people": int(y.sum()), "weights": scorer.to_dict(),
              "by_threshold": {f"{t:.1f}": {"recall": float((probability[y == 1] >= t).mean()),
                                            "precision": float(y[probability >= t].mean()) if (probability >= t).any()
                                            else float("nan")} for t in (0.3, 0.4, 0.5, 0.6, 0.7)}}
    print(json.dumps(report, indent=1))
    if args.write:
        meta = read_onnx_metadata(args.model)
        write_onnx_metadata(args.model, dataclasses.replace(meta, extra={**meta.extra, METADATA_KEY: scorer.to_dict()}))
        print(f"calibrate_person_score: wrote the weights into {args.model}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Teacher labels: MediaPipe Pose landmarks of the shared footage and COCO people, as .npz.

Run with the interpreter of a separate environment that has ``mediapipe==0.10.14`` and the
"heavy" landmark model copied into its ``mediapipe/modules/pose_landmark/`` folder (see
training/teacher/README.md); the project and its node never import MediaPipe. Only numpy,
OpenCV and mediapipe are used here, so this file does not import lapx_ros either.

Each output holds BlazePose's 33 landmarks per labelled item, ``landmarks`` (N, 33, 4) =
x, y in the source image's pixels, z (relative depth, x's scale), visibility; NaN where
``found`` is false (MediaPipe's detector found nobody). No images are stored.

    footage   exercise frames, whole frame in (static image mode): ``image_file``, ``clip``
              (file name without its frame index: split training and validation by it),
              ``image_size`` (w, h)
    coco      one crop per person box of a COCO keypoints file (box padded by 1.25, as the
              benchmarks crop), landmarks mapped back to the image: ``annotation_id``,
              ``image_id``, ``image_file``, ``crop_box`` (x0, y0, x1, y1), ``num_keypoints``

    usage: python scripts/teacher_labels.py footage DATA/footage/exercise OUT.npz
           python scripts/teacher_labels.py coco ANNOTATIONS.json IMAGES_DIR OUT.npz
    options: --complexity 2 (heavy; 1 full, 0 lite), --limit N (first N items),
             --padding P (coco: context around each box, 1.25)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

NUM_LANDMARKS = 33
CROP_PADDING = 1.25
FRAME_INDEX = re.compile(r"_(\d+)$")


def clip_of(stem: str) -> str:
    """'kaiakol_squat_correct_001_07' -> 'kaiakol_squat_correct_001'."""
    return FRAME_INDEX.sub("", stem)


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class Teacher:
    """MediaPipe Pose in static image mode: one person per image, landmarks in pixels."""

    def __init__(self, complexity: int):
        import mediapipe as mp

        self.pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=complexity,
                                           enable_segmentation=False, min_detection_confidence=0.5)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        result = self.pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h, p.z * w, p.visibility) for p in result.pose_landmarks.landmark],
                        dtype=np.float32)


def empty_landmarks() -> np.ndarray:
    return np.full((NUM_LANDMARKS, 4), np.nan, dtype=np.float32)


def label_footage(folder: Path, teacher: Teacher, limit: int) -> dict:
    paths = sorted(folder.glob("*.jpg"))[:limit or None]
    if not paths:
        raise FileNotFoundError(f"no .jpg frames in {folder}")
    landmarks, found, sizes = [], [], []
    for path in paths:
        rgb = read_rgb(path)
        marks = teacher(rgb)
        found.append(marks is not None)
        landmarks.append(empty_landmarks() if marks is None else marks)
        sizes.append((rgb.shape[1], rgb.shape[0]))
    return {"image_file": np.array([p.name for p in paths]), "clip": np.array([clip_of(p.stem) for p in paths]),
            "image_size": np.array(sizes, dtype=np.int32), "landmarks": np.stack(landmarks),
            "found": np.array(found)}


def padded_box(bbox, image_size, padding: float = CROP_PADDING):
    """COCO (x, y, w, h) grown by ``padding`` around its centre, clipped to the image (ints)."""
    x, y, w, h = (float(v) for v in bbox)
    cx, cy = x + w / 2, y + h / 2
    width, height = image_size
    x0, y0 = int(max(0, cx - w * padding / 2)), int(max(0, cy - h * padding / 2))
    x1, y1 = int(min(width, cx + w * padding / 2)), int(min(height, cy + h * padding / 2))
    return x0, y0, x1, y1


def label_coco(annotation_file: Path, images_dir: Path, teacher: Teacher, limit: int,
               padding: float = CROP_PADDING) -> dict:
    data = json.loads(Path(annotation_file).read_text())
    images = {i["id"]: i for i in data["images"]}
    people = [a for a in data["annotations"] if a.get("category_id", 1) == 1 and not a.get("iscrowd", 0)]
    people = sorted(people, key=lambda a: a["id"])[:limit or None]
    rows = {k: [] for k in ("annotation_id", "image_id", "image_file", "crop_box", "num_keypoints", "landmarks", "found")}
    cache: dict[int, np.ndarray] = {}
    for ann in people:
        info = images[ann["image_id"]]
        if ann["image_id"] not in cache:
            cache = {ann["image_id"]: read_rgb(images_dir / info["file_name"])}
        rgb = cache[ann["image_id"]]
        box = padded_box(ann["bbox"], (rgb.shape[1], rgb.shape[0]), padding)
        x0, y0, x1, y1 = box
        marks = teacher(rgb[y0:y1, x0:x1]) if x1 - x0 >= 8 and y1 - y0 >= 8 else None
        if marks is not None:
            marks[:, 0] += x0
            marks[:, 1] += y0
        rows["annotation_id"].append(ann["id"])
        rows["image_id"].append(ann["image_id"])
        rows["image_file"].append(info["file_name"])
        rows["crop_box"].append(box)
        rows["num_keypoints"].append(ann.get("num_keypoints", 0))
        rows["landmarks"].append(empty_landmarks() if marks is None else marks)
        rows["found"].append(marks is not None)
    out = {k: np.array(v) for k, v in rows.items()}
    out["landmarks"] = np.stack(rows["landmarks"]).astype(np.float32)
    out["crop_box"] = out["crop_box"].astype(np.int32)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("footage", "coco"))
    p.add_argument("inputs", nargs="+", help="footage: FOLDER OUT; coco: ANNOTATIONS IMAGES_DIR OUT")
    p.add_argument("--complexity", type=int, default=2, choices=(0, 1, 2), help="2 heavy, 1 full, 0 lite")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--padding", type=float, default=CROP_PADDING, help="coco: context around each box")
    args = p.parse_args(argv)
    expected = 2 if args.kind == "footage" else 3
    if len(args.inputs) != expected:
        p.error(f"{args.kind} takes {expected} paths")
    *sources, out = (Path(v) for v in args.inputs)
    teacher = Teacher(args.complexity)
    started = time.monotonic()
    if args.kind == "footage":
        result = label_footage(sources[0], teacher, args.limit)
    else:
        result = label_coco(sources[0], sources[1], teacher, args.limit, args.padding)
    result["model_complexity"] = np.array(args.complexity)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **result)
    print(f"{out}: {int(result['found'].sum())} of {len(result['found'])} labelled "
          f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

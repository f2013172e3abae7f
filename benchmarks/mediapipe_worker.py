"""Benchmark worker for MediaPipe Pose ("full", model_complexity=1, unless --complexity
says otherwise: 2 = "heavy", whose model file benchmarks/presets.py installs), run with the
interpreter of a separate environment that has mediapipe==0.10.14 (see benchmarks/run.py).

Same frames as the node: the 1-person sequence through one Pose in video mode (its own
detector on the first frame, then tracking), and the 3-person sequence as three Pose
instances, each on the crop of its person box (MediaPipe Pose follows one person; this
matches the node's boxes mode, where boxes are supplied).

Protocol as model_only.py: READY, a line on stdin, then RESULT <json>.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def load(path):
    data = np.load(path)
    names = sorted({k.split("/")[0] for k in data.files})
    return {n: (data[f"{n}/frames"], data[f"{n}/boxes"]) for n in names}


def pct(values):
    a = np.asarray(values, np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95))}


def crop(frame, box, pad=1.25):
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * pad, (y1 - y0) * pad
    H, W = frame.shape[:2]
    a, b = int(max(0, cx - w / 2)), int(max(0, cy - h / 2))
    c, d = int(min(W, cx + w / 2)), int(min(H, cy + h / 2))
    return np.ascontiguousarray(frame[b:d, a:c])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--scenes", required=True)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--hold", type=int, default=15)
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--complexity", type=int, default=1, choices=(0, 1, 2), help="0 lite, 1 full, 2 heavy")
    args = p.parse_args()

    import cv2
    import mediapipe as mp

    scenes = load(args.scenes)
    pose_cls = mp.solutions.pose.Pose

    def new_pose(static=False):
        return pose_cls(static_image_mode=static, model_complexity=args.complexity, enable_segmentation=False,
                        min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def run_one(n_frames, warmup=5):
        frames, _ = scenes["1_person"]
        times, found = [], 0
        with new_pose() as pose:
            for n in range(warmup + n_frames):
                k = (n // args.hold) % len(frames)
                t0 = time.perf_counter()
                rgb = cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB)
                res = pose.process(rgb)
                if n >= warmup:
                    times.append((time.perf_counter() - t0) * 1000.0)
                    found += res.pose_landmarks is not None
        return times, found / n_frames

    def run_three(n_frames, warmup=5):
        frames, boxes = scenes["3_persons"]
        times, found = [], 0
        poses = [new_pose() for _ in range(boxes.shape[1])]
        try:
            for n in range(warmup + n_frames):
                k = (n // args.hold) % len(frames)
                t0 = time.perf_counter()
                rgb = cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB)
                results = [pose.process(crop(rgb, b)) for pose, b in zip(poses, boxes[k])]
                if n >= warmup:
                    times.append((time.perf_counter() - t0) * 1000.0)
                    found += sum(r.pose_landmarks is not None for r in results) / len(results)
        finally:
            for pose in poses:
                pose.close()
        return times, found / n_frames

    run_one(3, warmup=0)  # model loading, first allocations
    if not args.no_wait:
        print("READY", flush=True)
        sys.stdin.readline()
    out = {"1_person": [], "3_persons": [], "found_fraction": {}}
    for _ in range(args.repeats):
        t, f = run_one(args.frames)
        out["1_person"].append(pct(t))
        out["found_fraction"]["1_person"] = f
        t, f = run_three(args.frames)
        out["3_persons"].append(pct(t))
        out["found_fraction"]["3_persons"] = f
    out["version"] = mp.__version__
    out["complexity"] = args.complexity
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

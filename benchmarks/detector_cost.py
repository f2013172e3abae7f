"""What the built-in person detector costs per 640x480 frame, alone and on its own thread
beside the pose network (issue 16), for 1 and 2 detector threads.

    .venv/bin/python -m benchmarks.detector_cost                 # markdown tables to stdout
    .venv/bin/python -m benchmarks.detector_cost --repeats 5 --backend onnxruntime

Frames: the 640x480 images of the COCO sliver's val2017 (../shared/data/coco-mini).
1. Alone: the whole detector call (letterbox, network, decoding) per frame, median and
   p10-p90, for MoveNet at each input setting and threads, and OpenCV HOG (the fallback).
2. Beside the pose network, as the node runs them: the shipped pose model
   (models/*.onnx, 2 threads, a batch of 3 person crops per call, as with 3 people)
   called back to back on the main thread while the detector runs back to back on a
   thread of its own; both figures per call. The node runs the detector only every
   ``detector_interval`` frames, so this is its worst case.
Nothing is paused: the load average over the run is printed with the figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.runtime.detectors.hog import HogPersonDetector
from lapx_ros.runtime.detectors.movenet import MoveNetDetector, default_detector_path
from lapx_ros.runtime.engine import create_engine, default_model_path

REPO = Path(__file__).resolve().parents[1]
COCO = REPO.parent / "shared" / "data" / "coco-mini"


def frames_640x480(limit: int):
    import json

    data = json.loads((COCO / "person_keypoints_val2017.json").read_text())
    names = [im["file_name"] for im in data["images"] if (im["width"], im["height"]) == (640, 480)]
    return [cv2.imread(str(COCO / "val2017" / n)) for n in names[:limit]]


def stats(ms) -> str:
    q = np.percentile(ms, [50, 10, 90])
    return f"{q[0]:.1f} ({q[1]:.1f}-{q[2]:.1f})"


def time_alone(detect, frames, repeats: int):
    """Wall-clock ms per call, and the process's CPU ms per call (all its threads): on a
    busy machine the wall clock grows with the load, the CPU time much less, and with
    one thread it is about what a quiet machine's wall clock would show."""
    for f in frames[:2]:
        detect(f)  # warm-up (and OpenVINO's compile for the frame's input shape)
    ms = []
    cpu0 = time.process_time()
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            detect(f)
            ms.append((time.perf_counter() - t0) * 1000)
    return ms, (time.process_time() - cpu0) * 1000 / len(ms)


def time_beside_pose(detect, engine, frames, seconds: float):
    """(detector ms per call, pose ms per call) with both running at once."""
    crops = np.random.default_rng(0).normal(0, 1, (3, 3, engine.metadata.input_height,
                                                   engine.metadata.input_width)).astype(np.float32)
    engine.infer(crops)
    detect(frames[0])
    stop = threading.Event()
    det_ms: list[float] = []

    def detector_loop():
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            detect(frames[i % len(frames)])
            det_ms.append((time.perf_counter() - t0) * 1000)
            i += 1

    thread = threading.Thread(target=detector_loop, daemon=True)
    pose_ms = []
    thread.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        engine.infer(crops)
        pose_ms.append((time.perf_counter() - t0) * 1000)
    stop.set()
    thread.join()
    return det_ms, pose_ms


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="", help="MoveNet file (default: the one set-up installs)")
    ap.add_argument("--backend", default="openvino", choices=("openvino", "onnxruntime"))
    ap.add_argument("--images", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each run beside the pose network")
    ap.add_argument("--no-hog", action="store_true")
    args = ap.parse_args(argv)
    path = args.model or default_detector_path()
    if not path:
        sys.exit("no MoveNet file: run make setup (scripts/make_detector.sh) or give --model")
    frames = frames_640x480(args.images)
    load0 = os.getloadavg()
    print(f"{len(frames)} frames 640x480 from {COCO.name}/val2017, {args.backend}, {os.cpu_count()} CPUs; "
          f"load average at start {load0[0]:.2f}\n")
    print("| detector | threads | ms per frame, median (p10-p90) | CPU ms per frame (all threads) |")
    print("|---|---|---|---|")
    settings = [(384, False), (384, True), (256, False), (256, True)]
    for size, square in settings:
        for threads in (1, 2):
            det = MoveNetDetector(path, size, 0.07, args.backend, threads, precision="f32", square=square)
            shape = f"{size}x{size}" if square else f"{size}x{size * 3 // 4} (640x480 scaled, not padded to a square)"
            ms, cpu = time_alone(det, frames, args.repeats)
            print(f"| MoveNet {shape} | {threads} | {stats(ms)} | {cpu:.1f} |", flush=True)
    if not args.no_hog:
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            hog = HogPersonDetector(1.0, 0.3)
            ms, cpu = time_alone(hog, frames, 1)
            print(f"| HOG (OpenCV, scale 1) | {threads} | {stats(ms)} | {cpu:.1f} |", flush=True)
        cv2.setNumThreads(-1)

    pose_path = default_model_path()
    engine = create_engine(pose_path, args.backend, 2, "f32")
    crops = np.zeros((3, 3, engine.metadata.input_height, engine.metadata.input_width), np.float32)
    engine.infer(crops)
    alone = []
    cpu0 = time.process_time()
    for _ in range(50):
        t0 = time.perf_counter()
        engine.infer(crops)
        alone.append((time.perf_counter() - t0) * 1000)
    pose_cpu = (time.process_time() - cpu0) * 1000 / 50
    print(f"\nBeside the pose network ({Path(pose_path).name}, {engine.description}, batch of 3 crops, "
          f"{stats(alone)} ms per call alone, {pose_cpu:.1f} CPU ms), {args.seconds:.0f} s each, MoveNet 384 (640x480 -> 384x288):\n")
    print("| detector threads | detector ms per frame | pose network ms per call (3 crops) | pose calls per s |")
    print("|---|---|---|---|")
    for threads in (1, 2):
        det = MoveNetDetector(path, 384, 0.07, args.backend, threads, precision="f32", square=False)
        det_ms, pose_ms = time_beside_pose(det, engine, frames, args.seconds)
        print(f"| {threads} | {stats(det_ms)} | {stats(pose_ms)} | {len(pose_ms) / args.seconds:.1f} |",
              flush=True)
    load1 = os.getloadavg()
    print(f"\nload average at the end {load1[0]:.2f} (1 min), {load1[1]:.2f} (5 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

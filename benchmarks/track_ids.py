"""Track ids on a video, offline: PosePipeline in detector mode with the node's defaults.

Counts what the demo counts (track ids over the frames, people per frame) without DDS
and deterministically, with OpenCV's HOG detector (as lapx-demo ran it until MoveNet
became the default: detector_scale 1.5): it runs synchronously every ``detector_interval``
frames, or hands its result over ``--lag`` frames after the frame it looked at (as the
node's background thread does). Detections are cached per frame (``--cache``), so
runs that change only tracking skip the slow detector.

    .venv/bin/python -m benchmarks.track_ids --video ~/.cache/lapx_ros/vtest.avi
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.ros.params import NodeConfig, pipeline_config
from lapx_ros.runtime.detectors.hog import HogPersonDetector
from lapx_ros.runtime.engine import create_engine, default_model_path
from lapx_ros.runtime.estimator import PoseEstimator
from lapx_ros.runtime.pipeline import PosePipeline

ROOT = Path(__file__).resolve().parents[1]


class CachedLaggedDetector:
    """The BackgroundDetector contract (submit / take) around a synchronous detector:
    the result of frame t is taken at frame t + lag; detections come from the cache
    when it has the frame."""

    def __init__(self, detect, lag: int, cache: dict, settings: str):
        self.detect = detect
        self.settings = settings  # part of the cache key
        self.lag = lag
        self.cache = cache
        self.frame = 0
        self.pending = None  # (ready at frame, result)
        self.last_error = ""

    def submit(self, frame_bgr) -> bool:
        if self.pending is not None:
            return False
        key = f"{self.frame}@{self.settings}"
        if key not in self.cache:
            boxes, scores = self.detect(frame_bgr)
            self.cache[key] = [np.asarray(boxes).tolist(), np.asarray(scores).tolist()]
        boxes, scores = self.cache[key]
        self.pending = (self.frame + self.lag,
                        (np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float)))
        return True

    def take(self):
        if self.pending is not None and self.frame >= self.pending[0]:
            result, self.pending = self.pending[1], None
            return result
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--model", default="")
    p.add_argument("--backend", default="auto")
    p.add_argument("--lag", type=int, default=0, help="frames between a detection's frame and its use")
    p.add_argument("--cache", default="", help="JSON file of detections per frame (read and extended)")
    p.add_argument("--out", default="", help="JSON file of the published people per frame")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="node parameter (repeatable); defaults: the node's, mode detector, "
                        "detector_scale 1.5 (as lapx-demo)")
    args = p.parse_args(argv)

    values = {"mode": "detector", "detector_scale": 1.5}
    for item in args.param:
        name, value = item.split(":=", 1)
        values[name] = type(getattr(NodeConfig(), name))(json.loads(value) if value not in ("true", "false")
                                                         else value == "true")
    cfg = NodeConfig().replace(**values)
    engine = create_engine(args.model or default_model_path(), args.backend, cfg.threads)
    cache_path = Path(args.cache) if args.cache else None
    cache = json.loads(cache_path.read_text()) if cache_path and cache_path.is_file() else {}
    hog_threshold = getattr(cfg, "detector_hog_threshold", cfg.detector_threshold)  # older trees: one threshold
    detector = CachedLaggedDetector(HogPersonDetector(cfg.detector_scale, hog_threshold),
                                    args.lag, cache, f"hog {cfg.detector_scale:g} {hog_threshold:g}")
    crops = []

    class CountingEstimator(PoseEstimator):
        def __call__(self, frame, boxes, *rest, **kw):
            crops.append(len(boxes))
            return super().__call__(frame, boxes, *rest, **kw)

    pipe = PosePipeline(CountingEstimator(engine), pipeline_config(cfg), detector)

    video = cv2.VideoCapture(str(Path(args.video).expanduser()))
    frames_out, people, ids, first_seen, last_seen = [], [], Counter(), {}, {}
    started = time.perf_counter()
    for index in range(args.frames):
        ok, frame = video.read()
        if not ok:
            break
        detector.frame = index
        poses = pipe.process(frame, index / 10.0)
        people.append(len(poses))
        for pose in poses:
            ids[pose.track_id] += 1
            first_seen.setdefault(pose.track_id, index)
            last_seen[pose.track_id] = index
        frames_out.append([{"id": int(q.track_id), "score": round(float(q.score), 3),
                            "box": [round(float(v), 1) for v in q.box],
                            "keypoints": np.round(q.keypoints, 1).tolist(),
                            "confidences": np.round(q.confidences, 2).tolist()} for q in poses])
    elapsed = time.perf_counter() - started
    if cache_path:
        cache_path.write_text(json.dumps(cache))
    if args.out:
        Path(args.out).write_text(json.dumps(frames_out))
    lengths = np.array(sorted(ids.values()))
    n = len(people)
    print(f"frames {n}, {elapsed:.0f} s; lag {args.lag}; params {values}")
    print(f"track ids {len(ids)}; people per frame mean {np.mean(people):.2f}, max {max(people)}")
    print(f"frames per id: median {np.median(lengths):.0f}, ids seen 1 frame {int((lengths == 1).sum())}, "
          f"<= 5 frames {int((lengths <= 5).sum())}, >= 50 frames {int((lengths >= 50).sum())}")
    print(f"crops per frame {sum(crops) / max(n, 1):.2f}")
    print(f"people per frame histogram {dict(sorted(Counter(people).items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Person recall per millisecond of MoveNet MultiPose set-ups (issue 27 item 2: small and many people).

The node's detector (MoveNet MultiPose, at most 6 people a run, people below ~60 px lost at
384) is run in several set-ups on the same frames: the whole frame at 384, 512 and 640 on the
longer side, 2x2 overlapping tiles at 384 (each tile about 0.6 of the frame: small people
larger, 4 x 6 people), and the whole frame plus the tiles. Detections of several views are
merged by NMS. Scored, detector alone (no pose network, no tracking):

- COCO sliver val2017 (57 target people with >= 5 keypoints) and the held-out tenth of
  people/scenes (indoor / CCTV scenes, every labelled box a target): recall and precision at
  IoU 0.5 (lapx_ros.testing.people's protocol) at the score threshold that maximises F1 on
  COCO train2017 and the scenes' training files (never the scored ones);
- vtest.avi's first frames: the share of the reference people (benchmarks/reference_people.py,
  YOLO11n-pose whole frame + tiles) a detection overlaps by IoU >= 0.3;
- milliseconds per frame (letterbox, network, decoding, merging), median over the vtest
  frames, each set-up in turn on every frame so that load hits all alike.

    .venv/bin/python -m benchmarks.detector_recall [--frames 300] [--threads 1]

Writes benchmarks/detector_recall_results.json and the "Detector recall per ms" section of
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.reference_people import matched, reference_people, tiles
from lapx_ros.data.recipe import held_out_files
from lapx_ros.geometry import non_max_suppression
from lapx_ros.runtime.detectors.movenet import MoveNetDetector, default_detector_path
from lapx_ros.testing.harness import machine_info, write_section
from lapx_ros.testing.people import coco_people, label_poses, tally

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS_JSON = ROOT / "benchmarks" / "detector_recall_results.json"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "Detector recall per ms"
MERGE_IOU = 0.5
LOW_THRESHOLD = 0.02     # every set-up runs this low; thresholds are applied afterwards
THRESHOLDS = np.round(np.arange(0.04, 0.61, 0.02), 2)
SETUPS = {"whole 384": (384, False), "whole 512": (512, False), "whole 640": (640, False),
          "tiles 2x2 at 384": (384, True), "whole 384 + tiles 2x2 at 384": (384, "both")}


class Setup:
    """One way of running the detector on a frame: detections (boxes, scores) in frame pixels."""

    def __init__(self, name: str, size: int, tiled, threads: int):
        self.name, self.tiled = name, tiled
        self.detect = MoveNetDetector(default_detector_path(), input_size=size, score_threshold=LOW_THRESHOLD,
                                      threads=threads)

    def __call__(self, frame: np.ndarray):
        h, w = frame.shape[:2]
        views = [(0, 0, w, h)] if self.tiled in (False, "both") else []
        if self.tiled:
            views += tiles(w, h)
        boxes, scores = [], []
        for x0, y0, x1, y1 in views:
            found = self.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))
            boxes.append(found.boxes + (x0, y0, x0, y0))
            scores.append(found.scores)
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        keep = non_max_suppression(boxes, scores, MERGE_IOU) if len(views) > 1 else np.arange(len(scores))
        return boxes[keep], scores[keep]


def scenes_people(names) -> list[tuple[Path, np.ndarray]]:
    """(image, labelled person boxes xyxy) of people/scenes files."""
    out = []
    for name in names:
        image = DATA / "people" / "scenes" / "images" / name
        w, h = cv2.imread(str(image)).shape[1::-1]
        rows = np.loadtxt(DATA / "people" / "scenes" / "labels" / (Path(name).stem + ".txt"), ndmin=2)
        cx, cy, bw, bh = (rows[:, 1:5] * [w, h, w, h]).T
        out.append((image, np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)))
    return out


def labelled_sets() -> dict:
    """name -> list of (image path, person boxes, target mask, crowd boxes)."""
    sets = {}
    for split in ("train2017", "val2017"):
        data = json.loads((DATA / "coco-mini" / f"person_keypoints_{split}.json").read_text())
        by_image: dict[int, list] = {}
        for a in data["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        sets[f"coco {split}"] = [(DATA / "coco-mini" / split / im["file_name"],
                                  *coco_people(by_image.get(im["id"], []))) for im in data["images"]]
    names = sorted(p.name for p in (DATA / "people" / "scenes" / "images").iterdir())
    held = held_out_files(names, 10)
    for label, chosen in (("scenes train", [n for n in names if n not in held]), ("scenes val", sorted(held))):
        sets[label] = [(image, boxes, np.ones(len(boxes), bool), np.zeros((0, 4)))
                       for image, boxes in scenes_people(chosen)]
    return sets


def score(found, items, threshold: float) -> dict:
    kinds, targets, people = [], 0, 0
    for (boxes, scores), (_, labelled, is_target, crowds) in zip(found, items):
        keep = scores >= threshold
        kinds.append(label_poses(boxes[keep], scores[keep], labelled, is_target, crowds))
        targets += int(is_target.sum())
        people += len(labelled)
    return tally(kinds, targets, people)


def best_threshold(found_by_set: dict) -> float:
    """The threshold of the best F1 over the training sets together."""
    def f1(t):
        r = [score(found, items, t) for found, items in found_by_set.values()]
        found_t = sum(x["targets_found"] for x in r)
        targets = sum(x["targets"] for x in r)
        true, counted = sum(x["true"] for x in r), sum(x["counted"] for x in r)
        recall, precision = found_t / max(targets, 1), true / max(counted, 1)
        return 2 * recall * precision / max(recall + precision, 1e-9)
    return float(max(THRESHOLDS, key=f1))


def read_vtest(count: int) -> list[np.ndarray]:
    from lapx_ros.demo import fetch_vtest

    capture = cv2.VideoCapture(str(fetch_vtest()))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    return frames


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300, help="vtest frames")
    p.add_argument("--threads", type=int, default=1, help="detector threads (the node's default is 1)")
    p.add_argument("--setups", default=",".join(SETUPS), help="comma-separated, of: " + ", ".join(SETUPS))
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    setups = [Setup(n, *SETUPS[n], args.threads) for n in args.setups.split(",")]
    sets = labelled_sets()
    images = {str(item[0]): cv2.imread(str(item[0])) for items in sets.values() for item in items}
    vtest = read_vtest(args.frames)
    reference = reference_people(vtest, f"vtest.avi:{len(vtest)}")
    results = {}
    found_sets = {s.name: {name: [s(images[str(it[0])]) for it in items] for name, items in sets.items()}
                  for s in setups}
    ms = {s.name: [] for s in setups}
    vtest_found = {s.name: [] for s in setups}
    for frame in vtest:
        for s in setups:                      # interleaved: load hits every set-up alike
            t0 = time.perf_counter()
            vtest_found[s.name].append(s(frame))
            ms[s.name].append((time.perf_counter() - t0) * 1000.0)
    for s in setups:
        fs = found_sets[s.name]
        threshold = best_threshold({n: (fs[n], sets[n]) for n in ("coco train2017", "scenes train")})
        vt = [b[sc >= threshold] for b, sc in vtest_found[s.name]]
        hits = sum(matched(b, r) for b, r in zip(vt, reference)) if reference else None
        results[s.name] = {
            "threshold": threshold,
            "coco_val": score(fs["coco val2017"], sets["coco val2017"], threshold),
            "scenes_val": score(fs["scenes val"], sets["scenes val"], threshold),
            "vtest_reference_share": hits / sum(len(r) for r in reference) if reference else None,
            "vtest_detections_per_frame": float(np.mean([len(b) for b in vt])),
            "ms_per_frame_p50": float(np.median(ms[s.name])), "ms_per_frame_p90": float(np.percentile(ms[s.name], 90))}
        print(json.dumps({s.name: results[s.name]}), flush=True)
    report = {"machine": machine_info(), "threads": args.threads, "frames": len(vtest), "setups": results,
              "load_average_1min": round(os.getloadavg()[0], 2),
              "reference_people_per_frame": float(np.mean([len(r) for r in reference])) if reference else None}
    if not args.no_write:
        RESULTS_JSON.write_text(json.dumps(report, indent=1) + "\n")
        write_section(RESULTS_MD, SECTION, "benchmarks/detector_recall.py", render(report))
    return 0


def render(report: dict) -> str:
    m = report["machine"]
    lines = [f"## {SECTION} (issue 27 item 2)", "",
             "Written by `benchmarks/detector_recall.py`: MoveNet MultiPose alone in several set-ups, on "
             f"{m.get('cpu_model', '?')} ({report['threads']} detector thread(s), f32). Score threshold of each set-up "
             "chosen for the best F1 on COCO train2017 + the scenes' training files; scored on COCO val2017 "
             "(57 targets), the held-out tenth of people/scenes, and vtest's first "
             f"{report['frames']} frames against the reference people "
             f"({report['reference_people_per_frame'] or 0:.1f} a frame). ms: median per frame on vtest "
             "(768x576), set-ups interleaved"
             + (f"; load average at the end {report['load_average_1min']} (other work shared the CPU: compare "
                "ms within the column)" if "load_average_1min" in report else "") + ".", "",
             "| set-up | threshold | COCO val recall / precision | scenes val recall / precision | "
             "vtest reference share | ms per frame p50 (p90) |", "|---|---|---|---|---|---|"]
    for name, r in report["setups"].items():
        share = "-" if r["vtest_reference_share"] is None else f"{r['vtest_reference_share']:.3f}"
        lines.append(f"| {name} | {r['threshold']:.2f} | {r['coco_val']['recall']:.3f} / "
                     f"{r['coco_val']['precision']:.3f} | {r['scenes_val']['recall']:.3f} / "
                     f"{r['scenes_val']['precision']:.3f} | {share} | {r['ms_per_frame_p50']:.0f} "
                     f"({r['ms_per_frame_p90']:.0f}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""A reference for person recall without labels (issue 27): the people YOLO11n-pose finds.

YOLO11n-pose (AGPL-3.0: benchmark environment only, never shipped, never a teacher; see
benchmarks/peers.py, which builds ``benchmarks/.venv-yolo`` and its ONNX) runs in its own
environment on each frame whole and on 2x2 overlapping tiles (on vtest's 768x576 frames the
whole frame alone misses most people: they are 60-110 px tall and shrink further in its
640 input). Detections of all five views are merged by NMS; the reference people are those
scoring at least ``MIN_SCORE`` and at least ``MIN_HEIGHT`` pixels tall.

``share_published`` then says, frame by frame, which share of them a run published (a
published box overlapping a reference box by IoU >= ``MATCH_IOU``, each used once).
Reference boxes are cached under benchmarks/.cache (not committed: they are YOLO's output).
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.peers import YOLO_DEFAULT_CONF, YOLO_IOU, Worker, ensure_yolo, nms
from lapx_ros.geometry import box_iou

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
YOLO_VENV = ROOT / "benchmarks" / ".venv-yolo"
MIN_SCORE = 0.5
MIN_HEIGHT = 50.0
MATCH_IOU = 0.3
TILE_OVERLAP = 0.2     # each tile reaches this share of its side into its neighbours


def tiles(width: int, height: int, overlap: float = TILE_OVERLAP) -> list[tuple[int, int, int, int]]:
    """The 2x2 tiles (x0, y0, x1, y1) of a frame, each half its side plus ``overlap``."""
    tw, th = int(round(width * (0.5 + overlap / 2))), int(round(height * (0.5 + overlap / 2)))
    return [(x, y, x + tw, y + th) for y in (0, height - th) for x in (0, width - tw)]


def _detect(worker, frame_bgr: np.ndarray, folder: Path) -> np.ndarray:
    """(N, 5) boxes and scores of the whole frame and its tiles, merged by NMS."""
    import cv2

    h, w = frame_bgr.shape[:2]
    found = []
    for index, (x0, y0, x1, y1) in enumerate([(0, 0, w, h), *tiles(w, h)]):
        path = folder / f"view{index}.png"
        cv2.imwrite(str(path), frame_bgr[y0:y1, x0:x1])
        for person in worker(image=str(path))["people"]:
            box = np.asarray(person["box"], np.float64) + (x0, y0, x0, y0)
            found.append([*box, person["score"]])
    if not found:
        return np.zeros((0, 5))
    found = np.asarray(found)
    return found[nms(found[:, :4], found[:, 4], YOLO_IOU)]


def reference_people(frames: list[np.ndarray], name: str, log=print) -> list[np.ndarray] | None:
    """Per frame the reference people's boxes (M, 4); None when YOLO is not available.
    Cached by ``name`` and the frames' bytes."""
    digest = hashlib.sha256(name.encode())
    for f in frames:
        digest.update(np.ascontiguousarray(f[::7, ::7]).tobytes())
    cache = CACHE / f"reference_{digest.hexdigest()[:16]}.json"
    if cache.is_file():
        raw = json.loads(cache.read_text())
    else:
        found = ensure_yolo(YOLO_VENV)
        if found is None:
            log("reference people: YOLO11n-pose unavailable, no reference")
            return None
        python, onnx = found
        worker = Worker(python, "yolo", onnx)
        raw = []
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for i, frame in enumerate(frames):
                    raw.append(_detect(worker, frame, Path(tmp)).tolist())
                    if (i + 1) % 50 == 0:
                        log(f"reference people: {i + 1}/{len(frames)} frames")
        finally:
            worker.close()
        CACHE.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(raw))
    out = []
    for people in raw:
        people = np.asarray(people, np.float64).reshape(-1, 5)
        keep = (people[:, 4] >= MIN_SCORE) & (people[:, 3] - people[:, 1] >= MIN_HEIGHT)
        out.append(people[keep, :4])
    return out


def matched(published: np.ndarray, reference: np.ndarray, iou: float = MATCH_IOU) -> int:
    """How many reference boxes a published box overlaps by ``iou`` (greedy, best first,
    each box used once)."""
    pairs = sorted(((box_iou(p, r), i, j) for i, p in enumerate(published) for j, r in enumerate(reference)),
                   reverse=True)
    used_p, used_r = set(), set()
    for value, i, j in pairs:
        if value < iou:
            break
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
    return len(used_r)


def share_published(published_per_frame, reference_per_frame) -> dict:
    """The share of the reference's people published, over all frames and per frame."""
    hits = [matched(np.asarray(p, np.float64).reshape(-1, 4), r)
            for p, r in zip(published_per_frame, reference_per_frame)]
    people = [len(r) for r in reference_per_frame]
    per_frame = [h / n for h, n in zip(hits, people) if n]
    return {"reference_people_per_frame": float(np.mean(people)) if people else 0.0,
            "published_reference_people_per_frame": float(np.mean(hits)) if hits else 0.0,
            "share_published": float(sum(hits) / sum(people)) if sum(people) else float("nan"),
            "share_published_frame_mean": float(np.mean(per_frame)) if per_frame else float("nan"),
            "frames": len(hits)}


def coco_recall(coco_dir: Path, max_images: int = 0, min_score: float = YOLO_DEFAULT_CONF, log=print) -> dict | None:
    """YOLO11n-pose's own person recall and precision on the COCO sliver's val2017 (whole
    frame, at ultralytics' default score), with the protocol the node's figures use
    (lapx_ros.testing.people); None when YOLO is not available."""
    from lapx_ros.testing.people import coco_people, label_poses, tally

    found = ensure_yolo(YOLO_VENV)
    if found is None:
        log("reference detector: YOLO11n-pose unavailable")
        return None
    dataset = json.loads((coco_dir / "person_keypoints_val2017.json").read_text())
    by_image: dict[int, list] = {}
    for a in dataset["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = sorted(dataset["images"], key=lambda i: i["id"])[: max_images or None]
    python, onnx = found
    worker = Worker(python, "yolo", onnx)
    kinds, targets, people = [], 0, 0
    try:
        for im in images:
            boxes, is_target, crowd_boxes = coco_people(by_image.get(im["id"], []))
            targets += int(is_target.sum())
            people += len(boxes)
            detected = [p for p in worker(image=str(coco_dir / "val2017" / im["file_name"]))["people"]
                        if p["score"] >= min_score]
            kinds.append(label_poses(np.array([p["box"] for p in detected], np.float64).reshape(-1, 4),
                                     np.array([p["score"] for p in detected], np.float64), boxes, is_target,
                                     crowd_boxes))
    finally:
        worker.close()
    return {"system": "YOLO11n-pose (640, whole frame)", "min_score": min_score, "images": len(images),
            **tally(kinds, targets, people)}

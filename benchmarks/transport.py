"""Do camera frames reach the node? Frames sent, received, processed and stale per frame
size and QoS, with the camera in another process, as on a robot.

For each case the pose node (config/lapx.yaml, shipped model) and a camera
(`lapx-replay --preload`: real footage converted once, 30 Hz, bgr8, a driver's QoS) start as separate processes; this process
watches the node's /human_pose (latency from the frame's stamp) and /diagnostics
(counters). "lost" is what the camera sent and the node's subscription never received.

    .venv/bin/python -m benchmarks.transport                      # default DDS, all cases
    .venv/bin/python -m benchmarks.transport --profile config/fastdds_shm.xml
    .venv/bin/python -m benchmarks.transport --sizes 1280x720 --qos reliable -p qos_reliability:=best_effort

Appends each run to benchmarks/transport_results.json and writes all runs there as the
"Transport" section of benchmarks/RESULTS.md. The environment of the node and the camera is this one without
FASTRTPS_DEFAULT_PROFILES_FILE / FASTDDS_BUILTIN_TRANSPORTS unless --profile / --builtin
set them, so the default case is what a user gets with nothing set.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from lapx_ros.testing.harness import Pauser, write_section

REPO = Path(__file__).resolve().parents[1]
FOOTAGE = REPO.parent / "shared" / "data" / "footage" / "crowd" / "concourse_people.mp4"
RESULTS = REPO / "benchmarks" / "transport_results.json"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
TRANSPORT_VARIABLES = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def transport_env(profile: str | None, builtin: str | None, source: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TRANSPORT_VARIABLES}
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if profile:
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(Path(profile).resolve())
    if builtin:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = builtin
    return env


class Watcher:
    """This process's view of the node: pose latencies and the newest diagnostics."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy

        from lapx_ros.msg import HumanPoseArray

        rclpy.init()
        self.node = rclpy.create_node(f"transport_watcher_{uuid.uuid4().hex[:6]}")
        self._lock = threading.Lock()
        self._types = (HumanPoseArray, DiagnosticArray)
        self._qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
        self._subs = []
        self.reset("")
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, self._qos)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        threading.Thread(target=self._executor.spin, daemon=True).start()

    def reset(self, namespace: str) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
        with self._lock:
            self.namespace = namespace
            self.latencies: list[float] = []
            self.diagnostics: dict | None = None
            self.input_qos_seen: set[str] = set()
        if namespace:
            self._subs.append(self.node.create_subscription(
                self._types[0], f"{namespace}/human_pose", self._on_pose, self._qos))

    def _on_pose(self, msg) -> None:
        now = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self._lock:
            self.latencies.append(now - stamp)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(f"{self.namespace}/lapx_pose: "):
                with self._lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}
                    self.diagnostics["message"] = status.message
                    if int(self.diagnostics.get("frames_received", 0)):
                        self.input_qos_seen.add(self.diagnostics.get("input_qos", ""))

    def wait_diagnostics(self, predicate, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                values = dict(self.diagnostics) if self.diagnostics else None
            if values and predicate(values):
                return values
            time.sleep(0.1)
        return None


def run_case(watcher: Watcher, args, size: tuple[int, int], qos: str) -> dict:
    env = transport_env(args.profile, args.builtin)
    node_env = transport_env(args.profile, args.builtin, Path(args.node_source).resolve())
    namespace = f"/transport_{uuid.uuid4().hex[:6]}"
    watcher.reset(namespace)
    node_params = ["diagnostics_period:=0.5", *args.param]
    node_cmd = [sys.executable, "-m", "lapx_ros.ros.node", "--ros-args", "--params-file",
                str(Path(args.node_source).resolve() / "config" / "lapx.yaml"), "-r", f"__ns:={namespace}"]
    for p in node_params:
        node_cmd += ["-p", p]
    node = subprocess.Popen(node_cmd, cwd=args.node_source, env=node_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        if watcher.wait_diagnostics(lambda v: v.get("backend", "not loaded") != "not loaded", 60) is None:
            raise RuntimeError("the node published no diagnostics with a loaded model within 60 s")
        camera_cmd = [sys.executable, "-m", "lapx_ros.ros.replay", str(args.source), "--loop",
                      "--preload", "30", "--topic", f"{namespace}/camera/image_raw", "--rate", str(args.rate),
                      "--count", str(int(args.seconds * args.rate)), "--size", str(size[0]), str(size[1]),
                      "--history", str(args.camera_depth), "--wait-subscribers", "1", "--settle", "1.0"]
        if qos == "reliable":
            camera_cmd.append("--reliable")
        camera = subprocess.run(camera_cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=args.seconds * 3 + 60)
        found = re.search(r"sent (\d+) frames in ([\d.]+) s", camera.stdout + camera.stderr)
        if not found:
            raise RuntimeError(f"camera failed: {camera.stdout}\n{camera.stderr}")
        sent = int(found.group(1))
        time.sleep(2.0)  # the last frames, then a diagnostics report
        values = watcher.wait_diagnostics(lambda v: int(v.get("frames_received", 0)) >= 0, 5) or {}
    finally:
        node.terminate()
        node.wait(20)
    with watcher._lock:
        lat = np.asarray(watcher.latencies) * 1000.0
    received = int(values.get("frames_received", 0))
    processed = int(values.get("frames_processed", 0))
    stale = int(values.get("dropped_stale", 0))
    return {
        "size": f"{size[0]}x{size[1]}", "publisher_qos": qos, "sent": sent, "received": received,
        "lost": sent - received, "processed": processed, "stale": stale,
        "invalid": int(values.get("dropped_invalid", 0)),
        "lost_seen_by_node": int(values.get("frames_lost_in_transport", 0) or 0),
        "subscription_qos": "/".join(sorted(q for q in watcher.input_qos_seen if q)),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "node_message": values.get("message", ""),
    }


def cpu_name() -> str:
    flags = model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name") and not model:
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{os.cpu_count()}-core {model} ({isa})"


def render_run(run: dict) -> str:
    lines = [f"**{run['label'] or 'run'}** ({run['date']}; {run['cpu']}; transport: "
             f"{run['profile'] or run['builtin'] or 'Fast DDS defaults'}; node: "
             f"{' '.join(run['node_params']) or 'defaults'}; {run['seconds']:g} s at {run['rate_hz']:g} Hz)", "",
             "| size | camera QoS | node subscribed | sent | received | lost (counted by the node) "
             "| processed | stale | latency p50 / p95 ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in run["rows"]:
        seen = r.get("lost_seen_by_node")
        lines.append(f"| {r['size']} | {r['publisher_qos']} | {r['subscription_qos'] or '-'} | {r['sent']} "
                     f"| {r['received']} | {r['lost']} ({seen if r['subscription_qos'] else '-'}) "
                     f"| {r['processed']} | {r['stale']} | {r['latency_ms_p50']} / {r['latency_ms_p95']} |")
    return "\n".join(lines)


def render_history(history: list[dict]) -> str:
    return "\n\n".join(
        ["## Transport: camera frames reaching the node",
         "Written by `benchmarks/transport.py` (`benchmarks/transport_results.json`): the node and "
         "a camera (`lapx-replay --preload`: crowd footage unless the run says otherwise, bgr8) in separate processes, "
         "this process watching. lost = sent - received by the node's subscription; the node "
         "counts what it can see of that (sequence gaps while one publisher is matched). "
         "received = processed + stale (replaced by a newer frame while the node was busy). "
         "Latency: frame stamp to the pose's arrival here. Other work was paused while measuring."]
        + [render_run(run) for run in history])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    p.add_argument("--qos", default="reliable,best_effort", help="camera publisher QoS, comma separated")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--source", default=str(FOOTAGE), help="video the camera publishes")
    p.add_argument("--camera-depth", type=int, default=10, help="camera publisher history depth")
    p.add_argument("--profile", help="FASTRTPS_DEFAULT_PROFILES_FILE for the node and the camera")
    p.add_argument("--builtin", help="FASTDDS_BUILTIN_TRANSPORTS for the node and the camera")
    p.add_argument("-p", "--param", action="append", default=[], help="node parameter name:=value")
    p.add_argument("--node-source", default=str(REPO),
                   help="checkout whose lapx_ros the node runs (e.g. a worktree of an earlier "
                        "commit, for before/after); the camera always runs this one")
    p.add_argument("--label", default="", help="name of this run in the results file")
    p.add_argument("--pause-pattern", help="SIGSTOP processes whose command line matches this regex "
                                           "while measuring (other work on a shared machine)")
    p.add_argument("--render", action="store_true",
                   help="only rewrite the RESULTS.md section from transport_results.json")
    args = p.parse_args()
    if args.render:
        write_section(RESULTS_MD, "Transport", "benchmarks/transport.py",
                      render_history(json.loads(RESULTS.read_text())))
        return 0
    if not Path(args.source).exists():
        print(f"footage missing: {args.source} (shared/data beside the repository)", file=sys.stderr)
        return 2
    watcher = Watcher()
    rows = []
    with Pauser(pattern=args.pause_pattern).paused():
        for size_text in args.sizes.split(","):
            size = tuple(int(v) for v in size_text.lower().split("x"))
            for qos in args.qos.split(","):
                row = run_case(watcher, args, size, qos)
                rows.append(row)
                print(json.dumps(row), flush=True)
    run = {"label": args.label, "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(),
           "profile": Path(args.profile).name if args.profile else None, "builtin": args.builtin,
           "node_params": args.param, "rate_hz": args.rate, "seconds": args.seconds, "rows": rows}
    history = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    history.append(run)
    RESULTS.write_text(json.dumps(history, indent=1) + "\n")
    print(render_run(run))
    write_section(RESULTS_MD, "Transport", "benchmarks/transport.py", render_history(history))
    return 0


if __name__ == "__main__":
    sys.exit(main())

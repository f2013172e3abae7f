"""3D under load (issue 28 item 3): the share of frames that keep their 3D when the
registered depth image comes 0-150 ms after its colour frame, and the latency that
costs, with the CPU as it is and with busy processes beside the node.

    .venv/bin/python -m benchmarks.depth_late --label after
    .venv/bin/python -m benchmarks.depth_late --source /tmp/lapx-before --label before
    .venv/bin/python -m benchmarks.depth_late --render          # the section from the results

A camera in this process publishes a real photo (an LSPET athlete, twice its size) at
``--rate`` Hz with its CameraInfo and, L ms after each frame (L in ``--lateness``), its
registered depth image (16UC1, a tilted plane over the whole view) with its own; the
node of ``--source`` (``python -m lapx_ros.ros.node``, shipped model, threads 1,
``depth_topic`` set, ``--param`` overrides) runs in a process of its own. For every
frame sent it records when the first /human_pose of its stamp came and when the first
with 3D came (a node may publish a frame twice: 2D at once, then 3D). Loads: "as is"
(whatever else runs on the machine, said in the section) and "busy" (``--busy``
processes spinning at normal priority beside the node for the whole run).

Per lateness: frames sent; answered (share of the frames sent that got a message);
with 3D (share of the answered frames with a person whose message had positions);
latency from sending the colour frame to its first message and to its message with 3D
(p50, p95); frames published twice; the depth's lateness as actually sent (p95). The
runs accumulate in benchmarks/depth_late_results.json by label and load, and the "Late
depth" section of benchmarks/RESULTS.md is written from all of them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.testing.harness import busy_cpu, git_commit, machine_info, percentiles, write_section

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
RESULTS_JSON = REPO / "benchmarks" / "depth_late_results.json"
PHOTO = REPO.parent / "shared" / "data" / "lspet" / "images" / "im09006.jpg"
DEPTH_TOPIC = "camera/aligned_depth_to_color/image_raw"
SECTION = "Late depth"


def ros_environment() -> None:
    """Loopback discovery, a domain of this run's own and the shared-memory profile, for
    this process and (inherited) the node's."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 101 + 1))
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))


class RgbdCamera:
    """Colour frames, their late depth images and CameraInfos out; the node's poses in,
    with the time each came (time.monotonic, the clock the sending is timed on)."""

    def __init__(self, namespace: str, photo: np.ndarray):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from lapx_ros.msg import HumanPoseArray
        from lapx_ros.runtime.camera import PinholeCamera
        from lapx_ros.testing.depth_scenes import TiltedPlane, millimetres

        rclpy.init()
        reliable = QoSProfile(depth=20, reliability=QoSReliabilityPolicy.RELIABLE)
        self.node = rclpy.create_node(f"depth_late_camera_{uuid.uuid4().hex[:6]}")
        ns = namespace
        self.colour_pub = self.node.create_publisher(Image, f"{ns}/camera/image_raw", reliable)
        self.colour_info_pub = self.node.create_publisher(CameraInfo, f"{ns}/camera/camera_info", reliable)
        self.depth_pub = self.node.create_publisher(Image, f"{ns}/{DEPTH_TOPIC}", reliable)
        self.depth_info_pub = self.node.create_publisher(
            CameraInfo, f"{ns}/camera/aligned_depth_to_color/camera_info", reliable)
        self.pose_topic = f"{ns}/human_pose"
        self.node.create_subscription(HumanPoseArray, self.pose_topic, self._on_pose, reliable)
        self.photo = photo
        height, width = photo.shape[:2]
        focal = float(width)  # as replay's camera_info_for
        camera = PinholeCamera(focal, focal, (width - 1) / 2.0, (height - 1) / 2.0, width, height)
        self.depth_mm = millimetres(TiltedPlane(2.5, 0.3, -0.2).image(camera))
        self.lock = threading.Lock()
        self.colour_sent: dict[int, float] = {}  # stamp [ns] -> when sent
        self.depth_sent: dict[int, float] = {}
        self.poses: list[tuple[int, float, bool, bool]] = []  # stamp, came, has people, has 3D
        self._executor = SingleThreadedExecutor(context=self.node.context)
        self._executor.add_node(self.node)
        self._spin = threading.Thread(target=self._executor.spin, daemon=True)
        self._spin.start()

    def _on_pose(self, msg) -> None:
        came = time.monotonic()
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        located = any(math.isfinite(p.position.z) or any(math.isfinite(k.position.z) for k in p.keypoints)
                      for p in msg.people)
        with self.lock:
            self.poses.append((stamp, came, bool(msg.people), located))

    def connected(self) -> bool:
        pubs = (self.colour_pub, self.depth_pub, self.colour_info_pub, self.depth_info_pub)
        return (all(p.get_subscription_count() > 0 for p in pubs)
                and self.node.count_publishers(self.pose_topic) > 0)

    def send(self, lateness: float) -> int:
        """One colour frame now, its depth image ``lateness`` seconds later; its stamp."""
        from sensor_msgs.msg import Image

        from lapx_ros.ros.convert import to_image_msg
        from lapx_ros.ros.replay import camera_info_for, depth_image_msg

        now_ns = time.time_ns()
        header = Image().header
        header.stamp.sec, header.stamp.nanosec = divmod(now_ns, 10**9)
        header.frame_id = "camera_optical_frame"
        height, width = self.photo.shape[:2]
        self.colour_info_pub.publish(camera_info_for(width, height, header))
        colour = to_image_msg(self.photo, "bgr8", header)
        depth = depth_image_msg(self.depth_mm, header)
        info = camera_info_for(width, height, header)

        def send_depth():
            with self.lock:
                self.depth_sent[now_ns] = time.monotonic()
            self.depth_pub.publish(depth)
            self.depth_info_pub.publish(info)

        with self.lock:
            self.colour_sent[now_ns] = time.monotonic()
        self.colour_pub.publish(colour)
        if lateness > 0:
            threading.Timer(lateness, send_depth).start()
        else:
            send_depth()
        return now_ns

    def close(self) -> None:
        import rclpy

        self._executor.shutdown(timeout_sec=2)
        self.node.destroy_node()
        rclpy.try_shutdown()


def figures(camera: RgbdCamera, stamps: list[int], lateness: float) -> dict:
    """The figures of one lateness from what was sent and received (see the module doc)."""
    with camera.lock:
        poses = list(camera.poses)
        colour_sent, depth_sent = dict(camera.colour_sent), dict(camera.depth_sent)
    first, located, people, count = {}, {}, {}, {}
    for stamp, came, has_people, has_3d in sorted(poses, key=lambda p: p[1]):
        count[stamp] = count.get(stamp, 0) + 1
        first.setdefault(stamp, came)
        people[stamp] = people.get(stamp, False) or has_people
        if has_3d:
            located.setdefault(stamp, came)
    answered = [s for s in stamps if s in first]
    with_people = [s for s in answered if people[s]]
    ms = 1000.0
    first_latency = [(first[s] - colour_sent[s]) * ms for s in answered]
    located_latency = [(located[s] - colour_sent[s]) * ms for s in with_people if s in located]
    depth_lateness = [(depth_sent[s] - colour_sent[s]) * ms for s in stamps if s in depth_sent]
    out = {"lateness_ms": round(lateness * ms), "sent": len(stamps), "answered": len(answered),
           "with_people": len(with_people), "with_3d": sum(s in located for s in with_people),
           "published_twice": sum(count[s] > 1 for s in answered),
           "depth_sent_late_ms_p95": percentiles(depth_lateness, (95,))["p95"]}
    out.update({f"first_ms_{k}": v for k, v in percentiles(first_latency).items()})
    out.update({f"3d_ms_{k}": v for k, v in percentiles(located_latency).items()})
    return out


def measure(source: Path, lateness_ms: list[int], seconds: float, rate: float, busy: int,
            overrides: list[str], log=print) -> dict:
    from lapx_ros.runtime.engine import default_model_path
    from lapx_ros.testing.ros_processes import RosProcess

    photo = cv2.imread(str(PHOTO))
    if photo is None:
        raise SystemExit(f"the LSPET photo is missing: {PHOTO.name} in the shared data's lspet/images")
    photo = cv2.resize(photo, (photo.shape[1] * 2, photo.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    namespace = f"/depth_late_{uuid.uuid4().hex[:6]}"
    args = ["-m", "lapx_ros.ros.node", "--ros-args", "--params-file", str(source / "config" / "lapx.yaml"),
            "-r", f"__ns:={namespace}"]
    for value in [f"model_path:={default_model_path()}", "threads:=1", f"depth_topic:={DEPTH_TOPIC}",
                  "stale_timeout:=60.0", *overrides]:
        args += ["-p", value]
    with busy_cpu(busy):
        node = RosProcess(*args, name="pose_node", env={"PYTHONPATH": str(source)}, cwd=source)
        try:
            camera = RgbdCamera(namespace, photo)
            try:
                rows, load = _lateness_runs(node, camera, lateness_ms, seconds, rate, log)
            finally:
                camera.close()
        finally:
            node.stop()
    return {"rows": rows, "load_average_1min": load, "busy_processes": busy, "rate_hz": rate,
            "overrides": overrides}


def _lateness_runs(node, camera: RgbdCamera, lateness_ms, seconds, rate, log):
    """(figures per lateness, the 1-minute load average when they started)."""
    node.wait_for(r"active: ", timeout=120)
    deadline = time.monotonic() + 30
    while not camera.connected():
        if time.monotonic() > deadline:
            raise RuntimeError("the node did not connect to the camera")
        time.sleep(0.1)
    warm_until = time.monotonic() + 3.0
    while time.monotonic() < warm_until:
        camera.send(0.0)
        time.sleep(1.0 / rate)
    load = os.getloadavg()[0]
    rows = []
    for late in lateness_ms:
        stamps, start = [], time.monotonic()
        for i in range(int(seconds * rate)):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            stamps.append(camera.send(late / 1000.0))
        time.sleep(1.5)  # the last frames' depth and poses
        rows.append(figures(camera, stamps, late / 1000.0))
        log(json.dumps(rows[-1]))
    return rows, load


def command_line(source: Path, commit: str) -> str:
    """This run's command, another checkout named by its commit (no machine paths)."""
    words = []
    for word in sys.argv[1:]:
        if Path(word).resolve() == source and source != REPO:
            word = f"<checkout of {commit}>"
        words.append(f'"{word}"' if " " in word else word)
    return " ".join([".venv/bin/python -m benchmarks.depth_late", *words])


def render(results: dict) -> str:
    machine = next(iter(results.values()), {}).get("machine", {})
    lines = [
        f"## {SECTION}: 3D when the depth image comes after its colour frame",
        "",
        "`python -m benchmarks.depth_late` (module docstring: method). A camera sends a real photo at the "
        "given rate and its registered depth image L ms later; the node (threads 1) answers. *answered*: "
        "frames with a message, of those sent; *3D*: frames whose message had positions, of the answered "
        "frames with a person; latency from sending the colour frame to its first message and to its "
        "message with 3D; *twice*: frames published twice (2D, then 3D). "
        "*as is*: whatever else runs on the machine (its 1-minute load average is given); *busy*: "
        "processes spinning at normal priority beside the node on top of that. "
        f"CPU: {machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} cores.",
        "",
    ]
    for key, run in results.items():
        label, load = key.split("/", 1)
        lines += [f"### {label}, {load} ({run['source'].get('commit', '')})",
                  "",
                  f"{run['rate_hz']:g} Hz, {run['busy_processes']} busy processes beside the node, 1-minute "
                  f"load average {run['load_average_1min']:.1f} at the start"
                  + (f"; parameters {', '.join(run['overrides'])}" if run["overrides"] else "") + ".",
                  f"`{run['command']}`",
                  "",
                  "| depth late [ms] | answered | 3D | first message p50 / p95 [ms] | with 3D p50 / p95 [ms] "
                  "| twice | depth sent late p95 [ms] |",
                  "|---|---|---|---|---|---|---|"]
        for r in run["rows"]:
            share = 100.0 * r["with_3d"] / max(r["with_people"], 1)
            lines.append(f"| {r['lateness_ms']} | {r['answered']}/{r['sent']} | {share:.0f} % "
                         f"({r['with_3d']}/{r['with_people']}) "
                         f"| {r['first_ms_p50']:.0f} / {r['first_ms_p95']:.0f} "
                         f"| {r['3d_ms_p50']:.0f} / {r['3d_ms_p95']:.0f} | {r['published_twice']} "
                         f"| {r['depth_sent_late_ms_p95']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, default=REPO,
                   help="checkout whose node is measured (default: this one)")
    p.add_argument("--label", default="this checkout", help="name of the run in the results")
    p.add_argument("--lateness", default="0,20,60,100,150",
                   help="ms from each colour frame to its depth image")
    p.add_argument("--seconds", type=float, default=10.0, help="of frames per lateness")
    p.add_argument("--rate", type=float, default=15.0, help="colour frames per second")
    p.add_argument("--busy", type=int, default=2, help="spinning processes beside the node in the busy run")
    p.add_argument("--loads", default="as is,busy", help="which runs: 'as is', 'busy' or both")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="a parameter of the node (repeatable)")
    p.add_argument("--render", action="store_true", help="only write the section from the results file")
    p.add_argument("--no-write", action="store_true", help="print only; leave the results alone")
    args = p.parse_args()
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    if not args.render:
        ros_environment()
        source = args.source.resolve()
        facts = {"commit": git_commit(source),
                 "subject": subprocess.run(["git", "-C", str(source), "log", "-1", "--format=%s"],
                                           capture_output=True, text=True).stdout.strip()[:90]}
        lateness = [int(v) for v in args.lateness.split(",")]
        for load in [v.strip() for v in args.loads.split(",")]:
            print(f"{args.label}, {load}:", flush=True)
            run = measure(source, lateness, args.seconds, args.rate, args.busy if load == "busy" else 0,
                          args.param)
            run.update(source=facts, machine=machine_info(), command=command_line(source, facts["commit"]))
            results[f"{args.label}/{load}"] = run
            if not args.no_write:
                RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    if args.no_write:
        return 0
    write_section(RESULTS, SECTION, "benchmarks/depth_late.py", render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

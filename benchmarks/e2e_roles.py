"""Benchmark roles around the pose node, each in a process of its own (started by
benchmarks/run.py):

- ``publish``: sends the benchmark frames as sensor_msgs/Image (bgr8, 640x480) at a fixed
  rate, stamped when sent, and for the 3-person scenario the person boxes of each frame
  (lapx_ros/HumanPoseArray with boxes only) just before it, with the same stamp; with
  sensor-data (best effort) QoS as cameras do, or ``--qos reliable``;
- ``listen``: subscribes to each node's /human_pose and /diagnostics and notes the
  receive time of every message.

Stamps and receive times travel as integer nanoseconds: a pose is matched to its frame
by equal stamps, and float seconds near 1.7e9 resolve only ~0.24 us, so rounding them
failed to match about one frame in nine.

Both read commands on stdin, one per line, and answer one line ``RESULT <json>``:
  publish:  wait NS TIMEOUT | run NS FRAMES WARMUP_S SECONDS [RATE_HZ] | quit
  listen:   wait NS TIMEOUT | dump NS | quit
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from lapx_ros.msg import HumanPoseArray, PersonPose
from lapx_ros.ros.convert import to_image_msg
from lapx_ros.testing.scenes import load_scenes, sequence_index

RELIABLE = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
FRAME_ID = "camera_optical_frame"


def answer(obj) -> None:
    print("RESULT " + json.dumps(obj), flush=True)


def to_time(ns: int) -> Time:
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


class Publisher:
    def __init__(self, scenes_file: str, namespaces, rate: float, hold: int, reliability: str):
        self.node = rclpy.create_node("lapx_bench_camera")
        self.rate, self.hold = rate, hold
        self.scenes = load_scenes(scenes_file)
        self.images = {name: [to_image_msg(f, "bgr8") for f in frames]
                       for name, (frames, _, _) in self.scenes.items()}
        image_qos = QoSProfile(depth=5, reliability=(QoSReliabilityPolicy.RELIABLE if reliability == "reliable"
                                                     else qos_profile_sensor_data.reliability))
        self.pubs = {}
        for ns in namespaces:
            self.pubs[ns] = (self.node.create_publisher(Image, f"{ns}/camera/image_raw", image_qos),
                             self.node.create_publisher(HumanPoseArray, f"{ns}/person_boxes", 10))

    def wait(self, ns: str, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pubs[ns][0].get_subscription_count() > 0:
                return {"ok": True}
            time.sleep(0.05)
        return {"ok": False}

    def boxes_msg(self, boxes, stamp: Time) -> HumanPoseArray:
        msg = HumanPoseArray()
        msg.header.stamp, msg.header.frame_id = stamp, FRAME_ID
        for x0, y0, x1, y1 in boxes:  # message pixels: OpenCV + 0.5
            msg.people.append(PersonPose(score=1.0, x_min=float(x0) + 0.5, y_min=float(y0) + 0.5,
                                         x_max=float(x1) + 0.5, y_max=float(y1) + 0.5))
        return msg

    def run(self, ns: str, scenario: str, warmup: float, seconds: float, rate: float | None = None):
        """Publish the frames of ``scenario`` at ``rate`` (default: --rate) for warmup + seconds."""
        rate = rate or self.rate
        image_pub, boxes_pub = self.pubs[ns]
        messages = self.images[scenario]
        _, boxes, _ = self.scenes[scenario]
        with_boxes = scenario != "1_person" and boxes.size > 0  # footage comes without boxes
        period = 1.0 / rate
        total = int(round((warmup + seconds) * rate))
        first_measured = int(round(warmup * rate))
        stamps, late = [], 0
        t0 = time.monotonic()
        window_start = None
        for n in range(total):
            target = t0 + n * period
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.005:
                late += 1
            k = sequence_index(n, len(messages), self.hold)
            now_ns = time.time_ns()
            stamp = to_time(now_ns)
            if with_boxes:
                boxes_pub.publish(self.boxes_msg(boxes[k], stamp))
            msg = messages[k]
            msg.header.stamp, msg.header.frame_id = stamp, FRAME_ID
            image_pub.publish(msg)
            if n == first_measured:
                window_start = now_ns * 1e-9
            if n >= first_measured:
                stamps.append(now_ns)
        time.sleep(0.5)  # the last poses are still on their way; the caller dumps after this
        return {"ns": ns, "scenario": scenario, "start": window_start,
                "end": window_start + seconds, "stamps": stamps, "late_sends": late,
                "send_rate_hz": len(stamps) / seconds}


class Listener:
    def __init__(self, namespaces):
        self.node = rclpy.create_node("lapx_bench_listener")
        self.lock = threading.Lock()
        self.records = {ns: [] for ns in namespaces}
        self.diag = {ns: [] for ns in namespaces}
        for ns in namespaces:
            self.node.create_subscription(HumanPoseArray, f"{ns}/human_pose", self._keep(ns), RELIABLE)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, RELIABLE)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _keep(self, ns):
        def callback(msg):
            recv = time.time_ns()
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            with self.lock:
                self.records[ns].append((stamp, recv, len(msg.people)))
        return callback

    def _on_diag(self, msg):
        for status in msg.status:
            for ns in self.diag:
                if status.name.startswith(f"{ns}/lapx_pose:"):
                    values = {kv.key: kv.value for kv in status.values}
                    with self.lock:
                        self.diag[ns].append({"t": time.time(), "compute_ms_p50": values.get("compute_ms_p50"),
                                              "processing_rate_hz": values.get("processing_rate_hz"),
                                              "dropped_stale": values.get("dropped_stale"),
                                              "dropped_invalid": values.get("dropped_invalid"),
                                              "inference_errors": values.get("inference_errors"),
                                              "frames_received": values.get("frames_received"),
                                              "frames_processed": values.get("frames_processed"),
                                              "backend": values.get("backend")})

    def wait(self, ns: str, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.node.count_publishers(f"{ns}/human_pose") > 0:
                return {"ok": True}
            time.sleep(0.05)
        return {"ok": False}

    def dump(self, ns: str):
        with self.lock:
            records, self.records[ns] = self.records[ns], []
            diag, self.diag[ns] = self.diag[ns], []
        return {"ns": ns, "records": records, "diagnostics": diag}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=("publish", "listen"))
    p.add_argument("--namespaces", required=True, help="comma-separated node namespaces")
    p.add_argument("--scenes", help="frames file (publish)")
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--hold", type=int, default=15)
    p.add_argument("--qos", choices=("best_effort", "reliable"), default="best_effort", help="image QoS (publish)")
    args = p.parse_args()
    namespaces = args.namespaces.split(",")
    rclpy.init()
    role = (Publisher(args.scenes, namespaces, args.rate, args.hold, args.qos) if args.role == "publish"
            else Listener(namespaces))
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "quit":
            break
        try:
            if cmd[0] == "wait":
                answer(role.wait(cmd[1], float(cmd[2])))
            elif cmd[0] == "run":
                answer(role.run(cmd[1], cmd[2], float(cmd[3]), float(cmd[4]),
                                float(cmd[5]) if len(cmd) > 5 else None))
            elif cmd[0] == "dump":
                answer(role.dump(cmd[1]))
            else:
                answer({"error": f"unknown command {cmd[0]}"})
        except Exception as exc:  # report, keep serving
            answer({"error": f"{type(exc).__name__}: {exc}"})
    role.node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

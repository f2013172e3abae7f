"""Does every frame of a steady stream get its pose? A quick check beside benchmarks/run.py.

Starts the pose node with the shipped model, publishes one LSPET photo scaled to
640x480 as --count frames at --rate Hz, and prints how many /human_pose messages came
back for them next to the node's own counters (received, processed, stale, invalid).

    .venv/bin/python benchmarks/stream_probe.py [--best-effort] [--count 240] [--rate 30]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))

import cv2  # noqa: E402
from pose_client import LSPET, PoseClient, node_command  # noqa: E402

COUNTERS = ("frames_received", "frames_processed", "dropped_stale", "dropped_invalid", "inference_errors")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=240)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--best-effort", action="store_true", help="publish with sensor-data QoS, as cameras do")
    args = p.parse_args()

    from lapx_ros.runtime.engine import default_model_path

    namespace = f"/probe{uuid.uuid4().hex[:6]}"
    command = node_command(namespace, default_model_path(), f"threads:={args.threads}", "diagnostics_period:=0.5")
    node = subprocess.Popen([sys.executable, *command], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        frame = cv2.resize(cv2.imread(str(LSPET / "images" / "im09001.jpg")), (640, 480))
        with PoseClient(namespace) as client:
            client.wait_for_node()
            if args.best_effort:
                from rclpy.qos import qos_profile_sensor_data
                from sensor_msgs.msg import Image

                client.image_pub = client.node.create_publisher(
                    Image, f"{namespace}/camera/image_raw", qos_profile_sensor_data)
                time.sleep(2.0)  # discovery of the new publisher
            before = client.diagnostic_values() or {}
            first_pose = len(client.poses)
            start, stamps = time.monotonic(), []
            for i in range(args.count):
                stamps.append(client.publish_image(frame))
                time.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
            time.sleep(1.5)
            answered = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in client.poses[first_pose:]}
            got = sum((s.sec, s.nanosec) in answered for s in stamps)
            after = client.diagnostic_values() or {}
    finally:
        node.terminate()
        node.wait(10)
    print(f"poses for {got} of {args.count} frames at {args.rate:g} Hz "
          f"({'best effort' if args.best_effort else 'reliable'} publisher)")
    for key in COUNTERS:
        print(f"  node {key}: {int(after.get(key, 0)) - int(before.get(key, 0))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

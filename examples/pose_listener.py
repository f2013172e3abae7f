"""Print the HumanPoseArray messages arriving on a topic.

    python examples/pose_listener.py [--topic /human_pose] [--count 5] [--json]

Prints READY once subscribed, then each message: a short description, or with --json
one line `MSG <json>` holding every field (pose_samples.to_plain). Exits 0 after
--count messages (0: run until interrupted) and 2 if they do not arrive within
--timeout seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from lapx_ros.msg import HumanPoseArray
from pose_samples import describe, to_plain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", default="/human_pose")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--volatile", action="store_true",
        help="volatile durability (to listen to a node) instead of transient local",
    )
    args = ap.parse_args(argv)

    rclpy.init()
    node = rclpy.create_node("pose_listener")
    received: list[HumanPoseArray] = []

    def on_msg(msg: HumanPoseArray) -> None:
        received.append(msg)
        if args.json:
            print("MSG " + json.dumps(to_plain(msg), separators=(",", ":")), flush=True)
        else:
            print(f"[{len(received)}] " + describe(msg), flush=True)

    qos = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=max(10, args.count),
        reliability=ReliabilityPolicy.RELIABLE,
        durability=(DurabilityPolicy.VOLATILE if args.volatile
                    else DurabilityPolicy.TRANSIENT_LOCAL),
    )
    node.create_subscription(HumanPoseArray, args.topic, on_msg, qos)
    print("READY", flush=True)
    deadline = time.monotonic() + args.timeout
    try:
        while args.count <= 0 or len(received) < args.count:
            if args.count > 0 and time.monotonic() > deadline:
                print(f"TIMEOUT after {len(received)} message(s)", flush=True)
                return 2
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or SIGTERM: normal end
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"RECEIVED {len(received)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

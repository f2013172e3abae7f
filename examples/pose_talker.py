"""Publish sample HumanPoseArray messages (see pose_samples.py).

    python examples/pose_talker.py [--topic /human_pose] [--count 5] [--people 3]

Prints READY once the publisher exists, MATCHED when --subscribers subscribers are
connected, SENT <n> per message and DONE after the last one; then keeps running (so
late subscribers still get the history, QoS transient local) until interrupted or
--linger seconds have passed.
"""
from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from lapx_ros.msg import HumanPoseArray
from pose_samples import make_pose_array


def pose_qos(depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topic", default="/human_pose")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--people", type=int, default=3)
    ap.add_argument("--period", type=float, default=0.1, help="seconds between messages")
    ap.add_argument("--subscribers", type=int, default=1, help="wait for this many first")
    ap.add_argument("--wait-timeout", type=float, default=30.0)
    ap.add_argument("--linger", type=float, default=60.0)
    args = ap.parse_args(argv)

    rclpy.init()
    node = rclpy.create_node("pose_talker")
    pub = node.create_publisher(HumanPoseArray, args.topic, pose_qos(max(10, args.count)))
    print("READY", flush=True)
    try:
        deadline = time.monotonic() + args.wait_timeout
        while pub.get_subscription_count() < args.subscribers:
            if time.monotonic() > deadline:
                print(f"TIMEOUT waiting for {args.subscribers} subscriber(s)", flush=True)
                return 2
            rclpy.spin_once(node, timeout_sec=0.05)
        print("MATCHED", flush=True)
        for seq in range(args.count):
            msg = make_pose_array(seq, people=args.people)
            # stamp stays synthetic (deterministic) so a receiver can compare it
            pub.publish(msg)
            print(f"SENT {seq}", flush=True)
            rclpy.spin_once(node, timeout_sec=args.period)
        print("DONE", flush=True)
        end = time.monotonic() + args.linger
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C or SIGTERM: normal end
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

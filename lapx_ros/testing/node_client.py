"""The other side of a pose node running in another process, for tests and benchmarks:
publishes frames to it and collects what it publishes (poses, markers, annotated images,
diagnostics).

    with PoseClient("/ns") as client:
        client.wait_for_node()
        stamp = client.publish_image(frame, "rgb8")
        msg = client.wait_pose(stamp)
"""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from lapx_ros.msg import HumanPoseArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from lapx_ros.ros.convert import to_compressed_msg, to_image_msg

REPO = Path(__file__).resolve().parents[2]
LSPET = REPO.parent / "shared" / "data" / "lspet"
RELIABLE = QoSProfile(depth=20, reliability=QoSReliabilityPolicy.RELIABLE)
READY = r"active: "  # the node's log line once it is active


def unique_namespace() -> str:
    return f"/lapx_t{uuid.uuid4().hex[:8]}"


def node_command(namespace: str, model: str, *params: str) -> list[str]:
    """Arguments for ros_process(...) that start the pose node with config/lapx.yaml."""
    args = ["-m", "lapx_ros.ros.node", "--ros-args", "--params-file", str(REPO / "config" / "lapx.yaml"),
            "-r", f"__ns:={namespace}", "-p", f"model_path:={model}", "-p", "threads:=1"]
    for p in params:
        args += ["-p", p]
    return args


class PoseClient:
    """An rclpy node in the test process, spinning on a thread of its own."""

    _count = 0

    def __init__(self, namespace: str, subscribe_image: bool = False, publish_images: bool = True):
        """``publish_images`` False: leave the node's input topic to a camera process (the
        node's QoS and its count of lost frames follow the publishers it sees)."""
        if not rclpy.ok():
            rclpy.init()
        PoseClient._count += 1
        self.ns = namespace.rstrip("/")
        self.node = rclpy.create_node(f"pose_test_client_{PoseClient._count}")
        self.poses: list[HumanPoseArray] = []
        self.pose_latencies: list[float] = []  # seconds from a pose's stamp to its arrival here
        self.markers: list[MarkerArray] = []
        self.images: list[Image] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._cond = threading.Condition()
        n = self.node
        if publish_images:
            self.image_pub = n.create_publisher(Image, f"{self.ns}/camera/image_raw", RELIABLE)
            self.compressed_pub = n.create_publisher(CompressedImage,
                                                     f"{self.ns}/camera/image_raw/compressed", RELIABLE)
        n.create_subscription(HumanPoseArray, f"{self.ns}/human_pose", self._on_pose, RELIABLE)
        n.create_subscription(MarkerArray, f"{self.ns}/human_pose/markers", self._keep(self.markers),
                              RELIABLE)
        n.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.diagnostics), RELIABLE)
        if subscribe_image:
            n.create_subscription(Image, f"{self.ns}/human_pose/image", self._keep(self.images), RELIABLE)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(n)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()
        self._seq = 0

    def _on_pose(self, msg) -> None:
        latency = self.node.get_clock().now().nanoseconds * 1e-9 - (msg.header.stamp.sec
                                                                    + msg.header.stamp.nanosec * 1e-9)
        with self._cond:
            self.poses.append(msg)
            self.pose_latencies.append(latency)
            self._cond.notify_all()

    def _keep(self, store):
        def callback(msg):
            with self._cond:
                store.append(msg)
                self._cond.notify_all()
        return callback

    def close(self) -> None:
        self._executor.shutdown()
        self._thread.join(timeout=5.0)
        self.node.destroy_node()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --------------------------------------------------------------- sending
    def next_stamp(self) -> Time:
        """Now, made unique and increasing even for fast successive calls."""
        self._seq += 1
        now = self.node.get_clock().now().nanoseconds + self._seq * 1000
        return Time(sec=now // 10**9, nanosec=now % 10**9)

    def header(self, stamp=None, frame_id="camera_optical_frame"):
        h = Image().header
        h.stamp = stamp or self.next_stamp()
        h.frame_id = frame_id
        return h

    def publish_image(self, frame_bgr, encoding="bgr8", **header) -> Time:
        msg = to_image_msg(frame_bgr, encoding, self.header(**header))
        self.image_pub.publish(msg)
        return msg.header.stamp

    def publish_raw(self, msg: Image) -> None:
        self.image_pub.publish(msg)

    def publish_compressed(self, frame_bgr, fmt="jpeg", **header) -> Time:
        msg = to_compressed_msg(frame_bgr, fmt, self.header(**header))
        self.compressed_pub.publish(msg)
        return msg.header.stamp

    # ------------------------------------------------------------- receiving
    def wait_for_node(self, compressed: bool = False, timeout: float = 20.0, warm_up: bool = True) -> None:
        """Until the node's input subscription and /human_pose publisher are matched and,
        with ``warm_up``, a small frame has made the whole round trip (discovery of the
        node's outputs can lag behind its input)."""
        pub = self.compressed_pub if compressed else self.image_pub
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pub.get_subscription_count() > 0 and self.node.count_publishers(f"{self.ns}/human_pose") > 0:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the node in {self.ns} did not connect within {timeout} s")
        if not warm_up:
            return
        grey = np.full((48, 64, 3), 128, np.uint8)
        while time.monotonic() < deadline:
            stamp = self.publish_compressed(grey, "png") if compressed else self.publish_image(grey)
            if self.wait_pose(stamp, timeout=1.0) is not None:
                return
        raise AssertionError(f"no /human_pose from the node in {self.ns} within {timeout} s")

    def wait(self, predicate, timeout: float = 10.0):
        """Wait until predicate() returns something truthy; returns it or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate()
                left = deadline - time.monotonic()
                if result or left <= 0:
                    return result
                self._cond.wait(min(left, 0.2))

    def wait_pose(self, stamp: Time, timeout: float = 10.0):
        def find():
            return next((m for m in self.poses if m.header.stamp == stamp), None)
        return self.wait(find, timeout)

    def diagnostic_values(self, after: int = 0) -> dict | None:
        """Key/values (plus level and message) of this namespace's pose node's newest
        diagnostics status among those received after the first ``after`` messages."""
        name = f"{self.ns}/lapx_pose: "
        with self._cond:
            received = list(self.diagnostics[after:])
        for msg in reversed(received):
            for status in msg.status:
                if status.name.startswith(name):
                    values = {kv.key: kv.value for kv in status.values}
                    values["level"] = ord(status.level) if isinstance(status.level, bytes) \
                        else int(status.level)
                    values["message"] = status.message
                    return values
        return None

    def wait_diagnostics(self, predicate, after: int = 0, timeout: float = 10.0) -> dict | None:
        """The first diagnostics values (see diagnostic_values) for which predicate is true."""
        def find():
            values = self.diagnostic_values(after)
            return values if values and predicate(values) else None
        return self.wait(find, timeout)


def set_parameters(client: PoseClient, namespace: str, **values):
    """Set parameters of the node in ``namespace`` through its parameter service."""
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    params = AsyncParameterClient(client.node, f"{namespace}/lapx_pose")
    assert params.wait_for_services(timeout_sec=10.0)
    future = params.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    result = client.wait(lambda: future.done() and future.result(), 10)
    assert result is not None, "no answer from the parameter service"
    return result.results

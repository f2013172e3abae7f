"""The node's subscriptions while it is active: colour frames (QoS followed and handed
over, frames lost in transport counted), the colour CameraInfo, depth images and their
CameraInfo, and person boxes. Messages are handed on undecoded: frames to the node's
worker with the time they came, depth to its ``DepthStream``, boxes to its
``StampBuffer``."""
from __future__ import annotations

import time

from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from lapx_ros.ros.messages import (
    boxes_from_msg,
    boxes_message_type,
    depth_topics,
    input_topics,
    stamp_seconds,
)
from lapx_ros.ros.qos_follow import QosFollower, image_qos
from lapx_ros.runtime.camera import PinholeCamera
from lapx_ros.runtime.frames import SequenceGaps


def colour_topic(config) -> str:
    return input_topics(config.input_topic, config.input_transport)[0]


def depth_topic(config) -> str:
    return depth_topics(config.depth_topic, config.depth_transport)[0]


class Inputs:
    """Subscribes on ``open`` and lets go on ``close``; what it counted (frames lost in
    transport) and learnt (the colour camera's model) lasts across activations."""

    def __init__(self, node, on_frame, throttle):
        self._node = node
        self._deliver = on_frame  # (message, compressed, time.monotonic() it came) of each colour frame
        self._throttle = throttle
        self.gaps = SequenceGaps()
        self._middleware_lost = 0  # frames the middleware reported lost (message_lost events)
        self._single_publisher = False  # sequence numbers of several publishers interleave
        self.colour_camera: PinholeCamera | None = None
        self._colour: QosFollower | None = None
        self._depth: QosFollower | None = None
        self._subscriptions = []

    @property
    def frames_lost(self) -> int:
        """Frames the camera sent that never reached the node: sequence gaps of a single
        publisher, or the middleware's own loss reports when those say more."""
        return max(self.gaps.lost, self._middleware_lost)

    @property
    def colour_reliability(self) -> str:
        return self._colour.reliability if self._colour is not None else ""

    @property
    def depth_reliability(self) -> str:
        return self._depth.reliability if self._depth is not None else ""

    def open(self, config, depth=None, boxes=None) -> None:
        """Subscribe the colour input and its CameraInfo; depth into ``depth`` (a
        DepthStream) and person boxes into ``boxes`` (a StampBuffer of (boxes, scores))
        when given."""
        node = self._node
        topic, compressed, info_topic = input_topics(config.input_topic, config.input_transport,
                                                     config.camera_info_topic)
        self._colour = QosFollower(
            node, CompressedImage if compressed else Image, topic,
            lambda msg, info: self._on_frame(msg, info, compressed), config.qos_reliability,
            config.qos_depth, "input", handover=True, incompatible_qos=self._on_incompatible_qos,
            message_lost=self._on_message_lost)
        publishers = self._colour.publishers()
        self._single_publisher = len(publishers) == 1
        self._colour.subscribe(publishers)
        self.gaps.forget()
        self._subscribe_camera_info(info_topic, self._on_camera_info, config.qos_depth)
        if depth is not None:
            topic, compressed_depth, depth_info = depth_topics(config.depth_topic, config.depth_transport)
            self._depth = QosFollower(
                node, CompressedImage if compressed_depth else Image, topic,
                lambda msg, _info: self._on_depth(depth, msg),
                config.qos_reliability, config.qos_depth, "depth")
            self._depth.subscribe(self._depth.publishers())
            self._subscribe_camera_info(depth_info, lambda msg: depth.set_camera(
                PinholeCamera.from_camera_info(msg)), config.qos_depth)
        if boxes is not None:
            box_type, box_type_name = boxes_message_type()
            node.get_logger().info(f"person boxes: {box_type_name} on {config.boxes_topic}")
            self._subscriptions.append(node.create_subscription(
                box_type, config.boxes_topic,
                lambda msg: boxes.add(stamp_seconds(msg.header.stamp), boxes_from_msg(msg)), 10))

    def follow(self) -> None:
        """A look at the publishers: count them (sequence gaps mean something only with
        one) and follow their reliability."""
        if self._colour is None:
            return
        self._colour.finish_handover()
        if self._depth is not None:
            self._depth.follow(self._depth.publishers())
        publishers = self._colour.publishers()
        self._single_publisher = len(publishers) == 1
        # Nobody publishing may be a moment's view of the graph: keep the subscription as is.
        if publishers and self._colour.follow(publishers):
            self.gaps.forget()

    def close(self) -> None:
        for follower in (self._colour, self._depth):
            if follower is not None:
                follower.close()
        for sub in self._subscriptions:
            self._node.destroy_subscription(sub)
        self._colour = self._depth = None
        self._subscriptions = []

    def _subscribe_camera_info(self, topic: str, callback, queue_depth: int) -> None:
        self._subscriptions.append(self._node.create_subscription(
            CameraInfo, topic, callback, image_qos("best_effort", queue_depth)))

    def _on_frame(self, msg, info, compressed: bool) -> None:
        if self._single_publisher:
            self.gaps.add(info["publication_sequence_number"])
        else:
            self.gaps.forget()  # numbers of several publishers interleave
        self._deliver(msg, compressed, time.monotonic())

    def _on_depth(self, depth, msg) -> None:
        late = depth.add(stamp_seconds(msg.header.stamp), msg)
        if late is not None:
            self._throttle.warn("depth: too late", (
                f"a frame went out without 3D: its depth image came {late:.3f} s after the frame "
                "stopped waiting for it (depth_wait after the frame came); raise depth_wait to wait longer"))

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.colour_camera = PinholeCamera.from_camera_info(msg)

    def _on_incompatible_qos(self, event) -> None:
        self._throttle.warn("qos", f"a publisher on {self._colour.topic} has QoS incompatible with this "
                                   f"node's ({self._colour.reliability}, policy {event.last_policy_kind}); "
                                   "its frames cannot arrive. Fix: set qos_reliability: auto")

    def _on_message_lost(self, event) -> None:
        self._middleware_lost += event.total_count_change

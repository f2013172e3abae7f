"""An input subscription whose reliability follows its topic's publishers.

A reliable reader matches no best-effort writer, and a best-effort reader loses every
large frame that loses a fragment: so under ``qos_reliability: auto`` the reliability is
chosen from the publishers the graph shows (``health.choose_reliability``) and chosen
again when they change (a reliable camera appeared, a best-effort one joined). With
``handover`` the previous subscription keeps delivering until the new one is matched,
so that no frame is lost on the way; what both deliver meanwhile is passed on once.
"""
from __future__ import annotations

import time

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data

from lapx_ros.runtime import health
from lapx_ros.runtime.frames import DuplicateFilter

PUBLISHER_CHECK_PERIOD = 0.25  # seconds between looks at the publishers
HANDOVER_GRACE = 0.5  # seconds both subscriptions overlap once the new one is matched
HANDOVER_TIMEOUT = 2.0  # seconds the previous subscription may wait for the new one's match
RELIABILITY = {"reliable": QoSReliabilityPolicy.RELIABLE, "best_effort": QoSReliabilityPolicy.BEST_EFFORT}


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last ``depth`` (the node takes only the newest image anyway), volatile."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY[reliability],
                      durability=qos_profile_sensor_data.durability)


def publishers_of(node, topic: str) -> list[health.Publisher]:
    """The publishers of ``topic`` (relative names resolved in the node's namespace)."""
    infos = node.get_publishers_info_by_topic(node.resolve_topic_name(topic))
    return [health.Publisher(i.topic_type, i.qos_profile.reliability == QoSReliabilityPolicy.RELIABLE)
            for i in infos]


class QosFollower:
    """One topic's subscription, subscribed again with the reliability its publishers
    call for. ``callback(msg, info)`` gets each message; ``events`` are further
    SubscriptionEventCallbacks arguments (incompatible_qos, message_lost, ...)."""

    def __init__(self, node, msg_type, topic: str, callback, setting: str, queue_depth: int,
                 label: str, handover: bool = False, **events):
        self._node = node
        self._msg_type = msg_type
        self.topic = topic
        self._callback = callback
        self._setting = setting
        self._queue_depth = queue_depth
        self._label = label
        self._handover = handover
        self._events = events
        self._recent = DuplicateFilter()
        self._sub = None
        self._retiring = None  # (subscription, since) during a handover
        self._new_matched = False
        self.reliability = ""  # of the subscription while there is one

    def publishers(self) -> list[health.Publisher]:
        return publishers_of(self._node, self.topic)

    def subscribe(self, publishers: list[health.Publisher]) -> None:
        self._subscribe(health.choose_reliability(self._setting, publishers))

    def follow(self, publishers: list[health.Publisher]) -> bool:
        """Subscribe again when ``publishers`` call for another reliability; True when it did."""
        wanted = health.choose_reliability(self._setting, publishers)
        if wanted == self.reliability:
            return False
        self._node.get_logger().info(f"{self._label} QoS follows the publishers of {self.topic}: "
                                     f"{self.reliability} -> {wanted}")
        if self._handover:
            self._retire()
            self._retiring, self._new_matched = (self._sub, time.monotonic()), False
        else:
            self._node.destroy_subscription(self._sub)
        self._subscribe(wanted)
        return True

    def finish_handover(self) -> None:
        """Let the previous subscription go once the new one has been matched for a grace
        period (the writer may see the new reader a moment after the reader saw it), or
        after a timeout."""
        self._retire(older_than=HANDOVER_GRACE if self._new_matched else HANDOVER_TIMEOUT)

    def close(self) -> None:
        self._retire()
        if self._sub is not None:
            self._node.destroy_subscription(self._sub)
        self._sub, self.reliability = None, ""

    def _subscribe(self, reliability: str) -> None:
        events = dict(self._events)
        if self._handover:
            events["matched"] = self._on_matched
        self._sub = self._node.create_subscription(
            self._msg_type, self.topic, self._on_message, image_qos(reliability, self._queue_depth),
            event_callbacks=SubscriptionEventCallbacks(**events) if events else None)
        self.reliability = reliability

    def _on_message(self, msg, info) -> None:
        stamp = msg.header.stamp
        if self._handover and self._recent.seen((info["publication_sequence_number"], stamp.sec,
                                                 stamp.nanosec)):
            return  # the same message through both subscriptions during a handover
        self._callback(msg, info)

    def _on_matched(self, event) -> None:
        self._new_matched = self._new_matched or event.current_count > 0

    def _retire(self, older_than: float = 0.0) -> None:
        if self._retiring is None:
            return
        sub, since = self._retiring
        if time.monotonic() - since >= older_than:
            self._node.destroy_subscription(sub)
            self._retiring = None

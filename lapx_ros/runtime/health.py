"""How the node's input is doing, in words a user can act on. No ROS here: the node
hands in plain facts (publishers seen, counters) and publishes the verdict.

Three questions a camera user asks, answered apart: is anybody publishing, do the
frames fit this node (type, QoS), and do they arrive whole (transport). A camera that
publishes while frames go missing in transport is not a "stopped camera": frames larger
than Fast DDS's default shared-memory segment (512 KiB) are cut into fragments, and a
best-effort reader loses every frame that loses one.
"""
from __future__ import annotations

from dataclasses import dataclass

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels

TRANSPORT_FIX = ("subscribe reliable (qos_reliability: auto or reliable, with a reliable camera "
                 "publisher) or give the camera and this node a large-frame transport "
                 "(docs/node.md, 'Large frames')")


@dataclass(frozen=True)
class Publisher:
    """A publisher on the input topic, as the graph reports it."""

    type_name: str
    reliable: bool


def choose_reliability(setting: str, publishers: list[Publisher]) -> str:
    """The input subscription's reliability for the parameter ``setting``.

    ``auto`` follows the publishers: reliable only when there are publishers and every
    one of them is reliable (a reliable reader matches no best-effort writer), so lost
    fragments are repaired; best effort otherwise, which matches any writer.
    """
    if setting != "auto":
        return setting
    if publishers and all(p.reliable for p in publishers):
        return "reliable"
    return "best_effort"


@dataclass(frozen=True)
class InputFacts:
    topic: str
    expected_type: str
    subscription_reliability: str  # what the node subscribes with now
    publishers: tuple[Publisher, ...]
    since_last_frame_s: float | None
    stale_timeout: float
    frames_received: int  # since the last assessment
    frames_lost: int  # sequence gaps and middleware loss reports since the last assessment


def input_problem(facts: InputFacts) -> tuple[int, str] | None:
    """(level, message) when the input is missing or arriving with gaps, else None."""
    no_frames = facts.since_last_frame_s is None or facts.since_last_frame_s > facts.stale_timeout
    if no_frames:
        return STALE, f"no frames: {_why_no_frames(facts)}"
    if facts.frames_lost:
        total = facts.frames_lost + facts.frames_received
        return WARN, (f"{facts.frames_lost} of {total} frames from {facts.topic} lost in transport; "
                      f"fix: {TRANSPORT_FIX}")
    return None


def _why_no_frames(facts: InputFacts) -> str:
    if not facts.publishers:
        return f"nobody publishes {facts.topic}"
    for p in facts.publishers:
        if p.type_name != facts.expected_type:
            return (f"{facts.topic} carries {p.type_name}, expected {facts.expected_type} "
                    "(check input_transport)")
    if facts.subscription_reliability == "reliable" and not all(p.reliable for p in facts.publishers):
        return (f"a publisher of {facts.topic} is best effort, this node subscribes reliable: "
                "set qos_reliability: auto or best_effort")
    count = len(facts.publishers)
    if facts.subscription_reliability == "best_effort":
        return (f"{count} publisher(s) on {facts.topic} but no frames arrive whole: large frames "
                f"are lost in transport; fix: {TRANSPORT_FIX}")
    return (f"{count} publisher(s) on {facts.topic} but no frames arrive (the camera publishes "
            "nothing, or frames are lost in transport: see docs/node.md, 'Large frames')")

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


class Deltas:
    """How much running totals grew since the previous look: the diagnostics speak of the
    last period, the counters of the whole run."""

    def __init__(self):
        self._last: dict[str, int] = {}

    def since_last(self, name: str, total: int) -> int:
        grown = total - self._last.get(name, 0)
        self._last[name] = total
        return grown

    def forget(self, *names: str) -> None:
        """These totals start again from zero (their counter was replaced)."""
        for name in names:
            self._last.pop(name, None)


@dataclass(frozen=True)
class PipelineFacts:
    """What the pipeline's diagnostics level is decided on, once a period."""

    model_problem: str  # why no model is loaded ("" when one is)
    active: bool
    last_error: str  # of inference, cleared by the next frame that succeeds
    input: InputFacts
    new_invalid: int  # frames dropped as invalid in the period
    new_with_depth: int  # frames of the period located in 3D
    new_without_depth: int
    depth_reason: str  # why the last frame without depth went without
    detector_problem: str  # why the detector asked for is not the one that runs
    detector_fallback: str  # with a detector_problem: what runs instead ("HOG instead of MoveNet")
    processing_rate_hz: float
    people: int


@dataclass(frozen=True)
class Verdict:
    level: int
    message: str
    warn: bool = False  # a problem of the input the user must act on: also worth a warning


def pipeline_status(facts: PipelineFacts) -> Verdict:
    """The diagnostics level and message: the most serious problem, with what to do."""
    if facts.model_problem:
        return Verdict(ERROR, f"model not loaded: {facts.model_problem}")
    if not facts.active:
        return Verdict(OK, "inactive")
    if facts.last_error:
        return Verdict(ERROR, f"inference failing: {facts.last_error}")
    problem = input_problem(facts.input)
    if problem is not None:
        return Verdict(*problem, warn=True)
    if facts.new_invalid:
        return Verdict(WARN, f"dropped {facts.new_invalid} bad frame(s)")
    if facts.new_without_depth and not facts.new_with_depth:
        return Verdict(WARN, (f"no depth for the last {facts.new_without_depth} frame(s), "
                              f"poses without 3D: {facts.depth_reason}"))
    if facts.detector_problem:
        return Verdict(WARN, f"detector: {facts.detector_fallback}: {facts.detector_problem}")
    return Verdict(OK, f"{facts.processing_rate_hz:.1f} Hz, {facts.people} people")

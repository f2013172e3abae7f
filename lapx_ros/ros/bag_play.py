"""lapx-replay --bag: a recorded camera played back as the camera was.

The bag's Image, CompressedImage and CameraInfo topics (colour and depth alike) go out
with their recorded header stamps, and ``/clock`` follows the recording time, so a node
with ``use_sim_time`` lives in the bag's time. Pacing: the recording's own timing
(``--rate 1``, or N times as fast), as fast as possible (``--rate 0``), or as fast as
the pose node answers (``--rate answer``): each colour frame, with the messages that
belong to it, then nothing until its HumanPoseArray came back (bounded by
``--answer-timeout``). The last makes the node process every frame, whatever the CPU,
which is what a comparison with lapx-bag-poses needs.

With ``--loop`` each pass after the first is shifted so that its first frame comes
one frame period after the previous pass's last, stamps and clock alike: time never
runs backwards, so the node neither drops frames as going back in time nor restarts
its tracking.
"""
from __future__ import annotations

import statistics
import threading
import time

from lapx_ros.ros.bags import (
    CAMERA_INFO,
    CAMERA_TYPES,
    COMPRESSED_IMAGE,
    IMAGE,
    BagError,
    BagReader,
    frame_events,
    full_type_name,
    is_depth,
    stamp_ns,
    with_log_time,
)

ANSWER = "answer"
CLOCK_PERIOD = 0.05  # seconds between /clock messages while nothing else is sent
WAIT_FOR_GRAPH = 30.0  # seconds to wait for the node before sending anyway
DEFAULT_PERIOD_NS = 100_000_000  # between loop passes when the bag has a single frame


def say(text: str) -> None:
    print(f"lapx-replay: {text}", flush=True)


def parse_rate(text: str) -> float | str:
    """``answer``, or a speed factor >= 0 (0 = as fast as possible)."""
    if text.strip().lower() == ANSWER:
        return ANSWER
    rate = float(text)
    if rate < 0 or rate != rate:
        raise ValueError("must be >= 0")
    return rate


def choose_topics(bag: BagReader, selections, types) -> tuple[dict, list[str]]:
    """({bag topic: (topic to publish on, type)}, notes on the topics left out).

    ``selections`` are ``NAME`` or ``NAME:=NEW`` (a remap); ``types`` add every topic of
    a type. Neither: every camera topic. Asking for a topic that is missing or of a
    type lapx-replay cannot publish is an error naming it."""
    plan = {}
    for text in selections:
        name, _, new = text.partition(":=")
        info = bag.topics.get(name)
        if info is None:
            raise BagError(f"{bag.path}: no topic {name} in the bag; its topics:\n{bag.describe()}")
        if info.msgtype not in CAMERA_TYPES:
            raise BagError(f"{bag.path}: topic {name} is {info.msgtype}: lapx-replay publishes only "
                           f"{', '.join(CAMERA_TYPES)}")
        plan[name] = (new or name, info.msgtype)
    wanted = {full_type_name(t) for t in types}
    unknown = wanted - set(CAMERA_TYPES)
    if unknown:
        raise BagError(f"--type {', '.join(sorted(unknown))}: lapx-replay publishes only "
                       f"{', '.join(CAMERA_TYPES)}")
    if not selections and not wanted:
        wanted = set(CAMERA_TYPES)
    for info in bag.topics.values():
        if info.msgtype in wanted and info.name not in plan:
            plan[info.name] = (info.name, info.msgtype)
    if not plan:
        raise BagError(f"{bag.path}: no camera topics ({', '.join(CAMERA_TYPES)}) to publish; "
                       f"its topics:\n{bag.describe()}")
    notes = [f"not published: {t.name} ({t.msgtype})" for t in bag.topics.values() if t.name not in plan]
    return plan, notes


def is_colour_frame(item) -> bool:
    """A frame the pose node answers: a colour Image or CompressedImage, not depth."""
    return item.msgtype in (IMAGE, COMPRESSED_IMAGE) and not is_depth(item.msg)


class AnswerWatcher:
    """Collects the stamps of the pose node's answers (HumanPoseArray) on a thread."""

    def __init__(self, node, topic: str):
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy

        from lapx_ros.msg import HumanPoseArray

        self.topic = topic
        self._stamps: set[int] = set()
        self._cond = threading.Condition()
        node.create_subscription(HumanPoseArray, topic, self._on_answer,
                                 QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE))

    def _on_answer(self, msg) -> None:
        with self._cond:
            self._stamps.add(stamp_ns(msg))
            self._cond.notify_all()

    def wait(self, stamp: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while stamp not in self._stamps:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            self._stamps.discard(stamp)
            return True


class Player:
    """Publishes the chosen topics of one bag and keeps /clock with them."""

    def __init__(self, node, bag: BagReader, plan: dict, args):
        from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
        from rosgraph_msgs.msg import Clock

        from lapx_ros.ros.bags import message_class

        self.node, self.bag, self.plan, self.args = node, bag, plan, args
        self.rate = parse_rate(args.rate)
        if args.best_effort:
            qos = QoSProfile(depth=args.history or 5, reliability=QoSReliabilityPolicy.BEST_EFFORT,
                             durability=qos_profile_sensor_data.durability)
        else:  # a lost fragment of a large frame is sent again (docs/node.md, "Large frames")
            qos = QoSProfile(depth=args.history or 10, reliability=QoSReliabilityPolicy.RELIABLE)
        self.publishers = {name: node.create_publisher(message_class(msgtype), out, qos)
                           for name, (out, msgtype) in plan.items()}
        self.image_publishers = [self.publishers[n] for n, (_, t) in plan.items() if t != CAMERA_INFO]
        self.clock_pub = None if args.no_clock else node.create_publisher(
            Clock, "/clock", QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE))
        self.answers = AnswerWatcher(node, args.answer_topic) if self.rate == ANSWER else None
        self._clock_type = Clock
        self._last_clock = 0.0
        self.frames = self.messages = self.unanswered = 0

    # ---------------------------------------------------------------------- clock
    def publish_clock(self, log_ns: int) -> None:
        if self.clock_pub is None:
            return
        msg = self._clock_type()
        msg.clock.sec, msg.clock.nanosec = divmod(int(log_ns), 1_000_000_000)
        self.clock_pub.publish(msg)
        self._last_clock = time.monotonic()

    def sleep_until(self, deadline: float, log_ns_at) -> None:
        """Sleep until the monotonic ``deadline``, publishing /clock at ``log_ns_at(now)``."""
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if now - self._last_clock >= CLOCK_PERIOD:
                self.publish_clock(log_ns_at(now))
            time.sleep(min(CLOCK_PERIOD, deadline - now))

    # ---------------------------------------------------------------------- start
    def wait_for_node(self) -> None:
        """Until enough image subscribers (and in answer mode the answering node) are
        there, within WAIT_FOR_GRAPH s; then ``--settle`` seconds, with the clock
        running at the bag's start."""
        want = max(self.args.wait_subscribers, 1 if self.answers else 0)
        deadline = time.monotonic() + WAIT_FOR_GRAPH

        def ready() -> bool:
            subscribed = sum(p.get_subscription_count() for p in self.image_publishers) >= want
            answering = self.answers is None or self.node.count_publishers(self.answers.topic) > 0
            return subscribed and answering

        while not ready() and time.monotonic() < deadline:
            self.sleep_until(time.monotonic() + 0.05, lambda _: self.bag.start_ns)
        if not ready():
            say(f"going on without {'the answering node' if self.answers else 'all subscribers'} "
                f"after {WAIT_FOR_GRAPH:.0f} s")
        self.publish_clock(self.bag.start_ns)
        self.sleep_until(time.monotonic() + self.args.settle, lambda _: self.bag.start_ns)

    # ----------------------------------------------------------------------- play
    def play(self) -> None:
        shift = 0
        wall_start = None
        timeline_start = None
        while True:
            first = last = None
            frame_logs = []
            messages = (with_log_time(m, shift) for m in self.bag.messages(self.plan))
            events = (frame_events(messages, is_colour_frame) if self.answers
                      else (("message", m) for m in messages))
            for kind, item in events:
                if kind == ANSWER:
                    self._wait_answer(item)
                    if self.done():
                        return
                    continue
                frame = is_colour_frame(item)
                if frame and self.done():  # what came with the last frame is out: stop
                    return
                if wall_start is None:
                    wall_start, timeline_start = time.monotonic(), item.log_ns
                if isinstance(self.rate, float) and self.rate > 0:
                    self._pace(item.log_ns, wall_start, timeline_start)
                self.publish_clock(item.log_ns)
                self.publishers[item.topic].publish(item.msg)
                self.messages += 1
                first = item.log_ns if first is None else first
                last = item.log_ns
                if frame:
                    frame_logs.append(item.log_ns)
                    self.frames += 1
            if not self.args.loop or first is None:
                return
            # the next pass's first frame one frame period after this pass's last, as if
            # the camera had gone on; never before this pass's last message
            gaps = [b - a for a, b in zip(frame_logs, frame_logs[1:])]
            period = max(int(statistics.median(gaps)) if gaps else DEFAULT_PERIOD_NS, 1)
            frames_span = frame_logs[-1] - frame_logs[0] if frame_logs else 0
            shift += max(frames_span + period, last - first + 1)

    def done(self) -> bool:
        return bool(self.args.count) and self.frames >= self.args.count

    def flush(self, timeout: float = 2.0) -> None:
        """Let reliable readers have the last messages repaired before the writers go."""
        from rclpy.duration import Duration

        if not self.args.best_effort:
            for pub in self.publishers.values():
                pub.wait_for_all_acked(Duration(seconds=timeout))

    def _pace(self, log_ns: int, wall_start: float, timeline_start: int) -> None:
        due = wall_start + (log_ns - timeline_start) / 1e9 / self.rate

        def log_ns_at(now: float) -> int:
            return timeline_start + int((now - wall_start) * self.rate * 1e9)

        self.sleep_until(due, log_ns_at)

    def _wait_answer(self, item) -> None:
        if not self.answers.wait(stamp_ns(item.msg), self.args.answer_timeout):
            self.unanswered += 1
            say(f"no answer on {self.answers.topic} within {self.args.answer_timeout:g} s for "
                f"{item.where()}: going on")


def play_bag(args, ros_args) -> int:
    """lapx-replay --bag: exit status 0, or 2 with one line saying what is wrong."""
    try:
        parse_rate(args.rate)
    except ValueError:
        say(f"--rate {args.rate!r}: a speed factor (1 = as recorded, 0 = as fast as possible) "
            f"or '{ANSWER}'")
        return 2
    try:
        bag = BagReader(args.bag)
    except BagError as exc:
        say(str(exc))
        return 2
    with bag:
        for note in bag.notes:
            say(note)
        if args.list:
            print(bag.describe())
            return 0
        try:
            plan, notes = choose_topics(bag, args.topic or [], args.type or [])
        except BagError as exc:
            say(str(exc))
            return 2
        if not args.quiet:
            for note in notes:
                say(note)
        return _play_with_ros(bag, plan, args, ros_args)


def _play_with_ros(bag: BagReader, plan: dict, args, ros_args) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rclpy.init(args=["lapx_replay", *ros_args])
    node = rclpy.create_node("lapx_replay")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True, name="lapx_replay_spin")
    spinner.start()
    status = 0
    started = time.monotonic()
    player = None
    try:
        player = Player(node, bag, plan, args)
        player.wait_for_node()
        started = time.monotonic()
        player.play()
        player.flush()
    except BagError as exc:
        say(str(exc))
        status = 2
    except KeyboardInterrupt:
        pass
    finally:
        elapsed = max(time.monotonic() - started, 1e-6)
        if player is not None and not args.quiet:
            unanswered = f", {player.unanswered} unanswered" if player.answers else ""
            say(f"sent {player.frames} frames ({player.messages} messages) from {bag.path} in "
                f"{elapsed:.1f} s ({player.frames / elapsed:.1f} frames/s{unanswered})")
        executor.shutdown()
        spinner.join(timeout=5.0)  # a thread still inside rclpy at exit aborts the process
        node.destroy_node()
        rclpy.try_shutdown()
    return status

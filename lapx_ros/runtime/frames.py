"""Frame bookkeeping that keeps wrong answers out: stamp checks, boxes matched to
frames by stamp, and the counters behind the node's diagnostics. No ROS here."""
from __future__ import annotations

import collections
import re
import threading
import time
from dataclasses import dataclass

import numpy as np

# Distinct drop reasons kept in the diagnostics table.
MAX_REASONS = 16


def reason_kind(reason: str) -> str:
    """A drop reason without its details (quoted values, numbers, anything after ':', ';'
    or '('): "image too large: 7680x4320 > ..." -> "image too large", so that drops are
    counted, and their warnings rate-limited, per kind of problem."""
    head = re.split(r"[:;(]", re.sub(r"'[^']*'|\"[^\"]*\"", "", reason), maxsplit=1)[0]
    return " ".join(re.sub(r"\d[\d.]*", "N", head).split())


class DropCounter:
    """What was dropped, counted by kind of reason (``reason_kind``): one warning and one
    diagnostics entry per kind. At most ``max_kinds`` kinds are kept, whatever a sender
    puts in its messages; the rest are counted as "other". Not thread-safe: the owner
    holds its own lock."""

    def __init__(self, max_kinds: int = MAX_REASONS):
        self.max_kinds = max_kinds
        self.kinds: collections.Counter = collections.Counter()

    def count(self, reason: str) -> str:
        """Count one drop; returns the kind it was counted under."""
        kind = reason_kind(reason)
        if kind not in self.kinds and len(self.kinds) >= self.max_kinds:
            kind = "other"
        self.kinds[kind] += 1
        return kind


class FrameGate:
    """Refuses frames whose stamps go backwards or lie far in the future.

    A burst of ``reset_after`` backwards frames in a row is taken as a clock reset
    (camera or bag restarted) and accepted; ``reset`` is then True for that frame so
    that the caller can forget its tracks. So is it after a gap longer than
    ``max_gap`` seconds (the camera stopped: old tracks mean nothing any more).
    """

    def __init__(self, reset_after: int = 5):
        self.reset_after = reset_after
        self._last = None
        self._backwards = 0

    def check(self, stamp: float, now: float, max_future: float, max_gap: float = float("inf")):
        """(reason or None, reset) for a frame stamped ``stamp`` seen at ``now``."""
        if max_future > 0 and stamp - now > max_future:
            return f"stamp {stamp - now:.3f} s in the future (clocks out of sync?)", False
        if self._last is not None and stamp - self._last > max_gap:
            self._last, self._backwards = stamp, 0
            return None, True
        if self._last is not None and stamp <= self._last:
            self._backwards += 1
            if self._backwards < self.reset_after:
                return f"stamp went backwards by {self._last - stamp:.3f} s", False
            self._last, self._backwards = stamp, 0
            return None, True
        self._last, self._backwards = stamp, 0
        return None, False

    def forget(self) -> None:
        self._last, self._backwards = None, 0


def nearest_by_stamp(items, stamp: float, tolerance: float):
    """The item (anything with a ``stamp``) stamped nearest to ``stamp``, within
    ``tolerance`` seconds; None when none is that close."""
    best = None
    for item in items:
        gap = abs(item.stamp - stamp)
        if gap <= tolerance and (best is None or gap < abs(best.stamp - stamp)):
            best = item
    return best


@dataclass
class _Stamped:
    stamp: float
    item: object
    used: bool = False


@dataclass
class _Missed:
    stamp: float
    tolerance: float
    gave_up: float  # time.monotonic() when the frame went on without its item


class StampBuffer:
    """Messages that belong to frames by stamp (person boxes from another node, depth
    images), kept until their frame is served; thread-safe.

    They come on callbacks of their own, before or after their frame. ``take`` hands a
    frame the item stamped nearest to it within a tolerance, waiting a bounded time for
    it. What is stored is up to the caller: a message decoded only once taken costs
    nothing when no frame takes it.

    ``capacity`` items are kept (at the sender's rate they must span the delay of the
    frame path); items older than ``max_age`` seconds before the frame being served
    leave, and an item stamped more than ``max_age`` behind the newest means the
    sender's clock restarted: the old timeline is forgotten. With ``skip_waits_when_silent``
    a frame does not wait after a wait ran out in vain until something comes again (the
    sender stopped: depth); without, every frame waits (the first boxes after a pause may
    come just behind their frame).

    Counters: ``unused``, items that left without being taken; ``late``, frames that
    went on without their item and whose item came afterwards.
    """

    def __init__(self, capacity: int = 10, max_age: float = 2.0, skip_waits_when_silent: bool = False):
        self.capacity = capacity
        self.max_age = max_age
        self.skip_waits_when_silent = skip_waits_when_silent
        self.unused = 0
        self.late = 0
        self.newest: float | None = None  # the newest stamp added
        self._items: collections.deque[_Stamped] = collections.deque()
        self._missed: collections.deque[_Missed] = collections.deque(maxlen=capacity)
        self._waited_in_vain = False
        self._cond = threading.Condition()

    def add(self, stamp: float, item) -> float | None:
        """Store ``item``. Returns, when it belongs to a frame that already went on without
        it, how many seconds after that frame gave up waiting it came; else None."""
        with self._cond:
            if self.newest is not None and stamp < self.newest - self.max_age:
                self._forget_all_but(stamp)
            self.newest = stamp if self.newest is None else max(stamp, self.newest)
            self._waited_in_vain = False
            self._items.append(_Stamped(stamp, item))
            while len(self._items) > self.capacity:
                self._evict()
            self._cond.notify_all()
            missed = next((m for m in self._missed if abs(m.stamp - stamp) <= m.tolerance), None)
            if missed is None:
                return None
            self._missed.remove(missed)
            self.late += 1
            return time.monotonic() - missed.gave_up

    def take(self, stamp: float, tolerance: float, wait: float = 0.0):
        """The item stamped nearest to ``stamp`` within ``tolerance`` seconds, waiting up
        to ``wait`` seconds for it; None when none came. The wait ends early once an item
        stamped past the tolerance came (items come in stamp order: this frame's is lost),
        and with ``skip_waits_when_silent`` is skipped while the sender seems stopped."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                found = nearest_by_stamp(self._items, stamp, tolerance)
                remaining = deadline - time.monotonic()
                newer_came = self.newest is not None and self.newest > stamp + tolerance
                if found is not None or remaining <= 0 or newer_came or self._waited_in_vain:
                    break
                self._cond.wait(remaining)
            while self._items and self._items[0].stamp < stamp - self.max_age:
                self._evict()
            if found is None:
                if wait > 0 and remaining <= 0 and not newer_came and self.skip_waits_when_silent:
                    self._waited_in_vain = True
                self._missed.append(_Missed(stamp, tolerance, time.monotonic()))
                return None
            found.used = True
            return found.item

    def restart(self, stamp: float) -> None:
        """The frames restarted at ``stamp`` (a camera or bag started again): forget the
        items of the old timeline, keeping those sent just before this frame."""
        with self._cond:
            self._forget_all_but(stamp)

    def _forget_all_but(self, stamp: float) -> None:
        kept = collections.deque()
        for item in self._items:
            if abs(item.stamp - stamp) <= self.max_age:
                kept.append(item)
            elif not item.used:
                self.unused += 1
        self._items = kept
        self._missed.clear()
        self.newest = max((item.stamp for item in kept), default=None)

    def _evict(self) -> None:
        if not self._items.popleft().used:
            self.unused += 1


class PipelineStats:
    """Counters and timings since the last report, for the diagnostics message."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total_received = 0
        self.total_processed = 0
        self.total_stale = 0
        self.total_invalid = 0
        self.total_errors = 0
        self.total_boxes_invalid = 0
        self.invalid_reasons = DropCounter()
        self.last_error = ""
        self.last_frame_time = None
        self._window_start = time.monotonic()
        self._received = 0
        self._processed = 0
        self._latencies: list[float] = []
        self._compute: list[float] = []
        self._people = 0

    def received(self) -> None:
        with self.lock:
            self.total_received += 1
            self._received += 1
            self.last_frame_time = time.monotonic()

    def stale(self) -> None:
        with self.lock:
            self.total_stale += 1

    def invalid(self, reason: str) -> str:
        """Count a dropped frame; returns the kind it was counted under."""
        with self.lock:
            self.total_invalid += 1
            return self.invalid_reasons.count(reason)

    def invalid_boxes(self, count: int) -> None:
        with self.lock:
            self.total_boxes_invalid += count

    def error(self, message: str) -> None:
        with self.lock:
            self.total_errors += 1
            self.last_error = message

    def processed(self, latency: float, compute: float, people: int) -> None:
        with self.lock:
            self.total_processed += 1
            self._processed += 1
            self._latencies.append(latency)
            self._compute.append(compute)
            self._people = people
            self.last_error = ""

    def report(self) -> dict:
        """Rates and percentiles since the previous report; resets the window."""
        with self.lock:
            now = time.monotonic()
            span = max(now - self._window_start, 1e-6)
            lat = np.asarray(self._latencies) * 1000.0
            comp = np.asarray(self._compute) * 1000.0
            out = {
                "input_rate_hz": self._received / span,
                "processing_rate_hz": self._processed / span,
                "latency_ms_p50": float(np.median(lat)) if lat.size else float("nan"),
                "latency_ms_max": float(lat.max()) if lat.size else float("nan"),
                "compute_ms_p50": float(np.median(comp)) if comp.size else float("nan"),
                "people": self._people,
                "frames_received": self.total_received,
                "frames_processed": self.total_processed,
                "dropped_stale": self.total_stale,
                "dropped_invalid": self.total_invalid,
                "inference_errors": self.total_errors,
                "last_error": self.last_error,
                "since_last_frame_s": (now - self.last_frame_time) if self.last_frame_time else None,
                "invalid_reasons": dict(self.invalid_reasons.kinds),
            }
            self._window_start = now
            self._received = self._processed = 0
            self._latencies, self._compute = [], []
            return out


class SequenceGaps:
    """Frames a publisher sent that never arrived, from its sequence numbers.

    Each publisher numbers its messages 1, 2, 3, ...; a jump from n to n + k means k - 1
    messages were lost on the way (transport, or replaced in the middleware's queue
    before they were taken). Numbers going back mean the publisher restarted. Numbers
    of several publishers interleave, so the caller counts only while there is one.
    """

    def __init__(self):
        self.lost = 0
        self._last: int | None = None

    def add(self, sequence_number: int) -> int:
        """Count ``sequence_number``; returns how many were skipped before it."""
        skipped = 0
        if self._last is not None and sequence_number > self._last + 1:
            skipped = sequence_number - self._last - 1
            self.lost += skipped
        self._last = sequence_number
        return skipped

    def forget(self) -> None:
        """A new subscription or another publisher: the next number starts afresh."""
        self._last = None


class _WorkerThread:
    """A thread that runs ``process`` on the items handed to it; an exception in one item
    is counted and reported but never stops the thread. What waits is the subclass's
    choice (``put``)."""

    thread_name = "lapx_worker"

    def __init__(self, process, on_error, stats: PipelineStats, name: str | None = None):
        self._process = process
        self._on_error = on_error
        self._stats = stats
        self._name = name or self.thread_name
        self._waiting: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            self._stop = False
            self._waiting.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def has_waiting(self) -> bool:
        """Whether an item waits for the thread."""
        with self._cond:
            return bool(self._waiting)

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread after the item in hand; the waiting ones are dropped."""
        with self._cond:
            self._stop = True
            self._waiting.clear()
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item = self._waiting.popleft()
            try:
                self._process(item)
            except Exception as exc:  # never let one item stop the thread
                self._stats.error(f"{type(exc).__name__}: {exc}")
                self._on_error(exc)


class NewestFrameWorker(_WorkerThread):
    """A thread that works on the newest frame only: a frame replaced before the thread
    took it is counted stale, so no queue can build up behind a slow model."""

    thread_name = "lapx_pose_worker"

    def put(self, item) -> None:
        self._stats.received()
        with self._cond:
            if self._waiting:
                self._stats.stale()
                self._waiting.clear()
            self._waiting.append(item)
            self._cond.notify()


class InOrderWorker(_WorkerThread):
    """A thread that works on every item, in the order given: frames whose poses are
    known wait here for their depth image while the pose worker goes on with the next
    frame. Each item's own wait is bounded, so the queue is too."""

    thread_name = "lapx_pose_depth"

    def put(self, item) -> None:
        with self._cond:
            self._waiting.append(item)
            self._cond.notify()


class DuplicateFilter:
    """Recognises a frame seen a moment ago: while the node hands its input over from one
    subscription to another (a new QoS), both deliver the same frames for a moment."""

    def __init__(self, size: int = 16):
        self._recent: collections.deque = collections.deque(maxlen=size)

    def seen(self, key) -> bool:
        """True when ``key`` (e.g. the publisher's sequence number and the stamp) came
        among the last ``size`` frames; otherwise remembers it."""
        if key in self._recent:
            return True
        self._recent.append(key)
        return False

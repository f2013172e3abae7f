"""The benchmarks' harness, without ROS or a model: statistics, other work paused while
a measurement runs (and windows that other processes disturbed measured again), a busy
CPU made on purpose, the CPU each process used, machine facts and memory of a process, the node's profile by stage,
and sections of benchmarks/RESULTS.md written in place.
"""
from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------- statistics
def percentiles(values, qs=(50, 95)) -> dict:
    """{"p50": ..., "p95": ...} of ``values`` (NaN when empty)."""
    arr = np.asarray(list(values), np.float64)
    return {f"p{q}": (float(np.percentile(arr, q)) if arr.size else float("nan")) for q in qs}


def summarize_repeats(values) -> dict:
    """Median over repeats and the spread (min, max) of the repeats' values."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if not arr.size:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "repeats": 0}
    return {"median": float(np.median(arr)), "min": float(arr.min()), "max": float(arr.max()),
            "repeats": int(arr.size)}


def window_stats(published_stamps, received, start: float, end: float) -> dict:
    """End-to-end figures of one measuring window.

    ``published_stamps``: stamps of the frames sent, integer ns; ``received``: (stamp,
    receive time) pairs of the /human_pose messages, integer ns of the same clock. Integers
    because a pose is found by its frame's exact stamp, which float seconds cannot hold.
    Only frames stamped within [start, end) seconds count. fps = poses received / window
    length; latency = receive - stamp; dropped = frames sent whose pose never came.
    """
    sent = {s for s in published_stamps if start <= s * 1e-9 < end}
    got = {}
    for stamp, recv in received:
        if stamp in sent and stamp not in got:
            got[stamp] = (recv - stamp) * 1e-9
    lat = np.asarray(list(got.values())) * 1000.0
    span = max(end - start, 1e-9)
    out = {"fps": len(got) / span, "sent": len(sent), "received": len(got),
           "dropped": len(sent) - len(got)}
    out.update({f"latency_ms_{k}": v for k, v in percentiles(lat).items()})
    return out


# --------------------------------------------------------------------- a busy CPU
@contextlib.contextmanager
def busy_cpu(processes: int):
    """``processes`` Python processes spinning at normal priority while the block runs:
    the CPU of a robot busy with other work, beside the node measured or tested.
    Yields their pids."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield [spinner.pid for spinner in spinners]
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


# ---------------------------------------------------------- pausing other processes
def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
        return int(text.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def find_pids(pattern: str, exclude=()) -> list[int]:
    """Processes whose command line matches the regex ``pattern`` (never this process or
    its ancestors, nor ``exclude``)."""
    regex = re.compile(pattern)
    skip = set(exclude)
    pid = os.getpid()
    while pid and pid not in skip:  # self and ancestors (the shell running us)
        skip.add(pid)
        pid = _parent(pid) or 0
    return sorted(p for p in all_pids() if p not in skip and regex.search(_cmdline(p)))


def with_descendants(pids) -> list[int]:
    """``pids`` and all their descendant processes (data-loader workers and the like)."""
    parents = {p: _parent(p) for p in all_pids()}
    found = set(pids)
    changed = True
    while changed:
        changed = False
        for p, pp in parents.items():
            if pp in found and p not in found:
                found.add(p)
                changed = True
    return sorted(found)


class Pauser:
    """Stops other processes (SIGSTOP) only while a measurement runs and always resumes
    them (SIGCONT): on leaving the ``with`` block, at exit, on SIGINT/SIGTERM/SIGHUP,
    and — through a small watchdog process — even if this process is killed outright.

        pauser = Pauser(pattern="lapx_ros.train")   # or pids=[1234]
        with pauser.paused():
            measure()
    """

    def __init__(self, pids=(), pattern: str | None = None, log=print, max_pause: float = 900.0):
        self.fixed_pids = list(pids)
        self.pattern = pattern
        self.log = log
        self.max_pause = max_pause  # the watchdog resumes after this long in any case
        self.stopped: list[int] = []
        self.total_paused = 0.0
        self._since = None
        self._watchdog = None
        self._installed = False

    @property
    def enabled(self) -> bool:
        return bool(self.fixed_pids or self.pattern)

    def _targets(self) -> list[int]:
        pids = [p for p in self.fixed_pids if os.path.exists(f"/proc/{p}")]
        if self.pattern:
            pids += find_pids(self.pattern)
        return with_descendants(sorted(set(pids))) if pids else []

    def _install_handlers(self) -> None:
        if self._installed:
            return
        import atexit

        atexit.register(self.resume)

        def handler(signum, frame):
            self.resume()
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, handler)
        self._installed = True

    def pause(self) -> None:
        if not self.enabled or self.stopped:
            return
        self._install_handlers()
        targets = self._targets()
        if not targets:
            self.log("pause: no process to pause")
            return
        # The watchdog resumes the targets when this process dies or after max_pause s.
        pid_list = " ".join(map(str, targets))
        script = (f"for i in $(seq {int(self.max_pause)}); do kill -0 {os.getpid()} 2>/dev/null || break; "
                  f"[ -e /proc/{os.getpid()} ] || break; sleep 1; done; kill -CONT {pid_list} 2>/dev/null")
        self._watchdog = subprocess.Popen(["sh", "-c", script], start_new_session=True,
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        for p in targets:
            try:
                os.kill(p, signal.SIGSTOP)
                self.stopped.append(p)
            except ProcessLookupError:
                pass
        self._since = time.monotonic()
        self.log(f"paused {self.stopped}")

    def resume(self) -> None:
        for p in self.stopped:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        if self.stopped:
            self.log(f"resumed {self.stopped}")
        self.stopped = []
        if self._since is not None:
            self.total_paused += time.monotonic() - self._since
            self._since = None
        if self._watchdog is not None:
            try:
                self._watchdog.kill()
                self._watchdog.wait(timeout=2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            self._watchdog = None

    class _Paused:
        def __init__(self, owner):
            self.owner = owner

        def __enter__(self):
            self.owner.pause()

        def __exit__(self, *exc):
            self.owner.resume()

    def paused(self):
        return Pauser._Paused(self)


def niceness(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[16])
    except (OSError, ValueError, IndexError):
        return None


class NicedPauser(Pauser):
    """A Pauser that also stops every Python process running at niceness >= ``min_nice``
    (the low-priority jobs of a shared machine) that is neither this process, its
    ancestors nor a test run (a stopped test could time out)."""

    def __init__(self, *args, min_nice: int = 10, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_nice = min_nice

    @property
    def enabled(self) -> bool:
        return True

    def _targets(self) -> list[int]:
        candidates = {p: (niceness(p), _cmdline(p)) for p in find_pids(r"python")}
        niced = low_priority_jobs(candidates, self.min_nice)
        mine = set(with_descendants([os.getpid()]))
        return sorted(set(super()._targets()) | (set(with_descendants(niced)) - mine))


def low_priority_jobs(candidates: dict, min_nice: int = 10) -> list[int]:
    """Of {pid: (niceness, command line)}: the processes at ``min_nice`` or lower priority
    that are not test runs."""
    return sorted(p for p, (nice, cmd) in candidates.items()
                  if nice is not None and nice >= min_nice and "pytest" not in cmd)


# ------------------------------------------------------------------------- CPU use
def cpu_seconds() -> dict[int, float]:
    """CPU time (user + system, all threads) of every process, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return out


def cpu_use(before: dict, after: dict, wall: float, groups: dict) -> dict:
    """Cores used during ``wall`` seconds per group of pids ({name: pids}); every process
    in no group is counted as "other processes" (work on the machine the benchmark did
    not start: it disturbs the measurement)."""
    grouped = {p for pids in groups.values() for p in pids}
    wall = max(wall, 1e-9)

    def used(pids):
        return sum(max(0.0, after.get(p, 0.0) - before.get(p, after.get(p, 0.0))) for p in pids) / wall

    out = {name: round(used(pids), 3) for name, pids in groups.items()}
    out["other processes"] = round(used([p for p in after if p not in grouped]), 3)
    return out


def system_cpu_seconds() -> tuple[float, float, float]:
    """(busy, busy at low priority, steal) CPU seconds of the whole machine since boot,
    from /proc/stat: busy = user + nice + system + irq + softirq (guest time is inside
    user); "nice" is the user time of processes with niceness > 0."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq) / tick, nice / tick, steal / tick


def usage_snapshot() -> dict:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.monotonic(), "procs": cpu_seconds(), "system": system_cpu_seconds(),
            "children": children.ru_utime + children.ru_stime}


def split_cores(system_busy: float, niced: float, steal: float, groups: dict, children: float,
                wall: float) -> dict:
    """Cores used during a window of ``wall`` s: each group's CPU seconds, ``children``
    (processes this one started and reaped meanwhile, e.g. the camera), and everything
    else the machine did: "other processes" (the whole machine's busy time minus those,
    so work that started and ended inside the window counts too), of which "other,
    niced" ran at low priority (niceness > 0: it mostly takes what the measured processes
    leave idle) and "other, normal priority" competed with them; steal = time the
    hypervisor gave to other machines. (This process and its children are assumed to
    run at niceness 0.)"""
    wall = max(wall, 1e-9)
    out = {name: round(v / wall, 3) for name, v in groups.items()}
    out["reaped children"] = round(children / wall, 3)
    other = max(0.0, system_busy - sum(groups.values()) - children)
    out["other processes"] = round(other / wall, 3)
    out["other, niced"] = round(min(niced, other) / wall, 3)
    out["other, normal priority"] = round(max(0.0, other - niced) / wall, 3)
    out["steal"] = round(steal / wall, 3)
    return out


def window_cores(before: dict, after: dict, groups: dict) -> dict:
    """``split_cores`` between two ``usage_snapshot``s; ``groups`` = {name: [pids]}."""
    def used(pids):
        return sum(max(0.0, after["procs"].get(p, 0.0) - before["procs"].get(p, after["procs"].get(p, 0.0)))
                   for p in pids)

    delta = [a - b for a, b in zip(after["system"], before["system"])]
    return split_cores(delta[0], delta[1], delta[2], {name: used(pids) for name, pids in groups.items()},
                       after["children"] - before["children"], after["t"] - before["t"])



def wait_for_quiet(pauser, limit: float, max_wait: float, sample: float = 3.0, poll: float = 15.0,
                   log=print) -> float:
    """Wait (at most ``max_wait`` s) until, with the pause pattern's processes stopped, the
    rest of the machine uses at most ``limit`` cores over ``sample`` s (another
    benchmark running beside this one would spoil both). Returns the seconds waited."""
    started = time.monotonic()
    while True:
        with pauser.paused():
            before = usage_snapshot()
            time.sleep(sample)
            others = window_cores(before, usage_snapshot(), {"benchmark": [os.getpid()]})["other, normal priority"]
        waited = time.monotonic() - started
        if others <= limit or waited >= max_wait:
            return waited
        log(f"the machine is busy ({others:.2f} cores of other work): waiting ({waited:.0f} s so far)")
        time.sleep(poll)


def quietest(measure, other_cores, limit: float, retries: int, wait: float = 20.0, log=print,
             before_each=None):
    """``measure()`` again (up to ``retries`` more times, ``wait`` s apart) while the
    processes it did not start used more than ``limit`` cores; the quietest result, with
    how many attempts it took. ``before_each()`` runs before every attempt (e.g.
    ``wait_for_quiet``)."""
    best, attempts = None, 0
    for attempt in range(retries + 1):
        if before_each is not None:
            before_each()
        result = measure()
        attempts += 1
        busy = other_cores(result)
        if best is None or busy < other_cores(best):
            best = result
        if busy <= limit:
            break
        if attempt < retries:
            log(f"other processes used {busy:.2f} cores (> {limit:g}): measuring again in {wait:g} s")
            time.sleep(wait)
    best["attempts"] = attempts
    best["busy"] = other_cores(best) > limit
    return best


# ----------------------------------------------------------------- machine, memory
def _status_mb(pid: int, field: str) -> float | None:
    """A memory line of /proc/<pid>/status (``VmHWM:``, ``VmRSS:``) in MiB; None once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set) of a live process in MiB."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int) -> float | None:
    """VmRSS (resident set now) of a live process in MiB: sampled over time, it shows
    whether memory keeps growing, which the peak alone cannot."""
    return _status_mb(pid, "VmRSS:")


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0]}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
        flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
        info["cpu_model"] = model.group(1).strip() if model else platform.processor()
        wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
        have = set(flags.group(1).split()) if flags else set()
        info["cpu_flags"] = [f for f in wanted if f in have]
        info["hypervisor"] = "hypervisor" in have
    except OSError:
        pass
    # an instruction-set cap for oneDNN (OpenVINO's CPU plugin, PyTorch): an AVX-512 machine
    # measuring the AVX2 path
    info["isa_cap"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    if os.environ.get("ATEN_CPU_CAPABILITY"):
        info["aten_cpu_capability"] = os.environ["ATEN_CPU_CAPABILITY"]
    try:
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1])
        info["memory_gb"] = round(total / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def git_commit(repo) -> str:
    """Short commit of ``repo``'s HEAD, with "+changes" when the tree differs from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def package_versions(names) -> dict:
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def cpu_class(flags, isa_cap: str = "") -> str:
    """The kind of CPU the figures belong to, by the instruction sets the engines use.
    ``isa_cap``: ONEDNN_MAX_CPU_ISA of the run. It caps oneDNN's primitives only (in
    OpenVINO and PyTorch), not OpenVINO's own JIT kernels, ONNX Runtime or MediaPipe: such a
    run is labelled apart, never taken for an AVX2 machine's."""
    flags = set(flags)
    if isa_cap.upper() == "AVX2" and "avx512f" in flags:
        return "AVX-512 CPU with oneDNN capped to AVX2 (partly AVX-512 still)"
    if {"avx512_bf16", "amx_bf16"} & flags:
        return "AVX-512 with bf16/AMX"
    if "avx512f" in flags:
        return "AVX-512 (no bf16)"
    if "avx2" in flags:
        return "AVX2 only (no AVX-512)"
    return "no AVX2"


def section_slug(kind: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in kind.lower()).strip("_")



# ------------------------------------------------------------------ node profile
# Innermost matching frame decides the category of a sample (first match from the leaf).
CATEGORIES = (
    ("inference", ("_run (lapx_ros/runtime/engine.py", "_run (engine.py")),
    ("inference output check (isfinite)", ("infer (lapx_ros/runtime/engine.py", "infer (engine.py")),
    ("crop + normalise", ("__call__ (lapx_ros/geometry.py", "warp_crop (", "crop_transform (")),
    ("decode (heatmaps -> keypoints)", ("heatmaps.py", "geometry.py")),
    ("image conversion (msg -> BGR)", ("image_to_bgr", "compressed_to_bgr")),
    ("annotated image", ("drawing.py", "to_image_msg")),
    ("markers", ("markers.py",)),
    ("pose message build", ("pose_array_msg",)),
    ("publish", ("publish (rclpy",)),
    ("tracking + smoothing", ("tracking.py", "smoothing.py")),
    ("boxes wait/match", ("take (lapx_ros/runtime/frames.py", "take (frames.py")),
    ("depth", ("depth.py", "camera.py")),
    ("pipeline bookkeeping", ("estimator.py", "pipeline.py", "modes.py")),
)


def categorize(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, keys in CATEGORIES:
            if any(k in frame for k in keys):
                return name
    return "other"


def summarize_profile(text: str, rate: int, frames: int, seconds: float) -> dict:
    """py-spy raw (collapsed) stacks -> per-frame ms per category of the worker thread,
    and what the main (executor) thread spends."""
    worker, main, other = Counter(), Counter(), Counter()
    for line in text.splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        stack = stack_text.split(";")
        n = int(count)
        names = [f.split(" (")[0] for f in stack]
        if any("_run (" in f and "frames.py" in f for f in stack):  # NewestFrameWorker's thread
            worker["idle (waiting for a frame)" if "_process" not in " ".join(names)
                   else categorize(stack)] += n
        elif any("spin" in f for f in names):
            if any("_on_frame" in f for f in names):
                main["frame callback (mailbox)"] += n
            elif any("take" in f for f in names):
                main["take + deserialise message"] += n
            elif any("wait" in f for f in names[-2:]):
                main["idle"] += n
            else:
                main["executor other"] += n
        else:
            other[names[-1] if names else "?"] += n
    frames = max(frames, 1)
    idle = worker.pop("idle (waiting for a frame)", 0)
    per_frame = {k: v / rate / frames * 1000.0 for k, v in worker.most_common()}
    main.pop("idle", None)
    return {"frames": frames, "seconds": seconds, "sample_rate_hz": rate,
            "fps_while_profiled": frames / seconds,
            "worker_ms_per_frame": per_frame,
            "worker_busy_ms_per_frame": sum(per_frame.values()),
            "worker_idle_fraction": idle / max(1, idle + sum(worker.values())),
            "main_thread_ms_per_frame": {k: v / rate / frames * 1000.0 for k, v in main.most_common()},
            "other_threads_samples": dict(other.most_common(5))}


# ------------------------------------------------------------------- command lines
def parse_overrides(values) -> list[str]:
    """``name:=value`` or ``name=value`` -> ``name:=value`` (the ROS ``-p`` form)."""
    out = []
    for text in values:
        if ":=" in text:
            name, value = text.split(":=", 1)
        elif "=" in text:
            name, value = text.split("=", 1)
        else:
            raise ValueError(f"parameter override {text!r}: expected name:=value or name=value")
        name = name.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            raise ValueError(f"parameter override {text!r}: bad parameter name {name!r}")
        out.append(f"{name}:={value.strip()}")
    return out


def override_names(overrides) -> list[str]:
    return [o.split(":=", 1)[0] for o in overrides]


def relative_text(text: str) -> str:
    """Machine paths out of a command line: the repository becomes ``.``, home ``~``."""
    text = text.replace(str(REPO) + os.sep, "").replace(str(REPO), ".")
    home = str(Path.home())
    return text.replace(home, "~")



# ------------------------------------------------------------- RESULTS.md sections
SECTION_BEGIN = "<!-- section: {} (written by {}) -->"
SECTION_END = "<!-- end of section: {} -->"
_SECTION_RE = re.compile(r"<!-- section: (.+?) \(written by .+?\) -->.*?<!-- end of section: \1 -->",
                         re.DOTALL)


def write_section(path, name: str, writer: str, body: str) -> None:
    """Put ``body`` into the Markdown file ``path`` as the section ``name``, replacing an
    earlier version of it or appending it; the rest of the file stays as it is, so
    several benchmark scripts can share one results file."""
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    block = f"{SECTION_BEGIN.format(name, writer)}\n{body.rstrip()}\n{SECTION_END.format(name)}"
    pattern = re.compile(r"<!-- section: " + re.escape(name) + r" \(written by .+?\) -->.*?"
                         + re.escape(SECTION_END.format(name)), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)


def marked_sections(path) -> str:
    """The sections other scripts wrote into ``path`` (write_section), to keep them when
    the file's own writer renews the rest."""
    path = Path(path)
    if not path.exists():
        return ""
    found = [m.group(0) for m in _SECTION_RE.finditer(path.read_text())]
    return "".join(f"\n{block}\n" for block in found)

"""Helpers of the speed and reliability benchmarks (benchmarks/run.py, reliability.py)
that need neither ROS nor a model: frame composition from LSPET images, statistics,
pausing other processes while measuring, machine facts and memory of a process.
"""
from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_W, FRAME_H = 640, 480


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


# ---------------------------------------------------------------- frame compositor
@dataclass
class Composition:
    """A 640x480 BGR frame and the person boxes (x0, y0, x1, y1, OpenCV pixels) in it."""

    frame: np.ndarray
    boxes: np.ndarray
    sources: tuple


def paste_fit(canvas: np.ndarray, image: np.ndarray, slot, joints=None):
    """Scale ``image`` to fit ``slot`` = (x, y, w, h) of ``canvas`` keeping its aspect,
    centred; returns the joints (K, 2+) mapped into canvas pixels (or None)."""
    import cv2

    x, y, w, h = slot
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, int(round(iw * scale))), max(1, int(round(ih * scale)))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = x + (w - nw) // 2, y + (h - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = resized
    if joints is None:
        return None
    mapped = np.array(joints, np.float64, copy=True)
    # pixel centres: (u + 0.5) scales with the image
    mapped[:, 0] = (mapped[:, 0] + 0.5) * (nw / iw) - 0.5 + ox
    mapped[:, 1] = (mapped[:, 1] + 0.5) * (nh / ih) - 0.5 + oy
    return mapped


def person_box(joints, margin: float = 0.15, limits=(FRAME_W, FRAME_H)) -> np.ndarray:
    """Box around the labelled joints (x, y[, visible]) widened by ``margin`` of its size
    on each side, as a person detector would return it; clipped to the frame."""
    pts = np.asarray(joints, np.float64)[:, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return np.array([max(0.0, x0 - mx), max(0.0, y0 - my),
                     min(limits[0], x1 + mx), min(limits[1], y1 + my)])


def place_person(canvas: np.ndarray, image: np.ndarray, joints, slot, fill: float = 0.75):
    """Warp ``image`` into ``slot`` = (x, y, w, h) of ``canvas`` so that its labelled person
    is centred and about ``fill`` of the slot high (or wide); returns the mapped joints."""
    import cv2

    x, y, w, h = slot
    pts = np.asarray(joints, np.float64)
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    size = np.maximum(hi - lo, 1.0)
    scale = fill * min(w / size[0], h / size[1])
    centre = (lo + hi) / 2
    matrix = np.array([[scale, 0.0, w / 2 - scale * centre[0]], [0.0, scale, h / 2 - scale * centre[1]]])
    region = canvas[y:y + h, x:x + w]
    cv2.warpAffine(image, matrix, (w, h), dst=region, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)
    mapped = pts.copy()
    mapped[:, 0] = pts[:, 0] * scale + matrix[0, 2] + x
    mapped[:, 1] = pts[:, 1] * scale + matrix[1, 2] + y
    return mapped


def compose(images, joints, persons: int, background: int = 96) -> Composition:
    """One 640x480 frame: a single image fills the frame keeping its aspect (the scene as
    photographed); several people are placed side by side, each centred in a slot of its
    own and about 3/4 of its height. Boxes come from each image's labelled joints."""
    if len(images) != persons or len(joints) != persons:
        raise ValueError(f"need {persons} images and joint sets, got {len(images)} and {len(joints)}")
    canvas = np.full((FRAME_H, FRAME_W, 3), background, np.uint8)
    width = FRAME_W // persons
    boxes = []
    for i, (image, pts) in enumerate(zip(images, joints)):
        slot_w = width if i < persons - 1 else FRAME_W - width * (persons - 1)
        slot = (i * width, 0, slot_w, FRAME_H)
        mapped = paste_fit(canvas, image, slot, pts) if persons == 1 else place_person(canvas, image, pts, slot)
        boxes.append(person_box(mapped))
    return Composition(canvas, np.asarray(boxes, np.float64).reshape(-1, 4), ())


def load_lspet_joints(joints_file) -> np.ndarray:
    """LSPET joints as (N, 14, 3) = x, y, visible."""
    import scipy.io

    raw = scipy.io.loadmat(str(joints_file))["joints"]
    if raw.shape[:2] == (14, 3):
        return np.ascontiguousarray(raw.transpose(2, 0, 1), np.float64)
    raise ValueError(f"{joints_file}: unexpected joints shape {raw.shape}")


def pick_images(joints: np.ndarray, images_dir, first: int, count: int, min_side: int = 150) -> list[int]:
    """1-based indices from ``first`` on whose 14 joints are all labelled visible and whose
    image is at least ``min_side`` px on its short side (people large enough to matter)."""
    import cv2

    chosen = []
    index = first
    while len(chosen) < count and index <= len(joints):
        path = Path(images_dir) / f"im{index:05d}.jpg"
        if path.is_file() and (joints[index - 1, :, 2] > 0).all():
            image = cv2.imread(str(path))
            if image is not None and min(image.shape[:2]) >= min_side:
                chosen.append(index)
        index += 1
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} usable images from im{first:05d} on in {images_dir}")
    return chosen


def build_scenes(images_dir, joints_file, count: int = 8, first: int = 9001) -> dict:
    """Frames for the two scenarios from LSPET validation images.

    Returns {"1_person": [Composition...], "3_persons": [Composition...]}, ``count``
    frames each; the 3-person frames use three different images side by side.
    """
    import cv2

    joints = load_lspet_joints(joints_file)
    indices = pick_images(joints, images_dir, first, 4 * count)
    load = {i: cv2.imread(str(Path(images_dir) / f"im{i:05d}.jpg")) for i in indices}
    one = []
    for i in indices[:count]:
        comp = compose([load[i]], [joints[i - 1]], 1)
        comp.sources = (i,)
        one.append(comp)
    three = []
    rest = indices[count:]
    for k in range(count):
        trio = rest[3 * k:3 * k + 3]
        comp = compose([load[i] for i in trio], [joints[i - 1] for i in trio], 3)
        comp.sources = tuple(trio)
        three.append(comp)
    return {"1_person": one, "3_persons": three}


def save_scenes(scenes: dict, path) -> None:
    arrays = {}
    for name, comps in scenes.items():
        arrays[f"{name}/frames"] = np.stack([c.frame for c in comps])
        arrays[f"{name}/boxes"] = np.stack([c.boxes for c in comps]) if comps[0].boxes.size else np.zeros(0)
        arrays[f"{name}/sources"] = np.asarray([list(c.sources) for c in comps])
    np.savez(path, **arrays)


def load_scenes(path) -> dict:
    """{scenario: (frames (F, 480, 640, 3), boxes (F, P, 4), sources (F, P))}."""
    data = np.load(path)
    names = sorted({k.split("/")[0] for k in data.files})
    return {n: (data[f"{n}/frames"], data[f"{n}/boxes"], data[f"{n}/sources"]) for n in names}


def sequence_index(frame_number: int, scenes_count: int, hold: int) -> int:
    """Which composition frame ``frame_number`` shows: each is held for ``hold`` frames,
    as a person in a video stays put between frames, then the next one comes."""
    return (frame_number // max(1, hold)) % scenes_count


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

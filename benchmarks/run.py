"""Speed benchmark of the pose node: model alone per backend, the node end to end over
DDS, peak memory, MediaPipe Pose "full" and PyTorch eager on the same frames, and a
profile of the node under load. Writes benchmarks/results.json and benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.run            # about 8-10 minutes

Frames: LSPET validation images scaled into 640x480 frames (one person filling the
frame; three people side by side with their boxes supplied on the node's boxes topic),
each held for --hold frames, published at 30 Hz as raw bgr8 Images.

Every measurement is repeated (--repeats) and reported as the median with its spread.
On a machine shared with other work, --pause-pattern REGEX (or --pause-pids) stops the
matching processes with SIGSTOP only while a measurement runs and resumes them with
SIGCONT afterwards, also on errors and interrupts.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lapx_ros.testing import harness, scenes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lspet"
# scenario -> frames of scenes.build_scenes, stream rate, the node's mode and extra
# parameters. "followed": the person is kept whatever its confidence (one crop per frame).
SCENARIOS = {
    "1_person": {"frames": "1_person", "rate_hz": 30, "mode": "single", "params": {}},
    "1_person_followed": {"frames": "1_person", "rate_hz": 30, "mode": "single",
                          "params": {"person_threshold": 0.0}, "default_backend_only": True},
    "1_person_60hz_followed": {"frames": "1_person", "rate_hz": 60, "mode": "single",
                               "params": {"person_threshold": 0.0}, "default_backend_only": True},
    "3_persons": {"frames": "3_persons", "rate_hz": 30, "mode": "boxes", "params": {}},
}
# setting -> node parameters (threads: --threads unless given). Rows are named by the
# setting and show what the engine reported it ran (precision, threads): "openvino" is the
# node's default (precision auto = bf16 where the CPU has it, else f32).
E2E_BACKENDS = {
    "onnxruntime": {"backend": "onnxruntime", "precision": "auto"},
    "openvino": {"backend": "openvino", "precision": "auto"},
    "openvino_f32": {"backend": "openvino", "precision": "f32"},
    # the default backend with one inference thread: leaves a core to DDS and the executor
    "openvino_1thread": {"backend": "openvino", "precision": "auto", "threads": 1},
    # every whole-frame search in full even when frames wait (the behaviour before
    # search_passes_when_busy): what yielding to the stream gives
    "openvino_full_search": {"backend": "openvino", "precision": "auto", "search_passes_when_busy": 3},
}
SETTING_SCENARIOS = {"openvino_full_search": ("1_person",)}  # settings that matter in some only
DEFAULT_BACKEND = "openvino"


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# --------------------------------------------------------------------- processes
class Proc:
    """A child process whose output lines are collected; commands go to its stdin."""

    def __init__(self, argv, name: str, env=None):
        self.name = name
        self.lines: queue.Queue[str] = queue.Queue()
        self.all_lines: list[str] = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                                     cwd=str(REPO), start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no line starting {prefix!r} within {timeout} s; "
                                   f"output:\n" + "\n".join(self.all_lines[-30:]))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.name} ended (code {self.proc.wait()}); output:\n"
                                   + "\n".join(self.all_lines[-30:]))
            if line.startswith(prefix):
                return line

    def wait_output(self, text: str, timeout: float) -> None:
        """Until any output line so far or later contains ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.all_lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {text!r} not seen; output:\n" + "\n".join(self.all_lines[-30:]))
            time.sleep(0.1)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def call(self, line: str, timeout: float) -> dict:
        self.send(line)
        result = json.loads(self.expect("RESULT ", timeout)[len("RESULT "):])
        if "error" in result:
            raise RuntimeError(f"{self.name}: {line}: {result['error']}")
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, 8.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=wait)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue


def ros_env(domain: int) -> dict:
    env = dict(os.environ)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env.update({"PYTHONUNBUFFERED": "1", "ROS_DOMAIN_ID": str(domain),
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                "FASTRTPS_DEFAULT_PROFILES_FILE": str(REPO / "config" / "fastdds_shm.xml"),
                "PYTHONPATH": os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])})
    return env


# ------------------------------------------------------------------------- model
def newest_checkpoint() -> Path | None:
    found = sorted((REPO / "training").glob("**/last.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def shown(path: Path) -> str:
    """A path for the results: relative to the repository, else the file name only."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return path.name


def resolve_model(args) -> dict:
    """The ONNX model to measure, and a checkpoint of the same network for PyTorch eager."""
    checkpoint = Path(args.checkpoint) if args.checkpoint else newest_checkpoint()
    if args.model:
        model, origin = Path(args.model), "given"
    else:
        shipped = sorted((REPO / "models").glob("*.onnx"))
        preferred = [m for m in shipped if "default" in m.name]
        if shipped:
            model, origin = (preferred or shipped)[0], "shipped (models/)"
        elif checkpoint is not None:
            cache = HERE / ".cache"
            cache.mkdir(exist_ok=True)
            model = cache / "bench_model.onnx"
            origin = f"exported from {shown(checkpoint)} (no model in models/)"
            if not model.is_file() or model.stat().st_mtime < checkpoint.stat().st_mtime:
                log(f"exporting {checkpoint} -> {model}")
                subprocess.run([sys.executable, "-m", "lapx_ros.export", str(checkpoint), str(model),
                                "--lsp-images", str(args.data / "images"),
                                "--lsp-joints", str(args.data / "joints.mat"), "--crops", "4"],
                               cwd=REPO, check=True, env=ros_env(args.domain))
        else:
            raise SystemExit("no model: put one in models/, pass --model, or train a checkpoint")
    info = {"file": model.name, "origin": origin,
            "pytorch_eager": f"the weights of `{shown(checkpoint)}`" if checkpoint
            else "the network of the file's metadata with untrained weights (the same speed)"}
    try:
        from lapx_ros.export import read_onnx_metadata

        meta = read_onnx_metadata(model)
        info.update({"layout": meta.layout_name, "joints": meta.num_joints,
                     "input": f"{meta.input_width}x{meta.input_height}",
                     "size_mb": round(model.stat().st_size / 2**20, 2)})
    except Exception as exc:  # informative only
        info["metadata_error"] = str(exc)
    return {"path": model, "checkpoint": checkpoint, "info": info}


# ------------------------------------------------------------------- measurements
def run_worker(argv, name: str, pauser: harness.Pauser, timeout: float, env=None) -> dict:
    """Start a worker, let it load, pause the others, let it measure, resume."""
    proc = Proc(argv, name, env=env)
    try:
        proc.expect("READY", timeout=300)
        with pauser.paused():
            cpu0, t0 = harness.cpu_seconds(), time.monotonic()
            proc.send("go")
            line = proc.expect("RESULT ", timeout)
            cpu = harness.cpu_use(cpu0, harness.cpu_seconds(), time.monotonic() - t0,
                             {"worker": [proc.pid], "benchmark": harness.with_descendants([os.getpid()])})
        result = json.loads(line[len("RESULT "):])
        result["cpu_cores"] = cpu
        log(f"{name}: cores {cpu}")
        return result
    finally:
        proc.stop()


def model_only(args, model, scenes_file, pauser) -> dict:
    argv = [sys.executable, "-m", "benchmarks.model_only", "--model", str(model["path"]),
            "--scenes", str(scenes_file), "--repeats", str(args.repeats), "--runs", str(args.runs),
            "--pipeline-frames", str(args.pipeline_frames), "--hold", str(args.hold),
            "--threads", str(args.threads)]
    if model["checkpoint"] is not None:
        argv += ["--checkpoint", str(model["checkpoint"])]
    log("model only + in-process pipeline")
    return run_worker(argv, "model_only", pauser, timeout=600, env=ros_env(args.domain))


def ensure_mediapipe(venv: Path) -> Path | None:
    python = venv / "bin" / "python"
    if python.is_file():
        ok = subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True).returncode == 0
        if ok:
            return python
    log(f"creating {venv} with mediapipe==0.10.14")
    base = os.environ.get("LAPX_PYTHON", "python3.11")
    try:
        if not python.is_file():
            subprocess.run([base, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mediapipe==0.10.14"], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        log(f"MediaPipe unavailable: {exc}")
        return None
    return python


def mediapipe(args, scenes_file, pauser) -> dict | None:
    python = ensure_mediapipe(args.mediapipe_venv)
    if python is None:
        return None
    log("MediaPipe Pose full")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    argv = [str(python), str(HERE / "mediapipe_worker.py"), "--scenes", str(scenes_file),
            "--repeats", str(args.repeats), "--frames", str(args.pipeline_frames), "--hold", str(args.hold)]
    return run_worker(argv, "mediapipe", pauser, timeout=600, env=env)


def start_nodes(args, model, configs, env) -> dict:
    nodes = {}
    for backend_name, scenario in configs:
        ns = f"/lapx_bench/{backend_name}_{scenario}"
        spec = SCENARIOS[scenario]
        params = {"model_path": model["path"], "mode": spec["mode"], "threads": args.threads,
                  **E2E_BACKENDS[backend_name], **spec["params"]}
        argv = [sys.executable, "-m", "lapx_ros.ros.node", "--ros-args",
                "--params-file", str(REPO / "config" / "lapx.yaml"), "-r", f"__ns:={ns}"]
        for name, value in params.items():
            argv += ["-p", f"{name}:={value}"]
        nodes[(backend_name, scenario)] = (ns, Proc(argv, f"node {ns}", env=env))
    return nodes


def profile_node(args, node: Proc, publisher: Proc, listener: Proc, ns: str, scenario: str) -> dict | None:
    """py-spy samples of the node's threads while it processes frames."""
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.is_file():
        log("py-spy not installed in this environment: no profile")
        return None
    out = Path(tempfile.mkdtemp(prefix="lapx_bench_")) / "profile.txt"
    rate = 200
    spy = subprocess.Popen([str(pyspy), "record", "--pid", str(node.pid), "--duration",
                            str(int(args.profile_seconds)), "--rate", str(rate), "--format", "raw",
                            "--nonblocking", "--threads", "--idle", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    cpu0, t0 = harness.cpu_seconds(), time.monotonic()
    spec = SCENARIOS[scenario]
    sent = publisher.call(f"run {ns} {spec['frames']} 0 {args.profile_seconds + 0.5} {spec['rate_hz']}",
                          timeout=args.profile_seconds + 60)
    cpu = harness.cpu_use(cpu0, harness.cpu_seconds(), time.monotonic() - t0,
                     {"node": [node.pid], "py-spy": [spy.pid], "benchmark": harness.with_descendants([os.getpid()])})
    spy.wait(timeout=60)
    records = listener.call(f"dump {ns}", timeout=30)["records"]
    frames = len([r for r in records if sent["start"] <= r[0] * 1e-9 < sent["end"]])
    log(f"profile: {frames} frames in {args.profile_seconds + 0.5} s")
    if not out.is_file():
        return None
    summary = harness.summarize_profile(out.read_text(), rate, frames, args.profile_seconds + 0.5)
    summary["cpu_cores"] = cpu
    return summary


def end_to_end(args, model, pauser) -> dict:
    configs = [(b, s) for s in args.scenarios for b in args.backends
               if (b == args.default_backend or not SCENARIOS[s].get("default_backend_only"))
               and s in SETTING_SCENARIOS.get(b, (s,))]
    env = ros_env(args.domain)
    namespaces = [f"/lapx_bench/{b}_{s}" for b, s in configs]
    listener = Proc([sys.executable, "-m", "benchmarks.e2e_roles", "listen", "--namespaces", ",".join(namespaces)],
                    "listener", env=env)
    publisher = Proc([sys.executable, "-m", "benchmarks.e2e_roles", "publish", "--namespaces", ",".join(namespaces),
                      "--scenes", str(args.scenes_file), "--hold", str(args.hold)], "publisher", env=env)
    nodes = start_nodes(args, model, configs, env)
    procs = [listener, publisher] + [p for _, p in nodes.values()]
    results = {"windows": {}, "rss_mb": {}, "profiles": {}}
    try:
        listener.expect("READY", 120)
        publisher.expect("READY", 120)
        for (b, s), (ns, proc) in nodes.items():
            proc.wait_output("active:", 180)
            for role in (publisher, listener):
                if not role.call(f"wait {ns} 60", 90)["ok"]:
                    raise RuntimeError(f"{role.name} never matched {ns}")
            log(f"node {ns} up ({backend_line(proc)})")
            results.setdefault("engines", {})[b] = backend_line(proc)
        for (b, s), (ns, _) in nodes.items():  # first frames: allocations, discovery of outputs
            publisher.call(f"run {ns} {SCENARIOS[s]['frames']} 0 1.5 {SCENARIOS[s]['rate_hz']}", 60)
            listener.call(f"dump {ns}", 30)
        retries_left = args.max_retries
        with pauser.paused():
            for rep in range(args.repeats):
                for (b, s), (ns, node) in nodes.items():
                    for attempt in range(1 + args.retries):
                        stats = measure_window(args, b, s, ns, node, publisher, listener)
                        stats["repeat"], stats["attempt"] = rep + 1, attempt + 1
                        results["windows"].setdefault(s, {}).setdefault(b, []).append(stats)
                        log(f"rep {rep + 1}.{attempt + 1} {b} {s}: {stats['fps']:.1f} fps, p50 "
                            f"{stats['latency_ms_p50']:.1f} ms, p95 {stats['latency_ms_p95']:.1f} ms, dropped "
                            f"{stats['dropped']}/{stats['sent']} (node stale {stats['node_stale_drops']}, node received "
                            f"{stats['node_frames_received_per_s']} /s), with a person {stats['with_person']}; "
                            f"cores {stats['cpu_cores']}")
                        if clean(stats) or retries_left <= 0:
                            break
                        retries_left -= 1
            if args.profile_seconds > 0:
                for b in args.profile_backends:
                    for s in args.scenarios:
                        if (b, s) in nodes:
                            ns, proc = nodes[(b, s)]
                            log(f"profiling {ns}")
                            results["profiles"][f"{b}/{s}"] = profile_node(args, proc, publisher, listener, ns, s)
        for (b, s), (ns, proc) in nodes.items():
            results["rss_mb"].setdefault(b, {})[s] = harness.peak_rss_mb(proc.pid)
    finally:
        for p in procs:
            p.stop()
    return results


OTHER_LOAD_LIMIT = 0.25  # cores used by processes the benchmark did not start


def clean(window: dict) -> bool:
    """Whether no other work disturbed the window (see harness.cpu_use)."""
    return window.get("cpu_cores", {}).get("other processes", 0.0) <= OTHER_LOAD_LIMIT


def measure_window(args, b, s, ns, node, publisher, listener) -> dict:
    cpu0, t0 = harness.cpu_seconds(), time.monotonic()
    spec = SCENARIOS[s]
    sent = publisher.call(f"run {ns} {spec['frames']} {args.warmup} {args.duration} {spec['rate_hz']}",
                          args.duration + 60)
    cpu1, wall = harness.cpu_seconds(), time.monotonic() - t0
    got = listener.call(f"dump {ns}", 30)
    ours = harness.with_descendants([os.getpid()])
    groups = {"node": [node.pid], "publisher": [publisher.pid], "listener": [listener.pid],
              "benchmark (idle nodes, this script)":
                  [p for p in ours if p not in (node.pid, publisher.pid, listener.pid)]}
    stats = harness.window_stats(sent["stamps"], [(r[0], r[1]) for r in got["records"]], sent["start"], sent["end"])
    answered = [r for r in got["records"] if sent["start"] <= r[0] * 1e-9 < sent["end"]]
    stats["with_person"] = sum(r[2] > 0 for r in answered) / len(answered) if answered else None
    stats["send_rate_hz"] = sent["send_rate_hz"]
    stats["late_sends"] = sent["late_sends"]
    stats["cpu_cores"] = harness.cpu_use(cpu0, cpu1, wall, groups)
    inside = [d for d in got["diagnostics"] if sent["start"] <= d["t"] <= sent["end"] + 1.0]
    compute = [float(d["compute_ms_p50"]) for d in inside if d.get("compute_ms_p50") not in (None, "", "nan")]
    stats["node_compute_ms_p50"] = float(sorted(compute)[len(compute) // 2]) if compute else None
    for key, name in (("dropped_stale", "node_stale_drops"), ("frames_received", "node_frames_received_per_s"),
                      ("frames_processed", "node_frames_processed_per_s")):
        points = [(d["t"], int(d[key])) for d in inside if str(d.get(key, "")).isdigit()]
        if len(points) < 2:
            stats[name] = None
        elif key == "dropped_stale":
            stats[name] = points[-1][1] - points[0][1]
        else:  # a rate between the first and the last diagnostics of the window
            stats[name] = (points[-1][1] - points[0][1]) / max(points[-1][0] - points[0][0], 1e-9)
    return stats


def backend_line(proc: Proc) -> str:
    for line in proc.all_lines:
        if "backend " in line and "model " in line:
            return line.split("backend ", 1)[1].strip()
    return "?"


# ----------------------------------------------------------------------- summary
def aggregate(raw: dict, model: dict, args, pauser) -> dict:
    mo = raw.get("model_only") or {}
    out = {"machine": raw["machine"], "cpu_class": harness.cpu_class(raw["machine"].get("cpu_flags", []),
                                                          raw["machine"].get("isa_cap", "")),
           "default_backend": args.default_backend, "commit": harness.git_commit(REPO),
           "date": time.strftime("%Y-%m-%d"), "versions": raw["versions"], "model": model["info"],
           "settings": {"threads": args.threads, "repeats": args.repeats, "window_s": args.duration,
                        "warmup_s": args.warmup, "frame": "640x480 bgr8 raw Image",
                        "hold_frames": args.hold, "transport": "Fast DDS, config/fastdds_shm.xml",
                        "others_paused_while_measuring": pauser.enabled},
           "model_only": {}, "pipeline_in_process": {}, "end_to_end": {}, "rss_mb": None}
    for name, batches in (mo.get("model_only") or {}).items():
        entry = {"engine": mo["backends"].get(name)}
        for bname, reps in batches.items():
            for q in ("p50", "p95"):
                s = harness.summarize_repeats([r[q] for r in reps])
                entry[f"{bname}_ms_{q}"] = s["median"]
                if q == "p50":
                    entry[f"{bname}_ms_p50_spread"] = [s["min"], s["max"]]
        out["model_only"][name] = entry
    for name, scen in (mo.get("pipeline") or {}).items():
        out["pipeline_in_process"][name] = {
            s: {**{f"ms_{q}": harness.summarize_repeats([r[q] for r in reps])["median"] for q in ("p50", "p95")},
                "network_calls_per_frame": harness.summarize_repeats([r["network_calls_per_frame"] for r in reps])["median"],
                "crops_per_frame": harness.summarize_repeats([r["crops_per_frame"] for r in reps])["median"]}
            for s, reps in scen.items()}
    e2e = raw.get("end_to_end") or {}
    default = args.default_backend
    for s, by_backend in e2e.get("windows", {}).items():
        section = {"by_backend": {}}
        for b, all_windows in by_backend.items():
            windows = [w for w in all_windows if clean(w)] or all_windows
            entry = {"windows_used": len(windows), "windows_measured": len(all_windows)}
            for key in ("fps", "latency_ms_p50", "latency_ms_p95", "dropped", "sent", "node_compute_ms_p50",
                        "node_stale_drops", "with_person"):
                summary = harness.summarize_repeats([w[key] for w in windows])
                entry[key] = summary["median"]
                if key in ("fps", "latency_ms_p50"):
                    entry[f"{key}_spread"] = [summary["min"], summary["max"]]
            entry["cpu_cores"] = {k: harness.summarize_repeats([w["cpu_cores"][k] for w in windows])["median"]
                                  for k in windows[0].get("cpu_cores", {})}
            entry["other_processes_cores_max"] = max(
                (w.get("cpu_cores", {}).get("other processes", 0.0) for w in windows), default=None)
            entry["rss_mb"] = (e2e.get("rss_mb", {}).get(b) or {}).get(s)
            entry["engine"] = e2e.get("engines", {}).get(b)
            section["by_backend"][b] = entry
        pick = default if default in section["by_backend"] else next(iter(section["by_backend"]))
        section.update({k: section["by_backend"][pick][k]
                        for k in ("fps", "latency_ms_p50", "latency_ms_p95", "dropped")})
        section["backend"] = pick
        out["end_to_end"][s] = section
    rss = {b: max(v for v in d.values() if v is not None) for b, d in e2e.get("rss_mb", {}).items() if d}
    if rss:
        out["rss_mb"] = rss.get(default, max(rss.values()))
        out["rss_mb_by_backend"] = rss
    out["profile"] = e2e.get("profiles") or None
    out["end_to_end_windows"] = e2e.get("windows")
    out["other_processes_cores"] = {k: (raw.get(k) or {}).get("cpu_cores") for k in ("model_only", "mediapipe")}
    mp = raw.get("mediapipe")
    if mp:
        out["mediapipe_full"] = {
            "version": mp.get("version"),
            "found_fraction": mp.get("found_fraction"),
            **{s: {f"ms_{q}": harness.summarize_repeats([r[q] for r in mp[s]])["median"] for q in ("p50", "p95")}
               for s in SCENARIOS if mp.get(s)}}
    out["ratios"] = ratios(out)
    out["targets"] = targets(out)
    out["others_paused_s"] = round(pauser.total_paused, 1)
    return out


def ratios(out: dict) -> dict:
    """Speed-up factors (> 1 = the first is faster)."""
    r = {}
    mo = out["model_only"]
    torch_ms = (mo.get("pytorch_eager") or {}).get("batch1_ms_p50")
    if torch_ms:
        r["model_only_batch1_vs_pytorch_eager"] = {
            b: torch_ms / v["batch1_ms_p50"] for b, v in mo.items() if b != "pytorch_eager" and v.get("batch1_ms_p50")}
    mp = out.get("mediapipe_full") or {}
    for s in SCENARIOS:
        mp_ms = (mp.get(s) or {}).get("ms_p50")
        if not mp_ms:
            continue
        r[f"pipeline_{s}_vs_mediapipe_full"] = {
            b: mp_ms / v[s]["ms_p50"] for b, v in out["pipeline_in_process"].items() if v.get(s)}
        if s in out["end_to_end"]:
            # MediaPipe's own time per frame as the fps it could sustain at most
            r[f"end_to_end_{s}_fps_vs_mediapipe_full_max_fps"] = {
                b: v["fps"] / (1000.0 / mp_ms) for b, v in out["end_to_end"][s]["by_backend"].items()}
    return r


def targets(out: dict) -> dict:
    """The goals of the speed issue (#17), for the default backend."""
    res = {}
    e2e = out["end_to_end"]
    one = e2e.get("1_person") or {}
    if one:
        res["1_person_30hz_fps"] = {"value": one["fps"], "target": ">= 30 fps (29.5 allowing for window edges)",
                                    "met": one["fps"] >= 29.5}
        res["1_person_30hz_dropped"] = {"value": one["dropped"], "target": "0 frames dropped",
                                        "met": one["dropped"] == 0}
        res["1_person_30hz_latency_p95"] = {"value": one["latency_ms_p95"], "target": "<= 45 ms",
                                            "met": one["latency_ms_p95"] <= 45.0}
    fast = e2e.get("1_person_60hz_followed") or {}
    if fast:
        res["1_person_60hz_followed_fps"] = {"value": fast["fps"], "target": ">= 60 fps (59 allowing for edges)",
                                             "met": fast["fps"] >= 59.0}
    three = e2e.get("3_persons") or {}
    if three:
        res["3_persons_fps"] = {"value": three["fps"], "target": ">= 30 fps (29.5)", "met": three["fps"] >= 29.5}
    if out.get("rss_mb") is not None:
        res["rss"] = {"value": out["rss_mb"], "target": "<= 200 MB in every scenario",
                      "met": out["rss_mb"] <= 200.0}
    return res


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.{digits}f}"
    return str(v)


def render_markdown(out: dict) -> str:
    m = out["machine"]
    lines = [f"## Speed: {out['cpu_class']}", "",
             f"Written by `benchmarks/run.py` at commit {out.get('commit')} on {out.get('date')} "
             "(see the README section \"Speed\"). Medians over "
             f"{out['settings']['repeats']} repeats; spreads are min-max of the repeats. Rows are named "
             "by the setting asked for; the engine column says what ran.", "",
             "### Machine and model", "",
             f"- CPU: {m.get('cpu_model')} ({m.get('cpus')} cores{', VM' if m.get('hypervisor') else ''}; "
             f"{', '.join(m.get('cpu_flags', []))}), {m.get('memory_gb')} GB RAM; {m.get('platform')}; "
             f"Python {m.get('python')}",
             *([f"- Instruction sets capped: ONEDNN_MAX_CPU_ISA={m['isa_cap']}"
                + (f", ATEN_CPU_CAPABILITY={m['aten_cpu_capability']}" if m.get('aten_cpu_capability') else "")
                + " (oneDNN's primitives in OpenVINO and PyTorch honour it; OpenVINO's own JIT "
                "kernels, ONNX Runtime's MLAS and MediaPipe's XNNPACK choose theirs from cpuid and "
                "still use AVX-512: not the figures of an AVX2 machine)"]
               if m.get("isa_cap") else []),
             "- Versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items() if v),
             f"- Model: `{out['model'].get('file')}` ({out['model'].get('origin')}), "
             f"{out['model'].get('layout')} {out['model'].get('joints')} joints, input {out['model'].get('input')}, "
             f"{out['model'].get('size_mb')} MB; PyTorch eager: {out['model'].get('pytorch_eager')}",
             f"- Settings: {out['settings']}", ""]
    if out.get("targets"):
        lines += [f"### Targets (issue 17), default backend ({out['default_backend']})", "", "| target | measured | met |", "|---|---|---|"]
        for name, t in out["targets"].items():
            lines.append(f"| {name}: {t['target']} | {fmt(t['value'])} | {'yes' if t['met'] else '**no**'} |")
        lines.append("")
    if out["end_to_end"]:
        lines += ["### End to end over DDS (publisher -> node -> subscriber, 3 processes)", "",
                  "fps = /human_pose messages per second from the scenario's stream (30 Hz unless its name says 60hz); latency = receive time - image "
                  "stamp; dropped = frames of the window without a pose message; with a person = share of the pose "
                  "messages that held one or more people; node compute = the node's "
                  "own per-frame time (diagnostics); node stale = frames the node received but replaced by a newer one "
                  "before its worker was free. Windows during which processes the benchmark did not start used more "
                  f"than {OTHER_LOAD_LIMIT} cores are measured again once and left out of the medians when a clean "
                  "one exists.", "",
                  "| scenario | backend | fps (spread) | latency p50 (spread) | p95 | dropped / sent (node stale) | with a person | node compute p50 | peak RSS MB | windows used |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s, sec in out["end_to_end"].items():
            for b, e in sec["by_backend"].items():
                lines.append(f"| {s} | {b} | {fmt(e['fps'])} ({fmt(e['fps_spread'][0])}-{fmt(e['fps_spread'][1])}) | "
                             f"{fmt(e['latency_ms_p50'])} ({fmt(e['latency_ms_p50_spread'][0])}-"
                             f"{fmt(e['latency_ms_p50_spread'][1])}) | {fmt(e['latency_ms_p95'])} | "
                             f"{fmt(e['dropped'], 0)} / {fmt(e['sent'], 0)} ({fmt(e.get('node_stale_drops'), 0)}) | "
                             f"{fmt(e['with_person'], 2)} | {fmt(e['node_compute_ms_p50'])} | {fmt(e['rss_mb'], 0)} | "
                             f"{e['windows_used']}/{e['windows_measured']} |")
        lines += ["", "CPU use during the windows (cores, median of the repeats; 2 = the whole machine):", "",
                  "| scenario | backend | node | publisher | listener | idle benchmark processes | other processes (max) |",
                  "|---|---|---|---|---|---|---|"]
        for s, sec in out["end_to_end"].items():
            for b, e in sec["by_backend"].items():
                c = e.get("cpu_cores") or {}
                lines.append(f"| {s} | {b} | {fmt(c.get('node'), 2)} | {fmt(c.get('publisher'), 2)} | "
                             f"{fmt(c.get('listener'), 2)} | {fmt(c.get('benchmark (idle nodes, this script)'), 2)} | "
                             f"{fmt(c.get('other processes'), 2)} ({fmt(e.get('other_processes_cores_max'), 2)}) |")
        lines.append("")
    if out["model_only"]:
        lines += ["### Model only (the network, one call), ms", "",
                  "| backend | engine | batch 1 p50 (spread) | batch 1 p95 | batch 3 p50 | batch 3 p95 |",
                  "|---|---|---|---|---|---|"]
        for b, e in out["model_only"].items():
            sp = e.get("batch1_ms_p50_spread", [None, None])
            lines.append(f"| {b} | {e.get('engine')} | {fmt(e.get('batch1_ms_p50'), 2)} ({fmt(sp[0], 2)}-{fmt(sp[1], 2)}) | "
                         f"{fmt(e.get('batch1_ms_p95'), 2)} | {fmt(e.get('batch3_ms_p50'), 2)} | "
                         f"{fmt(e.get('batch3_ms_p95'), 2)} |")
        lines.append("")
    if out["pipeline_in_process"] or out.get("mediapipe_full"):
        lines += ["### Per frame in one process, same frames: node pipeline vs MediaPipe Pose full, ms", "",
                  "Node pipeline = `PosePipeline.process` as the node calls it (crops, network, decoding, "
                  "tracking; no ROS). MediaPipe = `mp.solutions.pose` model_complexity=1 incl. BGR->RGB; "
                  "3 persons = three Pose instances on the supplied person boxes.", "",
                  "| system | 1 person p50 | p95 | network calls (crops) per frame | 3 persons p50 | p95 | calls (crops) |",
                  "|---|---|---|---|---|---|---|"]
        for b, e in out["pipeline_in_process"].items():
            one, three = e.get("1_person", {}), e.get("3_persons", {})
            lines.append(f"| lapx {b} | {fmt(one.get('ms_p50'), 2)} | {fmt(one.get('ms_p95'), 2)} | "
                         f"{fmt(one.get('network_calls_per_frame'), 2)} ({fmt(one.get('crops_per_frame'), 2)}) | "
                         f"{fmt(three.get('ms_p50'), 2)} | {fmt(three.get('ms_p95'), 2)} | "
                         f"{fmt(three.get('network_calls_per_frame'), 2)} ({fmt(three.get('crops_per_frame'), 2)}) |")
        mp = out.get("mediapipe_full")
        if mp:
            lines.append(f"| MediaPipe Pose full {mp.get('version')} | {fmt(mp.get('1_person', {}).get('ms_p50'), 2)} | "
                         f"{fmt(mp.get('1_person', {}).get('ms_p95'), 2)} | – | {fmt(mp.get('3_persons', {}).get('ms_p50'), 2)} | "
                         f"{fmt(mp.get('3_persons', {}).get('ms_p95'), 2)} | – |")
            lines.append("")
            lines.append(f"MediaPipe found a person in {mp.get('found_fraction')} of the frames.")
        lines.append("")
    if out.get("ratios"):
        lines += ["### Ratios (> 1 = lapx faster)", ""]
        for name, vals in out["ratios"].items():
            lines.append(f"- {name}: " + ", ".join(f"{b} {fmt(v, 2)}x" for b, v in vals.items()))
        lines.append("")
    for key, prof in (out.get("profile") or {}).items():
        if not prof:
            continue
        lines += [f"### Profile of the node under load: {key} (py-spy, {prof['sample_rate_hz']} Hz, "
                  f"{prof['frames']} frames in {prof['seconds']} s)", "",
                  f"Worker thread busy {fmt(prof['worker_busy_ms_per_frame'], 2)} ms per frame "
                  f"(idle {fmt(100 * prof['worker_idle_fraction'], 0)}% of the time):", "",
                  "| stage | ms per frame |", "|---|---|"]
        for k, v in prof["worker_ms_per_frame"].items():
            lines.append(f"| {k} | {fmt(v, 2)} |")
        lines += ["", "Executor (main) thread, ms per frame: "
                  + ", ".join(f"{k} {fmt(v, 2)}" for k, v in prof["main_thread_ms_per_frame"].items()),
                  "", f"CPU use meanwhile (cores): {prof.get('cpu_cores')}", ""]
    other = out.get("other_processes_cores") or {}
    lines += ["CPU use of processes the benchmark did not start, during the in-process blocks (cores): "
              + ", ".join(f"{k} {fmt((v or {}).get('other processes'), 2)}" for k, v in other.items()), ""]
    lines += [f"Other processes paused while measuring: {out['settings']['others_paused_while_measuring']} "
              f"({out.get('others_paused_s')} s in total).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="LSPET folder (images/, joints.mat)")
    p.add_argument("--model", help="ONNX model (default: models/*.onnx, else exported from the newest checkpoint)")
    p.add_argument("--checkpoint", help="checkpoint for PyTorch eager (default: the newest last.pt under "
                   "training/, else the model file's network with untrained weights)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0, help="seconds measured per end-to-end window")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds published before each window")
    p.add_argument("--retries", type=int, default=1, help="extra tries of a window disturbed by other processes")
    p.add_argument("--max-retries", type=int, default=6, help="extra tries in all (bounds the run time)")
    p.add_argument("--runs", type=int, default=30, help="timed model calls per backend, batch and repeat")
    p.add_argument("--pipeline-frames", type=int, default=60)
    p.add_argument("--hold", type=int, default=15, help="frames each composed image is shown")
    p.add_argument("--backends", default=",".join(E2E_BACKENDS))
    p.add_argument("--default-backend", default=DEFAULT_BACKEND,
                   help="the node's default (backend auto, precision auto) on a bf16 CPU")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--profile-seconds", type=float, default=6.0)
    p.add_argument("--profile-backends", default=DEFAULT_BACKEND)
    p.add_argument("--skip", default="", help="comma list of: model_only, mediapipe, e2e")
    p.add_argument("--mediapipe-venv", type=Path, default=HERE / ".venv-mediapipe")
    p.add_argument("--pause-pids", default="", help="comma list of PIDs to SIGSTOP while measuring")
    p.add_argument("--pause-pattern", help="regex of command lines to SIGSTOP while measuring")
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.add_argument("--domain", type=int, default=os.getpid() % 101 + 1, help="ROS_DOMAIN_ID")
    args = p.parse_args(argv)
    args.backends = [b for b in args.backends.split(",") if b]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.profile_backends = [b for b in args.profile_backends.split(",") if b]
    skip = set(args.skip.split(","))

    pauser = harness.Pauser(pids=[int(x) for x in args.pause_pids.split(",") if x], pattern=args.pause_pattern,
                       log=log)
    started = time.monotonic()
    try:
        raw = {"machine": {**harness.machine_info(), "loadavg_at_start": os.getloadavg()},
               "versions": harness.package_versions(["onnxruntime", "openvino", "torch", "opencv-python-headless",
                                                "numpy", "ros-jazzy-rclpy"])}
        model = resolve_model(args)
        log(f"model: {model['info']}")
        cache = HERE / ".cache"
        cache.mkdir(exist_ok=True)
        args.scenes_file = cache / "scenes.npz"
        scenes.save_scenes(scenes.build_scenes(args.data / "images", args.data / "joints.mat"), args.scenes_file)
        if "model_only" not in skip:
            raw["model_only"] = model_only(args, model, args.scenes_file, pauser)
        if "mediapipe" not in skip:
            raw["mediapipe"] = mediapipe(args, args.scenes_file, pauser)
        if "e2e" not in skip:
            raw["end_to_end"] = end_to_end(args, model, pauser)
    finally:
        pauser.resume()
    out = aggregate(raw, model, args, pauser)
    out["benchmark_minutes"] = round((time.monotonic() - started) / 60, 1)
    # one section (and JSON file) per kind of CPU, so the figures of each stay side by side
    args.out_dir.mkdir(parents=True, exist_ok=True)
    raw_file = args.out_dir / f"results_{harness.section_slug(out['cpu_class'])}.json"
    raw_file.write_text(json.dumps(out, indent=2) + "\n")
    results_md = args.out_dir / "RESULTS.md"
    harness.write_section(results_md, f"Speed: {out['cpu_class']}", "benchmarks/run.py", render_markdown(out))
    log(f"wrote {raw_file} and RESULTS.md in {out['benchmark_minutes']} min; "
        f"others paused {pauser.total_paused:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

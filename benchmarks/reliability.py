"""Reliability of the pose node (issue #6): more frames than it can process, and a long run.

    .venv/bin/python -m benchmarks.reliability load [--pause-pattern lapx_ros.train]   # ~3 min
    .venv/bin/python -m benchmarks.reliability soak                                    # ~11 min

load: real footage scaled into 1280x720 bgr8 frames, sent at 120 Hz for 60 s, once with
sensor-data (best effort) QoS and once reliable (the node's qos_reliability matches). The
node keeps only the newest frame, so it must show bounded latency (the last slice's p95
close to the first's), count the frames it skips (dropped_stale in /diagnostics) and hold
no frame once the stream stops; a queue would show latency climbing slice after slice.
--pause-pattern stops matching processes (SIGSTOP) during the measurement only.

soak: vtest.avi looped at its native 10 Hz for 10 min into the node set up as the demo
runs it (detector mode); the node's RSS every 5 s. Growth = median RSS of the last
minute - median RSS of the minute after the first 60 s (warm-up). Nothing is paused:
memory growth does not depend on CPU contention.

Node, camera and listener run in processes of their own over real DDS: the roles of
benchmarks/e2e_roles.py publish (load) and listen, lapx-replay is the soak's camera.
Results go to reliability_results.json and RELIABILITY.md beside this file; each
sub-command replaces only its own section, so the other's last results stay.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
import uuid
from itertools import islice
from pathlib import Path

import numpy as np

from benchmarks.run import OTHER_LOAD_LIMIT, Proc, backend_line, fmt, log, ros_env, shown
from lapx_ros.testing import harness, scenes
from lapx_ros.testing.node_client import node_command

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_JSON = "reliability_results.json"
RESULTS_MD = "RELIABILITY.md"
RSS_PLOT = "reliability_soak_rss.png"
SCENE = "footage"  # the one scenario of the load's frames file (e2e_roles publish)
ROLES = ("-m", "benchmarks.e2e_roles")
COUNTERS = ("frames_received", "frames_processed", "dropped_stale", "dropped_invalid", "inference_errors")
SETTLE_S = 2.0  # after the last frame: the node finishes it and reports its final counters
# Both runs: diagnostics often enough for 2 s slices, and every person found reported
# (threshold 0), so that each message carries people whatever the model's confidence in
# them and the load does not depend on which weights are shipped.
NODE_PARAMS = ("diagnostics_period:=0.5", "person_threshold:=0.0")
# The demo's set-up for vtest.avi (lapx_ros/demo.py): its pedestrians are smaller than
# the HOG detector's 128 px window.
SOAK_NODE_PARAMS = ("mode:=detector", "detector_scale:=1.5")


# ------------------------------------------------------------------ set-up
def start_node(args, namespace: str, env: dict, *params: str) -> Proc:
    argv = node_command(namespace, args.model, f"threads:={args.threads}", *NODE_PARAMS, *params)
    return Proc([sys.executable, *argv], f"node {namespace}", env=env)


def write_footage(args, path: Path) -> Path:
    """The load's frames file: the first --frames frames of the footage, each scaled into
    --size keeping its aspect (grey bars), as e2e_roles' publisher reads it."""
    from lapx_ros.ros.replay import FrameSource

    width, height = args.size
    frames = []
    for image in islice(FrameSource(args.footage).frames(), args.frames):
        canvas = np.full((height, width, 3), 96, np.uint8)
        scenes.paste_fit(canvas, image, (0, 0, width, height))
        frames.append(scenes.Composition(canvas, np.zeros((0, 4)), (len(frames),)))
    if not frames:
        raise SystemExit(f"no frames in {args.footage}")
    path.parent.mkdir(parents=True, exist_ok=True)
    scenes.save_scenes({SCENE: frames}, path)
    return path


def wait_until_connected(namespace: str, node: Proc, roles) -> None:
    """Until the node is active and each role (publisher, listener) has matched it."""
    node.wait_output("active:", 180)
    for role in roles:
        if not role.call(f"wait {namespace} 60", 90)["ok"]:
            raise RuntimeError(f"{role.name} never matched the node in {namespace}")


class Sampler:
    """Samples one process's resident memory, and every process's CPU time, every
    ``period`` s on a thread of its own while a measurement runs (``with`` block)."""

    def __init__(self, pid: int, period: float):
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, float | None, dict]] = []  # (wall s, RSS MiB, {pid: CPU s})
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append((time.time(), harness.rss_mb(self.pid), harness.cpu_seconds()))
            if self._done.wait(self.period):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def at(self, t: float):
        """The sample nearest to wall time ``t``."""
        return min(self.samples, key=lambda s: abs(s[0] - t))


def counters_at(diagnostics: list[dict], t: float) -> dict:
    """The node's cumulative counters as of its last diagnostics received by wall time
    ``t`` (its first diagnostics when none came before)."""
    if not diagnostics:
        raise RuntimeError("the listener received no diagnostics from the node")
    chosen = diagnostics[0]
    for d in diagnostics:
        if d["t"] <= t:
            chosen = d
    return {k: int(chosen[k]) for k in COUNTERS}


def frames_held(counters: dict) -> int:
    """Frames the node received but neither processed nor counted as dropped: at most the
    mailbox slot and the frame in work while frames come, 0 once they stopped. A queue
    would hold many."""
    return counters["frames_received"] - sum(counters[k] for k in COUNTERS[1:])


# -------------------------------------------------------------------- load
def load_run(args, reliability: str, frames_file: Path, pauser: harness.Pauser) -> dict:
    """One overload run with a fresh node asking ``reliability`` QoS: the publisher sends
    the frames at --rate for --warmup + --seconds s (others paused meanwhile), the
    listener notes every pose, the node's memory and CPU are sampled each second."""
    env = ros_env(args.domain)
    namespace = f"/lapx_reliability_{uuid.uuid4().hex[:6]}"
    listener = Proc([sys.executable, *ROLES, "listen", "--namespaces", namespace], "listener", env=env)
    publisher = Proc([sys.executable, *ROLES, "publish", "--namespaces", namespace, "--scenes", str(frames_file),
                      "--rate", str(args.rate), "--hold", str(args.hold), "--qos", reliability],
                     "publisher", env=env)
    node = start_node(args, namespace, env, f"qos_reliability:={reliability}")
    try:
        listener.expect("READY", 120)
        publisher.expect("READY", 120)
        wait_until_connected(namespace, node, (publisher, listener))
        with pauser.paused(), Sampler(node.pid, 1.0) as sampler:
            sent = publisher.call(f"run {namespace} {SCENE} {args.warmup} {args.seconds}",
                                  args.warmup + args.seconds + 60)
            time.sleep(SETTLE_S)
        got = listener.call(f"dump {namespace}", 30)
        peak_rss = harness.peak_rss_mb(node.pid)
        engine = backend_line(node)
    finally:
        for proc in (publisher, listener, node):
            proc.stop()
    groups = {"node": [node.pid], "publisher": [publisher.pid], "listener": [listener.pid]}
    run = summarize_load(args, sent, got, sampler, groups)
    run.update({"qos": reliability, "engine": engine, "node_peak_rss_mb": peak_rss})
    log(f"{reliability}: " + "; ".join(
        f"{s['from_s']:g}-{s['to_s']:g} s p50/p95 {s['latency_ms_p50']:.0f}/{s['latency_ms_p95']:.0f} ms, "
        f"{s['poses_per_s']:.1f} poses/s, stale {100 * s['node_drop_rate']:.0f}%" for s in run["slices"]))
    return run


def slice_figures(a: float, b: float, sent: dict, records, diagnostics, sampler: Sampler, groups) -> dict:
    """Figures of the frames stamped in [a, b) (wall s): poses and latency from the
    listener, rates from the node's counters, memory and CPU from the sampler."""
    span = b - a
    window = harness.window_stats(sent["stamps"], records, a, b)
    latencies = [(recv - stamp) * 1e-6 for stamp, recv in records if a <= stamp * 1e-9 < b]
    before, after = counters_at(diagnostics, a), counters_at(diagnostics, b)
    delta = {k: after[k] - before[k] for k in COUNTERS}
    first, last = sampler.at(a), sampler.at(b)
    return {
        "sent_per_s": window["sent"] / span,
        "poses_per_s": window["fps"],
        "latency_ms_p50": window["latency_ms_p50"],
        "latency_ms_p95": window["latency_ms_p95"],
        "latency_ms_max": max(latencies, default=float("nan")),
        "node_received_per_s": delta["frames_received"] / span,
        "node_processed_per_s": delta["frames_processed"] / span,
        "node_dropped_stale": delta["dropped_stale"],
        "node_drop_rate": delta["dropped_stale"] / max(1, delta["frames_received"]),
        "node_rss_mb": last[1],
        "cpu_cores": harness.cpu_use(first[2], last[2], last[0] - first[0], groups),
    }


def mean_cores(slices: list[dict]) -> dict:
    """Cores per group over the whole window as the slices' mean weighted by their length:
    harness.cpu_use counts a process from the first sample it is in, so one span over
    the whole window would leave out every process started during it."""
    span = sum(s["to_s"] - s["from_s"] for s in slices)
    return {k: round(sum(s["cpu_cores"][k] * (s["to_s"] - s["from_s"]) for s in slices) / span, 3)
            for k in slices[0]["cpu_cores"]}


def summarize_load(args, sent: dict, got: dict, sampler: Sampler, groups) -> dict:
    records = [(stamp, recv) for stamp, recv, _ in got["records"]]
    diagnostics = got["diagnostics"]
    count = max(1, round(args.seconds / args.slice))
    slices = []
    for k in range(count):
        a = sent["start"] + k * args.slice
        b = sent["end"] if k == count - 1 else a + args.slice
        slices.append({"from_s": round(a - sent["start"], 3), "to_s": round(b - sent["start"], 3),
                       **slice_figures(a, b, sent, records, diagnostics, sampler, groups)})
    whole = slice_figures(sent["start"], sent["end"], sent, records, diagnostics, sampler, groups)
    whole["cpu_cores"] = mean_cores(slices)
    final = counters_at(diagnostics, float("inf"))
    start = counters_at(diagnostics, sent["start"])
    in_window = {k: final[k] - start[k] for k in COUNTERS}
    first, last = slices[0], slices[-1]
    rss_start, rss_end = sampler.at(sent["start"])[1], sampler.at(sent["end"])[1]
    return {
        "slices": slices,
        "whole_window": whole,
        "sent": len(sent["stamps"]),
        "send_rate_hz": sent["send_rate_hz"],
        "late_sends": sent["late_sends"],
        "node": {**in_window, "frames_held_at_end": frames_held(final)},
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_start,
        "latency_p95_growth_ms": last["latency_ms_p95"] - first["latency_ms_p95"],
        "latency_bounded": bool(last["latency_ms_p95"] <= first["latency_ms_p95"] + args.p95_margin_ms),
    }


def load(args) -> dict:
    frames_file = write_footage(args, HERE / ".cache" / "reliability_frames.npz")
    pauser = harness.Pauser(pattern=args.pause_pattern, log=log)
    runs = {}
    try:
        for reliability in args.qos:
            log(f"load, {reliability}: {args.rate:g} Hz for {args.warmup:g} + {args.seconds:g} s")
            runs[reliability] = load_run(args, reliability, frames_file, pauser)
    finally:
        pauser.resume()
    return {"settings": {"frame": f"{args.size[0]}x{args.size[1]} bgr8 raw Image",
                         "footage": Path(args.footage).name,
                         "distinct_frames": args.frames, "hold_frames": args.hold, "rate_hz": args.rate,
                         "seconds": args.seconds, "warmup_s": args.warmup, "slice_s": args.slice,
                         "p95_margin_ms": args.p95_margin_ms, "threads": args.threads,
                         "node_params": ["mode single (config/lapx.yaml)", *NODE_PARAMS],
                         "paused_while_measuring": args.pause_pattern or None},
            "others_paused_s": round(pauser.total_paused, 1),
            "runs": runs}


# -------------------------------------------------------------------- soak
def soak(args) -> dict:
    """The node fed by lapx-replay for --minutes; its RSS every --sample-period s."""
    env = ros_env(args.domain)
    namespace = f"/lapx_soak_{uuid.uuid4().hex[:6]}"
    listener = Proc([sys.executable, *ROLES, "listen", "--namespaces", namespace], "listener", env=env)
    node = start_node(args, namespace, env, *SOAK_NODE_PARAMS)
    replay = None
    frames = round(args.rate * args.minutes * 60)
    try:
        listener.expect("READY", 120)
        wait_until_connected(namespace, node, (listener,))
        log(f"soak: {args.footage} looped at {args.rate:g} Hz for {args.minutes:g} min")
        replay = Proc([sys.executable, "-m", "lapx_ros.ros.replay", args.footage, "--topic", f"{namespace}/camera/image_raw",
                       "--rate", str(args.rate), "--loop", "--count", str(frames), "--wait-subscribers", "1"],
                      "replay", env=env)
        with Sampler(node.pid, args.sample_period) as sampler:
            replay.wait_output("lapx-replay: sent", args.minutes * 60 + 120)
            time.sleep(SETTLE_S)
        got = listener.call(f"dump {namespace}", 60)
        peak_rss = harness.peak_rss_mb(node.pid)
        engine = backend_line(node)
        replay_line = next(line for line in replay.all_lines if "lapx-replay: sent" in line)
    finally:
        for proc in (replay, listener, node):
            if proc is not None:
                proc.stop()
    result = summarize_soak(args, sampler, got, {"node": [node.pid], "listener": [listener.pid],
                                                 "replay": [replay.pid]})
    sent, seconds = re.search(r"sent (\d+) frames in ([\d.]+) s", replay_line).groups()
    result.update({"engine": engine, "node_peak_rss_mb": peak_rss,
                   "replay": {"frames_sent": int(sent), "seconds": float(seconds)},
                   "settings": {"footage": Path(args.footage).name, "rate_hz": args.rate, "minutes": args.minutes,
                                "sample_period_s": args.sample_period, "warmup_s": args.warmup,
                                "threads": args.threads, "node_params": [*NODE_PARAMS, *SOAK_NODE_PARAMS],
                                "others_paused": False}})
    plot_rss(result, args.out_dir / RSS_PLOT)
    log(f"soak: RSS {result['rss_first_mb']:.1f} -> {result['rss_last_mb']:.1f} MB, growth "
        f"{result['rss_growth_mb']:+.1f} MB over {result['duration_s'] / 60:.1f} min")
    return result


def summarize_soak(args, sampler: Sampler, got: dict, groups) -> dict:
    t0 = sampler.samples[0][0]
    curve = [(round(t - t0, 1), rss) for t, rss, _ in sampler.samples if rss is not None]
    duration = curve[-1][0]

    def median_rss(lo: float, hi: float) -> float:
        return float(np.median([rss for t, rss in curve if lo <= t < hi]))

    after_warmup = median_rss(args.warmup, args.warmup + 60)
    last_minute = median_rss(duration - 60, duration + 1)
    minutes = []
    for m in range(int(duration // 60)):
        poses = [(recv - stamp, people) for stamp, recv, people in got["records"]
                 if m * 60 <= recv * 1e-9 - t0 < m * 60 + 60]
        minutes.append({"minute": m + 1, "poses_per_s": len(poses) / 60.0,
                        "people_per_pose": float(np.mean([n for _, n in poses])) if poses else float("nan"),
                        **{f"latency_ms_{k}": v for k, v in harness.percentiles([d * 1e-6 for d, _ in poses]).items()},
                        "rss_mb_median": median_rss(m * 60, m * 60 + 60)})
    final = counters_at(got["diagnostics"], float("inf"))
    first, last = sampler.samples[0], sampler.samples[-1]
    return {
        "duration_s": duration,
        "rss_curve": curve,
        "rss_first_mb": curve[0][1],
        "rss_last_mb": curve[-1][1],
        "rss_median_after_warmup_mb": after_warmup,
        "rss_median_last_minute_mb": last_minute,
        "rss_growth_mb": last_minute - after_warmup,
        "minutes": minutes,
        "node": {**final, "frames_held_at_end": frames_held(final)},
        "cpu_cores": harness.cpu_use(first[2], last[2], last[0] - first[0], groups),
    }


def plot_rss(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, rss = zip(*result["rss_curve"])
    minutes = np.asarray(t) / 60.0
    warmup = result["settings"]["warmup_s"] / 60.0
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    ax.plot(minutes, rss, ".-", lw=1, ms=3, label=f"node RSS (every {result['settings']['sample_period_s']:g} s)")
    ax.axvspan(0, warmup, color="0.9", label="warm-up (excluded)")
    end = minutes[-1]
    ax.hlines(result["rss_median_after_warmup_mb"], warmup, warmup + 1, colors="C1",
              label="median, minute after warm-up")
    ax.hlines(result["rss_median_last_minute_mb"], end - 1, end, colors="C3", label="median, last minute")
    ax.set_xlabel("minutes since the replay started")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(f"Pose node memory, {result['settings']['footage']} looped at {result['settings']['rate_hz']:g} Hz: "
                 f"growth {result['rss_growth_mb']:+.1f} MiB")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------- results
def render_load(section: dict) -> list[str]:
    s = section["settings"]
    lines = ["## Load: more frames than the node can process", "",
             f"Measured {section['measured']}. {s['frame']} frames from the first {s['distinct_frames']} frames of "
             f"`{s['footage']}` (scaled keeping the aspect), each sent {s['hold_frames']} times, at "
             f"{fmt(s['rate_hz'], 0)} Hz for {fmt(s['warmup_s'], 0)} s of warm-up + {fmt(s['seconds'], 0)} s "
             f"measured, in slices of {fmt(s['slice_s'], 0)} s; a fresh node per QoS with the shipped model, "
             f"{', '.join(s['node_params'])}, {s['threads']} inference threads. Paused while measuring: "
             f"{s['paused_while_measuring'] or 'nothing'} ({section['others_paused_s']} s in all).", "",
             "What the columns mean: *sent* = frames the publisher sent per second; *node in* = frames "
             "the node's subscription received (its `frames_received` counter; with best effort, DDS "
             "drops the rest before the node sees them); *processed* and *stale* = the node's "
             "`frames_processed` and `dropped_stale` counters (stale: replaced in the one-slot mailbox by "
             "a newer frame before the worker was free; the share is of the frames the node received); "
             "*poses* = /human_pose messages received per second by the listener; latency = receive "
             "time - image stamp of those poses (frames stamped in the slice); RSS = the node's "
             "resident memory at the end of the slice; cores = CPU used by the node and by processes "
             "this benchmark did not start (2 = the whole machine; a process started within a slice counts "
             f"from the next slice on). * = those other processes used more than {OTHER_LOAD_LIMIT} cores: "
             "they competed with the node for the CPU.", ""]
    for qos, run in section["runs"].items():
        node = run["node"]
        whole = run["whole_window"]
        lines += [f"### QoS {qos}", "",
                  "| slice (s) | sent /s | node in /s | processed /s | poses /s | latency p50 / p95 / max (ms) "
                  "| stale (share) | node RSS MiB | node cores | other cores |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for sl in run["slices"] + [dict(whole, from_s=0, to_s=section["settings"]["seconds"], total=True)]:
            label = "all" if sl.get("total") else f"{sl['from_s']:g}-{sl['to_s']:g}"
            if sl["cpu_cores"]["other processes"] > OTHER_LOAD_LIMIT:
                label += " *"
            lines.append(
                f"| {label} | {fmt(sl['sent_per_s'])} | {fmt(sl['node_received_per_s'])} | "
                f"{fmt(sl['node_processed_per_s'])} | {fmt(sl['poses_per_s'])} | {fmt(sl['latency_ms_p50'], 0)} / "
                f"{fmt(sl['latency_ms_p95'], 0)} / {fmt(sl['latency_ms_max'], 0)} | {sl['node_dropped_stale']} "
                f"({fmt(100 * sl['node_drop_rate'], 0)}%) | {fmt(sl['node_rss_mb'], 0)} | "
                f"{fmt(sl['cpu_cores']['node'], 2)} | {fmt(sl['cpu_cores']['other processes'], 2)} |")
        lines += ["",
                  f"- Latency bounded: last slice p95 {fmt(run['slices'][-1]['latency_ms_p95'], 0)} ms vs first "
                  f"{fmt(run['slices'][0]['latency_ms_p95'], 0)} ms ({run['latency_p95_growth_ms']:+.0f} ms; "
                  f"margin {fmt(section['settings']['p95_margin_ms'], 0)} ms): "
                  f"**{'yes' if run['latency_bounded'] else 'no'}**.",
                  f"- No queue: of the {node['frames_received']} frames the node received in the window it "
                  f"processed {node['frames_processed']} and dropped {node['dropped_stale']} as stale "
                  f"({fmt(100 * whole['node_drop_rate'], 0)}%), {node['dropped_invalid']} as invalid; frames held "
                  f"in the node after the stream stopped: **{node['frames_held_at_end']}**. The publisher sent "
                  f"{run['sent']} ({fmt(run['send_rate_hz'])} Hz, {run['late_sends']} sends more than 5 ms late).",
                  f"- Memory: node RSS {fmt(run['rss_start_mb'], 0)} -> {fmt(run['rss_end_mb'], 0)} MiB over the "
                  f"window ({run['rss_growth_mb']:+.1f} MiB), peak {fmt(run['node_peak_rss_mb'], 0)} MiB. Cores over "
                  "the window: " + ", ".join(f"{k} {fmt(v, 2)}" for k, v in whole["cpu_cores"].items()) + ".",
                  f"- Engine: {run['engine']}", ""]
    return lines


def render_soak(section: dict) -> list[str]:
    s = section["settings"]
    node = section["node"]
    lines = ["## Soak: memory over a long run", "",
             f"Measured {section['measured']}. `{s['footage']}` looped by lapx-replay at {fmt(s['rate_hz'], 0)} Hz "
             f"(native size, bgr8, best effort) for {fmt(s['minutes'], 0)} min into a node with the "
             f"shipped model set up as the demo runs it ({', '.join(s['node_params'])}), {s['threads']} inference "
             f"threads. The node's RSS (VmRSS) every {fmt(s['sample_period_s'], 0)} s. Nothing was paused, "
             f"since memory growth does not depend on CPU contention: processes this benchmark did not start "
             f"used {fmt(section['cpu_cores']['other processes'], 2)} cores on average, the node "
             f"{fmt(section['cpu_cores']['node'], 2)}.", "",
             f"![node RSS during the soak]({RSS_PLOT})", "",
             "| figure | MiB | meaning |", "|---|---|---|",
             f"| first sample | {fmt(section['rss_first_mb'])} | RSS when the replay started |",
             f"| median, minute after warm-up | {fmt(section['rss_median_after_warmup_mb'])} | "
             f"{fmt(s['warmup_s'], 0)}-{fmt(s['warmup_s'] + 60, 0)} s: allocations of the first frames done |",
             f"| median, last minute | {fmt(section['rss_median_last_minute_mb'])} | the last 60 s of the run |",
             f"| **growth** | **{section['rss_growth_mb']:+.1f}** | last minute - minute after warm-up |",
             f"| last sample | {fmt(section['rss_last_mb'])} | |",
             f"| peak (VmHWM) | {fmt(section['node_peak_rss_mb'])} | highest RSS of the node's life |", "",
             f"Duration {section['duration_s'] / 60:.1f} min; lapx-replay sent {section['replay']['frames_sent']} "
             f"frames in {section['replay']['seconds']:.0f} s. Node counters at the end: received "
             f"{node['frames_received']}, processed {node['frames_processed']}, stale {node['dropped_stale']}, "
             f"invalid {node['dropped_invalid']}, inference errors {node['inference_errors']}, held "
             f"{node['frames_held_at_end']}. Engine: {section['engine']}.", "",
             "| minute | poses /s | people per pose | latency p50 / p95 (ms) | RSS median MiB |",
             "|---|---|---|---|---|"]
    for m in section["minutes"]:
        lines.append(f"| {m['minute']} | {fmt(m['poses_per_s'])} | {fmt(m['people_per_pose'], 2)} | "
                     f"{fmt(m['latency_ms_p50'], 0)} / {fmt(m['latency_ms_p95'], 0)} | {fmt(m['rss_mb_median'])} |")
    return lines + [""]


def render_markdown(results: dict) -> str:
    lines = ["# Reliability of the lapx_ros pose node", "",
             "Written by `benchmarks/reliability.py` (README section \"Reliability\"): "
             "`.venv/bin/python -m benchmarks.reliability load --pause-pattern lapx_ros.train` and "
             "`.venv/bin/python -m benchmarks.reliability soak`. Node, camera and listener in processes of their "
             "own over Fast DDS (`config/fastdds_shm.xml`).", ""]
    for name, render in (("load", render_load), ("soak", render_soak)):
        section = results.get(name)
        if not section:
            continue
        lines += render(section)
        m = section["machine"]
        lines += [f"Machine: {m.get('cpu_model')} ({m.get('cpus')} cores{', VM' if m.get('hypervisor') else ''}), "
                  f"{m.get('memory_gb')} GB RAM, {m.get('platform')}, Python {m.get('python')}; load average "
                  f"at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}. Model `{section['model']}`. "
                  "Versions: " + ", ".join(f"{k} {v}" for k, v in section["versions"].items() if v) + ".", ""]
    return "\n".join(lines)


def rounded(value, digits: int = 3):
    """``value`` with its floats rounded: the file stays readable, the figures exact enough."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def save(args, name: str, section: dict) -> None:
    """Replace section ``name`` of the results, keep the others, and rewrite both files."""
    section.update({"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "machine": args.machine, "model": shown(Path(args.model)),
                    "versions": harness.package_versions(["openvino", "onnxruntime", "numpy", "ros-jazzy-rclpy"])})
    path = args.out_dir / RESULTS_JSON
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[name] = section
    path.write_text(json.dumps(rounded(results), indent=1) + "\n")
    (args.out_dir / RESULTS_MD).write_text(render_markdown(results))
    log(f"wrote {path} and {RESULTS_MD}")


def parse_args(argv=None):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="ONNX model (default: the shipped one in models/)")
    common.add_argument("--footage", help="video file or image folder (default: vtest.avi, fetched once "
                                           "as lapx-demo does)")
    common.add_argument("--threads", type=int, default=2, help="the node's inference threads")
    common.add_argument("--domain", type=int, default=os.getpid() % 101 + 1, help="ROS_DOMAIN_ID")
    common.add_argument("--out-dir", type=Path, default=HERE)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    lo = sub.add_parser("load", parents=[common], help="overload: 1280x720 at 120 Hz, both QoS")
    lo.add_argument("--rate", type=float, default=120.0,
                    help="frames per second sent (more than a 2-core machine with AMX processes at 1280x720)")
    lo.add_argument("--seconds", type=float, default=60.0, help="measured seconds per QoS")
    lo.add_argument("--warmup", type=float, default=5.0, help="seconds sent before measuring")
    lo.add_argument("--slice", type=float, default=10.0, help="seconds per reported slice")
    lo.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    lo.add_argument("--frames", type=int, default=40, help="distinct footage frames, sent in a loop")
    lo.add_argument("--hold", type=int, default=12, help="sends of each frame (120 Hz / 12 = vtest's 10 fps)")
    lo.add_argument("--qos", type=lambda v: v.split(","), default=["best_effort", "reliable"],
                    help="comma list of best_effort, reliable")
    lo.add_argument("--p95-margin-ms", type=float, default=50.0,
                    help="how much the last slice's p95 may exceed the first's")
    lo.add_argument("--pause-pattern", help="regex of command lines to SIGSTOP while measuring (e.g. lapx_ros.train)")
    so = sub.add_parser("soak", parents=[common], help="long run: RSS over --minutes")
    so.add_argument("--minutes", type=float, default=10.0)
    so.add_argument("--rate", type=float, default=10.0, help="frames per second (vtest.avi's own: 10)")
    so.add_argument("--sample-period", type=float, default=5.0, help="seconds between RSS samples")
    so.add_argument("--warmup", type=float, default=60.0, help="first seconds left out of the growth")
    args = p.parse_args(argv)
    if args.command == "load" and not set(args.qos) <= {"best_effort", "reliable"}:
        p.error("--qos: a comma list of best_effort, reliable")
    if args.command == "soak" and args.minutes * 60 < args.warmup + 120:
        p.error("--minutes must leave a minute after the warm-up and a last minute apart from it")
    from lapx_ros.runtime.engine import default_model_path

    args.model = args.model or default_model_path()
    if not args.model:
        p.error("no model: none shipped in models/ and none given with --model")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.footage:
        from lapx_ros.demo import fetch_vtest

        args.footage = str(fetch_vtest())
    args.machine = {**harness.machine_info(), "loadavg_at_start": os.getloadavg()}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    section = load(args) if args.command == "load" else soak(args)
    save(args, args.command, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

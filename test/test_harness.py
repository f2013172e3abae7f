"""Cheap checks of the speed benchmark's helpers (benchmarks/bench_tools.py and the
profile summary of benchmarks/run.py). Nothing here is timed."""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"lapx_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bt = _load("bench_tools")


def _person_image(h=200, w=120, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    joints = np.column_stack([rng.uniform(20, w - 20, 14), rng.uniform(20, h - 20, 14), np.ones(14)])
    return image, joints


def test_one_person_fills_the_frame_and_keeps_its_box():
    image, joints = _person_image()
    comp = bt.compose([image], [joints], 1)
    assert comp.frame.shape == (480, 640, 3) and comp.frame.dtype == np.uint8
    scale = 480 / 200  # the height limits: 120 * 2.4 = 288 < 640
    x0 = (640 - round(120 * scale)) // 2
    expected = (joints[:, 0] + 0.5) * scale - 0.5 + x0
    box = comp.boxes[0]
    margin = (expected.max() - expected.min()) * 0.15
    assert box[0] == pytest.approx(max(0, expected.min() - margin), abs=1e-6)
    assert box[2] == pytest.approx(min(640, expected.max() + margin), abs=1e-6)


def test_three_people_side_by_side_in_their_slots():
    people = [_person_image(seed=s) for s in range(3)]
    comp = bt.compose([p[0] for p in people], [p[1] for p in people], 3)
    assert comp.boxes.shape == (3, 4)
    for i, (x0, y0, x1, y1) in enumerate(comp.boxes):
        assert i * 213 - 1 <= x0 < x1 <= (i + 1) * 213 + 1 + (1 if i == 2 else 0)
        assert 0 <= y0 < y1 <= 480
    with pytest.raises(ValueError):
        bt.compose([people[0][0]], [people[0][1]], 3)


def test_sequence_holds_each_scene():
    assert [bt.sequence_index(n, 3, 2) for n in range(8)] == [0, 0, 1, 1, 2, 2, 0, 0]


def test_window_stats_counts_only_the_window():
    sent = [1_700_000_000_005_000_000 + i * 10**9 // 30 for i in range(60)]  # 2 s at 30 Hz, ns
    received = [(s, s + 20_000_000) for s in sent[::2]]  # every other frame, 20 ms late
    stats = bt.window_stats(sent, received, 1_700_000_000.0, 1_700_000_001.0)
    assert stats["sent"] == 30 and stats["received"] == 15 and stats["dropped"] == 15
    assert stats["fps"] == pytest.approx(15.0)
    assert stats["latency_ms_p50"] == pytest.approx(20.0, abs=1e-3)


def test_percentiles_and_repeat_summary():
    p = bt.percentiles(range(1, 101))
    assert p["p50"] == pytest.approx(50.5) and p["p95"] == pytest.approx(95.05)
    s = bt.summarize_repeats([3.0, 1.0, 2.0, float("nan")])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "repeats": 3}
    assert np.isnan(bt.percentiles([])["p50"])


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_pauser_stops_and_always_resumes():
    child = subprocess.Popen(["sleep", "30"])
    try:
        pauser = bt.Pauser(pids=[child.pid], log=lambda text: None)
        with pytest.raises(RuntimeError):
            with pauser.paused():
                time.sleep(0.1)
                assert _state(child.pid) == "T"
                raise RuntimeError("a measurement failed")
        assert _state(child.pid) in ("S", "R")
        assert pauser.total_paused > 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_find_pids_never_matches_itself():
    assert os.getpid() not in bt.find_pids(r"pytest|python")


def test_profile_summary_splits_the_worker_time():
    run = _load("run")
    # the node's worker thread: NewestFrameWorker._run calling the node's _process
    worker = "_run (lapx_ros/runtime/frames.py:1);_process (lapx_ros/ros/node.py:2)"
    text = "\n".join([
        f"thread (0x1);{worker};__call__ (lapx_ros/runtime/estimator.py:3);infer (lapx_ros/runtime/engine.py:4);"
        "_run (lapx_ros/runtime/engine.py:5) 30",
        f"thread (0x1);{worker};__call__ (lapx_ros/runtime/preprocess.py:6) 10",
        "thread (0x1);_run (lapx_ros/runtime/frames.py:1);wait (threading.py:7) 60",
        "thread (0x2);spin (rclpy/executors.py:8);_take_subscription (rclpy/executors.py:9) 4",
    ])
    prof = run.summarize_profile(text, rate=100, frames=10, seconds=1.0)
    assert prof["worker_ms_per_frame"]["inference"] == pytest.approx(30.0)
    assert prof["worker_ms_per_frame"]["crop + normalise"] == pytest.approx(10.0)
    assert prof["worker_idle_fraction"] == pytest.approx(0.6)
    assert prof["main_thread_ms_per_frame"]["take + deserialise message"] == pytest.approx(4.0)


def test_results_sections_of_other_scripts_survive_a_rewrite(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Speed\n\nold table\n")
    bt.write_section(results, "Transport", "benchmarks/transport.py", "| size |\n|---|\n| 640x480 |")
    bt.write_section(results, "Depth", "benchmarks/depth_cost.py", "depth table")
    bt.write_section(results, "Transport", "benchmarks/transport.py", "| size |\n|---|\n| 1920x1080 |")
    text = results.read_text()
    assert text.startswith("# Speed\n\nold table\n") and text.count("<!-- section: Transport") == 1
    assert "1920x1080" in text and "640x480" not in text and "depth table" in text
    # the speed benchmark renews its own part and keeps the others
    results.write_text("# Speed\n\nnew table\n" + bt.marked_sections(results))
    text = results.read_text()
    assert "new table" in text and "old table" not in text
    assert "1920x1080" in text and "depth table" in text


def test_cpu_class_names_what_the_engines_could_use(monkeypatch):
    run = _load("run")
    assert run.cpu_class(["avx2"]) == "AVX2 only (no AVX-512)"
    assert run.cpu_class(["avx2", "avx512f", "avx512_bf16"]) == "AVX-512 with bf16/AMX"
    assert run.cpu_class(["avx2", "avx512f"]) == "AVX-512 (no bf16)"
    # a capped AVX-512 run gets a section of its own, never the real AVX2 machines' one
    capped = run.cpu_class(["avx2", "avx512f", "avx512_bf16"], "AVX2")
    assert "capped to AVX2" in capped and "partly" in capped and run.section_slug(capped) != run.section_slug(run.cpu_class(["avx2"]))
    assert run.cpu_class(["avx2"], "AVX2") == "AVX2 only (no AVX-512)"  # nothing to cap
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert bt.machine_info()["isa_cap"] == "AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert bt.machine_info()["isa_cap"] == ""

"""Cheap checks of the benchmarks' harness and frames (lapx_ros.testing.harness and
.scenes). Nothing here is timed."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from lapx_ros.testing import harness, scenes


def _person_image(h=200, w=120, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    joints = np.column_stack([rng.uniform(20, w - 20, 14), rng.uniform(20, h - 20, 14), np.ones(14)])
    return image, joints


def test_one_person_fills_the_frame_and_keeps_its_box():
    image, joints = _person_image()
    comp = scenes.compose([image], [joints], 1)
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
    comp = scenes.compose([p[0] for p in people], [p[1] for p in people], 3)
    assert comp.boxes.shape == (3, 4)
    for i, (x0, y0, x1, y1) in enumerate(comp.boxes):
        assert i * 213 - 1 <= x0 < x1 <= (i + 1) * 213 + 1 + (1 if i == 2 else 0)
        assert 0 <= y0 < y1 <= 480
    with pytest.raises(ValueError):
        scenes.compose([people[0][0]], [people[0][1]], 3)


def test_sequence_holds_each_scene():
    assert [scenes.sequence_index(n, 3, 2) for n in range(8)] == [0, 0, 1, 1, 2, 2, 0, 0]


def test_window_stats_counts_only_the_window():
    sent = [1_700_000_000_005_000_000 + i * 10**9 // 30 for i in range(60)]  # 2 s at 30 Hz, ns
    received = [(s, s + 20_000_000) for s in sent[::2]]  # every other frame, 20 ms late
    stats = harness.window_stats(sent, received, 1_700_000_000.0, 1_700_000_001.0)
    assert stats["sent"] == 30 and stats["received"] == 15 and stats["dropped"] == 15
    assert stats["fps"] == pytest.approx(15.0)
    assert stats["latency_ms_p50"] == pytest.approx(20.0, abs=1e-3)


def test_percentiles_and_repeat_summary():
    p = harness.percentiles(range(1, 101))
    assert p["p50"] == pytest.approx(50.5) and p["p95"] == pytest.approx(95.05)
    s = harness.summarize_repeats([3.0, 1.0, 2.0, float("nan")])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "repeats": 3}
    assert np.isnan(harness.percentiles([])["p50"])


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_pauser_stops_and_always_resumes():
    child = subprocess.Popen(["sleep", "30"])
    try:
        pauser = harness.Pauser(pids=[child.pid], log=lambda text: None)
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
    assert os.getpid() not in harness.find_pids(r"pytest|python")


def test_profile_summary_splits_the_worker_time():
    # the node's worker thread: NewestFrameWorker._run calling the node's _process
    worker = "_run (lapx_ros/runtime/frames.py:1);_process (lapx_ros/ros/node.py:2)"
    text = "\n".join([
        f"thread (0x1);{worker};__call__ (lapx_ros/runtime/estimator.py:3);infer (lapx_ros/runtime/engine.py:4);"
        "_run (lapx_ros/runtime/engine.py:5) 30",
        f"thread (0x1);{worker};__call__ (lapx_ros/geometry.py:6);warp_crop (lapx_ros/geometry.py:7) 10",
        "thread (0x1);_run (lapx_ros/runtime/frames.py:1);wait (threading.py:7) 60",
        "thread (0x2);spin (rclpy/executors.py:8);_take_subscription (rclpy/executors.py:9) 4",
    ])
    prof = harness.summarize_profile(text, rate=100, frames=10, seconds=1.0)
    assert prof["worker_ms_per_frame"]["inference"] == pytest.approx(30.0)
    assert prof["worker_ms_per_frame"]["crop + normalise"] == pytest.approx(10.0)
    assert prof["worker_idle_fraction"] == pytest.approx(0.6)
    assert prof["main_thread_ms_per_frame"]["take + deserialise message"] == pytest.approx(4.0)


def test_results_sections_of_other_scripts_survive_a_rewrite(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Speed\n\nold table\n")
    harness.write_section(results, "Transport", "benchmarks/transport.py", "| size |\n|---|\n| 640x480 |")
    harness.write_section(results, "Depth", "benchmarks/depth_cost.py", "depth table")
    harness.write_section(results, "Transport", "benchmarks/transport.py", "| size |\n|---|\n| 1920x1080 |")
    text = results.read_text()
    assert text.startswith("# Speed\n\nold table\n") and text.count("<!-- section: Transport") == 1
    assert "1920x1080" in text and "640x480" not in text and "depth table" in text
    # the speed benchmark renews its own part and keeps the others
    results.write_text("# Speed\n\nnew table\n" + harness.marked_sections(results))
    text = results.read_text()
    assert "new table" in text and "old table" not in text
    assert "1920x1080" in text and "depth table" in text


def test_cpu_class_names_what_the_engines_could_use(monkeypatch):
    assert harness.cpu_class(["avx2"]) == "AVX2 only (no AVX-512)"
    assert harness.cpu_class(["avx2", "avx512f", "avx512_bf16"]) == "AVX-512 with bf16/AMX"
    assert harness.cpu_class(["avx2", "avx512f"]) == "AVX-512 (no bf16)"
    # a capped AVX-512 run gets a section of its own, never the real AVX2 machines' one
    capped = harness.cpu_class(["avx2", "avx512f", "avx512_bf16"], "AVX2")
    assert "capped to AVX2" in capped and "partly" in capped and harness.section_slug(capped) != harness.section_slug(harness.cpu_class(["avx2"]))
    assert harness.cpu_class(["avx2"], "AVX2") == "AVX2 only (no AVX-512)"  # nothing to cap
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert harness.machine_info()["isa_cap"] == "AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert harness.machine_info()["isa_cap"] == ""


def test_overrides_take_both_forms_and_refuse_nonsense():
    assert harness.parse_overrides(["detector_interval:=3", "detector = movenet", "a.b=1.5"]) == [
        "detector_interval:=3", "detector:=movenet", "a.b:=1.5"]
    assert harness.override_names(["x:=1", "y:=a:=b"]) == ["x", "y"]
    with pytest.raises(ValueError):
        harness.parse_overrides(["no_value"])
    with pytest.raises(ValueError):
        harness.parse_overrides(["1bad:=2"])


def test_relative_text_hides_machine_paths():
    text = f"{harness.REPO}/.venv/bin/python {Path.home()}/x --source {harness.REPO}"
    out = harness.relative_text(text)
    assert str(harness.REPO) not in out and str(Path.home()) not in out
    assert out.startswith(".venv/bin/python ~/x")


def test_quietest_measures_again_while_busy_and_keeps_the_quietest(monkeypatch):
    monkeypatch.setattr(harness.time, "sleep", lambda s: None)
    seen = iter([0.9, 0.4, 0.6])
    r = harness.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 2, log=lambda t: None)
    assert r == {"other": 0.4, "attempts": 3, "busy": True}
    seen = iter([0.9, 0.1, 0.6])
    r = harness.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 2, log=lambda t: None)
    assert r == {"other": 0.1, "attempts": 2, "busy": False}


def test_quietest_runs_its_hook_before_every_attempt(monkeypatch):
    monkeypatch.setattr(harness.time, "sleep", lambda s: None)
    calls = []
    seen = iter([0.9, 0.1])
    harness.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 3, log=lambda t: None,
                before_each=lambda: calls.append(1))
    assert len(calls) == 2


def test_split_cores_counts_what_exited_inside_the_window_as_other():
    c = harness.split_cores(system_busy=30.0, niced=4.0, steal=1.0, groups={"node": 12.0, "benchmark": 1.0},
                       children=2.0, wall=10.0)
    assert c == {"node": 1.2, "benchmark": 0.1, "reaped children": 0.2, "other processes": 1.5,
                 "other, niced": 0.4, "other, normal priority": 1.1, "steal": 0.1}
    # rounding of the tick counters never gives negative other work
    c = harness.split_cores(1.0, 0.5, 0.0, {"node": 1.01}, 0.0, 1.0)
    assert c["other processes"] == 0.0 and c["other, niced"] == 0.0 and c["other, normal priority"] == 0.0


def test_system_cpu_seconds_grow():
    busy, niced, steal = harness.system_cpu_seconds()
    assert busy > 0 and 0 <= niced <= busy and steal >= 0
    snap = harness.usage_snapshot()
    assert set(snap) == {"t", "procs", "system", "children"}


def test_low_priority_jobs_are_niced_and_not_tests():
    candidates = {10: (19, "python -m lapx_ros.train"), 11: (0, "python benchmarks/run.py"),
                  12: (19, "python -m pytest -q test/test_node.py"), 13: (10, "python x.py"),
                  14: (None, "gone")}
    assert harness.low_priority_jobs(candidates) == [10, 13]
    assert harness.low_priority_jobs(candidates, min_nice=15) == [10]
    assert harness.niceness(os.getpid()) is not None
    assert harness.niceness(10 ** 9) is None


def test_letterbox_keeps_aspect_and_centres():
    image = np.full((100, 400, 3), 200, np.uint8)
    out = scenes.letterbox_to(image, (640, 480))
    assert out.shape == (480, 640, 3)
    # 400x100 -> 640x160, centred vertically: rows 160..319 hold the image
    assert out[159].max() == 0 and out[160].min() == 200 and out[319].min() == 200 and out[320].max() == 0


def test_speed_images_pick_3_to_5_people_without_crowds():
    data = {"images": [{"id": i} for i in (1, 2, 3)],
            "annotations": [{"image_id": 1, "iscrowd": 0}] * 3 + [{"image_id": 1, "iscrowd": 1}]
            + [{"image_id": 2, "iscrowd": 0}] * 6 + [{"image_id": 3, "iscrowd": 0}] * 2}
    assert [im["id"] for im in scenes.speed_images(data)] == [1]


def test_write_held_frames(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
    assert scenes.write_held_frames(frames, 3, tmp_path) == 6
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png")
    assert names == [f"{i:05d}.png" for i in range(6)]
    import cv2

    assert cv2.imread(str(tmp_path / "00002.png")).max() == 0
    assert cv2.imread(str(tmp_path / "00003.png")).min() == 255

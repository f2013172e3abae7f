"""The pure helpers of benchmarks/crowds.py (issue 16's harness): parameter overrides,
the matching protocol of detector_probe.py, tallies, track and latency summaries, frame
preparation and the rendered section. Nothing here starts ROS or a model."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # crowds.py imports bench_tools as its neighbour
    spec = importlib.util.spec_from_file_location("lapx_bench_crowds", BENCH / "crowds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cr = _load()


def test_overrides_take_both_forms_and_refuse_nonsense():
    assert cr.parse_overrides(["detector_interval:=3", "detector = movenet", "a.b=1.5"]) == [
        "detector_interval:=3", "detector:=movenet", "a.b:=1.5"]
    assert cr.override_names(["x:=1", "y:=a:=b"]) == ["x", "y"]
    with pytest.raises(ValueError):
        cr.parse_overrides(["no_value"])
    with pytest.raises(ValueError):
        cr.parse_overrides(["1bad:=2"])


def test_ious_and_crowd_cover():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(cr.ious(np.array([0, 0, 10, 10.0]), boxes), [1.0, 1 / 3, 0.0])
    assert cr.ious(np.array([0, 0, 1, 1.0]), np.zeros((0, 4))).shape == (0,)
    crowd = np.array([[0, 0, 100, 100]], float)
    assert cr.covered_by_crowd([10, 10, 20, 20], crowd)
    assert not cr.covered_by_crowd([90, 90, 120, 120], crowd)  # a quarter inside
    assert not cr.covered_by_crowd([10, 10, 20, 20], np.zeros((0, 4)))


def test_label_poses_greedy_best_score_first():
    people = np.array([[0, 0, 10, 20], [30, 0, 40, 20]], float)
    target = np.array([True, False])
    crowd = np.array([[100, 100, 200, 200]], float)
    boxes = np.array([
        [0, 0, 10, 19],       # 0: target, lower score
        [0, 0, 10, 20],       # 1: target, best score: takes person 0 first
        [30, 0, 40, 20],      # 2: person with few keypoints: true, not a target
        [50, 50, 60, 60],     # 3: false
        [120, 120, 130, 130],  # 4: inside the crowd box: not counted
    ], float)
    scores = np.array([0.5, 0.9, 0.8, 0.7, 0.6])
    kinds = cr.label_poses(boxes, scores, people, target, crowd)
    # pose 0 finds person 0 taken and no other match: false (not in a crowd)
    assert kinds.tolist() == [cr.FALSE, cr.TARGET, cr.OTHER_PERSON, cr.FALSE, cr.IN_CROWD]
    # each person is found once, by the better pose, whatever the input order
    order = [4, 3, 2, 1, 0]
    assert cr.label_poses(boxes[order], scores[order], people, target, crowd).tolist() == kinds[order].tolist()
    assert cr.label_poses(np.zeros((0, 4)), np.zeros(0), people, target, crowd).tolist() == []
    # IoU below 0.5 is no match
    assert cr.label_poses([[0, 0, 10, 9]], [1.0], people, target, crowd).tolist() == [cr.FALSE]


def test_tally_and_coco_people():
    anns = [{"bbox": [0, 0, 10, 20], "num_keypoints": 7, "iscrowd": 0},
            {"bbox": [30, 0, 10, 20], "num_keypoints": 2, "iscrowd": 0},
            {"bbox": [100, 100, 100, 100], "num_keypoints": 0, "iscrowd": 1}]
    boxes, target, crowd = cr.coco_people(anns)
    np.testing.assert_allclose(boxes, [[0, 0, 10, 20], [30, 0, 40, 20]])
    assert target.tolist() == [True, False]
    np.testing.assert_allclose(crowd, [[100, 100, 200, 200]])
    t = cr.tally([np.array([cr.TARGET, cr.OTHER_PERSON, cr.FALSE, cr.IN_CROWD]), np.array([], int)],
                 targets=2, people=3)
    assert (t["targets_found"], t["true"], t["counted"], t["not_counted_in_crowd"]) == (1, 2, 3, 1)
    assert t["recall"] == 0.5 and t["precision"] == pytest.approx(2 / 3)
    assert t["recall_all_people"] == pytest.approx(2 / 3)
    empty = cr.tally([], targets=0, people=0)
    assert np.isnan(empty["recall"]) and np.isnan(empty["precision"])


def test_track_summary_counts_ids_and_short_tracks():
    s = cr.track_summary([[1, 2], [1, 2, 3], [1], [], [4, 0]])
    assert s["frames"] == 5
    assert s["track_ids"] == 4  # 0 = no id, not counted
    assert s["people_per_frame_max"] == 3
    assert s["people_per_frame_mean"] == pytest.approx(8 / 5)
    assert s["frames_with_people"] == 4
    assert s["tracks_of_1_frame"] == 2  # ids 3 and 4


def test_rate_and_latency():
    stamps = 100.0 + np.arange(11) * 0.1
    recv = stamps + 0.05
    r = cr.rate_and_latency(stamps, recv)
    assert r["processed"] == 11
    assert r["rate_hz"] == pytest.approx(10.0)
    assert r["latency_ms_p50"] == pytest.approx(50.0)
    assert np.isnan(cr.rate_and_latency([], [])["rate_hz"])


def test_letterbox_keeps_aspect_and_centres():
    image = np.full((100, 400, 3), 200, np.uint8)
    out = cr.letterbox_to(image, (640, 480))
    assert out.shape == (480, 640, 3)
    # 400x100 -> 640x160, centred vertically: rows 160..319 hold the image
    assert out[159].max() == 0 and out[160].min() == 200 and out[319].min() == 200 and out[320].max() == 0


def test_speed_images_pick_3_to_5_people_without_crowds():
    data = {"images": [{"id": i} for i in (1, 2, 3)],
            "annotations": [{"image_id": 1, "iscrowd": 0}] * 3 + [{"image_id": 1, "iscrowd": 1}]
            + [{"image_id": 2, "iscrowd": 0}] * 6 + [{"image_id": 3, "iscrowd": 0}] * 2}
    assert [im["id"] for im in cr.speed_images(data)] == [1]


def test_write_held_frames(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)]
    assert cr.write_held_frames(frames, 3, tmp_path) == 6
    names = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png")
    assert names == [f"{i:05d}.png" for i in range(6)]
    import cv2

    assert cv2.imread(str(tmp_path / "00002.png")).max() == 0
    assert cv2.imread(str(tmp_path / "00003.png")).min() == 255


def test_relative_text_hides_machine_paths():
    text = f"{cr.ROOT}/.venv/bin/python {Path.home()}/x --source {cr.ROOT}"
    out = cr.relative_text(text)
    assert str(cr.ROOT) not in out and str(Path.home()) not in out
    assert out.startswith(".venv/bin/python ~/x")


def test_render_with_every_part():
    tally = cr.tally([np.array([cr.TARGET, cr.FALSE])], targets=2, people=3)
    coco = {"images": 2, "targets": 2, "people": 3, "still_frames": 2, "scored_frame": 2,
            "last": {**tally, "limb_ap": 0.4, "limb_ap50": 0.6, "limb_ar": 0.5},
            "per_frame": [{**tally, "frame": 1}, {**tally, "frame": 2}],
            "images_le_6_people": {"images": 2, **tally}, "images_gt_6_people": {"images": 0, **cr.tally([], 0, 0)}}
    node = {"processed": 90, "sent": 100, "stale": 10, "rate_hz": 9.0, "latency_ms_p50": 80.0,
            "latency_ms_p95": 140.0, "latency_ms_max": 200.0, "people_per_frame_mean": 3.2,
            "people_per_frame_max": 5, "track_ids": 12, "cores": {"other processes": 0.05},
            "loadavg_1min_at_start": 1.2, "warmup_frames_left_out": 10}
    tracks = cr.track_summary([[1, 2], [1, 2]])
    cost = {"ms_p50": 20.0, "ms_p10": 18.0, "ms_p90": 25.0}
    runs = {"before": {"source": {"commit": "4f264a8", "modified_files": []}, "overrides": [],
                       "describe": {"detector": "HOG", "engine": "openvino"}, "coco": coco,
                       "tracks": tracks, "vtest": node, "settings": {"rate": 10.0},
                       "speed": {"images": [{}] * 11, "hold": 20, "rate": 10.0, "node": node,
                                 "detector_640x480": cost, "detector_vtest": cost, "pause_pattern": "x"},
                       "machine_text": "2-core CPU", "commands": {"coco": ".venv/bin/python benchmarks/crowds.py"}}}
    text = cr.render(runs)
    assert "| before | 0.500 (1/2) | 0.500 (1/2) |" in text
    assert "0.400" in text and "90 / 100 (10)" in text and "20.0 (18.0-25.0)" in text
    assert "2-core CPU" in text and "benchmarks/crowds.py" in text
    assert cr.render({}).endswith("(no runs yet)")


def test_quietest_measures_again_while_busy_and_keeps_the_quietest(monkeypatch):
    monkeypatch.setattr(cr.time, "sleep", lambda s: None)
    seen = iter([0.9, 0.4, 0.6])
    r = cr.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 2, log=lambda t: None)
    assert r == {"other": 0.4, "attempts": 3, "busy": True}
    seen = iter([0.9, 0.1, 0.6])
    r = cr.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 2, log=lambda t: None)
    assert r == {"other": 0.1, "attempts": 2, "busy": False}


def test_split_cores_counts_what_exited_inside_the_window_as_other():
    c = cr.split_cores(system_busy=30.0, niced=4.0, steal=1.0, groups={"node": 12.0, "benchmark": 1.0},
                       children=2.0, wall=10.0)
    assert c == {"node": 1.2, "benchmark": 0.1, "reaped children": 0.2, "other processes": 1.5,
                 "other, niced": 0.4, "other, normal priority": 1.1, "steal": 0.1}
    # rounding of the tick counters never gives negative other work
    c = cr.split_cores(1.0, 0.5, 0.0, {"node": 1.01}, 0.0, 1.0)
    assert c["other processes"] == 0.0 and c["other, niced"] == 0.0 and c["other, normal priority"] == 0.0
    assert cr._others(c) == "0.00 / 0.00" and cr._others({"other processes": 0.5}) == "0.50 / -"


def test_system_cpu_seconds_grow():
    busy, niced, steal = cr.system_cpu_seconds()
    assert busy > 0 and 0 <= niced <= busy and steal >= 0
    snap = cr.usage_snapshot()
    assert set(snap) == {"t", "procs", "system", "children"}


def test_quietest_runs_its_hook_before_every_attempt(monkeypatch):
    monkeypatch.setattr(cr.time, "sleep", lambda s: None)
    calls = []
    seen = iter([0.9, 0.1])
    cr.quietest(lambda: {"other": next(seen)}, lambda x: x["other"], 0.25, 3, log=lambda t: None,
                before_each=lambda: calls.append(1))
    assert len(calls) == 2



def test_low_priority_jobs_are_niced_and_not_tests():
    candidates = {10: (19, "python -m lapx_ros.train"), 11: (0, "python benchmarks/run.py"),
                  12: (19, "python -m pytest -q test/test_node.py"), 13: (10, "python x.py"),
                  14: (None, "gone")}
    assert cr.low_priority_jobs(candidates) == [10, 13]
    assert cr.low_priority_jobs(candidates, min_nice=15) == [10]
    assert cr.niceness(cr.os.getpid()) is not None
    assert cr.niceness(10 ** 9) is None

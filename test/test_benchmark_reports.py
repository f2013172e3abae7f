"""The benchmarks' RESULTS.md sections rendered from their stored figures, through each
benchmark's own command line (``--render``): no run, no model, no ROS."""
import json
import subprocess
import sys
from pathlib import Path

from lapx_ros.testing.people import FALSE, TARGET, tally, track_summary

REPO = Path(__file__).resolve().parents[1]


def render(tmp_path: Path, benchmark: str, stored) -> str:
    figures, results = tmp_path / f"{benchmark}.json", tmp_path / "RESULTS.md"
    figures.write_text(json.dumps(stored))
    results.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{benchmark}", "--render", "--json", str(figures),
                           "--results", str(results)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return results.read_text()


def render_crowds(tmp_path: Path, runs: dict) -> str:
    return render(tmp_path, "crowds", {"runs": runs})


def test_crowds_section_with_every_part(tmp_path):
    counts = tally([[TARGET, FALSE]], targets=2, people=3)
    coco = {"images": 2, "targets": 2, "people": 3, "still_frames": 2, "scored_frame": 2,
            "last": {**counts, "limb_ap": 0.4, "limb_ap50": 0.6, "limb_ar": 0.5},
            "per_frame": [{**counts, "frame": 1}, {**counts, "frame": 2}],
            "images_le_6_people": {"images": 2, **counts}, "images_gt_6_people": {"images": 0, **tally([], 0, 0)}}
    node = {"processed": 90, "sent": 100, "stale": 10, "rate_hz": 9.0, "latency_ms_p50": 80.0,
            "latency_ms_p95": 140.0, "latency_ms_max": 200.0, "people_per_frame_mean": 3.2,
            "people_per_frame_max": 5, "track_ids": 12, "cores": {"other processes": 0.05},
            "loadavg_1min_at_start": 1.2, "warmup_frames_left_out": 10}
    tracks = track_summary([[1, 2], [1, 2]])
    cost = {"ms_p50": 20.0, "ms_p10": 18.0, "ms_p90": 25.0}
    runs = {"before": {"source": {"commit": "4f264a8", "modified_files": []}, "overrides": [],
                       "describe": {"detector": "HOG", "engine": "openvino"}, "coco": coco,
                       "tracks": tracks, "vtest": node, "settings": {"rate": 10.0},
                       "speed": {"images": [{}] * 11, "hold": 20, "rate": 10.0, "node": node,
                                 "detector_640x480": cost, "detector_vtest": cost, "pause_pattern": "x"},
                       "machine_text": "2-core CPU", "commands": {"coco": ".venv/bin/python -m benchmarks.crowds"}}}
    text = render_crowds(tmp_path, runs)
    assert "| before | 0.500 (1/2) | 0.500 (1/2) |" in text
    assert "0.400" in text and "90 / 100 (10)" in text and "20.0 (18.0-25.0)" in text
    assert "2-core CPU" in text and "-m benchmarks.crowds" in text
    assert "(no runs yet)" in render_crowds(tmp_path, {})


def test_presets_section_names_engines_and_ratios(tmp_path):
    row = {"engine": "openvino (bf16, 2 threads)", "network_batch1_ms_p50": 10.0,
           "1_person": {"p50": 16.0, "p95": 20.0}, "3_persons": {"p50": 30.0, "p95": 40.0}}
    mp = {"engine": "mediapipe (model_complexity 2)", "1_person": {"p50": 60.0, "p95": 65.0},
          "3_persons": {"p50": 180.0, "p95": 190.0}}
    stored = {"AVX2": {"machine": {"cpu_model": "X", "cpus": 2, "cpu_flags": ["avx2"]}, "cpu_class": "AVX2",
                       "commit": "abc", "date": "2026-12-03", "repeats": 3, "frames": 60,
                       "systems": {"lapx accurate": row, "mediapipe heavy": mp},
                       "ratios": [["lapx accurate", "mediapipe heavy", 60.0 / 16.0]]}}
    text = render(tmp_path, "presets", stored)
    assert "### AVX2" in text
    assert "| lapx accurate | openvino (bf16, 2 threads) | 10.0 | 16.0 / 20.0 | 30.0 / 40.0 |" in text
    assert "| mediapipe heavy | mediapipe (model_complexity 2) |  | 60.0 / 65.0 | 180.0 / 190.0 |" in text
    assert "lapx accurate against mediapipe heavy, 1 person p50: 3.75x faster per frame" in text


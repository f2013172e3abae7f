"""The presets benchmark's pieces that need no timing: which files it measures and how
its table reads. The timed run is benchmarks/presets.py itself."""
import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("lapx_bench_presets", BENCH / "presets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_preset_is_measured():
    presets = _load()
    from lapx_ros.runtime.engine import MODEL_PRESETS

    files = presets.preset_files()
    assert "default" in files
    assert all(Path(p).name == MODEL_PRESETS[name] for name, p in files.items())


def test_table_names_engines_and_ratios():
    presets = _load()
    row = {"engine": "openvino (bf16, 2 threads)", "network_batch1_ms_p50": 10.0,
           "1_person": {"p50": 16.0, "p95": 20.0}, "3_persons": {"p50": 30.0, "p95": 40.0}}
    mp = {"engine": "mediapipe (model_complexity 2)", "1_person": {"p50": 60.0, "p95": 65.0},
          "3_persons": {"p50": 180.0, "p95": 190.0}}
    text = presets.render({"machine": {"cpu_model": "X", "cpus": 2, "cpu_flags": ["avx2"]}, "cpu_class": "AVX2",
                           "commit": "abc", "date": "2026-12-03", "repeats": 3, "frames": 60,
                           "systems": {"lapx accurate": row, "mediapipe heavy": mp},
                           "ratios": {("lapx accurate", "mediapipe heavy"): 60.0 / 16.0}})
    assert "| lapx accurate | openvino (bf16, 2 threads) | 10.0 | 16.0 / 20.0 | 30.0 / 40.0 |" in text
    assert "| mediapipe heavy | mediapipe (model_complexity 2) |  | 60.0 / 65.0 | 180.0 / 190.0 |" in text
    assert "lapx accurate against mediapipe heavy, 1 person p50: 3.75x faster per frame" in text

"""The shipped default model: it loads through the node's engine, describes itself, and
still scores what it scored when it was shipped (scripts/ship_model.sh recorded it)."""
import json
from pathlib import Path

import pytest

from lapx_ros.data.lsp import load_lsp_records, parse_range
from lapx_ros.evaluation import evaluate_lsp, load_heatmap_fn
from lapx_ros.layouts import MPII_16
from lapx_ros.runtime.engine import create_engine, default_model_path

# Room for the backend's own rounding (bf16 vs f32 kernels differ across CPUs).
MARGIN = 0.02


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = default_model_path()
    assert path, "no model in models/: the package must ship its default model"
    return Path(path)


def test_shipped_model_loads_with_its_metadata(model_path):
    engine = create_engine(str(model_path))
    meta = engine.metadata
    assert meta.joint_names == MPII_16.joint_names
    assert meta.skeleton == MPII_16.skeleton and meta.flip_pairs == MPII_16.flip_pairs
    assert meta.input_width % 64 == 0 and meta.input_height % 64 == 0
    assert meta.extra["model_config"]["num_joints"] == 16


def test_shipped_model_keeps_its_measured_accuracy(model_path, lspet_dir):
    recorded = json.loads(model_path.with_suffix(".eval_sample.json").read_text())
    records = load_lsp_records(lspet_dir / "images", lspet_dir / "joints.mat", parse_range(recorded["range"]))
    infer, meta = load_heatmap_fn(model_path, threads=2)
    result = evaluate_lsp(infer, meta, records, passes=recorded["passes"], decode_method=recorded["decode"])
    assert result["images"] == recorded["images"]
    assert result["pckh"] >= recorded["pckh"] - MARGIN, (result["pckh"], recorded["pckh"])
    assert result["pck_torso"] >= recorded["pck_torso"] - MARGIN

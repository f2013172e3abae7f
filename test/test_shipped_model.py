"""The shipped models (one per preset in models/): each loads through the node's engine,
describes itself, and still scores what it scored when it was shipped on both sets
(scripts/ship_model.sh recorded the figures beside it)."""
import contextlib
import io
import json
from pathlib import Path

import pytest

from lapx_ros.data.lsp import load_lsp_records, parse_range
from lapx_ros.evaluation import evaluate_coco_limbs, evaluate_lsp, load_heatmap_fn
from lapx_ros.layouts import MPII_16
from lapx_ros.runtime.engine import MODEL_PRESETS, create_engine, default_model_path

# Room for the backend's own rounding (bf16 vs f32 kernels differ across CPUs).
MARGIN = 0.02
SHIPPED = [name for name in MODEL_PRESETS if default_model_path(name)]


def test_the_default_preset_is_shipped():
    assert "default" in SHIPPED, "no models/lapx_mpii16.onnx: the package must ship its default model"


@pytest.fixture(scope="module", params=SHIPPED)
def model_path(request) -> Path:
    return Path(default_model_path(request.param))


def recorded(model_path: Path, kind: str) -> dict:
    return json.loads(model_path.with_name(f"{model_path.stem}.{kind}.json").read_text())


def test_shipped_model_loads_with_its_metadata(model_path):
    engine = create_engine(str(model_path))
    meta = engine.metadata
    assert meta.joint_names == MPII_16.joint_names
    assert meta.skeleton == MPII_16.skeleton and meta.flip_pairs == MPII_16.flip_pairs
    assert meta.input_width % 64 == 0 and meta.input_height % 64 == 0
    assert meta.extra["model_config"]["num_joints"] == 16


def test_shipped_model_keeps_its_lspet_accuracy(model_path, lspet_dir):
    sample = recorded(model_path, "eval_sample")
    records = load_lsp_records(lspet_dir / "images", lspet_dir / "joints.mat", parse_range(sample["range"]))
    infer, meta = load_heatmap_fn(model_path, threads=2)
    result = evaluate_lsp(infer, meta, records, passes=sample["passes"], decode_method=sample["decode"])
    assert result["images"] == sample["images"]
    assert result["pckh"] >= sample["pckh"] - MARGIN, (result["pckh"], sample["pckh"])
    assert result["pck_torso"] >= sample["pck_torso"] - MARGIN


def test_shipped_model_keeps_its_coco_accuracy(model_path, coco_dir):
    """The COCO sliver's val2017 people through the node's boxes path (labelled boxes,
    the recorded box_padding), OKS-PCK@0.5 on the 12 limb joints and their keypoint AP."""
    from pycocotools.coco import COCO

    figures = recorded(model_path, "eval_coco")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(coco_dir / "person_keypoints_val2017.json"))
    infer, meta = load_heatmap_fn(model_path, threads=2)
    result = evaluate_coco_limbs(infer, meta, coco, coco_dir / "val2017", decode_method=figures["decode"],
                                 box_padding=figures["box_padding"])
    assert result["people"] == figures["people"]
    assert result["oks_pck"] >= figures["oks_pck"] - MARGIN, (result["oks_pck"], figures["oks_pck"])
    assert result["limb_ap"] >= figures["limb_ap"] - MARGIN

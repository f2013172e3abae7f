"""Engines load and validate model files, refuse broken ones by name and reason, and
report non-finite output instead of returning it."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import build_model

from lapx_ros.runtime.backend import ModelError, openvino_available
from lapx_ros.runtime.engine import MAX_BATCH, InferenceError, create_engine

BACKENDS = ["onnxruntime"] + (["openvino"] if openvino_available() else [])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("m") / "tiny.onnx", input_size=(64, 48))


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_runs_batches(tiny, backend):
    engine = create_engine(tiny, backend, threads=1)
    assert engine.name == backend and backend in engine.description
    assert engine.metadata.num_joints == 16
    out = engine.infer(np.zeros((3, 3, 64, 48), np.float32))
    assert out.shape == (3, 16, 16, 12) and np.isfinite(out).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_batches_run_in_chunks_with_the_same_result(tiny, backend):
    """A crowd's crops run MAX_BATCH at a time (bounded engine memory), in order."""
    engine = create_engine(tiny, backend, threads=1, precision="f32")
    batch = np.random.default_rng(2).normal(size=(2 * MAX_BATCH + 1, 3, 64, 48)).astype(np.float32)
    sizes = []
    run = engine._run
    engine._run = lambda b: sizes.append(len(b)) or run(b)
    out = engine.infer(batch)
    assert sizes == [MAX_BATCH, MAX_BATCH, 1]
    one_by_one = np.concatenate([run(batch[i:i + 1]) for i in range(len(batch))])
    assert out.shape == one_by_one.shape and np.abs(out - one_by_one).max() < 1e-4


def test_backends_agree(tiny):
    if not openvino_available():
        pytest.skip("openvino not installed")
    batch = np.random.default_rng(1).normal(size=(2, 3, 64, 48)).astype(np.float32)
    a = create_engine(tiny, "onnxruntime", 1).infer(batch)
    b = create_engine(tiny, "openvino", 1, precision="f32").infer(batch)
    assert np.abs(a - b).max() < 1e-4


def test_auto_prefers_openvino(tiny):
    expected = "openvino" if openvino_available() else "onnxruntime"
    assert create_engine(tiny, "auto", 1).name == expected


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
@pytest.mark.parametrize("kwargs, problem", [
    (dict(with_metadata=False), "no 'lapx_ros' metadata"),
    (dict(metadata_joints=5), "output dim 1 is 16, expected 5"),
    (dict(output_rank=3), "output has rank 3"),
    (dict(input_rank=3), "input has rank 3"),
])
def test_inconsistent_models_refused(tmp_path, kwargs, problem, backend):
    path = build_model(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelError, match=problem) as info:
        create_engine(path, backend, 1)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_missing_truncated_and_foreign_files_refused(tmp_path, tiny, backend):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(tiny, "rb").read()[:200])
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path, problem in [(tmp_path / "missing.onnx", "does not exist"), (truncated, "not a loadable"),
                          (text, "not a loadable"), (empty, "empty")]:
        with pytest.raises(ModelError, match=problem) as info:
            create_engine(str(path), backend, 1)
        assert str(path) in str(info.value)


def test_bad_backend_name():
    with pytest.raises(ValueError, match="backend"):
        create_engine("x.onnx", "tensorrt", 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_output_raises_inference_error(tmp_path, backend):
    engine = create_engine(build_model(tmp_path / "nan.onnx", nan_output=True), backend, 1)
    with pytest.raises(InferenceError, match="NaN"):
        engine.infer(np.zeros((1, 3, 64, 64), np.float32))


def test_openvino_imported_without_its_converter_which_stays_importable():
    if not openvino_available():
        pytest.skip("openvino not installed")
    code = ("import sys\n"
            "from lapx_ros.runtime.backend import OPENVINO_CONVERTER, import_openvino\n"
            "import_openvino().Core()\n"
            "assert OPENVINO_CONVERTER not in sys.modules\n"
            "from openvino.tools.ovc import convert_model\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_model_presets_name_the_shipped_files(tmp_path, monkeypatch):
    from lapx_ros.runtime import engine

    default = engine.default_model_path()
    assert Path(default).name == engine.MODEL_PRESETS["default"] and Path(default).is_file()
    accurate = engine.default_model_path("accurate")  # "" only where that file is not shipped
    assert accurate == "" or Path(accurate).name == engine.MODEL_PRESETS["accurate"]
    with pytest.raises(ValueError, match="model preset must be one of"):
        engine.default_model_path("fastest")
    # found by its own name, never another file of the folder
    monkeypatch.setattr(engine, "MODEL_PRESETS", {"default": "not_shipped.onnx"})
    assert engine.default_model_path() == ""

"""Training recipes: teacher-labelled sets with their human labels, held-out splits, and a
lapx-train run from a recipe (COCO-17) that validates on LSPET, COCO and a held-out split."""
import json

import numpy as np
import pytest

from lapx_ros import train as train_cli
from lapx_ros.checkpoint import load_checkpoint
from lapx_ros.data.lsp import load_lsp_joints
from lapx_ros.data.recipe import Recipe, TeacherLabels, clip_of, held_out_files, number_range
from lapx_ros.layouts import COCO_17, LSP_14, convert_joints
from lapx_ros.metadata import ModelMetadata


def teacher_file(path, names, boxes, keypoints, ids=None):
    """A teacher labels file as scripts/movenet_teacher_labels.py writes it: variants on
    axis 1, the chosen ensemble first, and per-joint weights."""
    variants = np.stack([keypoints, keypoints + 3.0], axis=1).astype(np.float32)
    fields = dict(image_file=np.array(names), box=np.asarray(boxes, np.float32), keypoints=variants,
                  variants=np.array(["ensemble", "plain"]), weight=np.full(keypoints.shape[:2], 0.8, np.float32))
    if ids is not None:
        fields["annotation_id"] = np.asarray(ids)
    np.savez(path, **fields)
    return path


@pytest.fixture(scope="module")
def recipe_files(tmp_path_factory, fashion_dir, lspet_dir, coco_dir):
    out = tmp_path_factory.mktemp("recipe")
    data = json.loads((fashion_dir / "person_keypoints.json").read_text())
    images = {i["id"]: i["file_name"] for i in data["images"]}
    anns = sorted(data["annotations"], key=lambda a: images[a["image_id"]])[:30]
    human = np.stack([np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in anns])
    teacher = human.copy()
    teacher[..., 2] = 0.9
    fashion = teacher_file(out / "fashion.npz", [images[a["image_id"]] for a in anns],
                           [(x, y, x + w, y + h) for x, y, w, h in (a["bbox"] for a in anns)], teacher,
                           [a["id"] for a in anns])
    lsp = convert_joints(load_lsp_joints(lspet_dir / "joints.mat")[:12], LSP_14, COCO_17)
    lsp[..., 2] = 0.7
    boxes = [(p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()) for p in lsp[:, 5:, :2]]
    lspet = teacher_file(out / "lspet.npz", [f"im{i:05d}.jpg" for i in range(1, 13)], boxes, lsp)
    recipe = {"layout": "coco17",
              "train": [{"name": "lspet", "teacher": str(lspet), "images": str(lspet_dir / "images"),
                         "human_lsp": str(lspet_dir / "joints.mat"), "files": "im00001-im00010",
                         "whole_image": True, "neighbours": True},
                        {"name": "fashion", "teacher": str(fashion), "images": str(fashion_dir / "images"),
                         "human_coco": str(fashion_dir / "person_keypoints.json"), "hold_out_every": 10}],
              "validate": {"lsp": {"images": str(lspet_dir / "images"), "joints": str(lspet_dir / "joints.mat"),
                                   "range": "9001-9003"},
                           "coco": {"annotations": str(coco_dir / "person_keypoints_val2017.json"),
                                    "images": str(coco_dir / "val2017")},
                           "fashion": {"annotations": str(fashion_dir / "person_keypoints.json"),
                                       "images": str(fashion_dir / "images"), "held_out_of": "fashion"}}}
    path = out / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path, human, anns


def test_held_out_files_are_a_fixed_share_by_name():
    names = [f"f{i:03d}.jpg" for i in range(30)]
    held = held_out_files(reversed(names), 10)
    assert held == {"f009.jpg", "f019.jpg", "f029.jpg"} and held_out_files(names, 0) == set()
    assert clip_of("kaiakol_squat_correct_001_07.jpg") == "kaiakol_squat_correct_001"
    assert number_range("im00001-im09000") == (1, 9000)
    with pytest.raises(ValueError):
        number_range("im09000-im00001")


def test_recipe_records_carry_human_labels_and_the_chosen_teacher(recipe_files, lspet_dir):
    path, human, anns = recipe_files
    recipe = Recipe.load(path)
    assert recipe.layout is COCO_17
    lspet = [r for r in recipe.train if r.image_path.parent == lspet_dir / "images"]
    assert [r.image_path.name for r in lspet] == [f"im{i:05d}.jpg" for i in range(1, 11)]
    assert recipe.neighbours == list(range(10))
    labels = convert_joints(load_lsp_joints(lspet_dir / "joints.mat")[:1], LSP_14, COCO_17)[0]
    assert np.allclose(lspet[0].joints, labels) and (lspet[0].joints[:5, 2] == 0).all()
    fashion = [r for r in recipe.train if r not in lspet]
    assert len(fashion) == 27 and len(recipe.held_out["fashion"]) == 3
    assert not {r.image_path.name for r in fashion} & recipe.held_out["fashion"]
    first = fashion[0]
    assert np.allclose(first.joints[:, :2], human[0][:, :2]) and (first.joints[:, 2] == 1).all()
    assert np.allclose(first.teacher[:, :2], human[0][:, :2]) and np.allclose(first.teacher[:, 2], 0.8)
    assert not first.whole_image and lspet[0].whole_image


def test_a_file_that_is_not_teacher_labels_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", landmarks=np.zeros((2, 33, 4)))
    with pytest.raises(ValueError, match="not a teacher labels file"):
        TeacherLabels.load(tmp_path / "other.npz")
    np.savez(tmp_path / "bad.npz", image_file=np.array(["a.jpg"]), box=np.zeros((1, 4)),
             keypoints=np.zeros((1, 2, 16, 3)))
    with pytest.raises(ValueError, match="inconsistent shapes"):
        TeacherLabels.load(tmp_path / "bad.npz")


def test_lapx_train_from_a_recipe_at_two_input_sizes(tmp_path, recipe_files):
    path, _, _ = recipe_files
    tiny = ["--stages", "2", "--channels", "32", "--input-size", "64x80", "--extra-input-sizes", "72x96",
            "--batch-size", "8", "--threads", "2", "--epochs", "1", "--warmup-epochs", "0"]
    assert train_cli.main(["--recipe", str(path), "--out", str(tmp_path)] + tiny) == 0
    state = load_checkpoint(tmp_path / "last.pt")
    meta = ModelMetadata.from_json(state["metadata"])
    assert meta.layout is COCO_17 and (meta.input_width, meta.input_height) == (64, 80)
    row = state["history"][0]
    limbs = [row["val_lsp_pckh"], row["val_coco_limb_oks_hit"], row["val_fashion_limb_oks_hit"]]
    assert row["val_score"] == pytest.approx(np.mean(limbs))
    assert all(0 <= v <= 1 for v in limbs) and "val_coco_ap" in row and row["val_fashion_median_error"] > 0


def test_lapx_train_refuses_inputs_too_small_for_the_hourglass(tmp_path, recipe_files, capsys):
    path, _, _ = recipe_files
    with pytest.raises(SystemExit):
        train_cli.main(["--recipe", str(path), "--out", str(tmp_path), "--input-size", "48x64"])
    assert "at least 64" in capsys.readouterr().err


def test_a_network_trained_at_several_sizes_exports_at_another(tmp_path, recipe_files, lspet_dir, capsys):
    from lapx_ros import export as export_cli
    from lapx_ros.export import read_onnx_metadata

    path, _, _ = recipe_files
    out = tmp_path / "run"
    assert train_cli.main(["--recipe", str(path), "--out", str(out), "--stages", "1", "--channels", "16",
                           "--input-size", "64x80", "--extra-input-sizes", "72x96", "--batch-size", "8",
                           "--max-batches", "1", "--threads", "2"]) == 0
    lsp = ["--lsp-images", str(lspet_dir / "images"), "--lsp-joints", str(lspet_dir / "joints.mat"), "--crops", "2"]
    onnx = tmp_path / "wide.onnx"
    assert export_cli.main([str(out / "last.pt"), str(onnx), "--input-size", "72x96"] + lsp) == 0
    meta = read_onnx_metadata(onnx)
    assert (meta.input_width, meta.input_height) == (72, 96) and meta.layout is COCO_17
    assert export_cli.main([str(out / "last.pt"), str(tmp_path / "small.onnx"), "--input-size", "48x64"] + lsp) == 2
    assert "at least 64" in capsys.readouterr().err and not (tmp_path / "small.onnx").exists()

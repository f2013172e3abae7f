"""COCO and MPII loaders, MPII PCKh, COCO OKS AP, and lapx-eval / lapx-train on them.

COCO tests run on the shared 79-image COCO sliver; a random-weight model scores near 0
there, so AP is checked with predictors whose answer is known: the labels themselves
(AP 1), perturbed labels (AP < 1), and heatmaps drawn from the labels pushed through the
whole crop-decode-map back path (AP close to 1).
"""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest
from conftest import REPO
from tiny_models import build_model

from lapx_ros.data.coco import (annotation_joints, load_coco_people, load_coco_records, person_annotations,
                                xywh_to_xyxy)
from lapx_ros.data.dataset import PoseDataset
from lapx_ros.data.mpii import load_mpii_records
from lapx_ros.data.transforms import TopDownTransform
from lapx_ros.eval import main as eval_main
from lapx_ros.evaluation import coco_keypoint_ap, evaluate_coco, keypoint_result, predict_coco
from lapx_ros.geometry import apply_affine, box_to_center_size
from lapx_ros.heatmaps import encode, to_heatmap_coords
from lapx_ros.layouts import COCO_17, MPII_16
from lapx_ros.metadata import METADATA_KEY, ModelMetadata
from lapx_ros.metrics import MPII_PCKH_JOINTS, mpii_pckh
from lapx_ros.topdown import TopDownPredictor

COCO_DIR = REPO.parent / "shared" / "data" / "coco-mini"
COCO_ANN = COCO_DIR / "person_keypoints_val2017.json"
COCO_IMAGES = COCO_DIR / "val2017"
needs_coco = pytest.mark.skipif(not COCO_ANN.is_file(),
                                reason="shared data missing: ../shared/data/coco-mini (COCO val2017 sliver)")


@pytest.fixture(scope="module")
def coco_people():
    return load_coco_people(COCO_ANN, COCO_IMAGES)


def coco_onnx_model(path, input_size=(64, 48)) -> str:
    """A tiny random 17-joint ONNX model carrying COCO_17 metadata."""
    build_model(path, input_size=input_size, num_joints=17, with_metadata=False)
    model = onnx.load(str(path))
    meta = ModelMetadata.for_layout(COCO_17, *input_size)
    onnx.helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.save(model, str(path))
    return str(path)


# --- COCO ---------------------------------------------------------------------------

@needs_coco
def test_coco_records_are_labelled_uncrowded_people():
    raw = json.loads(COCO_ANN.read_text())
    expected = [a for a in raw["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    records = load_coco_records(COCO_ANN, COCO_IMAGES)
    assert len(records) == len(expected) == 68
    by_box = {tuple(np.round(r.box, 2)): r for r in records}
    for ann in expected:
        x, y, w, h = ann["bbox"]
        record = next(r for b, r in by_box.items() if abs(b[0] - x) < 0.01 and abs(b[1] - y) < 0.01)
        kp = np.asarray(ann["keypoints"], float).reshape(17, 3)
        assert record.joints.shape == (17, 3)
        np.testing.assert_array_equal(record.joints[:, 2], kp[:, 2] > 0)
        np.testing.assert_allclose(record.joints[:, :2], kp[:, :2])
        assert record.image_path.is_file()
        assert record.box[2] <= x + w + 1e-9 and record.box[3] <= y + h + 1e-9


def test_coco_box_conversion_clips_to_the_image():
    assert xywh_to_xyxy([10, 20, 30, 40]) == (10, 20, 40, 60)
    assert xywh_to_xyxy([-5, 20, 30, 400], image_size=(100, 200)) == (0, 20, 25, 199)


@needs_coco
def test_coco_records_train_through_pose_dataset():
    records = load_coco_records(COCO_ANN, COCO_IMAGES)[:2]
    transform = TopDownTransform(COCO_17, (48, 64))
    x, targets, weights = PoseDataset(records, transform, (0.5,) * 3, (0.25,) * 3)[0]
    assert x.shape == (3, 64, 48) and targets.shape == (17, 16, 12) and weights.shape == (17,)


def test_crop_follows_the_labelled_box():
    """With a box, the crop is the box's padded region, not the few visible joints'."""
    transform = TopDownTransform(COCO_17, (48, 64))
    joints = np.zeros((17, 3))
    joints[0] = (50, 30, 1)
    rng = np.random.default_rng(0)
    center, size, rotation = transform.region((200, 200), joints, rng, box=(40, 20, 100, 180))
    expected_center, expected_size = box_to_center_size((40, 20, 100, 180), 0.75)
    np.testing.assert_allclose(center, expected_center)
    np.testing.assert_allclose(size, expected_size)
    assert rotation == 0.0


@needs_coco
def test_labels_as_predictions_score_ap_one(coco_people):
    results = [keypoint_result(a["image_id"], annotation_joints(a)[:, :2], np.ones(17), 1.0)
               for a in person_annotations(coco_people.coco)]
    stats = coco_keypoint_ap(coco_people.coco, results)
    for name in ("ap", "ap50", "ap75", "ar"):
        assert stats[name] == pytest.approx(1.0, abs=1e-6), name


@needs_coco
def test_perturbed_labels_score_below_one(coco_people):
    rng = np.random.default_rng(0)
    results = []
    for a in person_annotations(coco_people.coco):
        noise = rng.normal(0, 0.05 * np.sqrt(a["area"]), (17, 2))
        results.append(keypoint_result(a["image_id"], annotation_joints(a)[:, :2] + noise, np.ones(17), 1.0))
    stats = coco_keypoint_ap(coco_people.coco, results)
    assert 0.0 < stats["ap"] < 0.95
    assert stats["ap50"] >= stats["ap75"]


@needs_coco
def test_no_predictions_score_zero(coco_people):
    assert coco_keypoint_ap(coco_people.coco, [])["ap"] == 0.0


class LabelHeatmapPredictor(TopDownPredictor):
    """Heatmaps drawn from the labels of the person whose box each crop was cut from."""

    def __init__(self, joints_by_center, meta):
        super().__init__(None, meta)
        self.joints_by_center = joints_by_center
        self._maps = []

    def preprocess(self, image_rgb, regions):
        batch, matrices = super().preprocess(image_rgb, regions)
        size = (self.meta.input_width // self.meta.heatmap_stride, self.meta.input_height // self.meta.heatmap_stride)
        self._maps = []
        for (center, _, _), matrix in zip(regions, matrices):
            joints = self.joints_by_center[tuple(np.round(center, 3))]
            points = to_heatmap_coords(apply_affine(joints[:, :2], matrix), self.meta.heatmap_stride)
            self._maps.append(encode(points, joints[:, 2].astype(np.float32), size, 2.0)[0])
        return batch, matrices

    def heatmaps(self, batch):
        return np.stack(self._maps)


@needs_coco
def test_label_heatmaps_through_the_box_crops_score_near_one(coco_people):
    """Box -> crop -> decode -> back to the image loses almost nothing."""
    meta = ModelMetadata.for_layout(COCO_17, 256, 192)
    joints_by_center = {}
    for record in load_coco_records(COCO_ANN, COCO_IMAGES):
        center, _ = box_to_center_size(record.box, 192 / 256)
        joints_by_center[tuple(np.round(center, 3))] = record.joints
    results = predict_coco(LabelHeatmapPredictor(joints_by_center, meta), coco_people)
    assert len(results) == 68
    stats = coco_keypoint_ap(coco_people.coco, results)
    assert stats["ap"] > 0.95 and stats["ap50"] == pytest.approx(1.0)


@needs_coco
def test_evaluate_coco_runs_a_model_and_writes_results(tmp_path):
    people = load_coco_people(COCO_ANN, COCO_IMAGES, limit=4)
    meta = ModelMetadata.for_layout(COCO_17, 64, 48)
    rng = np.random.default_rng(0)

    def infer(batch):
        return rng.random((len(batch), 17, 16, 12)).astype(np.float32)

    result = evaluate_coco(infer, meta, people, results_file=tmp_path / "kp.json")
    assert result["images"] == 4 and result["people"] == sum(len(b) for b in people.boxes.values())
    assert 0.0 <= result["ap"] <= 1.0
    written = json.loads((tmp_path / "kp.json").read_text())
    assert len(written) == result["people"] and len(written[0]["keypoints"]) == 51


@needs_coco
def test_detected_boxes_are_filtered_by_image_category_and_score(tmp_path):
    image_id = sorted(load_coco_people(COCO_ANN, COCO_IMAGES).boxes)[0]
    detections = [{"image_id": image_id, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.9},
                  {"image_id": image_id, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.1},
                  {"image_id": image_id, "category_id": 3, "bbox": [10, 10, 50, 100], "score": 0.9},
                  {"image_id": -1, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.9}]
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(detections))
    people = load_coco_people(COCO_ANN, COCO_IMAGES, detections_file=path, min_score=0.5)
    assert people.boxes == {image_id: [((10.0, 10.0, 60.0, 110.0), 0.9)]}


@needs_coco
def test_lapx_eval_coco_json_and_vis(tmp_path, capsys):
    model = coco_onnx_model(tmp_path / "coco.onnx")
    code = eval_main(["--model", model, "--coco-annotations", str(COCO_ANN), "--coco-images", str(COCO_IMAGES),
                      "--limit", "10", "--json", "--vis", str(tmp_path / "vis"), "--vis-count", "2",
                      "--threads", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert {"ap", "ap50", "ap75", "ar", "images", "people"} <= set(result) and result["images"] == 10
    assert result["boxes"] == "ground truth"
    assert len(load_coco_people(COCO_ANN, COCO_IMAGES, limit=10).boxes) >= 2     # images with people
    pngs = sorted((tmp_path / "vis").glob("*.png"))
    assert len(pngs) == 2 and cv2.imread(str(pngs[0])) is not None


@needs_coco
def test_lapx_eval_refuses_a_model_of_another_layout(tmp_path, capsys):
    # 14 joints of a custom layout: neither COCO's 17 nor MPII's 16 (scored on COCO's limbs)
    model = build_model(tmp_path / "custom.onnx", num_joints=14, metadata_joints=14)
    code = eval_main(["--model", model, "--coco-annotations", str(COCO_ANN), "--coco-images", str(COCO_IMAGES)])
    assert code == 2 and "coco17" in capsys.readouterr().err


# --- MPII ---------------------------------------------------------------------------

def write_mpii(tmp_path, with_images=True):
    """Three people on two images, MATLAB (1-based) coordinates as in the common JSON."""
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    people = []
    for name, center, scale in (("a.jpg", [100, 80], 0.5), ("a.jpg", [200, 90], 0.6), ("b.jpg", [150, 120], 0.8)):
        joints = rng.uniform(20, 220, (16, 2)).round(1).tolist()
        vis = [1] * 16
        vis[3] = 0
        people.append({"image": name, "center": center, "scale": scale, "joints": joints, "joints_vis": vis})
        if with_images:
            cv2.imwrite(str(images / name), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    path = tmp_path / "valid.json"
    path.write_text(json.dumps(people))
    return path, images, people


def test_mpii_records(tmp_path):
    path, images, people = write_mpii(tmp_path)
    records = load_mpii_records(path, images)
    assert len(records) == 3 and len(load_mpii_records(path, images, limit=2)) == 2
    record, person = records[2], people[2]
    assert record.image_path == images / "b.jpg" and record.joints.shape == (16, 3)
    np.testing.assert_allclose(record.joints[:, :2], np.asarray(person["joints"]) - 1)
    assert record.joints[3, 2] == 0 and record.joints[:3, 2].all()
    x0, y0, x1, y1 = record.box
    assert x1 - x0 == pytest.approx(200 * 0.8) and y1 - y0 == pytest.approx(200 * 0.8)
    assert (x0 + x1) / 2 == pytest.approx(149) and (y0 + y1) / 2 == pytest.approx(119 + 15 * 0.8)


def test_mpii_missing_image_and_unlabelled_split_are_errors(tmp_path):
    path, images, _ = write_mpii(tmp_path, with_images=False)
    with pytest.raises(FileNotFoundError, match="2 images"):
        load_mpii_records(path, images)
    unlabelled = tmp_path / "test.json"
    unlabelled.write_text(json.dumps([{"image": "a.jpg", "center": [1, 1], "scale": 1.0}]))
    with pytest.raises(ValueError, match="joints"):
        load_mpii_records(unlabelled, images)


def test_mpii_pckh_hand_computed():
    labels = np.zeros((1, 16, 3))
    labels[0, :, 2] = 1
    labels[0, :, 0] = np.arange(16) * 20.0
    labels[0, MPII_16.index("upper_neck"), :2] = (0, 0)
    labels[0, MPII_16.index("head_top"), :2] = (0, 10)         # head size 10: threshold 5
    pred = labels[..., :2].copy()
    pred[0, MPII_16.index("right_ankle"), 0] += 6                # wrong
    pred[0, MPII_16.index("left_wrist"), 1] += 4.9               # right
    pred[0, MPII_16.index("pelvis"), 0] += 100                   # not scored
    result = mpii_pckh(pred, labels)
    assert len(MPII_PCKH_JOINTS) == 14 and result.scored_joints == 14
    assert result.accuracy == pytest.approx(13 / 14)
    assert result.per_joint["right_ankle"] == 0.0 and "pelvis" not in result.per_joint


def test_lapx_eval_mpii_json_and_vis(tmp_path, capsys):
    path, images, _ = write_mpii(tmp_path)
    model = build_model(tmp_path / "mpii.onnx")
    code = eval_main(["--model", model, "--mpii-annotations", str(path), "--mpii-images", str(images),
                      "--json", "--vis", str(tmp_path / "vis"), "--threads", "1"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["people"] == 3 and 0.0 <= result["pckh"] <= 1.0 and 0.0 <= result["pck_torso"] <= 1.0
    assert len(list((tmp_path / "vis").glob("*.png"))) == 2          # one per image, both people on a.jpg


# --- CLIs ---------------------------------------------------------------------------

def test_lapx_eval_help_names_every_dataset():
    out = subprocess.run([sys.executable, "-m", "lapx_ros.eval", "--help"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    for flag in ("--lsp-images", "--mpii-annotations", "--coco-annotations", "--coco-detections", "--vis"):
        assert flag in out


def test_lapx_eval_needs_exactly_one_dataset(capsys):
    with pytest.raises(SystemExit) as exc:
        eval_main(["--model", "m.onnx"])
    assert exc.value.code == 2 and "name one dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        eval_main(["--model", "m.onnx", "--coco-annotations", "a.json"])
    assert "--coco-images" in capsys.readouterr().err


@needs_coco
def test_lapx_train_on_coco_one_tiny_epoch(tmp_path):
    from lapx_ros.checkpoint import load_checkpoint
    from lapx_ros.train import main as train_main

    out = tmp_path / "run"
    code = train_main(["--coco-annotations", str(COCO_ANN), "--coco-images", str(COCO_IMAGES),
                       "--coco-val-annotations", str(COCO_ANN), "--coco-val-images", str(COCO_IMAGES),
                       "--val-limit", "2", "--out", str(out), "--input-size", "64x64", "--stages", "1",
                       "--channels", "16", "--epochs", "1", "--batch-size", "34", "--threads", "1"])
    assert code == 0
    state = load_checkpoint(out / "last.pt")
    assert state["model_config"]["num_joints"] == 17
    assert ModelMetadata.from_json(state["metadata"]).layout_name == "coco17"
    row = state["history"][0]
    assert {"val_ap", "val_ar"} <= set(row) and "val_pckh" not in row
    assert json.loads((out / "args.json").read_text())["whole_image_prob"] == 0.0
    assert (out / "curves.png").is_file() and (out / "best.pt").is_file()

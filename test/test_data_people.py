"""Everyday people beside LSPET: teacher-labelled footage, COCO people in MPII-16,
OKS-PCK on COCO's limb joints, the neighbours augmentation and a 3:4 input.

The mapping, metric and augmentation tests run on synthetic data; those that read the
teacher labels (training/teacher/) with the shared footage or COCO sliver skip, saying
so, when ../shared/data is missing.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO, SHARED_DATA

from lapx_ros import train as train_cli
from lapx_ros.checkpoint import load_checkpoint
from lapx_ros.data.coco import open_coco
from lapx_ros.data.dataset import PoseDataset
from lapx_ros.data.lsp import PoseRecord
from lapx_ros.data.people import (clip_names, landmarks_box, load_coco_mpii_records, load_footage_records,
                                  split_clips)
from lapx_ros.data.teacher import blazepose_joints
from lapx_ros.data.transforms import AugmentConfig, TopDownTransform, paste_neighbour
from lapx_ros.evaluation import coco_limb_people, score_coco_limbs
from lapx_ros.layouts import COCO_17, MPII_16, convert_joints
from lapx_ros.metrics import COCO_LIMB_JOINTS, oks_pck

TEACHER = REPO / "training" / "teacher"
FOOTAGE_LABELS = TEACHER / "footage_exercise_heavy.npz"
COCO_TEACHER = TEACHER / "coco_train2017_heavy.npz"
FOOTAGE = SHARED_DATA / "footage" / "exercise"
COCO = SHARED_DATA / "coco-mini"

needs_footage = pytest.mark.skipif(not FOOTAGE.is_dir() or not FOOTAGE_LABELS.is_file(),
                                   reason=f"footage missing: expected {FOOTAGE} and {FOOTAGE_LABELS}")
needs_coco = pytest.mark.skipif(not (COCO / "person_keypoints_train2017.json").is_file(),
                                reason=f"COCO sliver missing: expected {COCO}")
NO_AUGMENT_BUT = dict(scale_sigma=0, rotation_sigma=0, rotation_prob=0, flip_prob=0, half_body_prob=0,
                      whole_image_prob=0, color_jitter=0, center_shift=0)


def synthetic_landmarks(rng, n=3):
    marks = np.zeros((n, 33, 4))
    marks[..., :2] = rng.uniform(10, 200, (n, 33, 2))
    marks[..., 2] = rng.normal(size=(n, 33))
    marks[..., 3] = 0.9
    return marks


def test_blazepose_landmarks_become_mpii_joints():
    marks = synthetic_landmarks(np.random.default_rng(0))
    marks[1, 16, 3] = 0.1          # right wrist barely visible
    marks[2] = np.nan              # the teacher found nobody
    joints = blazepose_joints(marks)
    assert joints.shape == (3, 16, 3)
    assert np.allclose(joints[0, MPII_16.index("right_wrist"), :2], marks[0, 16, :2])
    assert np.allclose(joints[0, MPII_16.index("left_shoulder"), :2], marks[0, 11, :2])
    assert np.allclose(joints[0, MPII_16.index("pelvis"), :2], (marks[0, 23, :2] + marks[0, 24, :2]) / 2)
    assert joints[0, [MPII_16.index("upper_neck"), MPII_16.index("head_top")], 2].sum() == 0
    assert joints[1, MPII_16.index("right_wrist"), 2] == 0 and joints[1, MPII_16.index("left_wrist"), 2] == 1
    assert np.isfinite(joints[2]).all() and joints[2, :, 2].sum() == 0


def test_landmarks_box_reaches_above_the_nose():
    marks = np.full((33, 4), np.nan)
    marks[:, 3] = 0.0
    points = {0: (50, 40), 11: (60, 60), 12: (40, 60), 23: (58, 100), 24: (42, 100)}
    for i, (x, y) in points.items():
        marks[i] = (x, y, 0, 1)
    x0, y0, x1, y1 = landmarks_box(marks)
    assert (x0, x1, y1) == (40, 60, 100) and y0 < 40
    marks[:, 3] = 0
    assert landmarks_box(marks) is None


def test_coco_joints_map_to_mpii_and_back():
    rng = np.random.default_rng(1)
    coco = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    coco[COCO_17.index("left_knee"), 2] = 0
    mpii = convert_joints(coco, COCO_17, MPII_16)
    assert np.allclose(mpii[MPII_16.index("right_ankle")], coco[COCO_17.index("right_ankle")])
    assert mpii[MPII_16.index("left_knee"), 2] == 0
    assert np.allclose(mpii[MPII_16.index("thorax"), :2],
                       coco[[COCO_17.index("left_shoulder"), COCO_17.index("right_shoulder")], :2].mean(0))
    assert mpii[[MPII_16.index("upper_neck"), MPII_16.index("head_top")], 2].sum() == 0
    back = convert_joints(mpii[:, :2], MPII_16, COCO_17, missing=np.nan)
    assert np.allclose(back[list(COCO_LIMB_JOINTS)], coco[list(COCO_LIMB_JOINTS), :2])
    assert np.isnan(back[:5]).all()


def test_clips_split_into_disjoint_sets_whatever_the_frames():
    clips = [f"src_clip_{i:03d}" for i in range(12)]
    train, val = split_clips(clips * 3)
    assert train.isdisjoint(val) and train | val == set(clips) and len(val) == 2
    assert split_clips(list(reversed(clips))) == (train, val)
    assert split_clips(clips, val_every=0) == (set(clips), set())


def test_oks_pck_scores_the_labels_perfectly_and_misses_as_wrong():
    rng = np.random.default_rng(2)
    labels = np.concatenate([rng.uniform(0, 300, (4, 17, 2)), np.ones((4, 17, 1))], axis=2)
    labels[0, 9, 2] = 0
    areas = np.full(4, 100.0 ** 2)
    accuracy, per_joint, scored = oks_pck(labels[..., :2], labels, areas)
    assert accuracy == 1.0 and scored == 4 * 12 - 1 and np.all(per_joint == 1.0)
    pred = labels[..., :2].copy()
    pred[1] = np.nan
    pred[2] += 60.0                  # far off for a person of area 100^2
    accuracy, _, _ = oks_pck(pred, labels, areas)
    assert accuracy == pytest.approx((2 * 12 - 1) / (4 * 12 - 1))


def person_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey image with a bright stick figure, and its MPII joints."""
    rng = np.random.default_rng(seed)
    image = np.full((200, 160, 3), 60, np.uint8)
    centre = np.array([80.0, 100.0]) + rng.uniform(-10, 10, 2)
    offsets = {"head_top": (0, -80), "upper_neck": (0, -55), "thorax": (0, -45), "pelvis": (0, 10),
               "right_shoulder": (-20, -45), "left_shoulder": (20, -45), "right_elbow": (-30, -15),
               "left_elbow": (30, -15), "right_wrist": (-35, 10), "left_wrist": (35, 10),
               "right_hip": (-12, 10), "left_hip": (12, 10), "right_knee": (-14, 45), "left_knee": (14, 45),
               "right_ankle": (-15, 80), "left_ankle": (15, 80)}
    joints = np.zeros((16, 3))
    for name, (dx, dy) in offsets.items():
        joints[MPII_16.index(name)] = (centre[0] + dx, centre[1] + dy, 1)
    for a, b in MPII_16.skeleton:
        import cv2

        cv2.line(image, tuple(int(v) for v in joints[a, :2]), tuple(int(v) for v in joints[b, :2]), (240, 200, 50), 6)
    return image, joints


def test_a_neighbour_changes_the_crop_but_not_the_targets():
    image, joints = person_image(0)
    other_image, other_joints = person_image(1)
    transform = TopDownTransform(MPII_16, (48, 64), 4, 1.5, AugmentConfig(**NO_AUGMENT_BUT))
    crop, targets, weights = transform(image, joints, np.random.default_rng(0))
    pasted, p_targets, p_weights = transform(image, joints, np.random.default_rng(0),
                                             neighbour=(other_image, other_joints))
    assert pasted.shape == crop.shape and not np.array_equal(pasted, crop)
    assert np.array_equal(targets, p_targets) and np.array_equal(weights, p_weights)


def test_a_neighbour_behind_leaves_the_centred_person_on_top():
    image, joints = person_image(0)
    other = np.full_like(image, 255)
    transform = TopDownTransform(MPII_16, (96, 128), 4, 1.5, AugmentConfig(**NO_AUGMENT_BUT))
    center, size, _ = transform.region(image.shape, joints, np.random.default_rng(0))
    from lapx_ros.geometry import apply_affine, crop_transform, warp_crop

    matrix = crop_transform(center, size, (96, 128))
    crop = warp_crop(image, matrix, (96, 128))
    points = apply_affine(joints[:, :2], matrix)
    for seed in range(5):
        out = paste_neighbour(crop, points, joints[:, 2] > 0, other, joints, MPII_16,
                              np.random.default_rng(seed), behind=True)
        thorax = np.round(points[MPII_16.index("thorax")]).astype(int)
        assert np.array_equal(out[thorax[1], thorax[0]], crop[thorax[1], thorax[0]])


def test_neighbours_off_leave_the_samples_as_they_were():
    records = [PoseRecord(None, person_image(i)[1]) for i in range(4)]
    images = [person_image(i)[0] for i in range(4)]

    def dataset(prob):
        ds = PoseDataset(records, TopDownTransform(MPII_16, (48, 64), 4, 1.5, AugmentConfig(neighbour_prob=prob)),
                         (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        ds._cache = dict(enumerate(images))
        return ds

    plain, off, on = dataset(0.0), dataset(0.0), dataset(1.0)
    assert all(np.array_equal(plain[i][0], off[i][0]) for i in range(4))
    assert any(not np.array_equal(plain[i][0], on[i][0]) for i in range(4))
    assert all(np.array_equal(plain[i][1], on[i][1]) for i in range(4))


def test_input_sizes_parse_in_multiples_of_four():
    assert train_cli.parse_size("96x128") == (96, 128)
    assert train_cli.parse_size("120x160") == (120, 160)
    assert train_cli.parse_size("128") == (128, 128)
    for bad in ("102x128", "0x128"):
        with pytest.raises(Exception):
            train_cli.parse_size(bad)


@needs_footage
def test_footage_records_split_by_clip():
    clips = clip_names(FOOTAGE_LABELS)
    assert len(clips) == 35
    train_clips, val_clips = split_clips(clips)
    train = load_footage_records(FOOTAGE_LABELS, FOOTAGE, train_clips)
    val = load_footage_records(FOOTAGE_LABELS, FOOTAGE, val_clips)
    assert len(train) > 400 and len(val) > 80
    names = {r.image_path.name.rsplit("_", 1)[0] for r in train}
    assert names <= train_clips and names.isdisjoint(val_clips)
    for record in train[:20]:
        x0, y0, x1, y1 = record.box
        limbs = record.joints[record.joints[:, 2] > 0, :2]
        assert x0 <= limbs[:, 0].min() and limbs[:, 0].max() <= x1 and y0 <= limbs[:, 1].min() <= y1
        assert record.whole_image and record.teacher is None


@needs_coco
def test_coco_people_in_mpii_with_their_teacher():
    records = load_coco_mpii_records(COCO / "person_keypoints_train2017.json", COCO / "train2017", COCO_TEACHER)
    assert len(records) == 86
    assert all(not r.whole_image and r.box is not None and r.teacher.shape == (16, 3) for r in records)
    with_teacher = [r for r in records if r.teacher[:, 2].any()]
    assert len(with_teacher) > 30
    # The teacher saw the same person: its shoulders lie near the labelled ones.
    close = []
    for r in with_teacher:
        j = MPII_16.index("right_shoulder")
        if r.joints[j, 2] and r.teacher[j, 2]:
            scale = max(r.box[2] - r.box[0], r.box[3] - r.box[1])
            close.append(np.linalg.norm(r.joints[j, :2] - r.teacher[j, :2]) < 0.15 * scale)
    assert np.mean(close) > 0.7


@needs_coco
def test_coco_limbs_score_the_labels_perfectly():
    coco = open_coco(COCO / "person_keypoints_val2017.json")
    people = coco_limb_people(coco)
    assert len(people) == 57
    labels = np.stack([np.asarray(a["keypoints"], float).reshape(17, 3)[:, :2] for a in people])
    result = score_coco_limbs(coco, people, labels)
    assert result["oks_pck"] == 1.0 and result["people"] == 57
    result = score_coco_limbs(coco, people, np.full_like(labels, np.nan))
    assert result["oks_pck"] == 0.0


@needs_footage
@needs_coco
def test_lapx_train_beside_lsp_on_footage_and_coco(tmp_path, lspet_dir):
    d = SHARED_DATA
    argv = ["--lsp-images", str(lspet_dir / "images"), "--lsp-joints", str(lspet_dir / "joints.mat"),
            "--train-range", "1-16", "--val-range", "9001-9002", "--stages", "1", "--channels", "16",
            "--input-size", "64x96", "--batch-size", "8", "--threads", "2", "--out", str(tmp_path),
            "--footage-labels", str(FOOTAGE_LABELS), "--footage-images", str(FOOTAGE),
            "--coco-mpii-annotations", str(d / "coco-mini/person_keypoints_train2017.json"),
            "--coco-mpii-images", str(d / "coco-mini/train2017"), "--coco-mpii-teacher", str(COCO_TEACHER),
            "--neighbours", "0.5", "--max-batches", "2"]
    assert train_cli.main(argv) == 0
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["batch_index"] == 2 and '"input_width": 64' in state["metadata"].replace("'", '"')


def test_people_flags_need_lsp(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--mpii-annotations", "a.json", "--mpii-val-annotations", "b.json", "--mpii-images", "x",
                        "--out", str(tmp_path), "--neighbours", "0.3"])
    assert "--neighbours" in capsys.readouterr().err


@needs_coco
def test_lapx_eval_scores_an_mpii_model_on_coco_limbs(tmp_path, capsys):
    from tiny_models import build_model

    from lapx_ros.eval import main as eval_main

    model = build_model(tmp_path / "mpii.onnx", input_size=(64, 48))   # 16 MPII joints, 48x64 (3:4)
    code = eval_main(["--model", model, "--coco-annotations", str(COCO / "person_keypoints_val2017.json"),
                      "--coco-images", str(COCO / "val2017"), "--json", "--backend", "onnxruntime"])
    import json

    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["people"] == 57 and 0 <= result["oks_pck"] < 0.5
    assert set(result["per_joint_oks_pck"]) == {COCO_17.joint_names[j] for j in COCO_LIMB_JOINTS}
    assert "limb_ap" in result and result["input_size"] == [48, 64]

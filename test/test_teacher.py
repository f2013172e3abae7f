"""MediaPipe landmarks as a second training target: mapping, crops, and a training run."""
import numpy as np
import pytest

from lapx_ros import train as train_cli
from lapx_ros.checkpoint import load_checkpoint
from lapx_ros.data.lsp import load_lsp_joints, load_lsp_records
from lapx_ros.data.teacher import attach_teacher, load_teacher_joints
from lapx_ros.data.transforms import AugmentConfig, TopDownTransform, read_rgb
from lapx_ros.layouts import LSP_14, MPII_16, convert_joints

LIMBS = [MPII_16.index(n) for n in MPII_16.joint_names if n not in ("pelvis", "thorax", "upper_neck", "head_top")]


@pytest.fixture(scope="module")
def landmarks_file(lspet_dir):
    path = lspet_dir / "mediapipe_heavy_landmarks.npz"
    if not path.is_file():
        pytest.skip(f"MediaPipe landmarks missing: expected {path}")
    return path


@pytest.fixture(scope="module")
def teacher(landmarks_file):
    return load_teacher_joints(landmarks_file)


def test_teacher_covers_the_images_mediapipe_found(landmarks_file, teacher):
    data = np.load(landmarks_file)
    assert len(teacher) == int(data["found"].sum())
    index = next(iter(teacher))
    marks, joints = data["landmarks"][index - 1], teacher[index]
    assert np.allclose(joints[MPII_16.index("right_wrist"), :2], marks[16, :2])
    assert np.allclose(joints[MPII_16.index("pelvis"), :2], (marks[23, :2] + marks[24, :2]) / 2)
    assert (joints[[MPII_16.index("upper_neck"), MPII_16.index("head_top")], 2] == 0).all()


def test_teacher_joints_agree_with_the_labels_joint_by_joint(lspet_dir, teacher):
    """A wrong landmark index or a left/right mix-up would put most joints far off."""
    labels = convert_joints(load_lsp_joints(lspet_dir / "joints.mat"), LSP_14, MPII_16)[:500]
    head = np.linalg.norm(labels[:, MPII_16.index("upper_neck"), :2] - labels[:, MPII_16.index("head_top"), :2], axis=1)
    for j in LIMBS:
        hits = [np.linalg.norm(teacher[i][j, :2] - labels[i - 1, j, :2]) <= 0.5 * head[i - 1]
                for i in range(1, 501) if i in teacher and teacher[i][j, 2] > 0 and labels[i - 1, j, 2] > 0]
        assert len(hits) > 200 and np.mean(hits) > 0.6, (MPII_16.joint_names[j], np.mean(hits))


def test_teacher_targets_go_through_the_same_crop_and_flip(lspet_dir):
    """The labels given as the teacher too must give the same targets twice, and the
    teacher must not change the crop."""
    records = load_lsp_records(lspet_dir / "images", lspet_dir / "joints.mat", (1, 4))
    transform = TopDownTransform(MPII_16, (64, 64), augment=AugmentConfig(flip_prob=1.0, whole_image_prob=0))
    for record in records:
        image = read_rgb(record.image_path)
        crop, targets, weights, t_targets, t_weights = transform(image, record.joints, np.random.default_rng(0),
                                                                 None, record.joints)
        assert np.array_equal(targets, t_targets) and np.array_equal(weights, t_weights)
        plain = transform(image, record.joints, np.random.default_rng(0))
        assert np.array_equal(plain[0], crop) and np.array_equal(plain[1], targets)


def test_an_image_the_teacher_missed_has_no_teacher_target(lspet_dir, landmarks_file, teacher):
    missed = int(np.flatnonzero(~np.load(landmarks_file)["found"][:9000])[0]) + 1
    (record,) = attach_teacher(load_lsp_records(lspet_dir / "images", lspet_dir / "joints.mat",
                                                (missed, missed)), missed, teacher)
    assert record.teacher.shape == (16, 3) and not record.teacher[:, 2].any()


def test_lapx_train_with_a_teacher(tmp_path, lspet_dir, landmarks_file):
    lsp = ["--lsp-images", str(lspet_dir / "images"), "--lsp-joints", str(lspet_dir / "joints.mat")]
    tiny = ["--stages", "2", "--channels", "32", "--input-size", "64", "--batch-size", "8", "--threads", "2"]
    assert train_cli.main(lsp + tiny + ["--train-range", "1-32", "--val-range", "9001-9002", "--out", str(tmp_path),
                                        "--teacher-landmarks", str(landmarks_file), "--max-batches", "2"]) == 0
    assert load_checkpoint(tmp_path / "last.pt")["batch_index"] == 2


def test_teacher_needs_lsp_training_data(tmp_path, landmarks_file, capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--mpii-annotations", "a.json", "--mpii-val-annotations", "b.json", "--mpii-images", "x",
                        "--out", str(tmp_path), "--teacher-landmarks", str(landmarks_file)])
    assert "--teacher-landmarks" in capsys.readouterr().err

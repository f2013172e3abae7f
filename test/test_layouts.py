"""Joint layouts: one table of facts per layout, and joints moved between layouts by name."""
import numpy as np
import pytest
import torch

from lapx_ros import train as train_cli
from lapx_ros.layouts import (BLAZEPOSE_33, COCO_17, LAYOUTS, LIMB_JOINT_NAMES, LSP_14, MPII_16, JointLayout,
                              convert_joints, layout_for)
from lapx_ros.metadata import ModelMetadata
from lapx_ros.model import LapxConfig, LapxNet


@pytest.mark.parametrize("layout", [MPII_16, LSP_14, COCO_17])
def test_human_layouts_have_limbs_torso_and_mirror_pairs(layout):
    names = layout.common_names
    assert [names[j] for j in layout.limb_joints] == list(LIMB_JOINT_NAMES)
    assert {names[j] for j in layout.torso_joints} >= {"left_shoulder", "right_shoulder", "left_hip", "right_hip"}
    perm = layout.flip_permutation()
    for i, name in enumerate(layout.joint_names):
        mirrored = layout.joint_names[perm[i]]
        assert mirrored == name.replace("left", "#").replace("right", "left").replace("#", "right")


def test_flip_pairs_of_blazepose_mirror_left_and_right():
    perm = BLAZEPOSE_33.flip_permutation()
    for i, name in enumerate(BLAZEPOSE_33.joint_names):
        assert BLAZEPOSE_33.joint_names[perm[i]] == name.replace("left", "#").replace("right", "left").replace("#", "right")


def test_only_coco_has_oks_sigmas_and_only_lsp_mpii_a_head_size():
    assert COCO_17.sigmas().shape == (17,) and COCO_17.head_size is None
    with pytest.raises(ValueError):
        MPII_16.sigmas()
    assert LSP_14.head_size == ("neck", "head_top") and MPII_16.head_size == ("upper_neck", "head_top")


def test_lsp_to_mpii_keeps_joints_derives_pelvis_and_maps_the_neck():
    rng = np.random.default_rng(0)
    lsp = np.concatenate([rng.uniform(0, 100, (2, 14, 2)), np.ones((2, 14, 1))], axis=2)
    lsp[1, LSP_14.index("left_hip"), 2] = 0
    mpii = convert_joints(lsp, LSP_14, MPII_16)
    for name in LSP_14.joint_names:
        target = "upper_neck" if name == "neck" else name
        assert np.allclose(mpii[:, MPII_16.index(target)], lsp[:, LSP_14.index(name)])
    pelvis = MPII_16.index("pelvis")
    hips = [LSP_14.index("left_hip"), LSP_14.index("right_hip")]
    assert np.allclose(mpii[:, pelvis, :2], lsp[:, hips, :2].mean(1))
    assert mpii[0, pelvis, 2] == 1 and mpii[1, pelvis, 2] == 0


def test_joints_a_source_lacks_are_unlabelled_or_missing():
    coco = convert_joints(np.ones((16, 3)), MPII_16, COCO_17)
    assert (coco[:5] == 0).all() and (coco[5:] == 1).all()
    nan = convert_joints(np.ones((16, 2)), MPII_16, COCO_17, missing=np.nan)
    assert np.isnan(nan[:5]).all() and np.isfinite(nan[5:]).all()
    with pytest.raises(ValueError):
        convert_joints(np.ones((17, 3)), MPII_16, COCO_17)


def test_a_layout_with_bad_facts_is_refused():
    with pytest.raises(ValueError):
        JointLayout("bad", ("a", "b"), ((0, 1),), (), oks_sigmas=(0.1,))
    with pytest.raises(ValueError):
        JointLayout("bad", ("a", "b"), (), (), head_size=("a", "c"))
    with pytest.raises(ValueError):
        JointLayout("bad", ("a", "b", "c"), (), (), derived=(("c", "a", "z"),))


def test_model_files_name_their_layout_or_carry_it():
    assert ModelMetadata.for_layout(COCO_17, 128, 96).layout is COCO_17
    own = layout_for("hands2", ("left_wrist", "right_wrist"), ((0, 1),), ((0, 1),))
    assert own.name == "hands2" and own.flip_permutation() == [1, 0] and own.limb_joints == ()
    assert set(LAYOUTS) >= {"mpii16", "coco17"}


def test_start_weights_of_another_layout_are_reindexed_by_joint_name():
    torch.manual_seed(0)
    mpii = LapxNet(LapxConfig(num_joints=16, num_stages=2, channels=16, hourglass_depth=2, nonlocal_stages=(1,)))
    coco = LapxNet(LapxConfig(num_joints=17, num_stages=2, channels=16, hourglass_depth=2, nonlocal_stages=(1,)))
    weights = train_cli.joint_rows(mpii.state_dict(), coco, MPII_16, COCO_17)
    train_cli.load_start_weights(coco, weights)
    head_m, head_c = mpii.stages[-1].head.weight, coco.stages[-1].head.weight
    for name in LIMB_JOINT_NAMES:
        assert torch.equal(head_c[COCO_17.index(name)], head_m[MPII_16.index(name)])
    assert torch.equal(head_c[COCO_17.index("nose")], head_m[MPII_16.index("head_top")])
    remap_m, remap_c = mpii.stages[0].remap_heatmaps.weight, coco.stages[0].remap_heatmaps.weight
    assert torch.equal(remap_c[:, COCO_17.index("left_wrist")], remap_m[:, MPII_16.index("left_wrist")])

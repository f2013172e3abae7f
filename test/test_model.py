"""LAPX network: module shapes, parameter counts, MACs and the stage ablation."""
import pytest
import torch

from lapx_ros.model import LapxConfig, LapxNet, build_lapx
from lapx_ros.model.attention import EcaAttention, EcaCbam, EcaNonLocal, NonLocalBlock, SpatialAttention, eca_kernel_size
from lapx_ros.model.blocks import DepthwiseSeparableBottleneck, ResidualBottleneck, SoftGatedBottleneck
from lapx_ros.model.complexity import count_gmacs, count_parameters


def test_default_network_has_papers_parameter_count():
    params = count_parameters(build_lapx())
    assert abs(params - 2.30e6) / 2.30e6 <= 0.03, params


def test_default_network_macs_match_paper_scale():
    model = build_lapx()
    assert 2.9 <= count_gmacs(model, 256, 256) <= 3.5
    assert 2.2 <= count_gmacs(model, 256, 192) <= 2.7


@pytest.mark.parametrize("stages", [2, 3, 4, 5])
def test_stage_count_is_configurable_and_supervises_every_stage(stages):
    model = LapxNet(LapxConfig(num_stages=stages, channels=32, nonlocal_stages=(1,)))
    model.train()
    outputs = model(torch.randn(2, 3, 128, 64))
    assert len(outputs) == stages
    assert all(o.shape == (2, 16, 32, 16) for o in outputs)
    model.eval()
    assert model(torch.randn(1, 3, 128, 64)).shape == (1, 16, 32, 16)


def test_any_joint_count():
    model = LapxNet(LapxConfig(num_joints=17, channels=32)).eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)


def test_nonlocal_sits_in_first_and_third_stage_only():
    model = build_lapx()
    kinds = [type(stage.hourglass.inner.inner.inner.inner[1]) for stage in model.stages]
    assert kinds == [EcaNonLocal, EcaAttention, EcaNonLocal]
    assert len(model.nonlocal_blocks()) == 2


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError):
        LapxConfig(num_stages=2, nonlocal_stages=(1, 3))
    with pytest.raises(ValueError):
        LapxConfig(num_stages=0)


def test_config_round_trips_through_dict():
    config = LapxConfig(num_stages=2, nonlocal_stages=(1,))
    assert LapxConfig.from_dict(config.to_dict()) == config


def test_bottleneck_shapes_and_parameters():
    block = DepthwiseSeparableBottleneck(208, 208)
    assert block(torch.randn(1, 208, 8, 8)).shape == (1, 208, 8, 8)
    # 1x1 reduce 208->104, 3x3 depthwise 104, 1x1 expand 104->208, three BNs.
    assert count_parameters(block) == 208 * 104 + 9 * 104 + 104 * 208 + 2 * (208 + 104 + 104)
    assert ResidualBottleneck(64, 128)(torch.randn(1, 64, 8, 8)).shape == (1, 128, 8, 8)


def test_soft_gate_scales_the_skip_per_channel():
    block = SoftGatedBottleneck(16)
    assert block.alpha.shape == (1, 16, 1, 1)
    x = torch.randn(1, 16, 4, 4)
    with torch.no_grad():
        block.alpha.zero_()
        body_only = block(x)
        block.alpha.fill_(2.0)
        assert torch.allclose(block(x), body_only + 2 * x, atol=1e-6)


def test_attention_modules_keep_shape():
    x = torch.randn(2, 208, 8, 8)
    for module in (EcaAttention(208), SpatialAttention(), EcaCbam(208), EcaNonLocal(208)):
        assert module(x).shape == x.shape
    assert eca_kernel_size(208) == 5
    assert count_parameters(EcaAttention(208)) == 5
    assert count_parameters(SpatialAttention()) == 2 * 49


def test_nonlocal_is_identity_until_gamma_grows():
    block = NonLocalBlock(32)
    embed = 32 // 8
    assert block.theta.out_channels == embed
    x = torch.randn(1, 32, 4, 4)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.2)
    assert not torch.allclose(block(x), x)


def test_fine_head_doubles_the_heatmap_resolution_and_supervises_both_scales():
    model = LapxNet(LapxConfig(num_stages=2, channels=32, nonlocal_stages=(1,), heatmap_stride=2))
    model.train()
    outputs = model(torch.randn(2, 3, 128, 64))
    assert [o.shape for o in outputs] == [(2, 16, 32, 16)] * 2 + [(2, 16, 64, 32)]
    model.eval()
    assert model(torch.randn(1, 3, 128, 64)).shape == (1, 16, 64, 32)
    with pytest.raises(ValueError):
        LapxConfig(heatmap_stride=3)


def test_fine_head_starts_as_the_upsampled_coarse_heatmaps():
    """Weights trained at stride 4 give the same heatmaps, upsampled, with the new head."""
    torch.manual_seed(0)
    coarse = LapxNet(LapxConfig(num_stages=2, channels=32, nonlocal_stages=(1,))).eval()
    fine = LapxNet(LapxConfig(num_stages=2, channels=32, nonlocal_stages=(1,), heatmap_stride=2)).eval()
    result = fine.load_state_dict(coarse.state_dict(), strict=False)
    assert result.missing_keys and all(k.startswith("fine_head.") for k in result.missing_keys)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.nn.functional.interpolate(coarse(x), scale_factor=2, mode="bilinear")
        assert torch.allclose(fine(x), expected, atol=1e-6)


def test_fine_head_costs_little():
    base, fine = build_lapx(), build_lapx(heatmap_stride=2)
    assert count_parameters(fine) - count_parameters(base) < 0.005 * count_parameters(base)
    assert count_gmacs(fine, 128, 128) < 1.06 * count_gmacs(base, 128, 128)

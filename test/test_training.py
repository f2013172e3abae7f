"""Training, checkpoints, export and the CLIs on real LSPET images (tiny network, CPU)."""
import json

import numpy as np
import pytest
import torch

from lapx_ros import eval as eval_cli
from lapx_ros import export as export_cli
from lapx_ros import info as info_cli
from lapx_ros import train as train_cli
from lapx_ros.checkpoint import load_checkpoint, load_model
from lapx_ros.data.dataset import PoseDataset
from lapx_ros.data.lsp import load_lsp_records
from lapx_ros.data.transforms import AugmentConfig, TopDownTransform
from lapx_ros.evaluation import torch_heatmap_fn
from lapx_ros.export import read_onnx_metadata
from lapx_ros.layouts import MPII_16
from lapx_ros.metadata import ModelMetadata
from lapx_ros.model import LapxConfig, LapxNet

TINY = ["--stages", "2", "--channels", "32", "--input-size", "64", "--batch-size", "8", "--threads", "2"]


@pytest.fixture
def lsp(lspet_dir):
    return ["--lsp-images", str(lspet_dir / "images"), "--lsp-joints", str(lspet_dir / "joints.mat")]


def test_a_few_steps_on_real_crops_lower_the_loss(lspet_dir):
    torch.manual_seed(0)
    records = load_lsp_records(lspet_dir / "images", lspet_dir / "joints.mat", (1, 8))
    meta = ModelMetadata.for_layout(MPII_16, 64, 64)
    dataset = PoseDataset(records, TopDownTransform(MPII_16, (64, 64), augment=AugmentConfig(whole_image_prob=0)),
                          meta.mean, meta.std)
    x, targets, weights = (torch.stack(t) for t in zip(*[dataset[i] for i in range(8)]))
    assert x.shape == (8, 3, 64, 64) and targets.shape == (8, 16, 16, 16)
    assert weights.sum() > 0
    model = LapxNet(LapxConfig(num_stages=2, channels=32, nonlocal_stages=(1,))).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = train_cli.heatmap_loss(model(x), targets, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_train_resume_export_eval_info_end_to_end(tmp_path, lsp, capsys):
    out = tmp_path / "run"
    common = lsp + TINY + ["--train-range", "1-16", "--val-range", "9001-9004", "--out", str(out),
                           "--nonlocal-freeze-epochs", "0", "--nonlocal-ramp-epochs", "1"]
    assert train_cli.main(common + ["--epochs", "1"]) == 0
    for name in ("last.pt", "best.pt", "log.csv", "curves.png", "args.json"):
        assert (out / name).is_file(), name
    assert load_checkpoint(out / "last.pt")["epoch"] == 1

    assert train_cli.main(common + ["--epochs", "2", "--resume"]) == 0
    state = load_checkpoint(out / "last.pt")
    assert state["epoch"] == 2 and [r["epoch"] for r in state["history"]] == [1, 2]
    assert (out / "log.csv").read_text().count("\n") == 3

    onnx_path = tmp_path / "model.onnx"
    assert export_cli.main([str(out / "last.pt"), str(onnx_path)] + lsp + ["--crops", "4"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])["verification"]
    assert report["ok"] and report["max_abs_diff"] < 1e-3 and report["argmax_agreement"] == 1.0
    meta = read_onnx_metadata(onnx_path)
    assert meta.joint_names == MPII_16.joint_names and (meta.input_width, meta.input_height) == (64, 64)

    # The file through ONNX Runtime (float32, as PyTorch): a barely trained network's flat
    # heatmaps let bfloat16 rounding move single joints, which is not what this checks.
    results = {}
    for model_file, engine in ((out / "last.pt", []), (onnx_path, ["--backend", "onnxruntime"])):
        assert eval_cli.main(["--model", str(model_file), "--range", "9001-9004", "--json"] + engine + lsp) == 0
        results[model_file.suffix] = json.loads(capsys.readouterr().out)
    assert results[".pt"]["images"] == 4 and 0 <= results[".pt"]["pckh"] <= 1
    assert abs(results[".pt"]["pckh"] - results[".onnx"]["pckh"]) <= 0.01
    assert eval_cli.main(["--model", str(onnx_path), "--range", "9001-9004", "--json", "--label-boxes",
                          "--json-out", str(tmp_path / "boxed.json")] + lsp) == 0
    boxed = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "boxed.json").read_text()) == boxed
    assert boxed["label_boxes"] and not results[".onnx"]["label_boxes"] and 0 <= boxed["pckh"] <= 1
    assert eval_cli.main(["--model", str(out / "last.pt"), "--range", "9001-9004", "--json", "--stage", "1"] + lsp) == 0
    first_stage = json.loads(capsys.readouterr().out)
    assert first_stage["stage"] == 1 and 0 <= first_stage["pckh"] <= 1
    model, _ = load_model(out / "last.pt")
    batch = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    stage_one, last = (torch_heatmap_fn(model, stage)(batch) for stage in (1, 0))
    with torch.inference_mode():
        assert np.array_equal(stage_one, model.forward_all(torch.from_numpy(batch))[0].numpy())
    assert not np.allclose(stage_one, last)
    for bad in ([str(onnx_path), "1"], [str(out / "last.pt"), "3"]):
        assert eval_cli.main(["--model", bad[0], "--range", "9001-9004", "--stage", bad[1]] + lsp) == 2
        assert "--stage" in capsys.readouterr().err

    assert info_cli.main([str(onnx_path)]) == 0
    info = json.loads(capsys.readouterr().out)
    model, _ = load_model(out / "last.pt")
    assert info["params"] == sum(p.numel() for p in model.parameters())


def test_fine_tuning_starts_from_given_weights_and_stops_after_max_batches(tmp_path, lsp):
    common = lsp + TINY + ["--train-range", "1-32", "--val-range", "9001-9002"]
    assert train_cli.main(common + ["--out", str(tmp_path / "a"), "--epochs", "1"]) == 0
    start = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    # lr 0: the weights must be exactly the ones fine-tuning started from
    assert train_cli.main(common + ["--out", str(tmp_path / "b"), "--init-weights", str(tmp_path / "a" / "last.pt"),
                                    "--lr", "0", "--bf16", "--max-batches", "2", "--epochs", "3"]) == 0
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (state["epoch"], state["batch_index"]) == (0, 2)
    for name, value in state["model"].items():
        if "running" not in name and "num_batches" not in name:
            assert torch.equal(value, start[name]), name


def test_eval_refuses_missing_images(tmp_path, lspet_dir, capsys):
    images = tmp_path / "images"
    images.mkdir()
    (images / "im09001.jpg").write_bytes((lspet_dir / "images" / "im09001.jpg").read_bytes())
    code = eval_cli.main(["--model", "unused.pt", "--lsp-images", str(images), "--lsp-joints",
                          str(lspet_dir / "joints.mat"), "--range", "9001-9002", "--json"])
    assert code == 2
    assert "im09002.jpg" in capsys.readouterr().err


def test_info_prints_default_configuration(capsys):
    assert info_cli.main([]) == 0
    info = json.loads(capsys.readouterr().out)
    assert abs(info["params"] - 2.30e6) / 2.30e6 <= 0.03
    assert 2.9 <= info["gmacs"] <= 3.5


def test_checkpoints_refuse_pickled_code(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": {}, "payload": np.random.default_rng()}, evil)
    with pytest.raises(ValueError, match="not a readable LAPX checkpoint"):
        load_checkpoint(evil)


@pytest.mark.parametrize("cli", [train_cli, eval_cli, export_cli, info_cli])
def test_cli_help(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_int8_export_writes_a_quantised_model_with_metadata(tmp_path, lsp, capsys):
    out = tmp_path / "run"
    assert train_cli.main(lsp + TINY + ["--train-range", "1-8", "--val-range", "9001-9002", "--out", str(out),
                                        "--epochs", "1"]) == 0
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m_int8.onnx"
    assert export_cli.main([str(out / "last.pt"), str(fp32), "--int8", str(int8), "--crops", "2",
                            "--calibration-crops", "4"] + lsp) == 0
    import onnx

    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert read_onnx_metadata(int8).joint_names == MPII_16.joint_names


def test_lsp_joints_orientations_and_bad_files(tmp_path):
    import scipy.io

    from lapx_ros.data.lsp import load_lsp_joints

    joints = np.random.default_rng(0).uniform(0, 100, (5, 14, 3))
    joints[..., 2] = 1.0
    scipy.io.savemat(tmp_path / "lspet.mat", {"joints": joints.transpose(1, 2, 0)})   # 14 x 3 x N
    lsp = joints.transpose(2, 1, 0).copy()                                            # 3 x 14 x N
    lsp[2] = 0.0  # LSP's third row says "occluded"
    scipy.io.savemat(tmp_path / "lsp.mat", {"joints": lsp})
    for name in ("lspet.mat", "lsp.mat"):
        assert np.allclose(load_lsp_joints(tmp_path / name), joints)
    scipy.io.savemat(tmp_path / "other.mat", {"points": joints})
    with pytest.raises(ValueError, match="no 'joints'"):
        load_lsp_joints(tmp_path / "other.mat")


def test_init_weights_keep_the_learnt_nonlocal_gamma(tmp_path, lsp):
    """A second cycle from trained weights must not rerun the freeze that zeroes gamma."""
    common = lsp + TINY + ["--train-range", "1-16", "--val-range", "9001-9002"]
    start = tmp_path / "start"  # gamma ramps towards 0.3 over the first epoch: about 0.15 at its end
    assert train_cli.main(common + ["--out", str(start), "--epochs", "2", "--nonlocal-freeze-epochs", "0",
                                    "--nonlocal-ramp-epochs", "1", "--nonlocal-gamma", "0.3"]) == 0
    gammas = [k for k in load_checkpoint(start / "last.pt")["model"] if k.endswith("gamma")]
    assert gammas
    second = tmp_path / "second"  # the default schedule would freeze the blocks for 2 epochs
    assert train_cli.main(common + ["--out", str(second), "--epochs", "1", "--max-batches", "1",
                                    "--init-weights", str(start / "last.pt")]) == 0
    assert train_cli.main(common + ["--out", str(second), "--epochs", "1", "--resume"]) == 0
    weights = load_checkpoint(second / "last.pt")["model"]
    assert all(abs(weights[k].item()) > 0.1 for k in gammas), {k: weights[k].item() for k in gammas}


def test_nonlocal_schedule_freezes_then_ramps_then_learns():
    torch.manual_seed(0)
    model = LapxNet(LapxConfig(num_stages=1, channels=16, hourglass_depth=2, nonlocal_stages=(1,)))
    schedule = train_cli.NonLocalSchedule(model, freeze=1.0, ramp=2.0, target=0.2)
    (block,) = model.nonlocal_blocks()
    inner = [p for p in block.parameters() if p is not block.gamma]

    def step(epoch):
        model.zero_grad(set_to_none=True)
        schedule.set_gamma(epoch)
        sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
        schedule.drop_frozen_gradients(epoch)

    step(0.5)  # frozen: the block is off and nothing in it is updated
    assert block.gamma.item() == 0.0
    assert all(p.grad is None for p in block.parameters())
    assert any(p.grad is not None for p in model.parameters())
    step(2.0)  # ramping: gamma follows the schedule, the rest of the block learns
    assert block.gamma.item() == pytest.approx(0.1)
    assert block.gamma.grad is None and all(p.grad is not None for p in inner)
    step(3.5)  # learnt: the schedule no longer touches gamma
    with torch.no_grad():
        block.gamma.fill_(0.33)
    step(4.0)
    assert block.gamma.item() == pytest.approx(0.33) and block.gamma.grad is not None


def test_averaged_network_is_the_mean_over_networks_and_the_mirror():
    import torch

    from lapx_ros.export import averaged_network
    from lapx_ros.heatmaps import flip_heatmaps
    from lapx_ros.metadata import ModelMetadata

    torch.manual_seed(0)
    config = LapxConfig(num_joints=16, num_stages=1, channels=16, nonlocal_stages=())
    nets = [LapxNet(config).eval(), LapxNet(config).eval()]
    meta = ModelMetadata.for_layout(MPII_16, 64, 64)
    x = torch.rand(3, 3, 64, 64)
    with torch.inference_mode():
        plain = averaged_network(nets, meta, mirror=False)(x).numpy()
        mirrored = averaged_network(nets, meta, mirror=True)(x).numpy()
        each = [n(x).numpy() for n in nets]
        each_flipped = [n(x.flip(3)).numpy() for n in nets]
    perm = list(range(16))
    for a, b in MPII_16.flip_pairs:
        perm[a], perm[b] = b, a
    assert plain.shape == (3, 16, 16, 16)
    np.testing.assert_allclose(plain, np.mean(each, axis=0), atol=1e-5)
    expected = 0.5 * (np.mean(each, axis=0) + flip_heatmaps(np.mean(each_flipped, axis=0), perm))
    np.testing.assert_allclose(mirrored, expected, atol=1e-5)


def test_export_averages_checkpoints_and_the_mirror_in_one_file(tmp_path, lsp, capsys):
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        assert train_cli.main(lsp + TINY + ["--train-range", "1-8", "--val-range", "9001-9002", "--out", str(out),
                                            "--epochs", "1", "--seed", str(seed)]) == 0
        runs.append(out / "last.pt")
    path = tmp_path / "accurate.onnx"
    assert export_cli.main([str(runs[0]), str(path), "--average-with", str(runs[1]), "--mirror",
                            "--crops", "4"] + lsp) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[0])["verification"]
    assert report["ok"], report
    meta = read_onnx_metadata(path)
    assert meta.extra["networks_averaged"] == 2 and meta.extra["mirror_averaged"] is True
    # a network of other joints or input cannot be averaged in
    other = tmp_path / "other"
    assert train_cli.main(lsp + TINY[:-6] + ["--input-size", "128", "--batch-size", "8", "--threads", "2",
                                             "--train-range", "1-8", "--val-range", "9001-9002",
                                             "--out", str(other), "--epochs", "1"]) == 0
    assert export_cli.main([str(runs[0]), str(tmp_path / "bad.onnx"), "--average-with", str(other / "last.pt"),
                            "--crops", "2"] + lsp) == 2
    assert not (tmp_path / "bad.onnx").exists()


def test_coarse_stages_are_scored_against_pooled_fine_targets():
    """At stride 2 the intermediate stages keep stride-4 targets: the fine Gaussian
    average-pooled lands where a stride-4 encoding puts it, with about half its sigma."""
    from lapx_ros.heatmaps import decode, encode, to_heatmap_coords

    points = np.array([[37.0, 81.0], [100.5, 12.25]])
    fine, weights = encode(to_heatmap_coords(points, 2), np.ones(2), (64, 64), sigma=3.0)
    coarse, _ = encode(to_heatmap_coords(points, 4), np.ones(2), (32, 32), sigma=1.5)
    pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(fine)[None], 2)[0].numpy()
    assert np.abs(pooled - coarse).max() < 0.05
    assert np.allclose(decode(pooled[None], "dark")[0], decode(coarse[None], "dark")[0], atol=0.05)
    t, w = torch.from_numpy(fine)[None], torch.from_numpy(weights)[None]
    exact = [torch.from_numpy(coarse)[None], t]
    assert train_cli.heatmap_loss(exact, t, w).item() < 1e-4
    # a zero coarse output misses exactly the pooled targets' energy
    missed = train_cli.heatmap_loss([torch.zeros(1, 2, 32, 32), t], t, w).item()
    assert missed == pytest.approx(float((pooled ** 2).mean()), rel=1e-5)


def test_fine_head_is_added_to_weights_trained_at_stride_4(tmp_path, lsp):
    common = lsp + TINY + ["--train-range", "1-16", "--val-range", "9001-9002"]
    assert train_cli.main(common + ["--out", str(tmp_path / "coarse"), "--epochs", "1", "--max-batches", "1"]) == 0
    start = load_checkpoint(tmp_path / "coarse" / "last.pt")["model"]
    fine = tmp_path / "fine"
    assert train_cli.main(common + ["--out", str(fine), "--init-weights", str(tmp_path / "coarse" / "last.pt"),
                                    "--heatmap-stride", "2", "--sigma", "3", "--fine-head-lr-scale", "10",
                                    "--epochs", "1"]) == 0
    state = load_checkpoint(fine / "last.pt")
    assert ModelMetadata.from_json(state["metadata"]).heatmap_stride == 2
    assert state["model"]["fine_head.correction.weight"].abs().max() > 0
    assert set(start) < set(state["model"])
    base_lr, head_lr = (g["lr"] for g in state["optimizer"]["param_groups"])
    assert head_lr == pytest.approx(10 * base_lr)
    model, _ = load_model(fine / "last.pt")
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 16, 32, 32)
    # exported with its mirrored crop, the file agrees with PyTorch and says its stride
    path = tmp_path / "fine.onnx"
    assert export_cli.main([str(fine / "last.pt"), str(path), "--mirror", "--crops", "2"] + lsp) == 0
    assert read_onnx_metadata(path).heatmap_stride == 2
    # heatmaps of two strides cannot be averaged
    assert export_cli.main([str(fine / "last.pt"), str(tmp_path / "mixed.onnx"), "--average-with",
                            str(tmp_path / "coarse" / "last.pt"), "--crops", "2"] + lsp) == 2
    # the other way round a network's weights are missing: refused, not half-loaded
    with pytest.raises(ValueError, match="does not fit"):
        train_cli.main(common + ["--out", str(tmp_path / "back"), "--init-weights", str(fine / "last.pt"),
                                 "--channels", "16", "--epochs", "1"])


def test_hard_joint_mining_keeps_each_crops_worst_joints():
    targets = torch.zeros(2, 4, 8, 8)
    outputs = torch.zeros(2, 4, 8, 8)
    outputs[:, :, 0, 0] = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 0.0, 0.0, 1.0]])
    weights = torch.ones(2, 4)
    per_joint = outputs[:, :, 0, 0] ** 2 / 64
    assert train_cli.heatmap_loss([outputs], targets, weights).item() == pytest.approx(per_joint.mean().item())
    hardest = torch.tensor([[9.0, 16.0], [16.0, 1.0]]) / 64
    assert train_cli.heatmap_loss([outputs], targets, weights, hard_joints=2).item() == pytest.approx(
        hardest.mean().item())
    # an unlabelled joint (weight 0) is never among the hard ones
    weights[1, 0] = 0
    assert train_cli.heatmap_loss([outputs], targets, weights, hard_joints=1).item() == pytest.approx(
        (16.0 + 1.0) / 2 / 64)

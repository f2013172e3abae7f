"""lapx-export: a checkpoint to a self-describing ONNX file, verified against PyTorch.

The exported graph returns only the last stage's heatmaps, has a dynamic batch axis and
carries ``ModelMetadata`` in its metadata. Before the file is written, ONNX Runtime's
output on real crops is compared with PyTorch's; a disagreeing export is refused.

``--average-with`` and ``--mirror`` build the accurate preset's file: several networks of
the same joints and input, each run on the crop and on its mirror image, their heatmaps
averaged inside the graph, so the node runs it like any other file (at that many times
the cost).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from lapx_ros.metadata import METADATA_KEY, ModelMetadata

OPSET = 17


def read_onnx_metadata(path) -> ModelMetadata:
    """The ModelMetadata of an exported file; ValueError naming the file when absent or bad."""
    import onnx

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable ONNX file ({exc})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(f"{path}: ONNX file has no '{METADATA_KEY}' metadata (not exported by lapx-export)")
    try:
        return ModelMetadata.from_json(props[METADATA_KEY])
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def averaged_network(networks, meta: ModelMetadata, mirror: bool):
    """One module whose heatmaps are the mean of ``networks``' (and, with ``mirror``, of
    their heatmaps on the mirrored crop, flipped back with left and right swapped)."""
    import torch

    class AveragedHeatmaps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.networks = torch.nn.ModuleList(networks)
            self.register_buffer("swap", torch.tensor(meta.flip_permutation()), persistent=False)

        def forward(self, x):
            n = x.shape[0]
            if mirror:
                x = torch.cat([x, x.flip(3)])
            heatmaps = torch.stack([net(x) for net in self.networks]).mean(0)
            if mirror:
                heatmaps = 0.5 * (heatmaps[:n] + heatmaps[n:].index_select(1, self.swap).flip(3))
            return heatmaps

    return AveragedHeatmaps().eval()


def write_onnx_metadata(path, meta: ModelMetadata) -> None:
    """Replace an exported file's metadata (a calibration fitted after export, such as the
    person score, travels with the network); the weights stay as they are."""
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = meta.to_json()
    onnx.save(model, str(path))


def export_onnx(model, meta: ModelMetadata, path) -> None:
    """Write the eval-mode network as ONNX (dynamic batch) with its metadata attached."""
    import onnx
    import torch

    model.eval()
    dummy = torch.zeros(1, 3, meta.input_height, meta.input_width)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(model, (dummy,), str(raw), input_names=[meta.input_name],
                          output_names=[meta.output_name], opset_version=OPSET, dynamo=False,
                          dynamic_axes={meta.input_name: {0: "batch"}, meta.output_name: {0: "batch"}})
        graph = onnx.load(str(raw))
    graph.producer_name = "lapx_ros"
    graph.doc_string = "LAPX human pose heatmaps; see metadata key 'lapx_ros'"
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def verify_export(model, onnx_path, batch: np.ndarray, tolerance: float = 1e-3) -> dict:
    """Max abs difference and argmax agreement of ONNX Runtime vs PyTorch on ``batch``."""
    import onnxruntime as ort
    import torch

    meta = read_onnx_metadata(onnx_path)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run([meta.output_name], {meta.input_name: batch})[0]
    with torch.inference_mode():
        torch_out = model(torch.from_numpy(batch)).numpy()
    n, k = torch_out.shape[:2]
    same_peak = (onnx_out.reshape(n, k, -1).argmax(-1) == torch_out.reshape(n, k, -1).argmax(-1)).mean()
    max_diff = float(np.abs(onnx_out - torch_out).max())
    return {"max_abs_diff": max_diff, "argmax_agreement": float(same_peak),
            "ok": bool(max_diff <= tolerance and same_peak >= 0.99), "crops": n}


def real_crops(meta: ModelMetadata, images_dir, joints_file, index_range, count: int) -> np.ndarray:
    """Normalised crops of labelled people, for verification and int8 calibration."""
    from lapx_ros.data.lsp import load_lsp_records
    from lapx_ros.data.transforms import read_rgb
    from lapx_ros.geometry import box_to_center_size, keypoints_to_box
    from lapx_ros.geometry import CropBatcher

    batcher = CropBatcher(meta, channel_order="rgb")
    records = load_lsp_records(images_dir, joints_file, index_range)[:count]
    batches = []
    for record in records:
        box = keypoints_to_box(record.joints[:, :2], record.joints[:, 2] > 0)
        center, size = box_to_center_size(box, meta.input_width / meta.input_height)
        batches.append(batcher(read_rgb(record.image_path), [(center, size)])[0])
    return np.concatenate(batches)


def quantize_int8(onnx_path, out_path, calibration: np.ndarray, meta: ModelMetadata) -> None:
    """Static int8 (QDQ) quantisation calibrated on real crops."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter(calibration[i:i + 1] for i in range(len(calibration)))

        def get_next(self):
            item = next(self._items, None)
            return None if item is None else {meta.input_name: item}

    quantize_static(str(onnx_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    model = onnx.load(str(out_path))
    if not any(p.key == METADATA_KEY for p in model.metadata_props):
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta.to_json()
        onnx.save(model, str(out_path))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapx-export", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("checkpoint", help="a lapx-train checkpoint (.pt)")
    p.add_argument("output", help="ONNX file to write")
    p.add_argument("--lsp-images", required=True, help="images for verification/calibration crops")
    p.add_argument("--lsp-joints", required=True)
    p.add_argument("--crops-range", default="9001-9500", help="images whose crops verify the export")
    p.add_argument("--crops", type=int, default=16, help="how many crops verify the export")
    p.add_argument("--tolerance", type=float, default=1e-3, help="max abs heatmap difference allowed")
    p.add_argument("--int8", metavar="FILE", help="also write a static int8 (QDQ) model here")
    p.add_argument("--calibration-crops", type=int, default=64)
    p.add_argument("--average-with", action="append", default=[], metavar="CHECKPOINT",
                   help="also run this checkpoint's network (same joints and input) and average "
                        "the heatmaps in the graph; repeatable")
    p.add_argument("--input-size", metavar="WxH",
                   help="export at this input size instead of the one trained at (a fully convolutional "
                        "network trained at several sizes, lapx-train --extra-input-sizes, runs at any)")
    p.add_argument("--mirror", action="store_true",
                   help="also run the mirrored crop in the graph and average (flip test inside the file)")
    return p


def main(argv=None) -> int:
    from lapx_ros.checkpoint import load_model
    from lapx_ros.data.lsp import parse_range

    args = build_parser().parse_args(argv)
    model, state = load_model(args.checkpoint)
    meta = trained = ModelMetadata.from_json(state["metadata"])
    if args.input_size:
        from lapx_ros.train import parse_size

        try:
            width, height = parse_size(args.input_size)
        except argparse.ArgumentTypeError as exc:
            print(f"--input-size: {exc}", file=sys.stderr)
            return 2
        if min(width, height) < model.config.min_input_side:
            print(f"--input-size: this network needs sides of at least {model.config.min_input_side}", file=sys.stderr)
            return 2
        meta = dataclasses.replace(meta, input_width=width, input_height=height)
        meta.validate()
    if args.average_with or args.mirror:
        networks = [model]
        for other in args.average_with:
            net, other_state = load_model(other)
            other_meta = ModelMetadata.from_json(other_state["metadata"])
            if (other_meta.joint_names, other_meta.input_height, other_meta.input_width,
                    other_meta.heatmap_stride) != (trained.joint_names, trained.input_height, trained.input_width,
                                                   trained.heatmap_stride):
                print(f"{other}: other joints, input size or heatmap stride than {args.checkpoint}",
                      file=sys.stderr)
                return 2
            networks.append(net)
        model = averaged_network(networks, meta, args.mirror)
        meta = dataclasses.replace(meta, extra={**meta.extra, "networks_averaged": len(networks),
                                                "mirror_averaged": bool(args.mirror)})
    crops = real_crops(meta, args.lsp_images, args.lsp_joints, parse_range(args.crops_range), args.crops)
    output = Path(args.output)
    with tempfile.TemporaryDirectory() as tmp:
        candidate = Path(tmp) / output.name
        export_onnx(model, meta, candidate)
        report = verify_export(model, candidate, crops, args.tolerance)
        print(json.dumps({"verification": report}))
        if not report["ok"]:
            print(f"refusing to write {output}: ONNX disagrees with PyTorch", file=sys.stderr)
            return 1
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(candidate.read_bytes())
        if args.int8:
            calibration = real_crops(meta, args.lsp_images, args.lsp_joints, parse_range("1-9000"),
                                     args.calibration_crops)
            quantize_int8(output, args.int8, calibration, meta)
            print(json.dumps({"int8": str(args.int8)}))
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

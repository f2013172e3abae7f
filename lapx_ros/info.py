"""lapx-info: parameter count and MACs of a LAPX configuration or model file, as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from lapx_ros.model import LapxConfig, LapxNet
from lapx_ros.model.complexity import count_gmacs, count_parameters


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapx-info", description=__doc__)
    p.add_argument("model", nargs="?", help="checkpoint (.pt) or ONNX file; default: the default configuration")
    p.add_argument("--config", help="a LapxConfig as JSON, e.g. '{\"num_stages\": 2}'")
    p.add_argument("--input-size", default=None, help="WxH (default: the model's, or 256x256)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    size = None
    try:
        if args.model and args.model.endswith(".onnx"):
            model, size = _onnx_as_network(args.model)
        elif args.model:
            from lapx_ros.checkpoint import load_model
            from lapx_ros.metadata import ModelMetadata

            model, state = load_model(args.model)
            meta = ModelMetadata.from_json(state["metadata"])
            size = (meta.input_width, meta.input_height)
        else:
            model = LapxNet(LapxConfig.from_dict(json.loads(args.config)) if args.config else LapxConfig())
    except (OSError, ValueError, TypeError) as exc:
        print(f"lapx-info: {exc}", file=sys.stderr)
        return 2
    if args.input_size:
        w, h = (int(v) for v in args.input_size.lower().split("x"))
        size = (w, h)
    w, h = size or (256, 256)
    print(json.dumps({"params": count_parameters(model), "gmacs": round(count_gmacs(model, h, w), 4),
                      "input_size": [w, h], "config": model.config.to_dict()}))
    return 0


def _onnx_as_network(path):
    """An ONNX file exported by lapx-export is counted through its embedded configuration."""
    from lapx_ros.export import read_onnx_metadata

    meta = read_onnx_metadata(path)
    raw = meta.extra.get("model_config")
    if raw is None:
        raise ValueError(f"{path}: metadata carries no model_config")
    return LapxNet(LapxConfig.from_dict(raw)), (meta.input_width, meta.input_height)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Make an old TF.js graph model readable by today's TensorFlow, for tf2onnx --tfjs.

Usage (in an environment with tensorflow): tfjs_fix_attrs.py IN/model.json OUT/model.json

Older TF.js converters left out node attributes that current TensorFlow requires
(``TArgs`` of the fused convolutions, ``index_type`` of TopKV2, ...). ``TArgs`` is set
to ``num_args`` float types; every other missing attribute gets the default from
TensorFlow's own op definition. The weight files are copied beside the new JSON.
"""
import json
import os
import shutil
import sys

from google.protobuf.json_format import MessageToDict
from tensorflow.python.framework import op_def_registry

FUSED = ("_FusedConv2D", "FusedDepthwiseConv2dNative", "_FusedMatMul")


def main(src: str, dst: str) -> None:
    with open(src) as f:
        model = json.load(f)
    added = 0
    for node in model["modelTopology"]["node"]:
        attr = node.setdefault("attr", {})
        if node["op"] in FUSED and "TArgs" not in attr:
            n = int(attr.get("num_args", {}).get("i", "0"))
            attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n}}
            added += 1
        op = op_def_registry.get(node["op"])
        if op is None:
            continue
        for a in op.attr:
            if a.name not in attr and a.HasField("default_value"):
                attr[a.name] = MessageToDict(a.default_value)
                added += 1
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with open(dst, "w") as f:
        json.dump(model, f)
    for group in model["weightsManifest"]:
        for p in group["paths"]:
            shutil.copy(os.path.join(os.path.dirname(src), p),
                        os.path.join(os.path.dirname(os.path.abspath(dst)), p))
    print(f"{src}: {added} attributes added -> {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

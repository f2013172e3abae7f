"""Tiny, valid (or deliberately broken) ONNX pose models built with onnx.helper.

They stand in for exported LAPX models in tests: same input/output names, dynamic
batch, heatmaps at stride 4, ModelMetadata attached, and they run in milliseconds.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lapx_ros.layouts import MPII_16
from lapx_ros.metadata import METADATA_KEY, ModelMetadata


def build_model(path, input_size=(64, 64), num_joints=16, metadata_joints=None,
                with_metadata=True, output_rank=4, input_rank=4, nan_output=False, seed=0):
    """Write a conv/avgpool model: image (N,3,H,W) -> heatmaps (N,K,H/4,W/4).

    ``input_rank=3`` takes the image flattened, (N,3,H*W): a model that runs but not on
    the (N,3,H,W) crops its metadata promises.
    """
    h, w = input_size
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (num_joints, 3, 1, 1)).astype(np.float32), "w")
    inits = [weight]
    nodes = []
    in_shape, pixels = ["N", 3, h, w], "image"
    if input_rank == 3:
        inits.append(numpy_helper.from_array(np.array([0, 3, h, w], np.int64), "shape4"))
        nodes.append(helper.make_node("Reshape", ["image", "shape4"], ["unflattened"]))
        in_shape, pixels = ["N", 3, h * w], "unflattened"
    nodes += [
        helper.make_node("AveragePool", [pixels], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Conv", ["pooled", "w"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["maps"]),
    ]
    last = "maps"
    if nan_output:
        # log(-1) = NaN everywhere: a model whose weights were corrupted.
        inits.append(numpy_helper.from_array(np.array(-1.0, np.float32), "minus_one"))
        nodes.append(helper.make_node("Mul", [last, "minus_one"], ["neg"]))
        nodes.append(helper.make_node("Log", ["neg"], ["nan"]))
        last = "nan"
    out_shape = ["N", num_joints, h // 4, w // 4]
    if output_rank == 3:
        inits.append(numpy_helper.from_array(np.array([0, num_joints, -1], np.int64), "shape3"))
        nodes.append(helper.make_node("Reshape", [last, "shape3"], ["flat"]))
        last, out_shape = "flat", ["N", num_joints, (h // 4) * (w // 4)]
    nodes.append(helper.make_node("Identity", [last], ["heatmaps"]))
    graph = helper.make_graph(
        nodes, "tiny_pose",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, out_shape)],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_metadata:
        layout = MPII_16
        meta = ModelMetadata.for_layout(layout, h, w)
        if metadata_joints is not None and metadata_joints != layout.num_joints:
            names = tuple(f"joint_{i}" for i in range(metadata_joints))
            meta = ModelMetadata(layout_name="custom", joint_names=names, flip_pairs=(),
                                 skeleton=((0, 1),), input_height=h, input_width=w)
        helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)

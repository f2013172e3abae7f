"""The node with the shipped model is as accurate on real photos as offline evaluation
(lapx-eval's whole-frame search) on the same LSPET validation images.

LAPX_TEST_MODEL=file.onnx runs it on another model than the shipped one.
"""
import math
import os
import uuid

import cv2
import numpy as np
import pytest

from lapx_ros.runtime.engine import default_model_path
from lapx_ros.testing.node_client import LSPET, PoseClient, node_command

SAMPLE = 40  # validation images; a few seconds of inference
MARGIN = 0.05  # PCKh points the node may lose against offline on this small sample


def varied_size_records():
    """Validation records in order, skipping any image the size of the one before, so
    that the node searches each image afresh instead of following the previous person."""
    from lapx_ros.data.lsp import load_lsp_records

    records = load_lsp_records(LSPET / "images", LSPET / "joints.mat", (9001, 9500))
    chosen, last_shape = [], None
    for r in records:
        shape = cv2.imread(str(r.image_path)).shape
        if shape != last_shape:
            chosen.append(r)
            last_shape = shape
        if len(chosen) == SAMPLE:
            break
    return chosen


def test_node_matches_offline_accuracy(ros_process):
    model = os.environ.get("LAPX_TEST_MODEL") or default_model_path()
    if not model:
        pytest.skip("no shipped model in models/ yet")
    if not LSPET.is_dir():
        pytest.skip("LSPET images not found beside the repository")
    from lapx_ros.evaluation import load_heatmap_fn, predict_lsp
    from lapx_ros.metrics import pckh

    records = varied_size_records()
    labels = np.stack([r.joints for r in records])
    infer, meta = load_heatmap_fn(model, threads=1)
    offline, _ = predict_lsp(infer, meta, records, decode_method="dark")  # the node's search_passes

    namespace = f"/lapx_acc{uuid.uuid4().hex[:8]}"
    ros_process(*node_command(namespace, model, "person_threshold:=0.0", "decode:=dark"),
                ready=r"active: ")
    predictions = []
    with PoseClient(namespace) as client:
        client.wait_for_node()
        for record in records:
            frame = cv2.imread(str(record.image_path))
            msg = client.wait_pose(client.publish_image(frame))
            assert msg is not None
            points = np.full((16, 2), math.nan)
            if msg.people:
                best = max(msg.people, key=lambda p: p.score)
                # messages put pixel centres at +0.5; labels and lapx-eval do not
                points = np.array([[k.x - 0.5, k.y - 0.5] for k in best.keypoints])
            predictions.append(points)
    node_score = pckh(np.stack(predictions), labels).accuracy
    offline_score = pckh(offline, labels).accuracy
    assert node_score >= offline_score - MARGIN, (node_score, offline_score)

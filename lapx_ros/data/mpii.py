"""MPII Human Pose in the common JSON annotation format, as pose records (MPII_16 layout).

The file is a list of people: ``{"image": name, "center": [x, y], "scale": s,
"joints": [[x, y]] * 16, "joints_vis": [0/1] * 16}``, where ``scale`` is the person's
height / 200 px and coordinates are MATLAB's (1-based). ``joints_vis`` marks a joint as
labelled (MPII labels occluded joints too), which is what MPII's PCKh scores.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lapx_ros.data.lsp import PoseRecord, require_images
from lapx_ros.layouts import MPII_16

# MPII's person scale is relative to a 200 px tall person.
SCALE_UNIT = 200.0
# The annotated centre sits high on the body (about the chest); the common recipe moves
# it down by this fraction of the scale unit before cropping.
CENTER_SHIFT = 15.0 / SCALE_UNIT


def person_box(center, scale: float) -> tuple[float, float, float, float]:
    """The square person box (0-based pixels) that MPII's centre and scale describe.

    With the crop's usual 1.25 padding this is the common recipe's 1.25 x 200 x scale
    region around the shifted centre.
    """
    half = SCALE_UNIT * float(scale) / 2
    cx = float(center[0]) - 1
    cy = float(center[1]) - 1 + CENTER_SHIFT * SCALE_UNIT * float(scale)
    return cx - half, cy - half, cx + half, cy + half


def entry_to_record(entry: dict, images_dir: Path) -> PoseRecord:
    joints = np.zeros((MPII_16.num_joints, 3), dtype=np.float64)
    xy = np.asarray(entry["joints"], dtype=np.float64).reshape(MPII_16.num_joints, 2)
    joints[:, :2] = xy - 1
    joints[:, 2] = np.asarray(entry["joints_vis"], dtype=np.float64).reshape(-1) > 0
    return PoseRecord(images_dir / entry["image"], joints, person_box(entry["center"], entry["scale"]))


def load_mpii_records(annotation_file, images_dir, limit: int = 0) -> list[PoseRecord]:
    """Records of the first ``limit`` people (0: all). A missing image is an error."""
    entries = json.loads(Path(annotation_file).read_text())
    if not isinstance(entries, list) or entries and "joints" not in entries[0]:
        raise ValueError(f"{annotation_file}: expected a list of MPII people with 'joints' "
                         "(the test split carries no labels)")
    if limit:
        entries = entries[:limit]
    images_dir = Path(images_dir)
    records = [entry_to_record(e, images_dir) for e in entries]
    require_images([r.image_path for r in records], annotation_file, images_dir)
    return records

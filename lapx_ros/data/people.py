"""Everyday people beside LSPET, in a model's joint layout (MPII-16 unless asked):
teacher-labelled footage and COCO people with their human labels.

- Footage: frames of ``../shared/data/footage/exercise`` labelled by MediaPipe Pose
  (``scripts/teacher_labels.py footage``). The teacher's 12 limb joints, and the pelvis and
  thorax derived from them, are the training labels (for COCO-17 also its face points);
  BlazePose has no upper neck or head top, so those two get weight 0. Frames of one clip
  are near-duplicates: training and validation are split by clip (``split_clips``).
- COCO: each labelled person (``num_keypoints`` > 0, not a crowd) with its box, COCO's
  17 joints in the layout (for MPII-16: limbs as they are, pelvis and thorax as midpoints,
  no upper neck or head top); MediaPipe's landmarks of the same person crop
  (``scripts/teacher_labels.py coco``) can be attached as the second, teacher target.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from lapx_ros.data.lsp import PoseRecord, require_images
from lapx_ros.data.teacher import blazepose_joints
from lapx_ros.layouts import COCO_17, MPII_16, JointLayout, convert_joints

BLAZEPOSE_SHOULDERS = (11, 12)
# The head top sits about this far beyond the nose, in units of shoulder-centre to nose.
HEAD_TOP_REACH = 0.6


def landmarks_box(landmarks: np.ndarray, min_visibility: float = 0.5):
    """(x0, y0, x1, y1) around a person's landmarks (33, 4) of at least ``min_visibility``,
    reaching beyond the nose to where the head top is (BlazePose has no head top), or None."""
    marks = np.asarray(landmarks, dtype=np.float64)
    ok = np.isfinite(marks[:, :2]).all(1) & (np.nan_to_num(marks[:, 3]) >= min_visibility)
    if ok.sum() < 3:
        return None
    points = [marks[ok, :2]]
    nose, shoulders = marks[0], marks[list(BLAZEPOSE_SHOULDERS)]
    if ok[0] and ok[list(BLAZEPOSE_SHOULDERS)].all():
        centre = shoulders[:, :2].mean(0)
        points.append((nose[:2] + HEAD_TOP_REACH * (nose[:2] - centre))[None])
    points = np.concatenate(points)
    return (*points.min(0), *points.max(0))


def clip_names(teacher_file) -> list[str]:
    """The distinct clips of a footage teacher file, sorted."""
    return sorted(set(np.load(teacher_file)["clip"].tolist()))


def split_clips(clips, val_every: int = 5) -> tuple[set[str], set[str]]:
    """(training clips, validation clips): every ``val_every``-th clip of the sorted list,
    starting with the third, is held back; the split never depends on the frames."""
    ordered = sorted(set(clips))
    val = {c for i, c in enumerate(ordered) if val_every and i % val_every == 2}
    return set(ordered) - val, val


def load_footage_records(teacher_file, images_dir, clips=None, min_visibility: float = 0.5,
                         min_joints: int = 6, layout: JointLayout = MPII_16) -> list[PoseRecord]:
    """Records of the teacher-labelled frames of ``clips`` (None: all): joints are the
    teacher's, the box spans its landmarks. Frames where the teacher found nobody, or
    fewer than ``min_joints`` limb joints, are left out. A missing image is an error."""
    data = np.load(teacher_file)
    images_dir = Path(images_dir)
    joints = blazepose_joints(data["landmarks"], layout, min_visibility)
    limbs = list(layout.limb_joints)
    records = []
    for name, clip, marks, found, person in zip(data["image_file"], data["clip"], data["landmarks"],
                                                data["found"], joints):
        if not found or (clips is not None and str(clip) not in clips):
            continue
        box = landmarks_box(marks, min_visibility)
        if box is None or person[limbs, 2].sum() < min_joints:
            continue
        records.append(PoseRecord(images_dir / str(name), person, box))
    require_images([r.image_path for r in records], teacher_file, images_dir)
    return records


def load_coco_mpii_records(annotation_file, images_dir, teacher_file=None,
                           min_visibility: float = 0.5, layout: JointLayout = MPII_16) -> list[PoseRecord]:
    """One record per labelled COCO person, in ``layout`` with its box (clipped to the image).
    With ``teacher_file`` each record also carries MediaPipe's joints of its crop
    (all-zero weights where the teacher found nobody). A missing image is an error."""
    data = json.loads(Path(annotation_file).read_text())
    images = {i["id"]: i for i in data["images"]}
    images_dir = Path(images_dir)
    teacher = {}
    if teacher_file is not None:
        t = np.load(teacher_file)
        for ann_id, person in zip(t["annotation_id"], blazepose_joints(t["landmarks"], layout, min_visibility)):
            teacher[int(ann_id)] = person
    records = []
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0) or ann.get("num_keypoints", 0) <= 0:
            continue
        info = images[ann["image_id"]]
        x, y, w, h = (float(v) for v in ann["bbox"])
        box = (max(x, 0.0), max(y, 0.0), min(x + w, info["width"] - 1.0), min(y + h, info["height"] - 1.0))
        labels = np.asarray(ann["keypoints"], dtype=np.float64).reshape(COCO_17.num_joints, 3)
        labels[:, 2] = labels[:, 2] > 0
        joints = convert_joints(labels, COCO_17, layout)
        record = PoseRecord(images_dir / info["file_name"], joints, box, whole_image=False)
        if teacher_file is not None:
            record = dataclasses.replace(record, teacher=teacher.get(ann["id"], np.zeros_like(joints)))
        records.append(record)
    require_images([r.image_path for r in records], annotation_file, images_dir)
    return records

"""A training recipe: which teacher-labelled sets a model learns from, and how it is validated.

A recipe is a JSON file (``training/recipes/``) so that a run's data is written down beside
its figures and a new set is one more entry, not new flags. Each training entry names a
teacher file (``scripts/movenet_teacher_labels.py``: per person its image, box and the
teacher's joints with per-joint weights, training/teacher/README.md) and optionally the
human labels of the same people, which become the first target while the teacher's joints
are the second (distillation). ``$DATA`` in a path is the shared data folder.

    {"layout": "coco17",
     "train": [{"name": "fashion", "teacher": "training/teacher/fashion_thunder.npz",
                "images": "$DATA/people/fashion/images",
                "human_coco": "$DATA/people/fashion/person_keypoints.json",
                "hold_out_every": 10, "whole_image": true, "neighbours": true, "repeat": 1}, ...],
     "validate": {"lsp": {...}, "coco": {...}, "fashion": {...}}}

Entry keys: ``human_coco`` (COCO keypoints json, matched by annotation id) or
``human_lsp`` (an LSP joints.mat, matched by image number); ``files`` ("im00001-im09000":
only those image numbers); ``hold_out_every`` k (the k-th file of every k, sorted by name,
is validation and never trained on); ``hold_out_clips_every`` k (footage: whole clips, as
``people.split_clips``); ``whole_image`` (the image shows only this person: the whole-image
augmentation may use it); ``neighbours`` (its people may be pasted beside others).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lapx_ros.data.lsp import PoseRecord, load_lsp_joints, require_images
from lapx_ros.data.people import split_clips
from lapx_ros.layouts import COCO_17, LSP_14, JointLayout, convert_joints, get_layout

DEFAULT_DATA = "../shared/data"
IMAGE_NUMBER = re.compile(r"(\d+)")
FRAME_INDEX = re.compile(r"_(\d+)$")


def data_path(text: str) -> Path:
    """A recipe path with ``$DATA`` replaced by $LAPX_DATA (default ../shared/data)."""
    return Path(text.replace("$DATA", os.environ.get("LAPX_DATA", DEFAULT_DATA)))


def held_out_files(names, every: int) -> set[str]:
    """The validation files of a set split by name: the last of every ``every`` in sorted order."""
    ordered = sorted(set(names))
    return {n for i, n in enumerate(ordered) if every and i % every == every - 1}


def clip_of(file_name: str) -> str:
    """'kaiakol_squat_correct_001_07.jpg' -> 'kaiakol_squat_correct_001'."""
    return FRAME_INDEX.sub("", Path(file_name).stem)


def number_range(text: str) -> tuple[int, int]:
    """'im00001-im09000' or '1-9000' -> (1, 9000)."""
    numbers = [int(n) for n in IMAGE_NUMBER.findall(text)]
    if len(numbers) != 2 or not 1 <= numbers[0] <= numbers[1]:
        raise ValueError(f"a file range looks like im00001-im09000, got {text!r}")
    return numbers[0], numbers[1]


@dataclass(frozen=True)
class TeacherLabels:
    """One teacher file: per person its image, box, joints (K, 3) = x, y, weight in the
    teacher's layout, and its annotation id (-1 when the source has none)."""

    image_file: np.ndarray
    box: np.ndarray
    joints: np.ndarray
    annotation_id: np.ndarray
    layout: JointLayout

    @classmethod
    def load(cls, path) -> "TeacherLabels":
        with np.load(path, allow_pickle=False) as data:
            try:
                keypoints = np.asarray(data["keypoints"], dtype=np.float64)
                image_file = np.asarray(data["image_file"]).astype(str)
                box = np.asarray(data["box"], dtype=np.float64)
            except KeyError as exc:
                raise ValueError(f"{path}: not a teacher labels file (no {exc})") from None
            if keypoints.ndim == 4:            # (N, variants, K, 3): the first is the chosen one
                keypoints = keypoints[:, 0]
            weight = np.asarray(data["weight"], dtype=np.float64) if "weight" in data else keypoints[..., 2]
            ids = np.asarray(data["annotation_id"], dtype=np.int64) if "annotation_id" in data \
                else np.full(len(image_file), -1)
            layout = get_layout(str(data["layout"])) if "layout" in data else COCO_17
        if keypoints.shape[1:] != (layout.num_joints, 3) or weight.shape != keypoints.shape[:2] \
                or box.shape != (len(image_file), 4) or len(keypoints) != len(image_file):
            raise ValueError(f"{path}: inconsistent shapes: keypoints {keypoints.shape}, weight {weight.shape}, "
                             f"box {box.shape}, {len(image_file)} files")
        joints = np.concatenate([np.nan_to_num(keypoints[..., :2]), np.nan_to_num(weight)[..., None]], axis=-1)
        joints[~np.isfinite(keypoints[..., :2]).all(-1)] = 0.0
        return cls(image_file, box, joints, ids, layout)


def _human_coco(path) -> dict[int, np.ndarray]:
    """{annotation id: (17, 3) = x, y, labelled} of a COCO keypoints file."""
    data = json.loads(Path(path).read_text())
    out = {}
    for ann in data["annotations"]:
        if "keypoints" in ann:
            joints = np.asarray(ann["keypoints"], dtype=np.float64).reshape(COCO_17.num_joints, 3)
            joints[:, 2] = joints[:, 2] > 0
            out[int(ann["id"])] = joints
    return out


def entry_records(entry: dict, layout: JointLayout) -> tuple[list[PoseRecord], set[str]]:
    """The training records of one recipe entry, in ``layout``, and the files it holds out."""
    teacher = TeacherLabels.load(data_path(entry["teacher"]))
    images_dir = data_path(entry["images"])
    names = [str(n) for n in teacher.image_file]
    held = set()
    if entry.get("hold_out_every"):
        held = held_out_files(names, int(entry["hold_out_every"]))
    if entry.get("hold_out_clips_every"):
        _, val_clips = split_clips({clip_of(n) for n in names}, int(entry["hold_out_clips_every"]))
        held = {n for n in names if clip_of(n) in val_clips}
    first, last = number_range(entry["files"]) if entry.get("files") else (None, None)
    human_coco = _human_coco(data_path(entry["human_coco"])) if entry.get("human_coco") else None
    human_lsp = load_lsp_joints(data_path(entry["human_lsp"])) if entry.get("human_lsp") else None
    taught = convert_joints(teacher.joints, teacher.layout, layout)
    records = []
    for i, name in enumerate(names):
        number = int(IMAGE_NUMBER.findall(name)[-1]) if first is not None or human_lsp is not None else 0
        if name in held or (first is not None and not first <= number <= last):
            continue
        joints = np.zeros((layout.num_joints, 3))
        if human_coco is not None and int(teacher.annotation_id[i]) in human_coco:
            joints = convert_joints(human_coco[int(teacher.annotation_id[i])], COCO_17, layout)
        elif human_lsp is not None:
            joints = convert_joints(human_lsp[number - 1], LSP_14, layout)
        if joints[:, 2].sum() == 0 and taught[i, :, 2].sum() == 0:
            continue                           # nothing to learn from this person
        records.append(PoseRecord(images_dir / name, joints, tuple(float(v) for v in teacher.box[i]),
                                  teacher=taught[i], whole_image=bool(entry.get("whole_image", False))))
    require_images([r.image_path for r in records], entry["teacher"], images_dir)
    return records * int(entry.get("repeat", 1)), held


@dataclass(frozen=True)
class Recipe:
    layout: JointLayout
    train: list[PoseRecord]
    neighbours: list[int]                      # indices of records whose people may be pasted
    held_out: dict[str, set[str]]              # entry name -> its validation files
    validate: dict

    @classmethod
    def load(cls, path) -> "Recipe":
        raw = json.loads(Path(path).read_text())
        layout = get_layout(raw.get("layout", COCO_17.name))
        train, neighbours, held_out = [], [], {}
        for entry in raw["train"]:
            records, held = entry_records(entry, layout)
            if entry.get("neighbours"):
                neighbours += range(len(train), len(train) + len(records))
            train += records
            held_out[entry.get("name", entry["teacher"])] = held
        return cls(layout, train, neighbours, held_out, raw.get("validate", {}))


def coco_subset(annotation_file, file_names: set[str]):
    """A pycocotools index of the images of ``annotation_file`` named in ``file_names``:
    a held-out split of a COCO-format set, scored like COCO itself."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    data = json.loads(Path(annotation_file).read_text())
    images = [i for i in data["images"] if i["file_name"] in file_names]
    ids = {i["id"] for i in images}
    subset = {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    subset.setdefault("categories", [{"id": 1, "name": "person"}])
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = subset
        coco.createIndex()
    return coco

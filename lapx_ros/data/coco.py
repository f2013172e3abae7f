"""COCO keypoints annotations (pycocotools), as pose records in the COCO_17 layout.

Coordinates stay in COCO's own convention, so predictions written back for COCOeval are
compared with the labels they came from without any shift.
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lapx_ros.data.lsp import PoseRecord, require_images
from lapx_ros.layouts import COCO_17

PERSON_CATEGORY = 1
# A person box, (x0, y0, x1, y1), and the detector's score for it (1 for labels).
ScoredBox = tuple[tuple[float, float, float, float], float]


def open_coco(annotation_file):
    """A pycocotools COCO index, without its progress chatter on stdout (``--json``)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(annotation_file))


def xywh_to_xyxy(bbox, image_size=None):
    """COCO's (x, y, w, h) as (x0, y0, x1, y1), clipped to the image when its (w, h) is given."""
    x, y, w, h = (float(v) for v in bbox)
    x0, y0, x1, y1 = x, y, x + w, y + h
    if image_size is not None:
        width, height = image_size
        x0, x1 = np.clip([x0, x1], 0, width - 1)
        y0, y1 = np.clip([y0, y1], 0, height - 1)
    return float(x0), float(y0), float(x1), float(y1)


def person_annotations(coco) -> list[dict]:
    """Labelled people: crowds and people without a single labelled keypoint are left out."""
    ids = coco.getAnnIds(catIds=[PERSON_CATEGORY])
    return [a for a in coco.loadAnns(ids) if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0)]


def annotation_joints(annotation) -> np.ndarray:
    """(17, 3) x, y, visible; COCO's v = 1 (labelled, occluded) and 2 (visible) both count."""
    raw = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(COCO_17.num_joints, 3)
    raw[:, 2] = (raw[:, 2] > 0).astype(np.float64)
    return raw


def image_path(coco, image_id, images_dir: Path) -> Path:
    """The file of a COCO image in ``images_dir``."""
    return images_dir / coco.loadImgs(image_id)[0]["file_name"]


def clipped_box(coco, image_id, bbox):
    """A COCO (x, y, w, h) box as (x0, y0, x1, y1) clipped to its image."""
    info = coco.loadImgs(image_id)[0]
    return xywh_to_xyxy(bbox, (info["width"], info["height"]))


def load_coco_records(annotation_file, images_dir) -> list[PoseRecord]:
    """One record per labelled person, with its box. A missing image is an error."""
    coco = open_coco(annotation_file)
    images_dir = Path(images_dir)
    records = []
    for ann in person_annotations(coco):
        records.append(PoseRecord(image_path(coco, ann["image_id"], images_dir), annotation_joints(ann),
                                  clipped_box(coco, ann["image_id"], ann["bbox"])))
    require_images([r.image_path for r in records], annotation_file, images_dir)
    return records


def _valid(box) -> bool:
    return box[2] > box[0] and box[3] > box[1]


def ground_truth_boxes(coco) -> dict[int, list[ScoredBox]]:
    """The labelled people's boxes by image id, each with score 1."""
    boxes: dict[int, list[ScoredBox]] = {}
    for ann in person_annotations(coco):
        box = clipped_box(coco, ann["image_id"], ann["bbox"])
        if _valid(box):
            boxes.setdefault(ann["image_id"], []).append((box, 1.0))
    return boxes


def detected_boxes(coco, detections_file, min_score: float = 0.0) -> dict[int, list[ScoredBox]]:
    """Person boxes from a COCO detection results JSON, by image id, for the images of ``coco``."""
    detections = json.loads(Path(detections_file).read_text())
    if not isinstance(detections, list):
        raise ValueError(f"{detections_file}: expected a list of COCO detection results")
    known = set(coco.getImgIds())
    boxes: dict[int, list[ScoredBox]] = {}
    for det in detections:
        if (det.get("category_id", PERSON_CATEGORY) != PERSON_CATEGORY or det["image_id"] not in known
                or det["score"] < min_score):
            continue
        box = clipped_box(coco, det["image_id"], det["bbox"])
        if _valid(box):
            boxes.setdefault(det["image_id"], []).append((box, float(det["score"])))
    return boxes


@dataclass(frozen=True)
class CocoPeople:
    """What a COCO evaluation scores: its images and the person boxes cropped in each."""

    coco: object
    images_dir: Path
    image_ids: list[int]
    boxes: dict[int, list[ScoredBox]]

    def image_path(self, image_id) -> Path:
        return image_path(self.coco, image_id, self.images_dir)


def load_coco_people(annotation_file, images_dir, detections_file=None, limit: int = 0,
                     min_score: float = 0.0) -> CocoPeople:
    """Labelled boxes, or detected ones when a results file is given, of the first ``limit``
    images (0: all, by image id). A missing image with a box to crop is an error."""
    coco = open_coco(annotation_file)
    image_ids = sorted(coco.getImgIds())[:limit or None]
    boxes = ground_truth_boxes(coco) if detections_file is None else detected_boxes(coco, detections_file, min_score)
    people = CocoPeople(coco, Path(images_dir), image_ids, {i: boxes[i] for i in image_ids if i in boxes})
    require_images(map(people.image_path, people.boxes), annotation_file, images_dir)
    return people

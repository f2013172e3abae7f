"""People found, scored against COCO person labels: each published pose (or detector box)
is a target found, another labelled person, a false detection, or one not counted inside
an ``iscrowd`` region (the protocol of ``scripts/detector_probe.py accuracy``); and what
a sequence of frames shows of tracking (people per frame, track ids) and of a node run
(rate, latency). No ROS here.
"""
from __future__ import annotations

import numpy as np

from lapx_ros.geometry import box_intersection, box_ious
from lapx_ros.testing.harness import percentiles

MIN_KEYPOINTS = 5  # target people: at least this many labelled keypoints (as detector_probe.py)
IOU = 0.5
CROWD_COVER = 0.5  # a false pose with this much of its box inside an iscrowd box is not counted


def xywh_to_xyxy(box) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h])


def covered_by_crowd(box, crowd_boxes, share: float = CROWD_COVER) -> bool:
    """True when one iscrowd box covers at least ``share`` of ``box``'s area."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    for c in np.asarray(crowd_boxes, np.float64).reshape(-1, 4):
        if box_intersection(box, c) / area >= share:
            return True
    return False


# What a published pose turned out to be.
TARGET, OTHER_PERSON, FALSE, IN_CROWD = 2, 1, 0, -1


def label_poses(boxes, scores, people_boxes, is_target, crowd_boxes, iou: float = IOU) -> np.ndarray:
    """Kind of each pose (TARGET, OTHER_PERSON, FALSE, IN_CROWD), in input order.

    Poses are taken best score first; each takes the free labelled person it overlaps
    most at IoU >= ``iou`` (a person with few keypoints is still a person: finding one
    is no false detection, but only targets count for recall). A pose matching nobody is
    false unless it lies mostly inside an iscrowd region, where it is not counted.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    people_boxes = np.asarray(people_boxes, np.float64).reshape(-1, 4)
    is_target = np.asarray(is_target, bool).reshape(-1)
    taken = np.zeros(len(people_boxes), bool)
    kinds = np.full(len(boxes), FALSE, int)
    for i in np.argsort(-scores, kind="stable"):
        overlap = box_ious(boxes[i], people_boxes)
        free = (~taken) & (overlap >= iou)
        if free.any():
            j = int(np.argmax(np.where(free, overlap, -1.0)))
            taken[j] = True
            kinds[i] = TARGET if is_target[j] else OTHER_PERSON
        elif covered_by_crowd(boxes[i], crowd_boxes):
            kinds[i] = IN_CROWD
    return kinds


def tally(kinds_per_image, targets: int, people: int) -> dict:
    """Recall over the targets, precision over the counted poses, recall over all people."""
    kinds = np.concatenate([np.asarray(k, int).reshape(-1) for k in kinds_per_image]) if kinds_per_image \
        else np.zeros(0, int)
    found = int((kinds == TARGET).sum())
    true = int((kinds >= OTHER_PERSON).sum())
    counted = int((kinds >= FALSE).sum())
    return {"targets_found": found, "targets": int(targets), "true": true, "counted": counted,
            "people": int(people), "not_counted_in_crowd": int((kinds == IN_CROWD).sum()),
            "recall": found / targets if targets else float("nan"),
            "precision": true / counted if counted else float("nan"),
            "recall_all_people": true / people if people else float("nan")}


def coco_people(annotations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(non-crowd person boxes (N, 4) xyxy, target mask (N,), crowd boxes (M, 4)) of one image."""
    people = [a for a in annotations if not a.get("iscrowd", 0)]
    crowds = [a for a in annotations if a.get("iscrowd", 0)]
    boxes = np.array([xywh_to_xyxy(a["bbox"]) for a in people]).reshape(-1, 4)
    target = np.array([a.get("num_keypoints", 0) >= MIN_KEYPOINTS for a in people], bool)
    crowd_boxes = np.array([xywh_to_xyxy(a["bbox"]) for a in crowds]).reshape(-1, 4)
    return boxes, target, crowd_boxes


def track_summary(ids_per_frame) -> dict:
    """People per frame and track ids of a sequence (ids per frame; 0 = no id)."""
    counts = np.array([len(ids) for ids in ids_per_frame], np.float64)
    ids = {int(i) for frame in ids_per_frame for i in frame if int(i) != 0}
    lengths = {}
    for frame in ids_per_frame:
        for i in frame:
            if int(i):
                lengths[int(i)] = lengths.get(int(i), 0) + 1
    life = np.array(sorted(lengths.values()), np.float64)
    return {"frames": len(ids_per_frame),
            "people_per_frame_mean": float(counts.mean()) if counts.size else float("nan"),
            "people_per_frame_median": float(np.median(counts)) if counts.size else float("nan"),
            "people_per_frame_max": int(counts.max()) if counts.size else 0,
            "frames_with_people": int((counts > 0).sum()),
            "track_ids": len(ids),
            "track_frames_median": float(np.median(life)) if life.size else float("nan"),
            "tracks_of_1_frame": int((life == 1).sum())}


def rate_and_latency(stamps, receive_times) -> dict:
    """Processed rate (messages per second between the first and last arrival) and
    latency percentiles (arrival - image stamp, ms) of one node run."""
    stamps = np.asarray(stamps, np.float64)
    recv = np.asarray(receive_times, np.float64)
    lat = (recv - stamps) * 1000.0
    out = {"processed": int(len(recv))}
    span = float(recv.max() - recv.min()) if len(recv) > 1 else 0.0
    out["rate_hz"] = (len(recv) - 1) / span if span > 0 else float("nan")
    out.update({f"latency_ms_{k}": v for k, v in percentiles(lat, (50, 95)).items()})
    out["latency_ms_max"] = float(lat.max()) if lat.size else float("nan")
    return out

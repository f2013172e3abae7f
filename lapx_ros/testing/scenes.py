"""Benchmark frames: LSPET photos composed into 640x480 frames (one person filling the
frame, or three side by side with their boxes), COCO images with a few people letterboxed
to 640x480, each frame held for a while as a person stays put between the frames of a
video. No ROS here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_W, FRAME_H = 640, 480
CROWD_PEOPLE = (3, 5)  # people in a COCO image chosen for the crowd speed frames


@dataclass
class Composition:
    """A 640x480 BGR frame and the person boxes (x0, y0, x1, y1, OpenCV pixels) in it."""

    frame: np.ndarray
    boxes: np.ndarray
    sources: tuple


def paste_fit(canvas: np.ndarray, image: np.ndarray, slot, joints=None):
    """Scale ``image`` to fit ``slot`` = (x, y, w, h) of ``canvas`` keeping its aspect,
    centred; returns the joints (K, 2+) mapped into canvas pixels (or None)."""
    import cv2

    x, y, w, h = slot
    ih, iw = image.shape[:2]
    scale = min(w / iw, h / ih)
    nw, nh = max(1, int(round(iw * scale))), max(1, int(round(ih * scale)))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = x + (w - nw) // 2, y + (h - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = resized
    if joints is None:
        return None
    mapped = np.array(joints, np.float64, copy=True)
    # pixel centres: (u + 0.5) scales with the image
    mapped[:, 0] = (mapped[:, 0] + 0.5) * (nw / iw) - 0.5 + ox
    mapped[:, 1] = (mapped[:, 1] + 0.5) * (nh / ih) - 0.5 + oy
    return mapped


def person_box(joints, margin: float = 0.15, limits=(FRAME_W, FRAME_H)) -> np.ndarray:
    """Box around the labelled joints (x, y[, visible]) widened by ``margin`` of its size
    on each side, as a person detector would return it; clipped to the frame."""
    pts = np.asarray(joints, np.float64)[:, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    return np.array([max(0.0, x0 - mx), max(0.0, y0 - my),
                     min(limits[0], x1 + mx), min(limits[1], y1 + my)])


def place_person(canvas: np.ndarray, image: np.ndarray, joints, slot, fill: float = 0.75):
    """Warp ``image`` into ``slot`` = (x, y, w, h) of ``canvas`` so that its labelled person
    is centred and about ``fill`` of the slot high (or wide); returns the mapped joints."""
    import cv2

    x, y, w, h = slot
    pts = np.asarray(joints, np.float64)
    lo, hi = pts[:, :2].min(axis=0), pts[:, :2].max(axis=0)
    size = np.maximum(hi - lo, 1.0)
    scale = fill * min(w / size[0], h / size[1])
    centre = (lo + hi) / 2
    matrix = np.array([[scale, 0.0, w / 2 - scale * centre[0]], [0.0, scale, h / 2 - scale * centre[1]]])
    region = canvas[y:y + h, x:x + w]
    cv2.warpAffine(image, matrix, (w, h), dst=region, flags=cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_TRANSPARENT)
    mapped = pts.copy()
    mapped[:, 0] = pts[:, 0] * scale + matrix[0, 2] + x
    mapped[:, 1] = pts[:, 1] * scale + matrix[1, 2] + y
    return mapped


def compose(images, joints, persons: int, background: int = 96) -> Composition:
    """One 640x480 frame: a single image fills the frame keeping its aspect (the scene as
    photographed); several people are placed side by side, each centred in a slot of its
    own and about 3/4 of its height. Boxes come from each image's labelled joints."""
    if len(images) != persons or len(joints) != persons:
        raise ValueError(f"need {persons} images and joint sets, got {len(images)} and {len(joints)}")
    canvas = np.full((FRAME_H, FRAME_W, 3), background, np.uint8)
    width = FRAME_W // persons
    boxes = []
    for i, (image, pts) in enumerate(zip(images, joints)):
        slot_w = width if i < persons - 1 else FRAME_W - width * (persons - 1)
        slot = (i * width, 0, slot_w, FRAME_H)
        mapped = paste_fit(canvas, image, slot, pts) if persons == 1 else place_person(canvas, image, pts, slot)
        boxes.append(person_box(mapped))
    return Composition(canvas, np.asarray(boxes, np.float64).reshape(-1, 4), ())


def load_lspet_joints(joints_file) -> np.ndarray:
    """LSPET joints as (N, 14, 3) = x, y, visible."""
    import scipy.io

    raw = scipy.io.loadmat(str(joints_file))["joints"]
    if raw.shape[:2] == (14, 3):
        return np.ascontiguousarray(raw.transpose(2, 0, 1), np.float64)
    raise ValueError(f"{joints_file}: unexpected joints shape {raw.shape}")


def pick_images(joints: np.ndarray, images_dir, first: int, count: int, min_side: int = 150) -> list[int]:
    """1-based indices from ``first`` on whose 14 joints are all labelled visible and whose
    image is at least ``min_side`` px on its short side (people large enough to matter)."""
    import cv2

    chosen = []
    index = first
    while len(chosen) < count and index <= len(joints):
        path = Path(images_dir) / f"im{index:05d}.jpg"
        if path.is_file() and (joints[index - 1, :, 2] > 0).all():
            image = cv2.imread(str(path))
            if image is not None and min(image.shape[:2]) >= min_side:
                chosen.append(index)
        index += 1
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} usable images from im{first:05d} on in {images_dir}")
    return chosen


def build_scenes(images_dir, joints_file, count: int = 8, first: int = 9001) -> dict:
    """Frames for the two scenarios from LSPET validation images.

    Returns {"1_person": [Composition...], "3_persons": [Composition...]}, ``count``
    frames each; the 3-person frames use three different images side by side.
    """
    import cv2

    joints = load_lspet_joints(joints_file)
    indices = pick_images(joints, images_dir, first, 4 * count)
    load = {i: cv2.imread(str(Path(images_dir) / f"im{i:05d}.jpg")) for i in indices}
    one = []
    for i in indices[:count]:
        comp = compose([load[i]], [joints[i - 1]], 1)
        comp.sources = (i,)
        one.append(comp)
    three = []
    rest = indices[count:]
    for k in range(count):
        trio = rest[3 * k:3 * k + 3]
        comp = compose([load[i] for i in trio], [joints[i - 1] for i in trio], 3)
        comp.sources = tuple(trio)
        three.append(comp)
    return {"1_person": one, "3_persons": three}


def save_scenes(scenes: dict, path) -> None:
    arrays = {}
    for name, comps in scenes.items():
        arrays[f"{name}/frames"] = np.stack([c.frame for c in comps])
        arrays[f"{name}/boxes"] = np.stack([c.boxes for c in comps]) if comps[0].boxes.size else np.zeros(0)
        arrays[f"{name}/sources"] = np.asarray([list(c.sources) for c in comps])
    np.savez(path, **arrays)


def load_scenes(path) -> dict:
    """{scenario: (frames (F, 480, 640, 3), boxes (F, P, 4), sources (F, P))}."""
    data = np.load(path)
    names = sorted({k.split("/")[0] for k in data.files})
    return {n: (data[f"{n}/frames"], data[f"{n}/boxes"], data[f"{n}/sources"]) for n in names}


def sequence_index(frame_number: int, scenes_count: int, hold: int) -> int:
    """Which composition frame ``frame_number`` shows: each is held for ``hold`` frames,
    as a person in a video stays put between frames, then the next one comes."""
    return (frame_number // max(1, hold)) % scenes_count


def letterbox_to(image: np.ndarray, size=(FRAME_W, FRAME_H), fill: int = 0) -> np.ndarray:
    """``image`` scaled to fit ``size`` = (w, h) with its aspect kept, centred, padded."""
    from lapx_ros.geometry import letterbox

    return letterbox(image, size[1], size[0], centred=True, fill=fill)[0]


def speed_images(dataset: dict, people=CROWD_PEOPLE) -> list[dict]:
    """Images of a COCO keypoints file with ``people[0]``..``people[1]`` non-crowd people."""
    count: dict[int, int] = {}
    for a in dataset["annotations"]:
        if not a.get("iscrowd", 0):
            count[a["image_id"]] = count.get(a["image_id"], 0) + 1
    return [im for im in sorted(dataset["images"], key=lambda i: i["id"])
            if people[0] <= count.get(im["id"], 0) <= people[1]]


def write_held_frames(frames, hold: int, folder: Path) -> int:
    """Each frame once as PNG, then ``hold`` names per frame (symlinks) in play order."""
    import cv2

    n = 0
    for i, frame in enumerate(frames):
        original = folder / f"src_{i:03d}.png.keep"
        cv2.imwrite(str(original.with_suffix("")), frame)
        os.replace(original.with_suffix(""), original)
        for _ in range(hold):
            (folder / f"{n:05d}.png").symlink_to(original.name)
            n += 1
    return n

"""Teacher labels from MoveNet SinglePose (Thunder / Lightning) for every training image.

Data preparation only (issue 18: distillation targets); the node never loads MoveNet
SinglePose. Build the models first with scripts/make_movenet_singlepose.sh, then run in
the project's environment (``pip install -e`` done by set-up), from the repository root:

    .venv/bin/python scripts/movenet_teacher_labels.py label DATA OUT_DIR [--sources ...]
    .venv/bin/python scripts/movenet_teacher_labels.py finish OUT_DIR

``DATA`` is the shared data folder (lspet/, coco-mini/, people/, footage/). ``label`` runs
the teacher top-down: one square crop per person box, centred on it, side = padding x the
box's longer side, zero outside the image, resized to the model's input; the keypoints are
mapped back to image pixels (pixel-centre coordinates: pixel (0, 0) spans -0.5..0.5). Each
person gets several variants (``VARIANTS``) so that the ensemble can be chosen afterwards
(scripts/score_movenet_teacher.py measures them); ``finish`` then puts the chosen ensemble
first in ``keypoints`` and writes the per-joint ``weight`` (see ``ensemble_and_weight``).

Where each person's box comes from is data preparation, so human labels may place it:
    lspet          im00001-im09500 (never the held-back 9501-10000): the extent of the
                   labelled joints, grown by LSP_BOX_GROWTH (head top and ankles lie on it)
    coco_train2017 / coco_val2017   every non-crowd person box (val: for measuring only)
    fashion        the labelled box of each person
    street         a Thunder pass on the whole image, then the box of its joints
    scenes         every labelled YOLO box
    footage        MoveNet MultiPose (the set-up's detector): every person scoring
                   >= FOOTAGE_MIN_SCORE, refined by the box of a Thunder pass's joints
Output ``OUT_DIR/<source>_<model>.npz``; fields in training/teacher/README.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lapx_ros.layouts import COCO_17

# variant name -> (padding of the box's longer side, mirrored crop)
VARIANTS = {"plain": (1.1, False), "flip": (1.1, True), "pad1.25": (1.25, False)}
MODELS = {"thunder": "movenet-thunder.onnx", "lightning": "movenet-lightning.onnx"}
SOURCES = ("lspet", "coco_train2017", "coco_val2017", "fashion", "street", "scenes", "footage")
LSP_LAST_IMAGE = 9500  # 9501-10000 are held back: never read
# The labelled joints' extent is grown by this share of its longer side on every side: the
# head top and ankles lie on the extent, a person box reaches past them (feet, hair).
LSP_BOX_GROWTH = 0.05
JOINTS_BOX_GROWTH = 0.1  # box of a first pass's joints (street, footage): see joints_box
FOOTAGE_MIN_SCORE = 0.3  # MultiPose person score for a footage person to be labelled
FLIP = np.asarray(COCO_17.flip_permutation())


def session(path: Path):
    """ONNX Runtime on 2 threads that sleep when idle: the machine's 2 cores are shared."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def default_model_dir() -> Path:
    """Where scripts/make_movenet_singlepose.sh installs the teachers by default."""
    return Path(sys.prefix) / "share" / "lapx_ros" / "teachers"


def crop_square(image: np.ndarray, box, padding: float, size: int):
    """The square crop centred on ``box`` (x0, y0, x1, y1), side = padding x its longer side,
    resized to size x size (bilinear, zero outside the image). Returns the crop and its
    square (x0, y0, side) in pixel-edge coordinates (pixel i spans i..i+1)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(padding * max(x1 - x0, y1 - y0), 1.0)
    left, top = (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2
    s = size / side
    sx = sy = 1.0
    if s < 0.5:  # shrink with area averaging first, so bilinear does not alias
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * 2 * s)), max(1, round(h * 2 * s))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = nw / w, nh / h
    # edge coordinates: u = (x - left) * s; OpenCV maps pixel centres, hence the 0.5s
    ax, ay = s / sx, s / sy
    m = np.array([[ax, 0, ax * 0.5 - left * s - 0.5], [0, ay, ay * 0.5 - top * s - 0.5]])
    crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, (left, top, side)


class SinglePose:
    """MoveNet SinglePose on person crops: (17, 3) x, y image pixels, score per call."""

    def __init__(self, path: Path):
        self.session = session(path)
        (inp,) = self.session.get_inputs()
        self.input_name = inp.name
        self.size = int(inp.shape[1])
        self.runs = 0
        self.seconds = 0.0

    def __call__(self, image_rgb: np.ndarray, box, padding: float, flip: bool) -> np.ndarray:
        crop, (left, top, side) = crop_square(image_rgb, box, padding, self.size)
        if flip:
            crop = crop[:, ::-1]
        x = np.ascontiguousarray(crop, dtype=np.int32)[None]
        t = time.perf_counter()
        out = self.session.run(None, {self.input_name: x})[0].reshape(17, 3).astype(np.float64)
        self.seconds += time.perf_counter() - t
        self.runs += 1
        ny, nx, score = out[:, 0], out[:, 1], out[:, 2]
        if flip:
            nx = 1.0 - nx
        kp = np.stack([left + nx * side - 0.5, top + ny * side - 0.5, score], axis=1)
        return kp[FLIP] if flip else kp


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------ the people
# Each source gives (images_dir, items); an item is (image_file, box, extra fields).

def lsp_joints(data: Path) -> np.ndarray:
    """(9500, 14, 3) x, y, visible of LSPET im00001-im09500 (the held-back rest dropped)."""
    from scipy.io import loadmat

    return loadmat(str(data / "lspet" / "joints.mat"))["joints"].transpose(2, 0, 1)[:LSP_LAST_IMAGE]


def lsp_box(joints: np.ndarray):
    """Box of LSPET's labelled joints (visible flag 1; the others carry no position)."""
    xy = joints[joints[:, 2] > 0, :2]
    if len(xy) < 2:
        return None
    (x0, y0), (x1, y1) = xy.min(0), xy.max(0)
    grow = LSP_BOX_GROWTH * max(x1 - x0, y1 - y0)
    return x0 - grow, y0 - grow, x1 + grow, y1 + grow


def source_lspet(data: Path):
    items = []
    for i, joints in enumerate(lsp_joints(data)):
        box = lsp_box(joints)
        if box is not None:
            items.append((f"im{i + 1:05d}.jpg", box, {"image_index": i + 1}))
    return data / "lspet" / "images", items


def coco_items(annotation_file: Path):
    """Every non-crowd person box of a COCO keypoints file, clipped to its image."""
    with open(annotation_file) as f:
        d = json.load(f)
    images = {im["id"]: im for im in d["images"]}
    items = []
    for a in sorted(d["annotations"], key=lambda a: a["id"]):
        if a.get("iscrowd", 0) or a.get("category_id", 1) != 1:
            continue
        im = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        box = (max(x, 0.0), max(y, 0.0), min(x + w, im["width"]), min(y + h, im["height"]))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        items.append((im["file_name"], box, {"annotation_id": a["id"], "image_id": a["image_id"],
                                             "num_keypoints": a.get("num_keypoints", 0)}))
    return items


def source_coco(data: Path, split: str):
    return data / "coco-mini" / f"{split}2017", coco_items(data / "coco-mini" / f"person_keypoints_{split}2017.json")


def source_fashion(data: Path):
    return data / "people" / "fashion" / "images", coco_items(data / "people" / "fashion" / "person_keypoints.json")


def source_scenes(data: Path):
    folder = data / "people" / "scenes"
    items = []
    for image in sorted((folder / "images").glob("*.jpg")):
        h, w = cv2.imread(str(image), cv2.IMREAD_REDUCED_GRAYSCALE_2).shape[:2]
        h, w = h * 2, w * 2  # only the size is needed (384 x 384 here)
        rows = np.loadtxt(folder / "labels" / f"{image.stem}.txt", ndmin=2)
        for k, (cls, cx, cy, bw, bh) in enumerate(rows):
            if int(cls) != 0:
                continue
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            items.append((image.name, box, {"box_index": k}))
    return folder / "images", items


def detector():
    from lapx_ros.runtime.detectors.movenet import MoveNetDetector, default_detector_path

    path = default_detector_path()
    if not path:
        raise SystemExit("the MultiPose detector is missing: run make setup (scripts/make_detector.sh)")
    return MoveNetDetector(path, input_size=384, score_threshold=0.1, backend="onnxruntime", threads=1)


def joints_box(keypoints: np.ndarray, grow: float = JOINTS_BOX_GROWTH, min_score: float = 0.2):
    """Box of the joints scoring >= min_score, grown by ``grow`` x its longer side on every
    side (nose to ankles: the head top and feet lie beyond); None with fewer than 4 joints."""
    ok = keypoints[:, 2] >= min_score
    if ok.sum() < 4:
        return None
    (x0, y0), (x1, y1) = keypoints[ok, :2].min(0), keypoints[ok, :2].max(0)
    g = grow * max(x1 - x0, y1 - y0)
    return float(x0 - g), float(y0 - g), float(x1 + g), float(y1 + g)


def iou(a, b) -> float:
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def source_street(data: Path, model: "SinglePose"):
    """The photo's subject: a Thunder pass on the whole image (MoveNet SinglePose favours
    the person nearest the centre, where a street photo puts its subject), then the box of
    its joints. Measured on fashion/ (every 5th photo, labelled boxes as the yardstick,
    limb OKS-hit of the crop that follows): labelled box 0.983, this 0.990, the MultiPose
    detector's main person 0.906 (it found nobody scoring >= 0.2 in 13 of 202 photos;
    on street/ its scores are low, below 0.3 in 45 % of the photos)."""
    folder = data / "people" / "street" / "images"
    items = []
    for image in sorted(folder.glob("*.jpg")):
        rgb = read_rgb(image)
        h, w = rgb.shape[:2]
        first = model(rgb, (0, 0, w, h), 1.0, False)
        box = joints_box(first)
        items.append((image.name, box or (0.0, 0.0, float(w), float(h)),
                      {"box_joints": int((first[:, 2] >= 0.2).sum())}))
    return folder, items


def source_footage(data: Path, model: "SinglePose"):
    """Every person the MultiPose detector scores >= FOOTAGE_MIN_SCORE (MediaPipe's
    landmarks give one person per frame; these frames have one or two), the box then
    refined by one Thunder pass: the box of its joints (kept unless it left the detector's
    person, IoU < 0.3). On COCO people the detector found, the refined box gave limb
    OKS-hit 0.969 / 0.986 (train / val) against 0.952 / 0.981 for the detector's box."""
    folder = data / "footage" / "exercise"
    det = detector()
    items = []
    for image in sorted(folder.glob("*.jpg")):
        rgb = read_rgb(image)
        found = det(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        for k in np.flatnonzero(found.scores >= FOOTAGE_MIN_SCORE):
            det_box = tuple(float(v) for v in found.boxes[k])
            box = joints_box(model(rgb, det_box, VARIANTS["plain"][0], False))
            if box is None or iou(box, det_box) < 0.3:
                box = det_box
            items.append((image.name, box, {"box_score": float(found.scores[k]), "box_index": int(k),
                                            "detector_box": det_box}))
    return folder, items


def people_of(source: str, data: Path, model: SinglePose):
    if source in ("street", "footage"):
        return (source_street if source == "street" else source_footage)(data, model)
    if source == "lspet":
        return source_lspet(data)
    if source.startswith("coco_"):
        return source_coco(data, source[len("coco_"):-len("2017")])
    return {"fashion": source_fashion, "scenes": source_scenes}[source](data)


# ------------------------------------------------------------------------ labelling
def label(source: str, data: Path, model: SinglePose, model_name: str, variants, limit: int = 0) -> dict:
    """Every person of ``source`` through ``model`` in each variant; the .npz fields."""
    images_dir, items = people_of(source, data, model)
    items = items[:limit or None]
    keypoints = np.zeros((len(items), len(variants), 17, 3), np.float32)
    sizes = np.zeros((len(items), 2), np.int32)
    cached_name, image = None, None
    t0 = time.time()
    for n, (name, box, _) in enumerate(items):
        if name != cached_name:
            image, cached_name = read_rgb(images_dir / name), name
        sizes[n] = image.shape[1], image.shape[0]
        for v, variant in enumerate(variants):
            padding, flip = VARIANTS[variant]
            keypoints[n, v] = model(image, box, padding, flip)
        if (n + 1) % 500 == 0:
            print(f"[labels] {source} {model_name}: {n + 1}/{len(items)} ({time.time() - t0:.0f} s)", flush=True)
    box = np.array([b for _, b, _ in items], np.float32).reshape(-1, 4)
    out = {
        "image_file": np.array([name for name, _, _ in items]),
        "image_size": sizes,
        "box": box,
        "keypoints": quantised(keypoints),
        "variants": np.array(list(variants)),
        "variant_padding": np.array([VARIANTS[v][0] for v in variants], np.float32),
        "model": np.array(MODELS[model_name]),
    }
    for key in (items[0][2] if items else {}):
        values = np.asarray([extra[key] for _, _, extra in items])
        out[key] = values.astype(np.float32 if values.dtype.kind == "f" else np.int64)
    return out


def quantised(keypoints: np.ndarray) -> np.ndarray:
    """x, y rounded to 1/32 pixel and scores to 1/1024: float32 values with short mantissas
    compress to about a third, and no label is that precise."""
    out = keypoints.astype(np.float32).copy()
    out[..., :2] = np.round(out[..., :2] * 32) / 32
    out[..., 2] = np.round(out[..., 2] * 1024) / 1024
    return out


def run_label(args) -> int:
    models = {}
    for source in args.sources:
        for model_name in (["thunder"] + (["lightning"] if source in args.lightning else [])):
            if model_name not in models:
                models[model_name] = SinglePose(args.models / MODELS[model_name])
            model = models[model_name]
            variants = args.variants if model_name == "thunder" else ["plain"]
            runs, seconds, t = model.runs, model.seconds, time.time()
            out = label(source, args.data, model, model_name, variants, args.limit)
            dest = args.out / f"{source}_{model_name}.npz"
            dest.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(dest, **out)
            ms = 1000 * (model.seconds - seconds) / max(model.runs - runs, 1)
            print(f"[labels] {dest}: {len(out['box'])} people x {len(variants)} variants, "
                  f"{ms:.1f} ms per crop (model only), {time.time() - t:.0f} s", flush=True)
    return 0


# ------------------------------------------------------------------------ ensembles
# name -> how the raw variants combine (scripts/score_movenet_teacher.py measures each)
ENSEMBLES = {
    "plain": ("plain",), "flip": ("flip",), "pad1.25": ("pad1.25",),
    "mean(plain,flip)": ("plain", "flip"), "mean(all3)": ("plain", "flip", "pad1.25"),
    "conf(all3)": ("plain", "flip", "pad1.25"),
}


def raw_variants(keypoints: np.ndarray, variants, names) -> np.ndarray:
    """(N, len(names), 17, 3) of the named raw variants of a labels file."""
    variants = [str(v) for v in variants]
    return keypoints[:, [variants.index(n) for n in names]].astype(np.float64)


def combine(keypoints: np.ndarray, variants, ensemble: str) -> np.ndarray:
    """(N, 17, 3) x, y, score of ``ensemble``: the mean of its variants' positions and
    scores, or for conf(...) the positions weighted by each variant's score."""
    k = raw_variants(keypoints, variants, ENSEMBLES[ensemble])
    score = k[..., 2].mean(1)
    if ensemble.startswith("conf"):
        w = np.maximum(k[..., 2:3], 1e-6)
        xy = (k[..., :2] * w).sum(1) / w.sum(1)
    else:
        xy = k[..., :2].mean(1)
    return np.concatenate([xy, score[..., None]], axis=-1)


def box_scale(box: np.ndarray) -> np.ndarray:
    """sqrt(w * h) of each person box (N,): the unit of agreement and errors."""
    box = np.asarray(box, np.float64)
    return np.sqrt(np.maximum((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1.0))


def disagreement(keypoints: np.ndarray, variants, box: np.ndarray) -> np.ndarray:
    """(N, 17): the largest distance between any two of plain, flip and pad1.25 for each
    joint, over sqrt(box area). Small when the crops agree: a quality signal of its own."""
    k = raw_variants(keypoints, variants, ("plain", "flip", "pad1.25"))[..., :2]
    d = np.zeros(k.shape[:1] + k.shape[2:3])
    for a in range(3):
        for b in range(a + 1, 3):
            d = np.maximum(d, np.linalg.norm(k[:, a] - k[:, b], axis=-1))
    return d / box_scale(box)[:, None]


# ------------------------------------------------------------------------ the weight
# Chosen with scripts/score_movenet_teacher.py (tables in training/teacher/README.md).
CHOSEN_ENSEMBLE = "plain"
# weight = sigmoid(a + b * score + c * ln(max(disagreement, SPREAD_FLOOR))), (a, b, c) per
# joint group, fitted on the limb / face joints of LSPET, COCO train2017 and fashion
WEIGHT_PARAMETERS = {"limbs": (-1.387, 3.505, -0.526), "face": (-3.215, 6.779, -0.563)}
SPREAD_FLOOR = 0.005
FACE = np.arange(17) < 5  # COCO-17 nose, eyes, ears


def weight_features(score: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """(..., 3): 1, the ensemble's score, ln of the variants' disagreement (floored)."""
    score = np.asarray(score, np.float64)
    return np.stack([np.ones_like(score), score, np.log(np.maximum(spread, SPREAD_FLOOR))], axis=-1)


def joint_weight(score: np.ndarray, spread: np.ndarray, parameters=None) -> np.ndarray:
    """(N, 17) training weight per joint: the measured chance that the teacher's joint is
    correct (OKS >= 0.5), a logistic function of its score and of its crops' disagreement."""
    p = WEIGHT_PARAMETERS if parameters is None else parameters
    beta = np.where(FACE[:, None], np.asarray(p["face"], np.float64), np.asarray(p["limbs"], np.float64))
    return 1.0 / (1.0 + np.exp(-(weight_features(score, spread) * beta).sum(-1)))


# ------------------------------------------------------------------------ finishing
def ensemble_and_weight(keypoints: np.ndarray, variants, box: np.ndarray):
    """The chosen ensemble (N, 17, 3) and the per-joint weight (N, 17); see the README."""
    ensemble = combine(keypoints, variants, CHOSEN_ENSEMBLE)
    weight = joint_weight(ensemble[..., 2], disagreement(keypoints, variants, box))
    return ensemble, weight


def finish(path: Path) -> str:
    """Rewrites one labels file with the chosen ensemble first: ``keypoints[:, 0]`` is
    CHOSEN_ENSEMBLE (a raw variant is moved to the front; a combination is inserted
    there as "ensemble"), plus ``weight`` (N, 17). Run again after a change of the choice:
    the raw variants are kept and the ensemble is recomputed."""
    with np.load(path) as d:
        out = {k: d[k] for k in d.files}
    variants = [str(v) for v in out["variants"]]
    raw = [i for i, v in enumerate(variants) if v != "ensemble"]
    if CHOSEN_ENSEMBLE in variants:  # a raw variant: to the front, not stored twice
        k = variants.index(CHOSEN_ENSEMBLE)
        raw = [k] + [i for i in raw if i != k]
    keypoints, variants = out["keypoints"][:, raw], [variants[i] for i in raw]
    padding = out["variant_padding"][raw]
    ensemble, weight = ensemble_and_weight(keypoints, variants, out["box"])
    if CHOSEN_ENSEMBLE in VARIANTS:
        out["keypoints"], out["variants"] = keypoints, np.array(variants)
        out["variant_padding"] = padding.astype(np.float32)
    else:
        out["keypoints"] = np.concatenate([quantised(ensemble[:, None]), keypoints], axis=1)
        out["variants"] = np.array(["ensemble"] + variants)
        out["variant_padding"] = np.concatenate([[np.nan], padding]).astype(np.float32)
    out["weight"] = (np.round(weight * 1024) / 1024).astype(np.float32)
    out["ensemble"] = np.array(CHOSEN_ENSEMBLE)
    out["weight_parameters"] = np.array([WEIGHT_PARAMETERS["limbs"], WEIGHT_PARAMETERS["face"]], np.float64)
    out["weight_spread_floor"] = np.array(SPREAD_FLOOR)
    np.savez_compressed(path, **out)
    return f"{path}: {len(weight)} people, ensemble {CHOSEN_ENSEMBLE}, mean weight {weight.mean():.3f}"


def run_finish(args) -> int:
    paths = sorted(args.out.glob("*_thunder.npz"))
    if not paths:
        raise SystemExit(f"no *_thunder.npz in {args.out}")
    for path in paths:
        print(finish(path))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("label", help="run the teacher on every person of the sources")
    p.add_argument("data", type=Path, help="the shared data folder (lspet/, coco-mini/, people/, footage/)")
    p.add_argument("out", type=Path, help="folder of the .npz files (training/teacher)")
    p.add_argument("--sources", nargs="+", default=list(SOURCES), choices=SOURCES)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--lightning", nargs="*", default=["coco_val2017", "fashion"], choices=SOURCES,
                   help="sources also labelled by Lightning (plain only), to measure it")
    p.add_argument("--models", type=Path, default=default_model_dir(), help="folder of the ONNX teachers")
    p.add_argument("--limit", type=int, default=0, help="first N people of each source (trials)")
    p = sub.add_parser("finish", help="put the chosen ensemble first and add the weights")
    p.add_argument("out", type=Path, help="folder of the .npz files")
    args = parser.parse_args(argv)
    return run_label(args) if args.command == "label" else run_finish(args)


if __name__ == "__main__":
    sys.exit(main())

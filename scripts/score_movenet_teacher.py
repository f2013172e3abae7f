"""Scores the MoveNet teacher labels (scripts/movenet_teacher_labels.py) against human labels,
to choose the ensemble and the per-joint training weight; prints the tables of
training/teacher/README.md. Runs in the project's environment, from the repository root:

    .venv/bin/python scripts/score_movenet_teacher.py DATA training/teacher [--timing 100]

Human labels: COCO sliver val2017 and train2017 and people/fashion (17 keypoints; OKS with
COCO's sigmas and area = labelled box w x h; fashion flags every keypoint visible, hidden
ones too), LSPET im00001-im09500 (its 12 limb joints, images with neck and head top
labelled; OKS with the labelling box's area, and the dashboard's PCKh@0.5 in the first
table). A joint is "correct" when its OKS is >= 0.5; "limb" = COCO 5-16.
Errors are pixel distances over sqrt(box area) (LSPET: the labelling box, joints' extent).
MediaPipe heavy's landmarks (where they exist) serve as a second opinion.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import movenet_teacher_labels as mtl  # this folder is on sys.path when run as a script

COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                        1.07, 1.07, 0.87, 0.87, 0.89, 0.89]) / 10.0
LIMBS = np.arange(5, 17)
# LSP-14 joint i (ankle..wrist, 12 limb joints) is COCO-17 joint LSP_TO_COCO[i]
LSP_TO_COCO = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9)
# BlazePose landmark of each COCO-17 joint
BLAZEPOSE_OF_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
SCORE_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01)
SPREAD_BINS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16, np.inf)
HEAVY_BINS = (0.0, 0.04, 0.08, 0.16, np.inf)
WEIGHT_BINS = (0.0, 0.4, 0.6, 0.8, 0.9, 1.01)


class Scored:
    """People of one source with human labels: ``correct(xy)`` -> (N, 17) bool and the
    (N, 17) mask of the joints that count, ``scale`` (N,) = sqrt(box area)."""

    def __init__(self, name, teacher, rows, gt, mask, scale, test):
        self.name, self.teacher, self.rows = name, teacher, rows
        self.gt, self.mask, self.scale, self._test = gt, mask, scale, test

    def correct(self, xy: np.ndarray) -> np.ndarray:
        return self._test(np.asarray(xy, np.float64)[..., :2])

    def error(self, xy: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(xy, np.float64)[..., :2] - self.gt[..., :2], axis=-1) / self.scale[:, None]

    def keypoints(self, ensemble: str) -> np.ndarray:
        t = self.teacher
        return mtl.combine(t["keypoints"][self.rows], t["variants"], ensemble)

    def disagreement(self) -> np.ndarray:
        t = self.teacher
        return mtl.disagreement(t["keypoints"][self.rows], t["variants"], t["box"][self.rows])


def load(folder: Path, source: str, model: str = "thunder"):
    path = folder / f"{source}_{model}.npz"
    if not path.is_file():
        return None
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def oks_test(gt: np.ndarray, area: np.ndarray):
    k2 = (2 * COCO_SIGMAS) ** 2

    def test(xy):
        d2 = ((xy - gt[..., :2]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * area[:, None] * k2[None])) >= 0.5
    return test


def coco_scored(name: str, annotation_file: Path, teacher: dict) -> Scored:
    """The people with at least one labelled keypoint."""
    with open(annotation_file) as f:
        anns = {a["id"]: a for a in json.load(f)["annotations"]}
    rows = [i for i, a in enumerate(teacher["annotation_id"]) if anns[int(a)].get("num_keypoints", 0) > 0]
    people = [anns[int(teacher["annotation_id"][i])] for i in rows]
    gt = np.stack([np.asarray(a["keypoints"], np.float64).reshape(17, 3) for a in people])
    area = np.array([max(a["bbox"][2] * a["bbox"][3], 1.0) for a in people])
    return Scored(name, teacher, np.asarray(rows), gt, gt[..., 2] > 0, np.sqrt(area), oks_test(gt, area))


def lspet_scored(data: Path, teacher: dict, pckh: bool) -> Scored:
    """LSPET's 12 limb joints, on images whose neck and head top are labelled, by the
    dashboard's PCKh@0.5 or (``pckh`` False) by OKS with the labelling box's area (the
    labelled joints' extent grown by 5 % a side), the test the other sources get."""
    joints = mtl.lsp_joints(data)[teacher["image_index"] - 1]
    keep = (joints[:, 12, 2] > 0) & (joints[:, 13, 2] > 0)
    rows = np.flatnonzero(keep)
    joints = joints[rows]
    gt = np.zeros((len(rows), 17, 3))
    gt[:, LSP_TO_COCO] = joints[:, :12]
    head = np.linalg.norm(joints[:, 12, :2] - joints[:, 13, :2], axis=1)
    scale = mtl.box_scale(teacher["box"][rows])

    def test(xy):
        return np.linalg.norm(xy - gt[..., :2], axis=-1) <= 0.5 * head[:, None]
    return Scored("lspet PCKh" if pckh else "lspet", teacher, rows, gt, gt[..., 2] > 0, scale,
                  test if pckh else oks_test(gt, scale ** 2))


def heavy_coco17(landmarks: np.ndarray) -> np.ndarray:
    """BlazePose (N, 33, 4) -> (N, 17, 3) x, y, visibility in COCO-17 order."""
    return landmarks[:, BLAZEPOSE_OF_COCO][..., [0, 1, 3]].astype(np.float64)


def heavy_for(scored: Scored, data: Path, folder: Path):
    """MediaPipe heavy (N, 17, 3) for the scored people (NaN where it found nobody), or None."""
    t = scored.teacher
    if scored.name == "lspet":
        with np.load(data / "lspet" / "mediapipe_heavy_landmarks.npz") as d:
            by_index = dict(zip(d["image_index"].tolist(), heavy_coco17(d["landmarks"])))
        return np.stack([by_index[int(i)] for i in t["image_index"][scored.rows]])
    if scored.name == "coco_train2017" and (folder / "coco_train2017_heavy.npz").is_file():
        with np.load(folder / "coco_train2017_heavy.npz") as d:
            by_id = dict(zip(d["annotation_id"].tolist(), heavy_coco17(d["landmarks"])))
        return np.stack([by_id.get(int(a), np.full((17, 3), np.nan)) for a in t["annotation_id"][scored.rows]])
    return None


# ------------------------------------------------------------------------ tables
def share(mask: np.ndarray, correct: np.ndarray) -> str:
    n = int(mask.sum())
    return f"{correct[mask].mean():.3f}" if n else "-"


def row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def print_table(title: str, header, rows) -> None:
    print(f"\n{title}\n")
    print(row(header))
    print(row(["---"] * len(header)))
    for r in rows:
        print(row(r))


def limb_mask(s: Scored) -> np.ndarray:
    m = s.mask.copy()
    m[:, :5] = False
    return m


def variants_table(sets, lightning, heavy) -> None:
    header = ["ensemble"] + [f"{s.name} ({int(limb_mask(s).sum())} limb kp)" for s in sets]
    rows = []
    for e in mtl.ENSEMBLES:
        cells = [e]
        for s in sets:
            k = s.keypoints(e)
            m = limb_mask(s)
            cells.append(f"{share(m, s.correct(k))} / {np.median(s.error(k)[m]):.3f}")
        rows.append(cells)
    for label, extra in (("Lightning plain", lightning), ("MediaPipe heavy (missed = wrong)", heavy)):
        cells = [label]
        for s in sets:
            k = extra.get(s.name)
            if k is None:
                cells.append("")
                continue
            m = limb_mask(s)
            ok = s.correct(np.nan_to_num(k, nan=-1e6))
            err = s.error(k)[m]
            cells.append(f"{share(m, ok)} / {np.nanmedian(err):.3f}")
        rows.append(cells)
    print_table("Limb OKS-hit (lspet PCKh: PCKh@0.5) / median error over sqrt(box area), limb joints",
                header, rows)


def binned(values, correct, mask, bins):
    """Rows (bin, share of the joints, share correct) of ``values`` cut at ``bins``."""
    out = []
    v, c = values[mask], correct[mask]
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (v >= lo) & (v < hi)
        out.append((f"{lo:g}-{hi:g}", f"{sel.mean():.3f}", f"{c[sel].mean():.3f}" if sel.any() else "-",
                    int(sel.sum())))
    return out


def calibration_tables(sets, ensemble) -> None:
    for title, bins, values in (
            (f"Share correct per {ensemble} score bin, limb joints (share of joints / correct)", SCORE_BINS,
             lambda s: s.keypoints(ensemble)[..., 2]),
            ("Share correct per disagreement bin (largest distance between plain, flip, pad1.25 "
             "over sqrt(box area)), limb joints", SPREAD_BINS, lambda s: s.disagreement())):
        header = ["bin"] + [s.name for s in sets]
        cols = []
        for s in sets:
            k = s.keypoints(ensemble)
            cols.append(binned(values(s), s.correct(k), limb_mask(s), bins))
        rows = [[cols[0][i][0]] + [f"{c[i][1]} / {c[i][2]}" for c in cols] for i in range(len(bins) - 1)]
        print_table(title, header, rows)
    # face joints, COCO and fashion only (LSP has none)
    header = ["bin"] + [s.name for s in sets if s.name != "lspet"]
    cols = []
    for s in sets:
        if s.name == "lspet":
            continue
        m = s.mask.copy()
        m[:, 5:] = False
        k = s.keypoints(ensemble)
        cols.append(binned(k[..., 2], s.correct(k), m, SCORE_BINS))
    rows = [[cols[0][i][0]] + [f"{c[i][1]} / {c[i][2]}" for c in cols] for i in range(len(SCORE_BINS) - 1)]
    print_table(f"Face joints (COCO 0-4): share correct per {ensemble} score bin", header, rows)


def heavy_agreement_table(sets, heavy, ensemble) -> None:
    header = ["Thunder-heavy distance / sqrt(box area)"] + [s.name for s in sets if s.name in heavy]
    cols = []
    for s in sets:
        if s.name not in heavy:
            continue
        k = s.keypoints(ensemble)
        h = heavy[s.name]
        dist = np.linalg.norm(k[..., :2] - h[..., :2], axis=-1) / s.scale[:, None]
        m, c = limb_mask(s), s.correct(k)
        missed = m & ~np.isfinite(dist)
        cols.append(binned(np.nan_to_num(dist, nan=np.inf), c, m, HEAVY_BINS)
                    + [("heavy missed", f"{missed.sum() / m.sum():.3f}", share(missed, c), 0)])
    bins = [b[0] for b in cols[0]]
    rows = [[b] + [f"{c[i][1]} / {c[i][2]}" for c in cols] for i, b in enumerate(bins)]
    print_table(f"MediaPipe heavy as a second opinion: {ensemble} share correct per distance to heavy, "
                "limb joints (share of joints / correct)", header, rows)


# ------------------------------------------------------------------------ the weight
def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Weighted logistic regression by Newton's method (a tiny ridge keeps it stable)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-x @ beta))
        g = x.T @ (w * (y - p)) - 1e-6 * beta
        h = (x * (w * p * (1 - p))[:, None]).T @ x + 1e-6 * np.eye(x.shape[1])
        step = np.linalg.solve(h, g)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def weight_fit(sets, ensemble, fit_on, face: bool) -> np.ndarray:
    """Logistic P(correct | score, disagreement) on the limb (or face) joints of ``fit_on``,
    each source weighted equally (LSPET would outweigh the rest 20 to 1)."""
    xs, ys, ws = [], [], []
    for s in sets:
        m = s.mask & (mtl.FACE if face else ~mtl.FACE)
        if s.name not in fit_on or not m.any():
            continue
        k = s.keypoints(ensemble)
        xs.append(mtl.weight_features(k[..., 2], s.disagreement())[m])
        ys.append(s.correct(k)[m].astype(float))
        ws.append(np.full(int(m.sum()), 1.0 / m.sum()))
    return fit_logistic(np.concatenate(xs), np.concatenate(ys), np.concatenate(ws))


def reliability_table(sets, ensemble, weight_fn, face: bool = False) -> None:
    bins = WEIGHT_BINS
    if face:  # LSP has no face joints
        sets = [s for s in sets if not s.name.startswith("lspet")]
    header = ["weight bin"] + [s.name for s in sets]
    cols = []
    for s in sets:
        k = s.keypoints(ensemble)
        w = weight_fn(k[..., 2], s.disagreement())
        m = s.mask & (np.arange(17) < 5) if face else limb_mask(s)
        c = s.correct(k)
        col = binned(w, c, m, bins)
        cols.append(col + [("mean weight / share correct", f"{w[m].mean():.3f}", f"{c[m].mean():.3f}", 0)])
    labels = [c[0] for c in cols[0]]
    rows = [[labels[i]] + [f"{c[i][1]} / {c[i][2]}" for c in cols] for i in range(len(labels))]
    print_table(f"The weight's calibration: {'face' if face else 'limb'} joints per weight bin "
                "(share of joints / share correct)", header, rows)


def summary_table(folder: Path, ensemble: str, weight_fn) -> None:
    """Every labels file, human labels or not: how confident the teacher is on each."""
    rows = []
    for path in sorted(folder.glob("*_thunder.npz")):
        with np.load(path) as d:
            t = {k: d[k] for k in d.files}
        k = mtl.combine(t["keypoints"], t["variants"], ensemble)
        spread = mtl.disagreement(t["keypoints"], t["variants"], t["box"])
        w = weight_fn(k[..., 2], spread)
        limbs = k[:, LIMBS, 2]
        rows.append([path.name[:-len("_thunder.npz")], len(k), f"{limbs.mean():.3f}", f"{(limbs >= 0.3).mean():.3f}",
                     f"{(spread[:, LIMBS] > 0.16).mean():.3f}", f"{w[:, LIMBS].mean():.3f}", f"{w[:, :5].mean():.3f}"])
    print_table(f"Every source ({ensemble}): people, mean limb score, share of limb joints scoring >= 0.3, "
                "share disagreeing > 0.16, mean weight of limb / face joints",
                ["source", "people", "limb score", ">= 0.3", "disagree", "limb weight", "face weight"], rows)


def footage_heavy_table(folder: Path, ensemble: str, weight_fn) -> None:
    """Footage has no human labels: MediaPipe heavy's one person per frame against the
    teacher's person of that frame nearest to it, as an agreement check of the weight."""
    if not ((folder / "footage_thunder.npz").is_file() and (folder / "footage_exercise_heavy.npz").is_file()):
        return
    with np.load(folder / "footage_thunder.npz") as d:
        t = {k: d[k] for k in d.files}
    with np.load(folder / "footage_exercise_heavy.npz") as d:
        heavy = dict(zip(d["image_file"].tolist(), heavy_coco17(d["landmarks"])))
    k = mtl.combine(t["keypoints"], t["variants"], ensemble)
    w = weight_fn(k[..., 2], mtl.disagreement(t["keypoints"], t["variants"], t["box"]))
    scale = mtl.box_scale(t["box"])
    dist, weights = [], []
    for name in sorted(set(t["image_file"].tolist())):
        h = heavy.get(name)
        rows = np.flatnonzero(t["image_file"] == name)
        if h is None or not np.isfinite(h[LIMBS, :2]).all():
            continue
        d = np.linalg.norm(k[rows][:, LIMBS, :2] - h[None, LIMBS, :2], axis=-1) / scale[rows, None]
        best = int(np.argmin(np.median(d, axis=1)))
        dist.append(d[best])
        weights.append(w[rows[best]][LIMBS])
    dist, weights = np.concatenate(dist), np.concatenate(weights)
    bins = WEIGHT_BINS
    rows = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        sel = (weights >= lo) & (weights < hi)
        rows.append([f"{lo:g}-{hi:g}", f"{sel.mean():.3f}",
                     f"{(dist[sel] <= 0.08).mean():.3f}" if sel.any() else "-"])
    print_table(f"Footage (no human labels; {len(dist) // len(LIMBS)} frames where heavy found someone): limb "
                "joints per weight bin, share of joints / share within 0.08 sqrt(box area) of MediaPipe heavy",
                ["weight bin", "share", "agrees with heavy"], rows)


def timing(models: Path, runs: int) -> None:
    """Model-only milliseconds per crop on this machine, 2 threads, ONNX Runtime fp32."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    print(f"\nTiming (onnxruntime {ort.__version__}, fp32, 2 threads, no spinning; {runs} runs after 5 warm-up)\n")
    for name, file in mtl.MODELS.items():
        s = mtl.session(models / file)
        i = s.get_inputs()[0]
        x = rng.integers(0, 256, (1, i.shape[1], i.shape[2], 3), dtype=np.int32)
        for _ in range(5):
            s.run(None, {i.name: x})
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            s.run(None, {i.name: x})
            times.append(time.perf_counter() - t)
        print(f"- {name} {i.shape[1]}x{i.shape[2]}: median {1000 * np.median(times):.1f} ms, "
              f"10th-90th percentile {1000 * np.percentile(times, 10):.1f}-{1000 * np.percentile(times, 90):.1f} ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the shared data folder")
    parser.add_argument("teacher", type=Path, help="folder of the labels (training/teacher)")
    parser.add_argument("--ensemble", default=mtl.CHOSEN_ENSEMBLE, choices=list(mtl.ENSEMBLES),
                        help="the ensemble whose calibration is tabled and fitted")
    parser.add_argument("--fit-on", nargs="+", default=["lspet", "coco_train2017", "fashion"],
                        help="sources the weight is fitted on (coco_val2017 stays out: it checks)")
    parser.add_argument("--timing", type=int, default=0, help="also time each model N runs")
    parser.add_argument("--models", type=Path, default=mtl.default_model_dir())
    args = parser.parse_args(argv)

    sets, lightning, heavy = [], {}, {}
    for source in ("coco_val2017", "coco_train2017", "fashion", "lspet"):
        teacher = load(args.teacher, source)
        if teacher is None:
            print(f"(no {source}_thunder.npz)")
            continue
        if source == "lspet":
            pckh_set = lspet_scored(args.data, teacher, pckh=True)
            s = lspet_scored(args.data, teacher, pckh=False)
        elif source == "fashion":
            s = coco_scored(source, args.data / "people" / "fashion" / "person_keypoints.json", teacher)
        else:
            s = coco_scored(source, args.data / "coco-mini" / f"person_keypoints_{source[5:-4]}2017.json", teacher)
        sets.append(s)
        light = load(args.teacher, source, "lightning")
        if light is not None:
            lightning[source] = light["keypoints"][s.rows, 0].astype(np.float64)
        h = heavy_for(s, args.data, args.teacher)
        if h is not None:
            heavy[source] = h
    print(f"people scored: {', '.join(f'{s.name} {len(s.rows)}' for s in sets)}")
    if "lspet" in heavy:
        heavy["lspet PCKh"] = heavy["lspet"]
    variants_table(sets + ([pckh_set] if "lspet" in [s.name for s in sets] else []), lightning, heavy)
    calibration_tables(sets, args.ensemble)
    if heavy:
        heavy_agreement_table(sets, heavy, args.ensemble)
    print()
    for group in ("limbs", "face"):
        beta = weight_fit(sets, args.ensemble, args.fit_on, face=group == "face")
        print(f"Fitted weight of the {group} = sigmoid({beta[0]:.3f} + {beta[1]:.3f} x score + {beta[2]:.3f} x "
              f"ln(max(disagreement, {mtl.SPREAD_FLOOR}))) on {', '.join(args.fit_on)} (sources weighted equally)")
    print(f"In use (movenet_teacher_labels.WEIGHT_PARAMETERS): {mtl.WEIGHT_PARAMETERS}")
    reliability_table(sets, args.ensemble, mtl.joint_weight)
    reliability_table(sets, args.ensemble, mtl.joint_weight, face=True)
    summary_table(args.teacher, args.ensemble, mtl.joint_weight)
    footage_heavy_table(args.teacher, args.ensemble, mtl.joint_weight)
    if args.timing:
        timing(args.models, args.timing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

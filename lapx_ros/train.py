"""lapx-train: train LAPX on the CPU, resumably.

A recipe (--recipe, lapx_ros.data.recipe) names teacher-labelled sets with their human
labels and the validation sets: the way the COCO-17 models are trained. Without one,
LSP/LSPET (--layout, MPII-16 by default), COCO keypoints (17 joints; validation OKS AP) or
MPII (16 joints; validation PCKh) are the training data. Beside LSP, everyday people can
join the training set: teacher-labelled footage frames (--footage-labels, split by clip)
and COCO people with their human labels (--coco-mpii-annotations); the COCO sliver's
validation people then give a second figure (--coco-limbs-val-annotations, OKS-PCK@0.5).
The run directory holds ``last.pt`` (resumable state, rewritten every few minutes and at
each epoch), ``best.pt`` (best first validation figure), ``log.csv`` and ``curves.png``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from lapx_ros.checkpoint import load_checkpoint, save_atomic
from lapx_ros.data.coco import load_coco_people, load_coco_records, open_coco
from lapx_ros.data.dataset import PoseDataset
from lapx_ros.data.lsp import PoseRecord, load_lsp_records, parse_range
from lapx_ros.data.mpii import load_mpii_records
from lapx_ros.data.people import clip_names, load_coco_mpii_records, load_footage_records, split_clips
from lapx_ros.data.recipe import Recipe, coco_subset, data_path
from lapx_ros.data.teacher import attach_teacher, load_teacher_joints
from lapx_ros.data.transforms import AugmentConfig, TopDownTransform
from lapx_ros.evaluation import evaluate_coco, evaluate_coco_limbs, evaluate_lsp, evaluate_mpii, torch_heatmap_fn
from lapx_ros.geometry import JOINTS_BOX_PADDING
from lapx_ros.layouts import COCO_17, MPII_16, JointLayout, get_layout
from lapx_ros.metadata import ModelMetadata
from lapx_ros.model import LapxConfig, LapxNet


INPUT_MULTIPLE = 4


def parse_size(text: str) -> tuple[int, int]:
    """'128' or '192x256' (width x height) -> (width, height)."""
    parts = [int(v) for v in text.lower().split("x")]
    w, h = (parts[0], parts[0]) if len(parts) == 1 else parts
    # The stem quarters the input exactly when its sides divide by 4; below that the
    # hourglass's poolings floor odd sides and its upsampling restores them, so no larger
    # multiple is needed (96x128 and 120x160 both work).
    if w % INPUT_MULTIPLE or h % INPUT_MULTIPLE or w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"input size must be a positive multiple of {INPUT_MULTIPLE}")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapx-train", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--lsp-images", help="folder of imNNNNN.jpg")
    p.add_argument("--lsp-joints", help="joints.mat")
    p.add_argument("--train-range", default="1-9000")
    p.add_argument("--val-range", default="9001-9500")
    p.add_argument("--val-limit", type=int, default=0,
                   help="score only the first N validation images (MPII: people) (0: all)")
    p.add_argument("--coco-annotations", help="instead of LSP: COCO person_keypoints_train*.json")
    p.add_argument("--coco-images", help="folder of the COCO training images")
    p.add_argument("--coco-val-annotations", help="COCO person_keypoints_val*.json (OKS AP on labelled boxes)")
    p.add_argument("--coco-val-images", help="folder of the COCO validation images")
    p.add_argument("--mpii-annotations", help="instead of LSP: MPII training people, common JSON format")
    p.add_argument("--mpii-val-annotations", help="MPII validation people, common JSON format")
    p.add_argument("--mpii-images", help="folder of the MPII images")
    p.add_argument("--recipe", help="instead of the flags above: a training recipe (JSON, lapx_ros.data.recipe): "
                                    "teacher-labelled sets, human labels, validation")
    p.add_argument("--layout", default=MPII_16.name,
                   help="joint layout of a network trained on LSP (default %(default)s; coco17 takes the "
                        "limb joints from the labels and the face joints from the teacher alone)")
    people = p.add_argument_group("everyday people beside LSP")
    people.add_argument("--footage-labels", help="teacher labels of footage frames (scripts/teacher_labels.py "
                                                 "footage), used as the frames' training labels")
    people.add_argument("--footage-images", help="folder of those frames")
    people.add_argument("--footage-val-every", type=int, default=5,
                        help="hold back every Nth clip (sorted, from the third) for validation; 0: none")
    people.add_argument("--footage-repeat", type=int, default=1, help="each footage frame this often per epoch")
    people.add_argument("--coco-mpii-annotations", help="COCO person_keypoints_train*.json: labelled people, "
                                                         "their joints mapped to MPII-16")
    people.add_argument("--coco-mpii-images", help="folder of those images")
    people.add_argument("--coco-mpii-teacher", help="teacher labels of those people (scripts/teacher_labels.py "
                                                    "coco), a second target as --teacher-landmarks")
    people.add_argument("--coco-mpii-repeat", type=int, default=1, help="each COCO person this often per epoch")
    people.add_argument("--coco-limbs-val-annotations", help="COCO person_keypoints_val*.json: OKS-PCK@0.5 of "
                                                             "the 12 limb joints on labelled boxes each epoch")
    people.add_argument("--coco-limbs-val-images", help="folder of those images")
    people.add_argument("--neighbours", type=float, default=0.0,
                        help="probability of pasting another LSP person beside or behind the centred one")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init-weights", help="start from this checkpoint's network weights (same "
                                          "configuration) with a fresh optimiser and learning-rate schedule; "
                                          "the non-local blocks keep their learnt gamma")
    p.add_argument("--input-size", type=parse_size, default=(128, 128),
                   help="W or WxH: the exported network's input, and the validation's")
    p.add_argument("--extra-input-sizes", type=lambda t: [parse_size(v) for v in t.split(",")], default=[],
                   help="comma-separated WxH: each batch is drawn at one of these or --input-size, so that "
                        "one network serves several input sizes (multi-resolution training)")
    p.add_argument("--stages", type=int, default=3)
    p.add_argument("--channels", type=int, default=208)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--min-lr-ratio", type=float, default=0.05,
                   help="cosine floor as a fraction of --lr (never decays to zero)")
    p.add_argument("--step-epochs", default="40,55", help="epochs where the step schedule divides lr by 10")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--heatmap-stride", type=int, choices=(2, 4), default=4,
                   help="input pixels per output heatmap pixel: 2 adds the fine heatmap head (LapxConfig)")
    p.add_argument("--fine-head-lr-scale", type=float, default=1.0,
                   help="the fine heatmap head learns at this multiple of --lr (a head new to "
                        "--init-weights starts at zero and has further to go)")
    p.add_argument("--sigma", type=float, default=1.5,
                   help="heatmap Gaussian sigma in pixels of the output heatmap (1.5 at stride 4 is 3.0 at stride 2)")
    p.add_argument("--whole-image-prob", type=float, default=None,
                   help="default 0.2 on LSP (teaches two-pass inference); 0 on COCO/MPII, whose "
                        "images hold several people and which are scored on person boxes")
    p.add_argument("--hard-joints", type=int, default=0,
                   help="learn from each crop's k joints of highest loss only (0: all joints)")
    p.add_argument("--rotation", type=float, default=30.0, help="rotation sigma in degrees")
    p.add_argument("--teacher-landmarks",
                   help="LSP: MediaPipe Pose landmarks of the images (mediapipe_heavy_landmarks.npz), "
                        "a second heatmap target for the 12 limb joints (distillation)")
    p.add_argument("--teacher-weight", type=float, default=0.5,
                   help="weight of the teacher's heatmap loss beside the labels' (with --teacher-landmarks)")
    p.add_argument("--nonlocal-freeze-epochs", type=float, default=2.0,
                   help="non-local blocks stay off (gamma 0, frozen) for this long")
    p.add_argument("--nonlocal-ramp-epochs", type=float, default=3.0,
                   help="then gamma grows linearly to --nonlocal-gamma, after which it is learnt")
    p.add_argument("--nonlocal-gamma", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-minutes", type=float, default=10.0)
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop (with a checkpoint) after this much training time in this call (0: no limit)")
    p.add_argument("--max-batches", type=int, default=0,
                   help="stop (with a checkpoint) after this many batches in this call (0: no limit)")
    p.add_argument("--decode", choices=("argmax", "quarter", "dark"), default="dark")
    p.add_argument("--bf16", action="store_true",
                   help="bfloat16 autocast for the forward pass (about 1.5x faster on CPUs with "
                        "AVX-512 BF16 or AMX; weights, batch-norm statistics and the loss stay float32)")
    return p


class LrSchedule:
    """Learning rate as a function of fractional epoch, so a resumed run continues exactly."""

    def __init__(self, args):
        self.base, self.kind, self.epochs = args.lr, args.schedule, args.epochs
        self.warmup, self.floor = args.warmup_epochs, args.min_lr_ratio
        self.steps = [int(v) for v in str(args.step_epochs).split(",") if v]

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup:
            return self.base * max(epoch / self.warmup, 0.01)
        if self.kind == "step":
            return self.base * 0.1 ** sum(epoch >= s for s in self.steps)
        progress = min((epoch - self.warmup) / max(self.epochs - self.warmup, 1e-9), 1.0)
        return self.base * (self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class NonLocalSchedule:
    """LAPX's stabilising recipe: non-local blocks frozen at 0, then gamma ramped to a target.

    Frozen parameters lose their gradient after each backward pass (Adam skips a
    parameter without one) rather than toggling ``requires_grad``, so the network's
    parameters and the optimiser's view of them are the same in every phase.
    """

    def __init__(self, model: LapxNet, freeze: float, ramp: float, target: float):
        self.blocks = model.nonlocal_blocks()
        self.freeze, self.ramp, self.target = freeze, ramp, target

    def set_gamma(self, epoch: float) -> None:
        """Before the forward pass: gamma follows the schedule until it is learnt."""
        if epoch >= self.freeze + self.ramp:
            return
        fraction = min(max((epoch - self.freeze) / self.ramp, 0.0), 1.0) if self.ramp > 0 else 1.0
        with torch.no_grad():
            for block in self.blocks:
                block.gamma.fill_(self.target * fraction if epoch >= self.freeze else 0.0)

    def drop_frozen_gradients(self, epoch: float) -> None:
        """After the backward pass: frozen blocks, and a scheduled gamma, are not updated."""
        for block in self.blocks:
            if epoch < self.freeze:
                for p in block.parameters():
                    p.grad = None
            elif epoch < self.freeze + self.ramp:
                block.gamma.grad = None


def heatmap_loss(outputs: list[torch.Tensor], targets: torch.Tensor, weights: torch.Tensor,
                 hard_joints: int = 0) -> torch.Tensor:
    """Visibility-weighted MSE summed over every stage (intermediate supervision).

    Targets come at the finest output's resolution; a coarser output is compared with
    them average-pooled to its size (pooling a Gaussian by 2 keeps its centre on the
    coarser grid and halves its sigma, within 3%). ``hard_joints`` k > 0 keeps only each
    crop's k joints of highest loss in each stage and averages those (online hard
    keypoint mining, Chen et al., "Cascaded Pyramid Network", CVPR 2018)."""
    loss = 0.0
    for out in outputs:
        factor = targets.shape[-1] // out.shape[-1]
        target = targets if factor == 1 else torch.nn.functional.avg_pool2d(targets, factor)
        per_joint = ((out - target) ** 2).mean(dim=(2, 3)) * weights
        if 0 < hard_joints < per_joint.shape[1]:
            per_joint = per_joint.topk(hard_joints, dim=1).values
        loss = loss + per_joint.mean()
    return loss


def parameter_groups(model: LapxNet, fine_head_lr_scale: float) -> list[dict]:
    """The optimiser's groups, each with the ``lr_scale`` the schedule multiplies."""
    fine = set(model.fine_head.parameters()) if model.fine_head is not None else set()
    groups = [{"params": [p for p in model.parameters() if p not in fine], "lr_scale": 1.0}]
    if fine:
        groups.append({"params": list(fine), "lr_scale": fine_head_lr_scale})
    return groups


# Where a joint of the new layout has no joint of the same name in the starting network,
# its heatmap weights start from this joint's (all of them sit on the head).
HEAD_JOINT_STAND_IN = {"nose": "head_top", "left_eye": "head_top", "right_eye": "head_top",
                       "left_ear": "head_top", "right_ear": "head_top"}


def joint_rows(weights: dict, model: LapxNet, source: JointLayout, target: JointLayout) -> dict:
    """Starting weights of a network of the ``source`` layout, with every per-joint tensor
    (each stage's heatmap head, the remap of its heatmaps and the fine head's) re-indexed to
    ``target``'s joints by name; a joint the source lacks takes its stand-in's row, else
    the new network's own initial row."""
    names = source.common_names
    own = model.state_dict()
    out = dict(weights)
    for key, value in weights.items():
        if key not in own or own[key].shape == value.shape:
            continue
        axis = next((a for a in range(value.dim()) if value.shape[a] == source.num_joints
                     and own[key].shape[a] == target.num_joints), None)
        if axis is None:
            continue
        rows = list(own[key].unbind(axis))
        for t, name in enumerate(target.common_names):
            name = name if name in names else HEAD_JOINT_STAND_IN.get(name)
            if name in names:
                rows[t] = value.select(axis, names.index(name))
        out[key] = torch.stack(rows, axis)
    return out


def load_start_weights(model: LapxNet, weights: dict) -> None:
    """--init-weights: every weight must match, except a fine heatmap head the starting
    network lacks (it starts at zero correction, so the output is the start's upsampled).
    Weights of another joint layout are re-indexed first (``joint_rows``)."""
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # a weight of another shape
        raise ValueError(f"--init-weights does not fit this network: {exc}") from None
    missing = [k for k in result.missing_keys if not k.startswith("fine_head.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"--init-weights does not fit this network: missing {missing}, "
                         f"unexpected {result.unexpected_keys}")


# The flags each training source needs, as argparse destinations.
SOURCE_FLAGS = {
    "lsp": ("lsp_images", "lsp_joints"),
    "coco": ("coco_annotations", "coco_images", "coco_val_annotations", "coco_val_images"),
    "mpii": ("mpii_annotations", "mpii_val_annotations", "mpii_images"),
    "recipe": ("recipe",),
}


def source_name(args, parser: argparse.ArgumentParser) -> str:
    """The one training source the flags name; a parser error when none, several or half of one."""
    given = [name for name, flags in SOURCE_FLAGS.items() if any(getattr(args, f) for f in flags)]
    if len(given) != 1:
        parser.error("name one training source: --lsp-images/--lsp-joints, --coco-... or --mpii-...")
    missing = [f"--{f.replace('_', '-')}" for f in SOURCE_FLAGS[given[0]] if not getattr(args, f)]
    if missing:
        parser.error(f"training on {given[0]} also needs {' '.join(missing)}")
    return given[0]


@dataclass(frozen=True)
class DataSource:
    """Training records, their joint layout, and the validation that scores a heatmap
    function: a dict of ``val_*`` figures whose first one picks ``best.pt``."""

    layout: JointLayout
    train: list[PoseRecord]
    validate: Callable[..., dict]
    neighbours: list[int] | None = None    # records whose people --neighbours pastes


def people_records(args, layout: JointLayout) -> list[PoseRecord]:
    """The everyday-people records the flags name (footage training clips, COCO people),
    each repeated as asked."""
    records = []
    if args.footage_labels:
        train_clips, _ = split_clips(clip_names(args.footage_labels), args.footage_val_every)
        records += load_footage_records(args.footage_labels, args.footage_images, train_clips,
                                        layout=layout) * args.footage_repeat
    if args.coco_mpii_annotations:
        records += load_coco_mpii_records(args.coco_mpii_annotations, args.coco_mpii_images,
                                          args.coco_mpii_teacher, layout=layout) * args.coco_mpii_repeat
    return records


def same_targets(records: list[PoseRecord]) -> list[PoseRecord]:
    """Every record with a teacher target when any has one (all-zero weights where none),
    so that each batch stacks the same tensors."""
    if all(r.teacher is None for r in records):
        return records
    return [r if r.teacher is not None else dataclasses.replace(r, teacher=np.zeros_like(r.joints))
            for r in records]


def lsp_source(args) -> DataSource:
    layout = get_layout(args.layout)
    first, last = parse_range(args.train_range)
    train = load_lsp_records(args.lsp_images, args.lsp_joints, (first, last), layout)
    if args.teacher_landmarks:
        train = attach_teacher(train, first, load_teacher_joints(args.teacher_landmarks, layout=layout))
    lsp_count = len(train)
    train = same_targets(train + people_records(args, layout))
    val = load_lsp_records(args.lsp_images, args.lsp_joints, parse_range(args.val_range))
    if args.val_limit:
        val = val[: args.val_limit]
    coco_val = None
    if args.coco_limbs_val_annotations:
        coco_val = open_coco(args.coco_limbs_val_annotations)

    def validate(fn, meta):
        result = evaluate_lsp(fn, meta, val, decode_method=args.decode)
        scores = {"val_pckh": result["pckh"], "val_pck_torso": result["pck_torso"]}
        if coco_val is not None:
            coco = evaluate_coco_limbs(fn, meta, coco_val, args.coco_limbs_val_images, args.decode)
            scores.update(val_coco_oks_pck=coco["oks_pck"], val_coco_limb_ap=coco["limb_ap"])
        return scores

    return DataSource(layout, train, validate, neighbours=list(range(lsp_count)))


def recipe_source(args) -> DataSource:
    """The sets of a recipe file; validation on each set its ``validate`` part names: LSPET
    (whole-image search, PCKh@0.5), COCO people and a held-out split of a COCO-format set
    (labelled boxes grown by the part's ``box_padding``, default the context the training
    crops held around a person box: limb OKS-hit, median error, 17-joint AP). ``val_score``,
    the mean of the limb figures, picks ``best.pt``."""
    recipe = Recipe.load(args.recipe)
    checks = []
    spec = recipe.validate
    if "lsp" in spec:
        lsp = spec["lsp"]
        lsp_val = load_lsp_records(data_path(lsp["images"]), data_path(lsp["joints"]), parse_range(lsp["range"]))
        if args.val_limit:
            lsp_val = lsp_val[: args.val_limit]

        def check_lsp(fn, meta):
            result = evaluate_lsp(fn, meta, lsp_val, decode_method=args.decode)
            return {"val_lsp_pckh": result["pckh"]}, result["pckh"]
        checks.append(check_lsp)
    for name, part in spec.items():
        if name == "lsp":
            continue
        annotations = data_path(part["annotations"])
        if part.get("held_out_of"):
            coco = coco_subset(annotations, recipe.held_out[part["held_out_of"]])
        else:
            coco = open_coco(annotations)

        def check_coco(fn, meta, name=name, coco=coco, images=data_path(part["images"]),
                       padding=float(part.get("box_padding", JOINTS_BOX_PADDING))):
            result = evaluate_coco_limbs(fn, meta, coco, images, args.decode, box_padding=padding)
            scores = {f"val_{name}_limb_oks_hit": result["limb_oks_hit"],
                      f"val_{name}_median_error": result["median_error"]}
            if "ap" in result:
                scores[f"val_{name}_ap"] = result["ap"]
            return scores, result["limb_oks_hit"]
        checks.append(check_coco)
    if not checks:
        raise ValueError(f"{args.recipe}: its 'validate' part names no validation set")

    def validate(fn, meta):
        scores, limbs = {}, []
        for check in checks:
            figures, limb = check(fn, meta)
            scores.update(figures)
            limbs.append(limb)
        return {"val_score": float(np.mean(limbs)), **scores}

    return DataSource(recipe.layout, same_targets(recipe.train), validate, neighbours=recipe.neighbours)


def coco_source(args) -> DataSource:
    val = load_coco_people(args.coco_val_annotations, args.coco_val_images, limit=args.val_limit)

    def validate(fn, meta):
        result = evaluate_coco(fn, meta, val, decode_method=args.decode)
        return {"val_ap": result["ap"], "val_ar": result["ar"]}

    return DataSource(COCO_17, load_coco_records(args.coco_annotations, args.coco_images), validate)


def mpii_source(args) -> DataSource:
    val = load_mpii_records(args.mpii_val_annotations, args.mpii_images, args.val_limit)

    def validate(fn, meta):
        result = evaluate_mpii(fn, meta, val, decode_method=args.decode)
        return {"val_pckh": result["pckh"], "val_pck_torso": result["pck_torso"]}

    return DataSource(MPII_16, load_mpii_records(args.mpii_annotations, args.mpii_images), validate)


SOURCES = {"lsp": lsp_source, "coco": coco_source, "mpii": mpii_source, "recipe": recipe_source}


def metadata_for(args, config: LapxConfig, layout: JointLayout = MPII_16) -> ModelMetadata:
    w, h = args.input_size
    return ModelMetadata.for_layout(layout, input_height=h, input_width=w, heatmap_stride=config.heatmap_stride,
                                    extra={"model_config": config.to_dict()})


VAL_LABELS = {"val_pckh": "PCKh@0.5", "val_pck_torso": "PCK@0.2 torso", "val_ap": "OKS AP", "val_ar": "OKS AR",
              "val_coco_oks_pck": "COCO OKS-PCK@0.5", "val_score": "mean of the limb figures",
              "val_lsp_pckh": "LSPET PCKh@0.5", "val_coco_limb_oks_hit": "COCO limb OKS-hit",
              "val_fashion_limb_oks_hit": "fashion limb OKS-hit"}


def write_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss (all stages)", yscale="log")
    for (key, label), marker in zip(VAL_LABELS.items(), "osx^dv<>P"):
        if key in rows[0]:
            ax2.plot(epochs, [r[key] for r in rows], marker=marker, label=label)
    ax2.set(xlabel="epoch", ylabel="validation accuracy")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    source_key = source_name(args, parser)
    if args.layout != MPII_16.name and source_key != "lsp":
        parser.error("--layout is for --lsp-images; a recipe names its layout, COCO and MPII have theirs")
    if args.teacher_landmarks and source_key != "lsp":
        parser.error("--teacher-landmarks holds landmarks of the LSPET images: train on --lsp-images")
    people = ("footage_labels", "coco_mpii_annotations", "coco_limbs_val_annotations")
    if source_key != "lsp" and any(getattr(args, f) for f in people):
        parser.error("--footage-..., --coco-mpii-... and --coco-limbs-val-... go with --lsp-images")
    if source_key not in ("lsp", "recipe") and args.neighbours:
        parser.error("--neighbours goes with --lsp-images or --recipe (the sets whose people may be pasted)")
    for flag, partner in (("footage_labels", "footage_images"), ("coco_mpii_annotations", "coco_mpii_images"),
                          ("coco_limbs_val_annotations", "coco_limbs_val_images")):
        if bool(getattr(args, flag)) != bool(getattr(args, partner)):
            parser.error(f"--{flag.replace('_', '-')} and --{partner.replace('_', '-')} go together")
    if args.whole_image_prob is None:
        args.whole_image_prob = 0.2 if source_key == "lsp" else 0.0
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = SOURCES[source_key](args)
    config = LapxConfig(num_joints=source.layout.num_joints, num_stages=args.stages, channels=args.channels,
                        nonlocal_stages=tuple(s for s in (1, 3) if s <= args.stages),
                        heatmap_stride=args.heatmap_stride)
    sizes = [args.input_size, *args.extra_input_sizes]
    small = [f"{w}x{h}" for w, h in sizes if min(w, h) < config.min_input_side]
    if small:
        parser.error(f"input sizes {', '.join(small)}: this network needs sides of at least "
                     f"{config.min_input_side}")
    meta = metadata_for(args, config, source.layout)
    model = LapxNet(config)
    optimizer = torch.optim.Adam(parameter_groups(model, args.fine_head_lr_scale), lr=args.lr,
                                 weight_decay=args.weight_decay)
    epoch, batch_index, best, history = 0, 0, -1.0, []
    from_weights = bool(args.init_weights)
    if args.resume:
        state = load_checkpoint(out / "last.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, batch_index = state["epoch"], state["batch_index"]
        best, history = state["best_pckh"], state["history"]
        from_weights = from_weights or bool(json.loads(state["args"]).get("init_weights"))
        print(f"resumed {out / 'last.pt'} at epoch {epoch}, batch {batch_index}", file=sys.stderr)
    else:
        if args.init_weights:
            start = load_checkpoint(args.init_weights)
            weights = start["model"]
            if "metadata" in start:
                start_layout = ModelMetadata.from_json(start["metadata"]).layout
                if start_layout.joint_names != source.layout.joint_names:
                    weights = joint_rows(weights, model, start_layout, source.layout)
            load_start_weights(model, weights)
        (out / "args.json").write_text(json.dumps(vars(args), indent=2, default=str))
    model = model.to(memory_format=torch.channels_last)

    augment = AugmentConfig(rotation_sigma=args.rotation, whole_image_prob=args.whole_image_prob,
                            neighbour_prob=args.neighbours)
    transforms = [TopDownTransform(source.layout, size, meta.heatmap_stride, args.sigma, augment)
                  for size in [args.input_size, *args.extra_input_sizes]]
    train_set = PoseDataset(source.train, transforms[0], meta.mean, meta.std, seed=args.seed,
                            neighbours=source.neighbours)

    schedule = LrSchedule(args)
    # Weights from a checkpoint have learnt their gamma: freezing the blocks again would zero it.
    freeze, ramp = (0.0, 0.0) if from_weights else (args.nonlocal_freeze_epochs, args.nonlocal_ramp_epochs)
    nonlocal_schedule = NonLocalSchedule(model, freeze, ramp, args.nonlocal_gamma)
    batches_per_epoch = len(train_set) // args.batch_size
    started = time.monotonic()
    last_save = started
    batches_done = 0

    def save(path: Path) -> None:
        save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "model_config": config.to_dict(), "metadata": meta.to_json(),
                     "epoch": epoch, "batch_index": batch_index, "best_pckh": best,
                     "history": history, "args": json.dumps(vars(args), default=str)}, path)

    while epoch < args.epochs:
        train_set.set_epoch(epoch)
        order = np.random.default_rng((args.seed, epoch)).permutation(len(train_set))
        model.train()
        losses = []
        bar = tqdm(range(batch_index, batches_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}",
                   mininterval=30, file=sys.stderr)
        for batch_index in bar:
            progress = epoch + batch_index / batches_per_epoch
            for group in optimizer.param_groups:
                # checkpoints from before the fine head have one group and no lr_scale
                group["lr"] = schedule(progress) * group.get("lr_scale", 1.0)
            nonlocal_schedule.set_gamma(progress)
            # One input size per batch, the same whichever batch a resumed run starts at.
            pick = np.random.default_rng((args.seed, epoch, batch_index, 2)).integers(len(transforms))
            train_set.transform = transforms[int(pick)]
            items = [train_set[int(i)] for i in order[batch_index * args.batch_size:(batch_index + 1) * args.batch_size]]
            x, targets, weights, *teacher = (torch.stack(t) for t in zip(*items))
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                outputs = [o.float() for o in model(x.contiguous(memory_format=torch.channels_last))]
            loss = heatmap_loss(outputs, targets, weights, args.hard_joints)
            if teacher:
                loss = loss + args.teacher_weight * heatmap_loss(outputs, *teacher, args.hard_joints)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training loss is {loss.item()} at epoch {epoch + 1}, batch "
                                         f"{batch_index}; {out / 'last.pt'} keeps the last saved state")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nonlocal_schedule.drop_frozen_gradients(progress)
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.2e}", lr=f"{optimizer.param_groups[0]['lr']:.1e}", refresh=False)
            now = time.monotonic()
            if now - last_save > args.checkpoint_minutes * 60:
                batch_index += 1
                save(out / "last.pt")
                batch_index -= 1
                last_save = now
            batches_done += 1
            if ((args.max_minutes and now - started > args.max_minutes * 60)
                    or (args.max_batches and batches_done >= args.max_batches)):
                batch_index += 1
                save(out / "last.pt")
                print(f"stopped after {batches_done} batches ({(now - started) / 60:.1f} minutes) "
                      f"at epoch {epoch}, batch {batch_index}", file=sys.stderr)
                return 0
        model.eval()
        t0 = time.monotonic()
        scores = source.validate(torch_heatmap_fn(model), meta)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
               "lr": optimizer.param_groups[0]["lr"], **scores, "eval_seconds": round(time.monotonic() - t0, 1),
               "minutes": round((time.monotonic() - started) / 60, 2)}
        history.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        epoch, batch_index = epoch + 1, 0
        score = next(iter(scores.values()))
        if score > best:
            best = score
            save(out / "best.pt")
        save(out / "last.pt")
        last_save = time.monotonic()
        with open(out / "log.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)
        write_curves(history, out / "curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

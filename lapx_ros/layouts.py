"""Joint layouts: every fact about a set of joints, in one place.

Names, left/right flip pairs, skeleton bones, COCO OKS sigmas, the joints that place the
torso, the segment PCKh takes as the head size, joints derived as midpoints of others and
names that mean the same point in another layout. Training, evaluation, export metadata,
depth, drawing and the ROS node all read these tables, so adding a layout is one entry in
``LAYOUTS`` and a joint index means the same joint everywhere.

Joints move between layouts by name (``convert_joints``): a joint the target has and the
source lacks is derived from its midpoint rule when the source has both ends, else left
unlabelled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The twelve limb joints (shoulders to ankles) that every human layout here has: the joints
# scored when models of different layouts are compared.
LIMB_JOINT_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
# Joints that place a person's body: large, slow, rarely in front of or behind it.
TORSO_JOINT_NAMES = ("left_shoulder", "right_shoulder", "left_hip", "right_hip", "pelvis", "thorax")


def flip_permutation(flip_pairs, num_joints: int) -> list[int]:
    """Index map that swaps left and right joints (an involution)."""
    perm = list(range(num_joints))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


@dataclass(frozen=True)
class JointLayout:
    """A named set of joints with its mirror pairs, bones and scoring facts.

    ``oks_sigmas``: COCO's per-keypoint OKS constants, where the layout has them.
    ``head_size``: the two joints whose distance is PCKh's head size.
    ``derived``: (joint, a, b): the joint is the midpoint of a and b when not labelled.
    ``aliases``: (own name, common name) pairs for joints another layout names differently.
    """

    name: str
    joint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    oks_sigmas: tuple[float, ...] | None = None
    head_size: tuple[str, str] | None = None
    derived: tuple[tuple[str, str, str], ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        return self.joint_names.index(joint_name)

    def indices(self, joint_names) -> tuple[int, ...]:
        return tuple(self.index(n) for n in joint_names)

    def flip_permutation(self) -> list[int]:
        return flip_permutation(self.flip_pairs, self.num_joints)

    @property
    def common_names(self) -> tuple[str, ...]:
        """Joint names with aliases resolved: the names joints are matched by across layouts."""
        alias = dict(self.aliases)
        return tuple(alias.get(n, n) for n in self.joint_names)

    @property
    def limb_joints(self) -> tuple[int, ...]:
        """Indices of the twelve limb joints, in ``LIMB_JOINT_NAMES`` order; empty when the
        layout lacks any of them."""
        names = self.common_names
        return tuple(names.index(n) for n in LIMB_JOINT_NAMES) if set(LIMB_JOINT_NAMES) <= set(names) else ()

    @property
    def torso_joints(self) -> tuple[int, ...]:
        names = self.common_names
        return tuple(i for i, n in enumerate(names) if n in TORSO_JOINT_NAMES)

    def sigmas(self) -> np.ndarray:
        if self.oks_sigmas is None:
            raise ValueError(f"layout {self.name} has no OKS sigmas")
        return np.asarray(self.oks_sigmas, dtype=np.float64)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(set(self.joint_names)) != n:
            raise ValueError(f"{self.name}: duplicate joint names")
        for a, b in self.flip_pairs + self.skeleton:
            if not (0 <= a < n and 0 <= b < n) or a == b:
                raise ValueError(f"{self.name}: bad joint pair ({a}, {b})")
        if self.oks_sigmas is not None and len(self.oks_sigmas) != n:
            raise ValueError(f"{self.name}: {len(self.oks_sigmas)} OKS sigmas for {n} joints")
        named = set(self.joint_names)
        for joint in (self.head_size or ()):
            if joint not in named:
                raise ValueError(f"{self.name}: head-size joint {joint!r} is not a joint")
        for joint, a, b in self.derived:
            if not {joint, a, b} <= named:
                raise ValueError(f"{self.name}: derived joint {joint!r} = mid({a!r}, {b!r}) names unknown joints")


MPII_16 = JointLayout(
    name="mpii16",
    joint_names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5),
        (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    head_size=("upper_neck", "head_top"),
    derived=(("pelvis", "right_hip", "left_hip"), ("thorax", "right_shoulder", "left_shoulder")),
)

LSP_14 = JointLayout(
    name="lsp14",
    joint_names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top",
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)),
    skeleton=(
        (0, 1), (1, 2), (3, 4), (4, 5), (2, 3), (2, 8), (3, 9), (8, 9),
        (6, 7), (7, 8), (9, 10), (10, 11), (12, 13),
    ),
    head_size=("neck", "head_top"),
    # LSP's neck is the point MPII calls the upper neck.
    aliases=(("neck", "upper_neck"),),
)

COCO_17 = JointLayout(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
        (3, 5), (4, 6),
    ),
    # COCO keypoint evaluation's constants.
    oks_sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
                0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
)

# BlazePose's 33 landmarks (MediaPipe Pose): a teacher's layout, never a model's.
BLAZEPOSE_33 = JointLayout(
    name="blazepose33",
    joint_names=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    flip_pairs=tuple((i, i + 3) for i in (1, 2, 3)) + ((7, 8), (9, 10))
    + tuple((i, i + 1) for i in range(11, 33, 2)),
    skeleton=((11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
              (23, 25), (25, 27), (24, 26), (26, 28)),
)

LAYOUTS = {layout.name: layout for layout in (MPII_16, LSP_14, COCO_17, BLAZEPOSE_33)}


def get_layout(name: str) -> JointLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {sorted(LAYOUTS)}") from None


def convert_joints(joints: np.ndarray, source: JointLayout, target: JointLayout,
                   missing: float = 0.0) -> np.ndarray:
    """Joints (..., source joints, D) -> (..., target joints, D), matched by common name.

    A target joint the source lacks is the midpoint of its ``derived`` rule's two joints
    when the source has both (with D >= 3, the third column, a weight or a confidence,
    is the smaller of theirs), else ``missing`` in every column (0: unlabelled; NaN: not
    predicted).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[-2] != source.num_joints:
        raise ValueError(f"expected {source.num_joints} {source.name} joints, got shape {joints.shape}")
    out = np.full(joints.shape[:-2] + (target.num_joints, joints.shape[-1]), missing, dtype=np.float64)
    source_index = {n: i for i, n in enumerate(source.common_names)}
    for t, name in enumerate(target.common_names):
        if name in source_index:
            out[..., t, :] = joints[..., source_index[name], :]
    for joint, a, b in target.derived:
        t = target.index(joint)
        common = dict(target.aliases)
        a, b, own = (common.get(n, n) for n in (a, b, joint))
        if own in source_index or a not in source_index or b not in source_index:
            continue
        ja, jb = joints[..., source_index[a], :], joints[..., source_index[b], :]
        out[..., t, :2] = (ja[..., :2] + jb[..., :2]) / 2
        if joints.shape[-1] >= 3:
            out[..., t, 2:] = np.minimum(ja[..., 2:], jb[..., 2:])
    return out


def layout_for(layout_name: str, joint_names, flip_pairs=(), skeleton=()) -> JointLayout:
    """The registered layout of a model file, or (for a layout this package does not know)
    one built from what the file says, so that any self-describing model still runs."""
    known = LAYOUTS.get(layout_name)
    if known is not None and known.joint_names == tuple(joint_names):
        return known
    return JointLayout(name=layout_name, joint_names=tuple(joint_names),
                       flip_pairs=tuple(map(tuple, flip_pairs)), skeleton=tuple(map(tuple, skeleton)))

"""Leeds Sports Pose (LSP / LSPET) annotations, in a model's joint layout (MPII-16 unless asked)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from lapx_ros.layouts import LSP_14, MPII_16, JointLayout, convert_joints


@dataclass(frozen=True)
class PoseRecord:
    """One annotated person: where its image is and its joints (K, 3) = x, y, visible.

    ``box`` (x0, y0, x1, y1) is the person's labelled box where the dataset has one
    (COCO, MPII): crops and box-based evaluation use it instead of the joints' extent.
    ``teacher`` (K, 3) = x, y, weight: another model's joints, a second training target.
    ``whole_image``: the whole image may be a training sample of this person (false where
    the image holds other people, as COCO's do).
    """

    image_path: Path
    joints: np.ndarray
    box: tuple[float, float, float, float] | None = None
    teacher: np.ndarray | None = None
    whole_image: bool = True


def load_lsp_joints(joints_file) -> np.ndarray:
    """LSP joints as (N, 14, 3) = x, y, visible, whatever orientation the .mat file uses."""
    try:
        raw = np.asarray(scipy.io.loadmat(str(joints_file))["joints"])
    except KeyError:
        raise ValueError(f"{joints_file}: no 'joints' matrix") from None
    if raw.ndim != 3:
        raise ValueError(f"{joints_file}: unexpected joints array shape {raw.shape}")
    if raw.shape[:2] == (14, 3):          # LSPET: 14 x 3 x N, third row = visible
        joints = raw.transpose(2, 0, 1)
    elif raw.shape[:2] == (3, 14):        # LSP: 3 x 14 x N, third row = occluded
        joints = raw.transpose(2, 1, 0).copy()
        joints[..., 2] = 1.0 - joints[..., 2]
    elif raw.shape[1:] == (14, 3):       # already N x 14 x 3
        joints = raw
    else:
        raise ValueError(f"{joints_file}: unexpected joints array shape {raw.shape}")
    return np.ascontiguousarray(joints, dtype=np.float64)


def parse_range(text: str) -> tuple[int, int]:
    """'9001-9500' -> (9001, 9500), 1-based and inclusive like the image names."""
    try:
        first, last = (int(v) for v in text.split("-"))
    except ValueError:
        raise ValueError(f"range must look like 9001-9500, got {text!r}") from None
    if not 1 <= first <= last:
        raise ValueError(f"bad range {text!r}")
    return first, last


def lsp_image_name(index: int) -> str:
    return f"im{index:05d}.jpg"


def load_lsp_records(images_dir, joints_file, index_range: tuple[int, int],
                     layout: JointLayout = MPII_16) -> list[PoseRecord]:
    """Records of images ``index_range`` (1-based, inclusive), joints in ``layout`` (MPII's
    pelvis and thorax derived; joints LSP lacks unlabelled). A missing image is an error."""
    images_dir = Path(images_dir)
    joints = convert_joints(load_lsp_joints(joints_file), LSP_14, layout)
    first, last = index_range
    if last > len(joints):
        raise ValueError(f"range {first}-{last} exceeds the {len(joints)} annotations in {joints_file}")
    records, missing = [], []
    for index in range(first, last + 1):
        path = images_dir / lsp_image_name(index)
        if not path.is_file():
            missing.append(path.name)
        records.append(PoseRecord(path, joints[index - 1]))
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"{len(missing)} images of range {first}-{last} missing in {images_dir}: {shown}")
    return records


def require_images(paths, source, images_dir) -> None:
    """Raise FileNotFoundError naming the first few of ``paths`` that do not exist."""
    missing = sorted({Path(p).name for p in paths if not Path(p).is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(f"{len(missing)} images of {source} missing in {images_dir}: {shown}")

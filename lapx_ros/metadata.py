"""What a deployable model file says about itself.

Export writes these fields into the ONNX file's metadata; the runtime reads them back,
so a model file is self-describing: joint layout, input size and normalisation travel
with the weights and the node needs nothing else.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from lapx_ros.layouts import JointLayout, flip_permutation, layout_for

METADATA_KEY = "lapx_ros"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelMetadata:
    """Self-description of an exported pose model.

    The network takes float32 NCHW RGB crops of ``input_height`` x ``input_width``,
    normalised as (pixel / 255 - mean) / std, and returns heatmaps
    (N, num_joints, input_height / stride, input_width / stride).
    """

    layout_name: str
    joint_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    input_height: int
    input_width: int
    heatmap_stride: int = 4
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    input_name: str = "image"
    output_name: str = "heatmaps"
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_layout(cls, layout: JointLayout, input_height: int, input_width: int,
                   **kwargs) -> "ModelMetadata":
        return cls(layout_name=layout.name, joint_names=layout.joint_names,
                   flip_pairs=layout.flip_pairs, skeleton=layout.skeleton,
                   input_height=input_height, input_width=input_width, **kwargs)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def flip_permutation(self) -> list[int]:
        return flip_permutation(self.flip_pairs, self.num_joints)

    @property
    def layout(self) -> JointLayout:
        """The file's joint layout: the registered one of its name, or one built from the
        names, pairs and bones the file carries."""
        return layout_for(self.layout_name, self.joint_names, self.flip_pairs, self.skeleton)

    def to_json(self) -> str:
        return json.dumps({"format_version": FORMAT_VERSION, **asdict(self)})

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        """Parse metadata, raising ValueError with the reason when it is unusable."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model metadata is not JSON: {exc}") from None
        if not isinstance(raw, dict) or raw.pop("format_version", None) != FORMAT_VERSION:
            raise ValueError(f"model metadata format is not version {FORMAT_VERSION}")
        try:
            meta = cls(
                layout_name=str(raw["layout_name"]),
                joint_names=tuple(str(n) for n in raw["joint_names"]),
                flip_pairs=tuple((int(a), int(b)) for a, b in raw["flip_pairs"]),
                skeleton=tuple((int(a), int(b)) for a, b in raw["skeleton"]),
                input_height=int(raw["input_height"]),
                input_width=int(raw["input_width"]),
                heatmap_stride=int(raw.get("heatmap_stride", 4)),
                mean=tuple(float(v) for v in raw.get("mean", cls.mean)),
                std=tuple(float(v) for v in raw.get("std", cls.std)),
                input_name=str(raw.get("input_name", "image")),
                output_name=str(raw.get("output_name", "heatmaps")),
                extra=dict(raw.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model metadata is incomplete or malformed: {exc!r}") from None
        meta.validate()
        return meta

    def validate(self) -> None:
        n = self.num_joints
        if n == 0:
            raise ValueError("model metadata names no joints")
        for a, b in self.flip_pairs + self.skeleton:
            if not (0 <= a < n and 0 <= b < n):
                raise ValueError(f"model metadata joint pair ({a}, {b}) outside 0..{n - 1}")
        if self.input_height <= 0 or self.input_width <= 0 or self.heatmap_stride <= 0:
            raise ValueError("model metadata input size and stride must be positive")
        if self.input_height % self.heatmap_stride or self.input_width % self.heatmap_stride:
            raise ValueError("model input size must be a multiple of the heatmap stride")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("model metadata mean/std must have 3 values, std > 0")

"""The LAPX network: a stem, stacked soft-gated hourglasses with attention, per-stage heads.

Built from a ``LapxConfig`` so that the paper's ablations (2-5 stages, channel widths,
where non-local attention sits) are configurations rather than code.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lapx_ros.model.attention import EcaAttention, EcaCbam, EcaNonLocal, NonLocalBlock
from lapx_ros.model.blocks import ConvBnElu, ResidualBottleneck, SoftGatedBottleneck


@dataclass(frozen=True)
class LapxConfig:
    """Everything that decides the network's shape (saved inside checkpoints)."""

    num_joints: int = 16
    num_stages: int = 3
    channels: int = 208
    hourglass_depth: int = 4
    stem_channels: tuple[int, int] = (64, 128)
    # 1-based stage numbers whose bottleneck uses ECA-NonLocal instead of plain ECA.
    nonlocal_stages: tuple[int, ...] = (1, 3)
    nonlocal_embed_ratio: int = 8
    # Input pixels per heatmap pixel of the deployed output: 4 (the paper's), or 2, where a
    # FineHeatmapHead doubles the last stage's heatmaps with the stem's half-resolution features.
    heatmap_stride: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.num_stages <= 8:
            raise ValueError(f"num_stages must be 1..8, got {self.num_stages}")
        if self.hourglass_depth < 1 or self.channels < 8 or self.num_joints < 1:
            raise ValueError("hourglass_depth >= 1, channels >= 8, num_joints >= 1 required")
        bad = [s for s in self.nonlocal_stages if not 1 <= s <= self.num_stages]
        if bad:
            raise ValueError(f"nonlocal_stages {bad} outside 1..{self.num_stages}")
        if self.heatmap_stride not in (2, 4):
            raise ValueError(f"heatmap_stride must be 2 or 4, got {self.heatmap_stride}")

    @property
    def min_input_side(self) -> int:
        """The smallest input side: the stem quarters it, then every hourglass level halves it."""
        return 4 * 2 ** self.hourglass_depth

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> "LapxConfig":
        raw = dict(raw)
        for key in ("stem_channels", "nonlocal_stages"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return cls(**raw)


class Hourglass(nn.Module):
    """Recursive encoder-decoder: at each level a full-resolution branch and a pooled one.

    ``bottleneck`` is applied at the lowest resolution, where attention is cheapest.
    """

    def __init__(self, depth: int, channels: int, bottleneck: nn.Module):
        super().__init__()
        self.skip = SoftGatedBottleneck(channels)
        self.down = SoftGatedBottleneck(channels)
        if depth > 1:
            self.inner = Hourglass(depth - 1, channels, bottleneck)
        else:
            self.inner = nn.Sequential(SoftGatedBottleneck(channels), bottleneck)
        self.up = SoftGatedBottleneck(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


class Stem(nn.Module):
    """Down to a quarter resolution: 7x7/2 conv, 2x2 max-pool, bottlenecks, ECA-CBAM.

    Pooling right after the strided convolution keeps the bottlenecks at H/4, where they
    cost a quarter of the MACs they would at H/2. ``forward`` also returns the H/2 features
    before the pooling, which a FineHeatmapHead uses.
    """

    def __init__(self, channels: int, stem_channels: tuple[int, int]):
        super().__init__()
        c1, c2 = stem_channels
        self.conv = ConvBnElu(3, c1, kernel_size=7, stride=2)
        self.res1 = ResidualBottleneck(c1, c2)
        self.pool = nn.MaxPool2d(2)
        self.res2 = ResidualBottleneck(c2, c2)
        self.res3 = ResidualBottleneck(c2, channels)
        self.attention = EcaCbam(channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.conv(x)
        return self.attention(self.res3(self.res2(self.res1(self.pool(half))))), half


class HourglassStage(nn.Module):
    """One stacked stage: hourglass, refinement, ECA-CBAM and a heatmap head.

    Returns its heatmaps and, unless it is the last stage, the features for the next
    stage: the input plus remapped features and remapped predictions.
    """

    def __init__(self, channels: int, num_joints: int, depth: int, bottleneck: nn.Module, last: bool):
        super().__init__()
        self.hourglass = Hourglass(depth, channels, bottleneck)
        self.refine = nn.Sequential(SoftGatedBottleneck(channels), ConvBnElu(channels, channels))
        self.attention = EcaCbam(channels)
        self.head = nn.Conv2d(channels, num_joints, 1)
        self.remap_features = None if last else nn.Conv2d(channels, channels, 1)
        self.remap_heatmaps = None if last else nn.Conv2d(num_joints, channels, 1)

    def forward(self, x: torch.Tensor):
        features = self.attention(self.refine(self.hourglass(x)))
        heatmaps = self.head(features)
        if self.remap_features is None:
            return heatmaps, None
        return heatmaps, x + self.remap_features(features) + self.remap_heatmaps(heatmaps)


class FineHeatmapHead(nn.Module):
    """Heatmaps at half the input resolution from the last stage's quarter-resolution ones.

    The output is the coarse heatmaps upsampled bilinearly (whose pixel centres line up
    with the finer grid's) plus a correction computed from them and the stem's
    half-resolution features. The correction's last convolution starts at zero, so a
    network trained at stride 4 gains this head without changing its output and
    fine-tuning starts from where it was.
    """

    def __init__(self, num_joints: int, skip_channels: int, width: int = 32):
        super().__init__()
        self.skip = ConvBnElu(skip_channels, width)
        joined = width + num_joints
        # Two depthwise 3x3 + pointwise layers: a 5x5 window of fine pixels around each peak.
        self.mix = nn.Sequential(
            nn.Conv2d(joined, joined, 3, padding=1, groups=joined, bias=False), ConvBnElu(joined, width),
            nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), ConvBnElu(width, width),
        )
        self.correction = nn.Conv2d(width, num_joints, 1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, coarse: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(coarse, size=half.shape[-2:], mode="bilinear", align_corners=False)
        return up + self.correction(self.mix(torch.cat([self.skip(half), up], dim=1)))


class LapxNet(nn.Module):
    """LAPX pose network. ``forward`` returns every stage's heatmaps in training mode
    (intermediate supervision; with heatmap stride 2 the fine head's come last, after the
    last stage's own) and only the last of them in eval mode (deployment)."""

    def __init__(self, config: LapxConfig = LapxConfig()):
        super().__init__()
        self.config = config
        c = config.channels
        self.stem = Stem(c, config.stem_channels)
        stages = []
        for i in range(1, config.num_stages + 1):
            bottleneck = (EcaNonLocal(c, config.nonlocal_embed_ratio)
                          if i in config.nonlocal_stages else EcaAttention(c))
            stages.append(HourglassStage(c, config.num_joints, config.hourglass_depth,
                                         bottleneck, last=i == config.num_stages))
        self.stages = nn.ModuleList(stages)
        self.fine_head = (FineHeatmapHead(config.num_joints, config.stem_channels[0])
                          if config.heatmap_stride == 2 else None)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Heatmaps of every stage, first to last, then the fine head's if there is one."""
        x, half = self.stem(x)
        outputs = []
        for stage in self.stages:
            heatmaps, x = stage(x)
            outputs.append(heatmaps)
        if self.fine_head is not None:
            outputs.append(self.fine_head(outputs[-1], half))
        return outputs

    def forward(self, x: torch.Tensor):
        outputs = self.forward_all(x)
        return outputs if self.training else outputs[-1]

    def nonlocal_blocks(self) -> list[NonLocalBlock]:
        return [m for m in self.modules() if isinstance(m, NonLocalBlock)]


def build_lapx(**overrides) -> LapxNet:
    """The default LAPX (3 stages, 208 channels, 16 joints) with optional overrides."""
    return LapxNet(LapxConfig(**overrides))

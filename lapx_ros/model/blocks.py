"""Convolutional building blocks of LAPX: pre-activation depthwise-separable bottlenecks."""
from __future__ import annotations

import torch
from torch import nn


def bn_elu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ELU(inplace=True))


class DepthwiseSeparableBottleneck(nn.Module):
    """Pre-activation bottleneck: BN-ELU-1x1 reduce, BN-ELU-3x3 depthwise, BN-ELU-1x1 expand.

    The depthwise 3x3 is what keeps LAPX at ~2.3 M parameters with 208 channels.
    """

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 2):
        super().__init__()
        mid = max(out_channels // reduction, 8)
        self.reduce = nn.Sequential(bn_elu(in_channels), nn.Conv2d(in_channels, mid, 1, bias=False))
        self.depthwise = nn.Sequential(bn_elu(mid), nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False))
        self.expand = nn.Sequential(bn_elu(mid), nn.Conv2d(mid, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.depthwise(self.reduce(x)))


class ResidualBottleneck(nn.Module):
    """Bottleneck with a plain identity (or 1x1 projection) skip, used in the stem."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = DepthwiseSeparableBottleneck(in_channels, out_channels)
        self.skip = (nn.Identity() if in_channels == out_channels
                     else nn.Conv2d(in_channels, out_channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class SoftGatedBottleneck(nn.Module):
    """Bottleneck whose skip is scaled by a learnable per-channel gate: f(x) + alpha * x.

    The soft gate (from LAP / Bulat et al.'s soft-gated skips) lets each channel choose
    how much of its input to pass straight through the deep hourglass.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = DepthwiseSeparableBottleneck(channels, channels)
        self.alpha = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.alpha * x


class ConvBnElu(nn.Sequential):
    """1x1 (or kxk) convolution followed by BN and ELU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                      padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ELU(inplace=True),
        )

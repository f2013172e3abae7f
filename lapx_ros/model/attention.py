"""Attention modules of LAPX: ECA channel attention, CBAM-style spatial attention, non-local."""
from __future__ import annotations

import math

import torch
from torch import nn


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """Adaptive 1D kernel size of ECA-Net: the nearest odd number to log2(C)/gamma + b/gamma."""
    k = int(abs(math.log2(channels) / gamma + b / gamma))
    return k if k % 2 else k + 1


class EcaAttention(nn.Module):
    """Efficient channel attention: a 1D convolution across pooled channel descriptors.

    Average- and max-pooled descriptors share the 1D convolution (as CBAM shares its MLP),
    so the module adds only k weights.
    """

    def __init__(self, channels: int):
        super().__init__()
        k = eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=k // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3)).unsqueeze(1)           # (N, 1, C)
        mx = x.amax(dim=(2, 3)).unsqueeze(1)
        weight = torch.sigmoid(self.conv(avg) + self.conv(mx))
        return x * weight.transpose(1, 2).unsqueeze(-1)  # (N, C, 1, 1)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a 7x7 convolution over the channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class EcaCbam(nn.Sequential):
    """ECA channel attention followed by CBAM spatial attention."""

    def __init__(self, channels: int):
        super().__init__(EcaAttention(channels), SpatialAttention())


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local self-attention with a gamma-scaled residual.

    Global context at the hourglass bottleneck, where the map is smallest. ``gamma``
    starts at 0 so the block is an identity until training turns it on; the training
    recipe can freeze it, then grow it towards a target (LAPX reports ~0.2).
    """

    def __init__(self, channels: int, embed_ratio: int = 8):
        super().__init__()
        embed = max(channels // embed_ratio, 1)
        self.theta = nn.Conv2d(channels, embed, 1)
        self.phi = nn.Conv2d(channels, embed, 1)
        self.g = nn.Conv2d(channels, embed, 1)
        self.out = nn.Conv2d(embed, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)     # (N, HW, E)
        k = self.phi(x).flatten(2)                       # (N, E, HW)
        v = self.g(x).flatten(2).transpose(1, 2)         # (N, HW, E)
        attn = torch.softmax(q @ k, dim=-1)              # (N, HW, HW)
        y = (attn @ v).transpose(1, 2).reshape(n, -1, h, w)
        return x + self.gamma * self.out(y)


class EcaNonLocal(nn.Sequential):
    """ECA followed by non-local self-attention: LAPX's bottleneck in stages 1 and 3."""

    def __init__(self, channels: int, embed_ratio: int = 8):
        super().__init__(EcaAttention(channels), NonLocalBlock(channels, embed_ratio))

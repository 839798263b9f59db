"""CSPNeXt (P5): the RTMPose backbone, a CSP network of large-kernel depthwise blocks with channel attention."""
from __future__ import annotations

import torch
from torch import nn

# Base (width 1, depth 1) stage settings: in channels, out channels, blocks, residual blocks, SPP before the CSP layer.
STAGE_SETTINGS = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)
STEM_CHANNELS = 64


class ConvNormAct(nn.Sequential):
    """Conv (no bias: the norm has one) -> BatchNorm (eps 1e-5, as the toolbox's SyncBN) -> SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        padding = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-5)
        self.act = nn.SiLU(inplace=True)


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then a 5x5 depthwise + 1x1 pointwise pair; the large kernel widens the receptive field cheaply."""

    def __init__(self, channels: int, residual: bool):
        super().__init__()
        self.conv = ConvNormAct(channels, channels, 3)
        self.depthwise = ConvNormAct(channels, channels, 5, groups=channels)
        self.pointwise = ConvNormAct(channels, channels, 1)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.depthwise(self.conv(x)))
        return x + out if self.residual else out


class ChannelAttention(nn.Module):
    """Squeeze-excitation without reduction: global average -> 1x1 conv -> hard sigmoid -> rescale channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = nn.functional.hardsigmoid(self.fc(x.mean(dim=(2, 3), keepdim=True)))
        return x * weights


class CSPLayer(nn.Module):
    """Cross-stage partial layer: half the channels go through the blocks, half skip them, then both are fused."""

    def __init__(self, channels: int, num_blocks: int, residual: bool):
        super().__init__()
        hidden = channels // 2
        self.main = ConvNormAct(channels, hidden, 1)
        self.shortcut = ConvNormAct(channels, hidden, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(hidden, residual) for _ in range(num_blocks)))
        self.attention = ChannelAttention(2 * hidden)
        self.fuse = ConvNormAct(2 * hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The order (main branch first) matters for weight compatibility with the reference toolbox.
        merged = torch.cat((self.blocks(self.main(x)), self.shortcut(x)), dim=1)
        return self.fuse(self.attention(merged))


class SpatialPyramidPooling(nn.Module):
    """Max-pools of 5, 9 and 13 at stride 1, concatenated with their input: context at several scales."""

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        hidden = channels // 2
        self.reduce = ConvNormAct(channels, hidden, 1)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.fuse = ConvNormAct(hidden * (len(kernel_sizes) + 1), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.fuse(torch.cat([x] + [pool(x) for pool in self.pools], dim=1))


class Stage(nn.Module):
    """One resolution level: a stride-2 3x3 conv, an optional SPP, then a CSP layer."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, residual: bool, use_spp: bool):
        super().__init__()
        self.downsample = ConvNormAct(in_channels, out_channels, 3, stride=2)
        self.spp = SpatialPyramidPooling(out_channels) if use_spp else None
        self.csp = CSPLayer(out_channels, num_blocks, residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.spp is not None:
            x = self.spp(x)
        return self.csp(x)


class CSPNeXt(nn.Module):
    """CSPNeXt P5 scaled by `deepen` (block counts) and `widen` (channels); returns only the stride-32 feature."""

    def __init__(self, deepen: float, widen: float):
        super().__init__()
        stem = int(STEM_CHANNELS * widen)
        self.stem = nn.Sequential(
            ConvNormAct(3, stem // 2, 3, stride=2),
            ConvNormAct(stem // 2, stem // 2, 3),
            ConvNormAct(stem // 2, stem, 3),
        )
        self.stages = nn.ModuleList(
            Stage(int(c_in * widen), int(c_out * widen), max(round(blocks * deepen), 1), residual, use_spp)
            for c_in, c_out, blocks, residual, use_spp in STAGE_SETTINGS
        )
        self.out_channels = int(STAGE_SETTINGS[-1][1] * widen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

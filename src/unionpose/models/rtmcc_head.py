"""RTMCC head: per-keypoint tokens from a 7x7 conv, one gated attention unit across keypoints, SimCC classifiers."""
from __future__ import annotations

import math

import torch
from torch import nn


class ScaleNorm(nn.Module):
    """x / clamp(||x|| / sqrt(d), eps) * g: an RMS-style norm with a single learned gain."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.gain


class GatedAttentionUnit(nn.Module):
    """GAU over the keypoint tokens: squared-ReLU single-head attention gated by u, with a learned residual scale.

    One projection gives u and v (expansion wide) and a shared low-dimensional base (s wide) from which q and k
    are made by per-dimension scale and offset, so keypoints can exchange information cheaply.
    """

    def __init__(self, dim: int = 256, expansion: int = 512, attention_dim: int = 128):
        super().__init__()
        self.expansion = expansion
        self.attention_dim = attention_dim
        self.norm = ScaleNorm(dim)
        self.proj_in = nn.Linear(dim, 2 * expansion + attention_dim, bias=False)
        self.qk_scale = nn.Parameter(torch.rand(2, attention_dim))   # row 0 makes q, row 1 makes k
        self.qk_offset = nn.Parameter(torch.zeros(2, attention_dim))
        self.proj_out = nn.Linear(expansion, dim, bias=False)
        self.residual_scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        projected = nn.functional.silu(self.proj_in(self.norm(x)))
        u, v, base = torch.split(projected, [self.expansion, self.expansion, self.attention_dim], dim=-1)
        q = base * self.qk_scale[0] + self.qk_offset[0]
        k = base * self.qk_scale[1] + self.qk_offset[1]
        attention = torch.relu(q @ k.transpose(1, 2) / math.sqrt(self.attention_dim)).square()
        return x * self.residual_scale + self.proj_out(u * (attention @ v))


class RTMCCHead(nn.Module):
    """Maps the stride-32 feature to SimCC logits: (N, K, x_bins) and (N, K, y_bins), and with a depth head also
    (N, K, z_bins) over root-relative depth: one more linear classifier on the same keypoint tokens (docs/3d.md)."""

    def __init__(self, in_channels: int, num_keypoints: int, feature_size: tuple[int, int],
                 bins: tuple[int, int], hidden_dim: int = 256, depth_bins: int | None = None):
        """`feature_size` is the backbone map's (height, width); `bins` is (x_bins, y_bins); `depth_bins` adds the
        depth classifier."""
        super().__init__()
        self.keypoint_conv = nn.Conv2d(in_channels, num_keypoints, 7, padding=3)
        tokens_in = feature_size[0] * feature_size[1]
        self.token_norm = ScaleNorm(tokens_in)
        self.token_embed = nn.Linear(tokens_in, hidden_dim, bias=False)
        self.gau = GatedAttentionUnit(hidden_dim, 2 * hidden_dim, 128)
        self.cls_x = nn.Linear(hidden_dim, bins[0], bias=False)
        self.cls_y = nn.Linear(hidden_dim, bins[1], bias=False)
        self.cls_z = nn.Linear(hidden_dim, depth_bins, bias=False) if depth_bins else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The toolbox's head init: conv N(0, 0.001), linear N(0, 0.01), biases 0; norms and GAU keep theirs."""
        nn.init.normal_(self.keypoint_conv.weight, std=0.001)
        nn.init.zeros_(self.keypoint_conv.bias)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, ...]:
        tokens = self.keypoint_conv(feature).flatten(2)
        tokens = self.gau(self.token_embed(self.token_norm(tokens)))
        if self.cls_z is None:
            return self.cls_x(tokens), self.cls_y(tokens)
        return self.cls_x(tokens), self.cls_y(tokens), self.cls_z(tokens)

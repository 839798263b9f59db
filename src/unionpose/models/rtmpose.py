"""The top-down RTMPose model (CSPNeXt + RTMCC head) and its size zoo t/s/m/l."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from unionpose.core.constants import SIMCC_SPLIT_RATIO
from unionpose.core.depth import DepthCodec
from unionpose.models.cspnext import CSPNeXt
from unionpose.models.rtmcc_head import RTMCCHead

BACKBONE_STRIDE = 32


@dataclass(frozen=True)
class ModelSize:
    """One zoo entry: the scaling factors, and the published figures for COCO-17 at 256x192 (RTMPose,
    Jiang et al. 2023; docs/conventions.md)."""

    deepen: float
    widen: float
    published_params_m: float
    published_gflops: float
    published_coco_ap: float        # trained on COCO only
    published_aic_coco_ap: float    # trained on AIC + COCO


MODEL_SIZES = {
    "t": ModelSize(0.167, 0.375, 3.34, 0.36, 68.2, 68.5),
    "s": ModelSize(0.33, 0.5, 5.47, 0.68, 71.6, 72.2),
    "m": ModelSize(0.67, 0.75, 13.59, 1.93, 74.6, 75.8),
    "l": ModelSize(1.0, 1.0, 27.66, 4.16, 75.8, 76.5),
}


def model_size(size: str) -> ModelSize:
    """The zoo entry for `size`, or a clear error listing the known sizes."""
    if size not in MODEL_SIZES:
        raise ValueError(f"unknown RTMPose size {size!r}; known sizes: {', '.join(MODEL_SIZES)}")
    return MODEL_SIZES[size]


class RTMPose(nn.Module):
    """Top-down pose model: a (N, 3, H, W) crop -> SimCC logits simcc_x (N, K, W*r) and simcc_y (N, K, H*r), and
    with a depth head a third output simcc_z (N, K, depth.bins) over root-relative depth."""

    def __init__(self, size: str, num_keypoints: int, input_size: tuple[int, int] = (256, 192),
                 split_ratio: float = SIMCC_SPLIT_RATIO, depth: DepthCodec | None = None):
        """`input_size` is (height, width), each a multiple of 32; `split_ratio` is SimCC bins per pixel; `depth`
        adds the depth head with that codec's bins (the model carries the codec so its file records range and unit)."""
        super().__init__()
        spec = model_size(size)
        height, width = (int(v) for v in input_size)
        if height <= 0 or width <= 0 or height % BACKBONE_STRIDE or width % BACKBONE_STRIDE:
            raise ValueError(f"input size {height}x{width} (h x w) must be positive multiples of {BACKBONE_STRIDE}")
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be at least 1, got {num_keypoints}")
        self.size = size
        self.num_keypoints = num_keypoints
        self.input_size = (height, width)
        self.split_ratio = float(split_ratio)
        self.depth = depth
        self.backbone = CSPNeXt(spec.deepen, spec.widen)
        self.head = RTMCCHead(
            self.backbone.out_channels,
            num_keypoints,
            feature_size=(height // BACKBONE_STRIDE, width // BACKBONE_STRIDE),
            bins=(int(width * split_ratio), int(height * split_ratio)),
            depth_bins=depth.bins if depth is not None else None,
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's stride-32 feature (what feature distillation compares)."""
        return self.backbone(x)

    def forward_head(self, feature: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """SimCC logits from a backbone feature (the head alone, as DWPose stage 2 trains it): (x, y), or (x, y, z)
        with a depth head."""
        return self.head(feature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.forward_head(self.forward_features(x))


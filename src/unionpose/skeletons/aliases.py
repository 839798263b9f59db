"""One alias table: keypoint identity across datasets is decided here, by canonical name, and nowhere else."""
from __future__ import annotations

# Dataset-specific name -> canonical name. Canonical names follow COCO / MPII spelling.
# Each entry is a documented identity between datasets, not a guess: the unified-skeleton paper (Khan et al. 2024)
# and each dataset's own definitions (docs/conventions.md).
ALIASES: dict[str, str] = {
    "head": "head_top",          # Halpe-26 `head`, CrowdPose `head` = top of the head (MPII head_top)
    "top_head": "head_top",
    "neck": "upper_neck",        # Halpe / CrowdPose / AIC `neck` = MPII upper_neck (the paper's Halpe check)
    "head_bottom": "upper_neck", # PoseTrack `head_bottom`: the bottom of the head box, at the upper neck
    "hip": "pelvis",             # Halpe `hip` (centre of the hips) = MPII pelvis
    "mid_hip": "pelvis",
}


def canonical(name: str) -> str:
    """The canonical name of a keypoint (lower case, spaces as underscores, aliases resolved)."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


def mirrored(name: str) -> str:
    """The name of the left/right twin (`left_knee` -> `right_knee`); names without a side return themselves."""
    return "_".join({"left": "right", "right": "left"}.get(token, token) for token in name.split("_"))


def side(name: str) -> str:
    """'left', 'right' or 'center', from the name's tokens."""
    tokens = name.split("_")
    if "left" in tokens:
        return "left"
    if "right" in tokens:
        return "right"
    return "center"

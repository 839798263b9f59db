"""A template person (front view, arms out) giving a 2D position for every known keypoint name, for drawings."""
from __future__ import annotations

import math

import numpy as np

from unionpose.skeletons.skeleton import Skeleton

# Canvas 1000 x 1400 (w x h). The person faces the viewer, so their left is on the image's right.
_BODY = {
    "head_top": (500, 95), "nose": (500, 215), "left_eye": (540, 185), "right_eye": (460, 185),
    "left_eye_inner": (525, 185), "left_eye_outer": (555, 185), "right_eye_inner": (475, 185),
    "right_eye_outer": (445, 185), "left_ear": (585, 205), "right_ear": (415, 205),
    "mouth_left": (525, 245), "mouth_right": (475, 245),
    "upper_neck": (500, 300), "thorax": (500, 350),
    "left_shoulder": (620, 360), "right_shoulder": (380, 360), "left_elbow": (700, 520), "right_elbow": (300, 520),
    "left_wrist": (760, 670), "right_wrist": (240, 670), "left_pinky": (790, 725), "right_pinky": (210, 725),
    "left_index": (770, 735), "right_index": (230, 735), "left_thumb": (745, 715), "right_thumb": (255, 715),
    "pelvis": (500, 700), "left_hip": (570, 710), "right_hip": (430, 710), "left_knee": (590, 950),
    "right_knee": (410, 950), "left_ankle": (600, 1190), "right_ankle": (400, 1190),
    "left_heel": (595, 1225), "right_heel": (405, 1225), "left_big_toe": (625, 1290), "right_big_toe": (375, 1290),
    "left_small_toe": (665, 1275), "right_small_toe": (335, 1275),
    "left_foot_index": (635, 1280), "right_foot_index": (365, 1280),
}


def _face68(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """300-W layout: jaw 17, brows 5+5, nose 4+5, eyes 6+6, outer lips 12, inner lips 8 (image-left first)."""
    pts: list[tuple[float, float]] = []
    for i in range(17):  # jaw from the image-left ear round the chin
        a = math.pi * (1.0 - i / 16.0)
        pts.append((cx + r * math.cos(a), cy + 0.35 * r + 0.85 * r * math.sin(a)))
    for x0 in (-0.75, 0.15):  # brows
        pts += [(cx + r * (x0 + 0.15 * j), cy - 0.45 * r - 0.08 * r * math.sin(math.pi * j / 4)) for j in range(5)]
    pts += [(cx, cy - 0.3 * r + 0.15 * r * j) for j in range(4)]  # nose bridge
    pts += [(cx + r * 0.12 * (j - 2), cy + 0.35 * r) for j in range(5)]  # nostrils
    for ex in (-0.42, 0.42):  # eyes, 6 points each
        for j in range(6):
            a = math.pi - j * math.pi / 3
            pts.append((cx + ex * r + 0.2 * r * math.cos(a), cy - 0.2 * r - 0.08 * r * math.sin(a)))
    for j in range(12):  # outer lips
        a = math.pi - j * math.pi / 6
        pts.append((cx + 0.4 * r * math.cos(a), cy + 0.72 * r - 0.14 * r * math.sin(a)))
    for j in range(8):  # inner lips
        a = math.pi - j * math.pi / 4
        pts.append((cx + 0.28 * r * math.cos(a), cy + 0.72 * r - 0.06 * r * math.sin(a)))
    return pts


_HAND_NAMES = ["hand_wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip"] + [
    f"{f}_{j}" for f in ("index", "middle", "ring", "pinky") for j in ("mcp", "pip", "dip", "tip")]


def _hand21(wrist: tuple[float, float], direction: float) -> list[tuple[float, float]]:
    """Wrist, then thumb and four fingers (4 joints each), fanned out from the wrist along `direction` (radians)."""
    pts = [wrist]
    for finger, spread in enumerate((-0.9, -0.3, 0.0, 0.3, 0.6)):
        a = direction + spread * (1 if direction < math.pi else -1)
        for joint in range(1, 5):
            d = 25 + 32 * joint - (8 * joint if finger == 0 else 0)
            pts.append((wrist[0] + d * math.cos(a), wrist[1] + d * math.sin(a)))
    return pts


def template_positions(skeleton: Skeleton) -> np.ndarray:
    """(K, 2) canvas coordinates for `skeleton`; unknown names are laid out in a column at the right edge."""
    table = dict(_BODY)
    face_points = _face68(500, 190, 105)
    for i, p in enumerate(face_points):
        table[f"face_{i}"] = p
    for prefix, wrist, direction in (("left_", (800, 740), math.pi * 0.35), ("right_", (200, 740), math.pi * 0.65)):
        table.update({prefix + n: p for n, p in zip(_HAND_NAMES, _hand21(wrist, direction))})
    if set(skeleton.canonical_names) <= set(_HAND_NAMES):  # a hand on its own: draw it large
        big = [(500 + 2.5 * (x - 500), 1200 + 2.5 * (y - 1100)) for x, y in _hand21((500, 1100), -math.pi / 2)]
        table.update(dict(zip(_HAND_NAMES, big)))
    if set(skeleton.canonical_names) <= {f"face_{i}" for i in range(68)}:  # a face on its own: draw it large
        table.update({f"face_{i}": p for i, p in enumerate(_face68(500, 600, 380))})
    out = np.zeros((skeleton.num_keypoints, 2), dtype=np.float32)
    spare = 0
    for k, key in enumerate(skeleton.canonical_names):
        if key in table:
            out[k] = table[key]
        else:
            out[k] = (960, 60 + 40 * spare)
            spare += 1
    return out

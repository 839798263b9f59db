"""A procedural articulated person for the synthetic benchmark: proportions, a pose within joint limits, its drawing."""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

# Drawing uses fixed-point coordinates (4 fractional bits) so that sub-pixel keypoints and shapes agree.
SHIFT = 4
_ONE = 1 << SHIFT

# Body parts a figure is drawn from. A keypoint is "visible" when the pixel under it belongs to one of its own parts.
PARTS = (
    "torso", "hips", "belt", "collar", "neck", "head", "hair_tuft", "left_eye", "right_eye", "nose", "mouth",
    "left_ear", "right_ear", "left_upper_arm", "right_upper_arm", "left_forearm", "right_forearm", "left_hand",
    "right_hand", "left_thigh", "right_thigh", "left_shin", "right_shin", "left_foot", "right_foot",
)
PART_ID = {name: index + 1 for index, name in enumerate(PARTS)}   # 0 means "no part" in the id map
PARTS_PER_FIGURE = 32                                              # id stride between figures in one image


# ---------------------------------------------------------------------------------------------------------- style
@dataclass(frozen=True)
class Style:
    """The colours (BGR) of one figure. Every keypoint sits on a part whose colour is listed here."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    forearm: tuple[int, int, int]      # the shirt colour (long sleeves) or the skin colour (short sleeves)
    trousers: tuple[int, int, int]
    shin: tuple[int, int, int]         # the trousers colour (long) or the skin colour (shorts)
    shoes: tuple[int, int, int]
    belt: tuple[int, int, int]
    buckle: tuple[int, int, int]
    collar: tuple[int, int, int]
    eye_white: tuple[int, int, int]
    pupil: tuple[int, int, int]
    nose: tuple[int, int, int]
    ear: tuple[int, int, int]
    mouth: tuple[int, int, int]

    def faded(self, towards: tuple[float, float, float], amount: float) -> Style:
        """The same style blended towards one colour: low-contrast figures that melt into their background."""
        def blend(color: tuple[int, int, int]) -> tuple[int, int, int]:
            return tuple(round(c + (t - c) * amount) for c, t in zip(color, towards))
        return replace(self, **{f.name: blend(getattr(self, f.name)) for f in fields(self)})


SKIN_TONES = ((200, 220, 250), (160, 195, 235), (120, 160, 215), (90, 130, 190), (60, 95, 150), (40, 65, 110))
HAIR_COLORS = ((20, 20, 25), (30, 45, 70), (40, 75, 120), (90, 170, 215), (40, 60, 150), (170, 170, 175))


def hsv_color(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    """BGR from hue, saturation and value in [0, 1] (the hue wraps)."""
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return int(b * 255), int(g * 255), int(r * 255)


def _jitter(rng: np.random.Generator, color: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(min(max(int(c) + int(d), 0), 255) for c, d in zip(color, rng.integers(-amount, amount + 1, size=3)))


def sample_style(rng: np.random.Generator) -> Style:
    """Random clothes, skin and hair; short sleeves and shorts sometimes, so that limbs change colour at the joint."""
    skin = _jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 12)
    hair = (hsv_color(rng.random(), 0.7, 0.6) if rng.random() < 0.12
            else _jitter(rng, HAIR_COLORS[rng.integers(len(HAIR_COLORS))], 10))
    shirt = hsv_color(rng.random(), rng.uniform(0.15, 0.95), rng.uniform(0.25, 0.95))
    trousers = (hsv_color(rng.uniform(0.55, 0.65), rng.uniform(0.3, 0.8), rng.uniform(0.2, 0.6)) if rng.random() < 0.35
                else hsv_color(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.1, 0.8)))
    shoes = hsv_color(rng.random(), rng.uniform(0.0, 0.6), rng.uniform(0.05, 0.35 if rng.random() < 0.8 else 0.9))
    belt = hsv_color(rng.uniform(0.02, 0.1), rng.uniform(0.3, 0.8), rng.uniform(0.08, 0.4))
    buckle = (40, 190, 220) if rng.random() < 0.5 else (200, 200, 200)
    collar = hsv_color(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.0))
    skin_array = np.asarray(skin, dtype=np.float64)
    return Style(
        skin=skin, hair=hair, shirt=shirt,
        forearm=skin if rng.random() < 0.4 else shirt,
        trousers=trousers,
        shin=skin if rng.random() < 0.25 else trousers,
        shoes=shoes, belt=belt, buckle=buckle, collar=collar,
        eye_white=(235, 240, 240),
        pupil=_jitter(rng, (25, 35, 45), 15),
        nose=tuple(int(v) for v in skin_array * np.array([0.6, 0.62, 0.85])),
        ear=tuple(int(v) for v in skin_array * 0.8),
        mouth=(50, 50, 150),
    )


# ----------------------------------------------------------------------------------------------------------- body
@dataclass(frozen=True)
class Body:
    """A posed body in 3D, in units of body height. Axes: x = the person's left, y = down, z = the way they face.

    `points` holds the 21 keypoints by name plus the drawing anchors (hand and toe ends, head centre, face marks);
    `axes` holds unit vectors of the torso, hip and head frames; `sizes` the limb radii and torso widths.
    """

    points: dict[str, np.ndarray]
    axes: dict[str, np.ndarray]
    sizes: dict[str, float]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' rotation of `v` about the unit vector `axis` (right-handed in the x-left, y-down, z-forward frame)."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + _cross(axis, v) * s + axis * float(np.dot(axis, v)) * (1.0 - c)


# Pose families: (lo, hi) in degrees for each joint angle. Arms: elevation from hanging down, the plane of elevation
# (0 sideways, 90 forwards, negative backwards), twist of the upper arm and elbow flexion. Legs: hip flexion (forward
# positive), abduction (outward positive) and knee flexion. Torso: forward and sideways lean, shoulder twist.
POSE_FAMILIES = {
    "stand": {"arm_elev": (0, 30), "arm_plane": (-20, 70), "arm_twist": (-30, 60), "elbow": (0, 45),
              "hip_flex": (-8, 15), "hip_abd": (-4, 14), "knee": (0, 15),
              "lean": (-6, 12), "side": (-6, 6), "twist": (-15, 15)},
    "walk": {"arm_elev": (5, 45), "arm_plane": (60, 100), "arm_twist": (-20, 40), "elbow": (10, 100),
             "hip_flex": (10, 40), "hip_abd": (-3, 8), "knee": (0, 70),
             "lean": (-5, 20), "side": (-5, 5), "twist": (-20, 20)},
    "arms_up": {"arm_elev": (70, 170), "arm_plane": (-10, 110), "arm_twist": (-60, 60), "elbow": (0, 130),
                "hip_flex": (-10, 30), "hip_abd": (-5, 25), "knee": (0, 40),
                "lean": (-15, 15), "side": (-12, 12), "twist": (-25, 25)},
    "crouch": {"arm_elev": (10, 100), "arm_plane": (20, 110), "arm_twist": (-40, 60), "elbow": (20, 140),
               "hip_flex": (60, 115), "hip_abd": (-5, 35), "knee": (60, 140),
               "lean": (0, 35), "side": (-10, 10), "twist": (-20, 20)},
    "free": {"arm_elev": (0, 170), "arm_plane": (-40, 130), "arm_twist": (-80, 80), "elbow": (0, 150),
             "hip_flex": (-30, 110), "hip_abd": (-10, 45), "knee": (0, 140),
             "lean": (-20, 40), "side": (-20, 20), "twist": (-35, 35)},
}
POSE_WEIGHTS = {"stand": 0.22, "walk": 0.25, "arms_up": 0.15, "crouch": 0.13, "free": 0.25}


def _angle(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return math.radians(rng.uniform(*bounds))


def sample_body(rng: np.random.Generator, head_scale: float = 1.0) -> Body:
    """Random proportions (each segment +-10 %) and a random pose from one of the pose families."""
    def length(mean: float) -> float:
        return mean * rng.uniform(0.9, 1.1)

    head = length(0.13) * head_scale
    sizes = {
        "head": head, "neck": length(0.045), "torso": length(0.29), "shoulder": length(0.105), "hip": length(0.055),
        "upper_arm": length(0.165), "forearm": length(0.145), "hand": length(0.055), "thigh": length(0.235),
        "shin": length(0.235), "foot": length(0.075),
        "r_upper_arm": length(0.031), "r_forearm": length(0.026), "r_hand": length(0.026), "r_thigh": length(0.047),
        "r_shin": length(0.036), "r_foot": length(0.022), "r_neck": length(0.03),
        "w_chest": length(0.118), "d_chest": length(0.065), "w_waist": length(0.088), "d_waist": length(0.058),
        "w_hips": length(0.098), "d_hips": length(0.068),
    }
    family_names = list(POSE_WEIGHTS)
    family_name = family_names[rng.choice(len(family_names), p=list(POSE_WEIGHTS.values()))]
    family, walking = POSE_FAMILIES[family_name], family_name == "walk"

    down = np.array([0.0, 1.0, 0.0])
    left = np.array([1.0, 0.0, 0.0])
    forward = np.array([0.0, 0.0, 1.0])

    # Torso frame: leaning forwards/sideways about the pelvis, shoulders twisted against the hips.
    lean, side, twist = _angle(rng, family["lean"]), _angle(rng, family["side"]), _angle(rng, family["twist"])
    up = np.array([math.sin(side), -math.cos(side) * math.cos(lean), math.cos(side) * math.sin(lean)])
    twisted = _rotate(left, up, twist)
    torso_left = _unit(twisted - up * float(np.dot(twisted, up)))
    torso_forward = _cross(up, torso_left)

    points: dict[str, np.ndarray] = {"pelvis": np.zeros(3)}
    points["thorax"] = up * sizes["torso"]
    for side_name, sign in (("left", 1.0), ("right", -1.0)):
        points[f"{side_name}_hip"] = left * sign * sizes["hip"]
        points[f"{side_name}_shoulder"] = points["thorax"] + torso_left * sign * sizes["shoulder"] - up * 0.018

    # Arms: the upper arm leaves the shoulder at an elevation in a plane; the elbow bends the forearm forwards
    # (towards the face when raised), turned by the twist of the upper arm.
    walk_swing = rng.choice([-1.0, 1.0])
    for side_name, sign in (("left", 1.0), ("right", -1.0)):
        elevation, plane = _angle(rng, family["arm_elev"]), _angle(rng, family["arm_plane"])
        if walking:                       # the arm opposite the forward leg swings forwards
            plane = plane if sign * walk_swing > 0 else -plane * 0.5
        outward = torso_left * sign
        direction = _unit(-up * math.cos(elevation)
                          + (outward * math.cos(plane) + torso_forward * math.sin(plane)) * math.sin(elevation))
        bend = torso_forward - direction * float(np.dot(torso_forward, direction))
        if np.linalg.norm(bend) < 0.2:
            bend = up - direction * float(np.dot(up, direction))
        bend = _rotate(_unit(bend), direction, sign * _angle(rng, family["arm_twist"]))
        flex = _angle(rng, family["elbow"])
        forearm = _unit(direction * math.cos(flex) + bend * math.sin(flex))
        points[f"{side_name}_elbow"] = points[f"{side_name}_shoulder"] + direction * sizes["upper_arm"]
        points[f"{side_name}_wrist"] = points[f"{side_name}_elbow"] + forearm * sizes["forearm"]
        hand = _unit(forearm + bend * rng.uniform(-0.4, 0.4))
        points[f"{side_name}_hand_end"] = points[f"{side_name}_wrist"] + hand * sizes["hand"]

    # Legs: hip flexion in the sagittal plane, then abduction about the forward axis; the knee bends backwards.
    for side_name, sign in (("left", 1.0), ("right", -1.0)):
        flexion = _angle(rng, family["hip_flex"])
        if walking:
            flexion = flexion if sign * walk_swing < 0 else -flexion * 0.6
        thigh = down * math.cos(flexion) + forward * math.sin(flexion)
        back = down * math.sin(flexion) - forward * math.cos(flexion)
        abduction = -sign * _angle(rng, family["hip_abd"])
        thigh, back = _rotate(thigh, forward, abduction), _rotate(back, forward, abduction)
        knee_flex = _angle(rng, family["knee"])
        shin = _unit(thigh * math.cos(knee_flex) + back * math.sin(knee_flex))
        shin_front = _unit(thigh * math.sin(knee_flex) - back * math.cos(knee_flex))
        foot = _unit(shin_front + shin * rng.uniform(0.0, 0.5))
        points[f"{side_name}_knee"] = points[f"{side_name}_hip"] + thigh * sizes["thigh"]
        points[f"{side_name}_ankle"] = points[f"{side_name}_knee"] + shin * sizes["shin"]
        points[f"{side_name}_toe"] = points[f"{side_name}_ankle"] + foot * sizes["foot"]

    # Neck and head: the head turns (yaw), nods (pitch) and tilts (roll) on top of the neck.
    neck_up = _unit(up + torso_forward * rng.uniform(-0.1, 0.3) + torso_left * rng.uniform(-0.15, 0.15))
    points["upper_neck"] = points["thorax"] + neck_up * sizes["neck"]
    yaw, pitch, roll = (math.radians(rng.uniform(-50, 50)), math.radians(rng.uniform(-25, 30)),
                        math.radians(rng.uniform(-20, 20)))
    head_forward = torso_forward * math.cos(yaw) + torso_left * math.sin(yaw)
    head_left = torso_left * math.cos(yaw) - torso_forward * math.sin(yaw)
    head_up = _unit(neck_up * math.cos(pitch) + head_forward * math.sin(pitch))
    head_left = _unit(head_left - head_up * float(np.dot(head_left, head_up)))
    head_up, head_left = (head_up * math.cos(roll) + head_left * math.sin(roll),
                          head_left * math.cos(roll) - head_up * math.sin(roll))
    head_forward = _cross(head_up, head_left)

    centre = points["upper_neck"] + head_up * head * 0.5
    points["head_centre"] = centre
    points["head_top"] = points["upper_neck"] + head_up * head
    for side_name, sign in (("left", 1.0), ("right", -1.0)):
        points[f"{side_name}_eye"] = centre + head * (0.04 * head_up + 0.19 * sign * head_left + 0.34 * head_forward)
        points[f"{side_name}_ear"] = centre + head * (0.02 * head_up + 0.40 * sign * head_left - 0.04 * head_forward)
    points["nose"] = centre + head * (-0.1 * head_up + 0.46 * head_forward)
    points["mouth"] = centre + head * (-0.28 * head_up + 0.36 * head_forward)
    points["face"] = centre + head * (-0.1 * head_up + 0.18 * head_forward)

    axes = {"up": up, "torso_left": torso_left, "torso_forward": torso_forward, "hip_left": left,
            "hip_forward": forward, "head_up": head_up, "head_left": head_left, "head_forward": head_forward}
    return Body(points=points, axes=axes, sizes=sizes)


# --------------------------------------------------------------------------------------------------------- shapes
def _fixed(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0]) * _ONE), round(float(point[1]) * _ONE)


def shade(color: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    """The colour in shadow (factor < 1 darkens) or in the light (factor > 1 moves towards white by factor - 1)."""
    if factor <= 1.0:
        return tuple(int(c * factor) for c in color)
    return tuple(int(c + (255 - c) * (factor - 1.0)) for c in color)


SHADOW, HIGHLIGHT = 0.7, 1.3      # the shades a part may show besides its own colour


@dataclass(slots=True)
class Capsule:
    """A limb: a thick segment with round ends, shaded like a cylinder lit from `light`."""

    start: np.ndarray
    end: np.ndarray
    radius: float
    color: tuple[int, int, int]
    part: int
    depth: float

    def draw(self, image: np.ndarray, ids: np.ndarray, id_value: int, light: np.ndarray) -> None:
        thickness = max(1, round(2 * self.radius))
        start, end = _fixed(self.start), _fixed(self.end)
        cv2.line(ids, start, end, id_value, thickness, cv2.LINE_8, SHIFT)
        if self.radius < 2.0:
            cv2.line(image, start, end, self.color, thickness, cv2.LINE_AA, SHIFT)
            return
        cv2.line(image, start, end, shade(self.color, SHADOW), thickness, cv2.LINE_AA, SHIFT)
        offset = light * self.radius * 0.3
        cv2.line(image, _fixed(self.start + offset), _fixed(self.end + offset), self.color,
                 max(1, round(1.2 * self.radius)), cv2.LINE_AA, SHIFT)
        if self.radius >= 4.0:
            offset = light * self.radius * 0.5
            cv2.line(image, _fixed(self.start + offset), _fixed(self.end + offset), shade(self.color, HIGHLIGHT),
                     max(1, round(0.4 * self.radius)), cv2.LINE_AA, SHIFT)


@dataclass(slots=True)
class Ellipse:
    """A head, face, eye, ear or blob; `shaded` adds a lit inner ellipse for volume."""

    centre: np.ndarray
    axes: tuple[float, float]          # semi-axes in pixels
    angle: float                       # degrees, of the first axis from image x
    color: tuple[int, int, int]
    part: int
    depth: float
    shaded: bool = False

    def draw(self, image: np.ndarray, ids: np.ndarray, id_value: int, light: np.ndarray) -> None:
        centre = _fixed(self.centre)
        axes = (max(1, round(self.axes[0] * _ONE)), max(1, round(self.axes[1] * _ONE)))
        cv2.ellipse(ids, centre, axes, self.angle, 0, 360, id_value, -1, cv2.LINE_8, SHIFT)
        if not self.shaded or min(self.axes) < 3.0:
            cv2.ellipse(image, centre, axes, self.angle, 0, 360, self.color, -1, cv2.LINE_AA, SHIFT)
            return
        cv2.ellipse(image, centre, axes, self.angle, 0, 360, shade(self.color, SHADOW), -1, cv2.LINE_AA, SHIFT)
        inner = (int(axes[0] * 0.8), int(axes[1] * 0.8))
        shift = light * min(self.axes) * 0.15
        cv2.ellipse(image, _fixed(self.centre + shift), inner, self.angle, 0, 360, self.color, -1, cv2.LINE_AA, SHIFT)


@dataclass(slots=True)
class Polygon:
    """A torso block, a belt or a buckle; `shaded` adds a lit inner copy."""

    points: np.ndarray                 # (N, 2)
    color: tuple[int, int, int]
    part: int
    depth: float
    shaded: bool = False

    def draw(self, image: np.ndarray, ids: np.ndarray, id_value: int, light: np.ndarray) -> None:
        fixed = np.round(self.points * _ONE).astype(np.int32)
        cv2.fillPoly(ids, [fixed], id_value, cv2.LINE_8, SHIFT)
        if not self.shaded:
            cv2.fillPoly(image, [fixed], self.color, cv2.LINE_AA, SHIFT)
            return
        cv2.fillPoly(image, [fixed], shade(self.color, SHADOW), cv2.LINE_AA, SHIFT)
        centre = self.points.mean(axis=0)
        size = float(np.abs(self.points - centre).max())
        inner = centre + (self.points - centre) * 0.82 + light * size * 0.08
        cv2.fillPoly(image, [np.round(inner * _ONE).astype(np.int32)], self.color, cv2.LINE_AA, SHIFT)


Shape = Capsule | Ellipse | Polygon


# ------------------------------------------------------------------------------------------------- placed figure
@dataclass
class PlacedFigure:
    """A body projected into an image: keypoints in union order, the shapes to draw and which parts own each point."""

    keypoints: np.ndarray              # (21, 2) float64, image pixels (pixel centres at integers)
    shapes: list[Shape]                # sorted far to near
    owners: list[frozenset[int]]       # per keypoint, the local part ids on which it is visible
    head_length: float                 # head_top to upper_neck in 3D, in pixels (for the MPII head box)
    extent: np.ndarray                 # (4,) x1, y1, x2, y2 of the whole figure, not clipped to the image
    points_3d: np.ndarray              # (21, 3) camera-space x right, y down, z away from the camera, minus the
                                       #   pelvis, in body heights (the projection is orthographic)
    depth: float = 0.0                 # scene depth: figures are drawn in increasing order


def _camera(yaw: float, roll: float) -> np.ndarray:
    """Body frame -> camera rows (image x, image y, towards the viewer). yaw 0 faces the camera."""
    cy, sy, cr, sr = math.cos(yaw), math.sin(yaw), math.cos(roll), math.sin(roll)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    spin = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return spin @ turn


def place_figure(body: Body, style: Style, names: tuple[str, ...], yaw: float, roll: float, height: float,
                 centre: tuple[float, float]) -> PlacedFigure:
    """Project `body` (orthographic) at `height` pixels tall, turned by `yaw`, rolled by `roll` (radians) in the image,
    with the middle of its keypoints at `centre`; build the drawing and the ownership of each of `names`."""
    rotation = _camera(yaw, roll) * height
    point_names = list(body.points)
    projected = np.stack([body.points[n] for n in point_names]) @ rotation.T
    offset = np.array([centre[0], centre[1], 0.0])
    key_rows = [point_names.index(n) for n in names]
    keys = projected[key_rows, :2]
    offset[:2] -= (keys.min(axis=0) + keys.max(axis=0)) / 2
    projected += offset
    p = {n: projected[i] for i, n in enumerate(point_names)}
    ax = {n: v @ rotation.T for n, v in body.axes.items()}             # scaled by height, not translated
    size = {n: v * height for n, v in body.sizes.items()}

    shapes = _torso_shapes(p, ax, size, style)
    shapes += _limb_shapes(p, size, style)
    shapes += _head_shapes(p, ax, size, style)
    shapes.sort(key=lambda s: s.depth)          # stable: parts of equal depth keep their building order

    owners = _owners(ax, names)
    pad = size["r_thigh"]
    xy = projected[:, :2]
    extent = np.concatenate([xy.min(axis=0) - pad, xy.max(axis=0) + pad])
    points_3d = (projected[key_rows] - p["pelvis"]) / height * np.array([1.0, 1.0, -1.0])   # camera z looks back
    return PlacedFigure(keypoints=np.stack([p[n][:2] for n in names]), shapes=shapes, owners=owners,
                        head_length=size["head"], extent=extent, points_3d=points_3d)


def _half_width(axis_left: np.ndarray, axis_forward: np.ndarray, normal: np.ndarray, width: float,
                depth: float) -> float:
    """Projected half-width along `normal` of an elliptic cross-section (half-axes `width` x `depth` in body units)."""
    return math.hypot(width * float(np.dot(axis_left[:2], normal)), depth * float(np.dot(axis_forward[:2], normal)))


def _torso_shapes(p: dict, ax: dict, size: dict, style: Style) -> list[Shape]:
    thorax, pelvis = p["thorax"], p["pelvis"]
    spine = thorax[:2] - pelvis[:2]
    spine_length = float(np.linalg.norm(spine))
    along = spine / spine_length if spine_length > 1e-3 else np.array([0.0, -1.0])   # pelvis -> thorax
    normal = np.array([-along[1], along[0]])
    h = float(np.linalg.norm(ax["up"]))          # pixels per body-height unit
    chest = _half_width(ax["torso_left"], ax["torso_forward"], normal, size["w_chest"] / h, size["d_chest"] / h)
    waist = _half_width(ax["torso_left"], ax["torso_forward"], normal, size["w_waist"] / h, size["d_waist"] / h)
    hips = _half_width(ax["hip_left"], ax["hip_forward"], normal, size["w_hips"] / h, size["d_hips"] / h)
    top = thorax[:2] + along * 0.012 * h
    shoulder_line = thorax[:2] - along * 0.03 * h
    waist_line = pelvis[:2] + spine * 0.35
    crotch = pelvis[:2] - along * 0.06 * h
    # Arms hanging at the sides are drawn over the shirt; the trousers and belt are drawn over the tops of the
    # thighs unless a thigh comes forwards (sitting, walking), as clothes and bodies look.
    depth = (thorax[2] + pelvis[2]) / 2 - 0.02 * h
    lower_depth = pelvis[2] + 0.02 * h

    def band(points_and_widths: list[tuple[np.ndarray, float]]) -> np.ndarray:
        right = [c + normal * w for c, w in points_and_widths]
        left = [c - normal * w for c, w in reversed(points_and_widths)]
        return np.array(right + left)

    shirt = band([(top, chest * 0.8), (shoulder_line, chest), (waist_line, waist)])
    trousers = band([(waist_line, waist), (pelvis[:2], hips), (crotch, hips * 0.85)])
    belt_half = 0.02 * h
    belt = band([(pelvis[:2] + along * belt_half, hips * 0.99), (pelvis[:2] - along * belt_half, hips * 0.99)])
    shapes: list[Shape] = [
        Polygon(shirt, style.shirt, PART_ID["torso"], depth, shaded=True),
        Polygon(trousers, style.trousers, PART_ID["hips"], lower_depth, shaded=True),
        Polygon(belt, style.belt, PART_ID["belt"], lower_depth + 1e-3),
    ]
    facing = float(ax["torso_forward"][2]) / h          # > 0 when the chest faces the camera
    if facing > 0.3:
        vee = np.array([top - normal * chest * 0.28, top + normal * chest * 0.28, top - along * 0.07 * h])
        shapes.append(Polygon(vee, style.skin, PART_ID["torso"], depth + 1.5e-3))
        buckle = band([(pelvis[:2] + along * belt_half * 0.8, belt_half),
                       (pelvis[:2] - along * belt_half * 0.8, belt_half)])
        shapes.append(Polygon(buckle, style.buckle, PART_ID["belt"], lower_depth + 2e-3))
    neck_depth = (thorax[2] + p["upper_neck"][2]) / 2
    shapes.append(Capsule(thorax[:2], p["upper_neck"][:2], size["r_neck"], style.skin, PART_ID["neck"], neck_depth))
    collar_angle = math.degrees(math.atan2(normal[1], normal[0]))
    shapes.append(Ellipse(thorax[:2], (size["r_neck"] * 1.7, max(size["r_neck"] * 0.45, 1.0)), collar_angle,
                          style.collar, PART_ID["collar"], neck_depth + 1e-3))
    return shapes


def _limb_shapes(p: dict, size: dict, style: Style) -> list[Shape]:
    shapes: list[Shape] = []
    for side in ("left", "right"):
        chain = (
            ("shoulder", "elbow", "upper_arm", style.shirt),
            ("elbow", "wrist", "forearm", style.forearm),
            ("wrist", "hand_end", "hand", style.skin),
            ("hip", "knee", "thigh", style.trousers),
            ("knee", "ankle", "shin", style.shin),
            ("ankle", "toe", "foot", style.shoes),
        )
        for start, end, part, color in chain:
            a, b = p[f"{side}_{start}"], p[f"{side}_{end}"]
            shapes.append(Capsule(a[:2], b[:2], size[f"r_{part}"], color, PART_ID[f"{side}_{part}"], (a[2] + b[2]) / 2))
    return shapes


def _head_shapes(p: dict, ax: dict, size: dict, style: Style) -> list[Shape]:
    """Head in hair colour, the face (skin) where it faces the camera, eyes/nose/mouth on the face, ears, a top tuft."""
    head = size["head"]
    centre = p["head_centre"]
    depth = centre[2] + 1e-3 * head
    up2 = ax["head_up"][:2]
    angle = math.degrees(math.atan2(up2[1], up2[0]))      # direction of the long (vertical) axis of the head
    facing = float(ax["head_forward"][2]) / float(np.linalg.norm(ax["head_forward"]))
    step = 1e-4 * head
    shapes: list[Shape] = []

    for side in ("left", "right"):                         # ears behind the head are drawn first (and hidden)
        ear = p[f"{side}_ear"]
        behind = ear[2] - centre[2] < -0.08 * head
        shapes.append(Ellipse(ear[:2], (max(0.15 * head, 1.0), max(0.09 * head, 1.0)), angle, style.ear,
                              PART_ID[f"{side}_ear"], depth - step if behind else depth + 6 * step))
    shapes.append(Ellipse(centre[:2], (0.5 * head, 0.41 * head), angle, style.hair, PART_ID["head"], depth,
                          shaded=True))
    if facing > -0.2:
        face = p["face"]
        width = 0.34 * head * (0.55 + 0.45 * max(facing, 0.0))      # narrower as the head turns away
        shapes.append(Ellipse(face[:2], (0.38 * head, max(width, 1.0)), angle, style.skin,
                              PART_ID["head"], depth + step, shaded=True))
    shapes.append(Ellipse(p["head_top"][:2], (max(0.09 * head, 1.2), max(0.14 * head, 1.2)), angle, style.hair,
                          PART_ID["hair_tuft"], depth + 2 * step))
    for side in ("left", "right"):
        eye = p[f"{side}_eye"]
        if eye[2] - centre[2] > 0.12 * head:
            shapes.append(Ellipse(eye[:2], (max(0.08 * head, 1.0), max(0.11 * head, 1.0)), angle, style.eye_white,
                                  PART_ID[f"{side}_eye"], depth + 3 * step))
            shapes.append(Ellipse(eye[:2], (max(0.055 * head, 0.8), max(0.055 * head, 0.8)), 0.0, style.pupil,
                                  PART_ID[f"{side}_eye"], depth + 4 * step))
    if p["mouth"][2] - centre[2] > 0.15 * head and head > 10:
        left2 = ax["head_left"][:2] / float(np.linalg.norm(ax["head_left"])) * 0.1 * head
        shapes.append(Capsule(p["mouth"][:2] - left2, p["mouth"][:2] + left2, max(0.03 * head, 0.6), style.mouth,
                              PART_ID["mouth"], depth + 4 * step))
    if p["nose"][2] - centre[2] > -0.05 * head:         # it sticks out of the head in profile
        shapes.append(Ellipse(p["nose"][:2], (max(0.07 * head, 1.0), max(0.07 * head, 1.0)), 0.0, style.nose,
                              PART_ID["nose"], depth + 5 * step))
    return shapes


def _owners(ax: dict, names: tuple[str, ...]) -> list[frozenset[int]]:
    """The parts on which each keypoint counts as visible. A shoulder or hip also shows on the torso, but only on
    the side that faces the camera (seen from more than ~45 degrees behind, it is hidden by the body); the pelvis
    shows on the hips, the belt or the top of either thigh."""
    def near(side: str, axis: str) -> bool:
        sign = 1.0 if side == "left" else -1.0
        return sign * float(ax[axis][2]) / float(np.linalg.norm(ax[axis])) > -0.7

    owners = []
    for name in names:
        side, _, joint = name.partition("_")
        if joint == "shoulder":
            parts = [f"{side}_upper_arm"] + (["torso"] if near(side, "torso_left") else [])
        elif joint == "elbow":
            parts = [f"{side}_upper_arm", f"{side}_forearm"]
        elif joint == "wrist":
            parts = [f"{side}_forearm", f"{side}_hand"]
        elif joint == "hip":
            parts = [f"{side}_thigh"] + (["hips", "belt"] if near(side, "hip_left") else [])
        elif joint == "knee":
            parts = [f"{side}_thigh", f"{side}_shin"]
        elif joint == "ankle":
            parts = [f"{side}_shin", f"{side}_foot"]
        elif joint in ("eye", "ear"):
            parts = [name]
        else:
            parts = {"nose": ["nose"], "pelvis": ["belt", "hips", "left_thigh", "right_thigh"],
                     "thorax": ["collar", "neck", "torso"], "upper_neck": ["neck", "head"],
                     "head_top": ["hair_tuft", "head"]}[name]
        owners.append(frozenset(PART_ID[part] for part in parts))
    return owners


def draw_figure(image: np.ndarray, ids: np.ndarray, figure: PlacedFigure, id_base: int, light: np.ndarray) -> None:
    """Draw `figure` into the BGR `image` (anti-aliased) and its part ids (id_base + part) into the uint16 `ids`."""
    for shape in figure.shapes:
        shape.draw(image, ids, id_base + shape.part, light)


def keypoint_visibility(ids: np.ndarray, figure: PlacedFigure, id_base: int) -> np.ndarray:
    """COCO visibility from the final id map: 2 where the pixel under the point is one of its parts, 1 where
    something else covers it, 0 outside the image."""
    height, width = ids.shape
    visible = np.zeros(len(figure.keypoints), dtype=np.int8)
    for k, (x, y) in enumerate(figure.keypoints):
        if not (0.0 <= x <= width - 1 and 0.0 <= y <= height - 1):
            continue
        owner = int(ids[round(y), round(x)]) - id_base
        visible[k] = 2 if owner in figure.owners[k] else 1
    return visible

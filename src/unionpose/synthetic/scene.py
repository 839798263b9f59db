"""One synthetic scene: background clutter, 1-4 procedural figures with occluders between them, camera effects, and
the ground truth of every figure in the 21-point union skeleton."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from unionpose.skeletons import get_skeleton
from unionpose.synthetic.figure import (
    PARTS_PER_FIGURE,
    Capsule,
    Ellipse,
    PlacedFigure,
    Polygon,
    draw_figure,
    hsv_color,
    keypoint_visibility,
    place_figure,
    sample_body,
    sample_style,
)

GENERATOR_VERSION = 1
UNION_SKELETON = "coco_mpii21"
OCCLUDER_ID = 60000                         # id-map value of occluders (above any figure's part ids)

# Person filter: a figure goes into the annotation files only if it is big enough and mostly in the picture.
MIN_AREA = 600              # silhouette pixels inside the image
MIN_LABELLED = 8            # of the 21 points, at least this many inside the image
MIN_VISIBLE = 4             # ... and at least this many not covered by anything
MIN_SHARED = 4              # ... and at least this many of the 12 limb points both datasets label


@dataclass(frozen=True)
class SynthParams:
    """The knobs of the scenes (recorded in synth_meta.json). The defaults are the benchmark."""

    width: int = 320
    height: int = 256
    people_weights: tuple[float, ...] = (0.25, 0.3, 0.25, 0.2)     # probability of 1, 2, 3, 4 people
    scale_range: tuple[float, float] = (0.5, 1.5)
    base_height: float = 0.55              # standing height at scale 1, as a fraction of the image height
    roll_std: float = 10.0                 # degrees, for most figures ...
    wide_roll_prob: float = 0.15           # ... some rolled up to +-70 degrees ...
    any_roll_prob: float = 0.03            # ... and a few at any angle (lying, upside down)
    small_head_prob: float = 0.3           # heads 70-90 % of the normal size
    yaw_spread: float = 180.0              # degrees either side of facing the camera (180: any direction, half of
                                           #   the figures seen from behind, their face points hidden)
    occluder_weights: tuple[float, ...] = (0.35, 0.35, 0.2, 0.1)   # probability of 0, 1, 2, 3 occluders
    clutter: float = 1.0                   # scales the number of background lines, blobs and limb-like distractors
    faded_figure_prob: float = 0.2         # figures whose colours are pulled towards the background
    low_contrast_prob: float = 0.15        # whole images with their contrast cut to 30-55 %
    noise_prob: float = 0.5                # Gaussian pixel noise, sigma 2-10
    blur_prob: float = 0.2
    jpeg_quality: int = 85


# The named scene presets (`unionpose synth --preset`, recorded in synth_meta.json). The benchmark is hard on purpose,
# for long runs and GPUs. The demo preset keeps a multi-person problem with occlusion (1-3 people, occluders in half
# of the images) but with bigger figures, mostly facing the camera, fewer extreme rolls and less clutter, so that
# every model of `make demo` learns within a CPU budget; docs/synthetic.md gives the learning curves behind it.
PRESETS = {
    "benchmark": SynthParams(),
    "demo": SynthParams(
        people_weights=(0.3, 0.4, 0.3), scale_range=(0.8, 1.3), roll_std=8.0, wide_roll_prob=0.05, any_roll_prob=0.0,
        small_head_prob=0.1, yaw_spread=100.0, occluder_weights=(0.5, 0.35, 0.15), clutter=0.5,
        faded_figure_prob=0.1, low_contrast_prob=0.05, noise_prob=0.3, blur_prob=0.1),
}


def preset_name(params: SynthParams) -> str:
    """The name of the preset `params` equals, or 'custom'."""
    return next((name for name, preset in PRESETS.items() if preset == params), "custom")


@dataclass
class SynthPerson:
    """Ground truth of one figure, in the union skeleton's order."""

    keypoints: np.ndarray       # (21, 2) float32 image pixels; (0, 0) where the point is outside the image
    visible: np.ndarray         # (21,) int8: 2 visible, 1 inside the image but covered, 0 outside the image
    box: np.ndarray             # (4,) float32 x, y, w, h of the whole silhouette (occluded parts too), clipped
    area: float                 # silhouette pixels inside the image (COCO's `area`, used by OKS)
    head_box: np.ndarray        # (4,) float32 x1, y1, x2, y2: MPII's head rectangle, a square with the head's
                                #   length (head top to upper neck) as side, centred between the two
    extent: np.ndarray          # (4,) float32 x1, y1, x2, y2 of the whole figure, not clipped (MPII centre/scale)
    keypoints_3d: np.ndarray    # (21, 3) float32 camera-space, pelvis-relative, in body heights; known for every
                                #   point, hidden or outside the image too (the 3D truth of docs/3d.md)


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return hsv_color(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.15, 0.95))


def _background(rng: np.random.Generator, params: SynthParams, light: np.ndarray) -> np.ndarray:
    """A smooth colour field, sometimes tiled or striped, with lines, blobs, boxes and limb-like distractors (hard
    negatives for the model)."""
    w, h = params.width, params.height
    base = np.array(_random_color(rng), dtype=np.float64)
    cells = base + rng.normal(0, rng.uniform(10, 50), size=(int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3))
    image = cv2.resize(np.clip(cells, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    no_ids = np.zeros((h, w), dtype=np.uint16)
    if rng.random() < 0.3:                                               # floor tiles, planks, wallpaper stripes
        color = tuple(int(c) for c in np.clip(base * rng.uniform(0.5, 1.4), 0, 255))
        spacing, thickness = rng.uniform(8, 40), int(rng.integers(1, 4))
        for angle in rng.uniform(0, math.pi, size=int(rng.integers(1, 3))):
            normal = np.array([math.cos(angle), math.sin(angle)])
            along = np.array([-normal[1], normal[0]]) * (w + h)
            for offset in np.arange(-(w + h) / 2, (w + h) / 2, spacing):
                middle = np.array([w / 2, h / 2]) + normal * offset
                cv2.line(image, _point(middle - along), _point(middle + along), color, thickness, cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 14) * params.clutter)):
        start = rng.uniform([-20, -20], [w + 20, h + 20])
        end = start + rng.normal(0, 80, size=2)
        cv2.line(image, _point(start), _point(end), _random_color(rng), int(rng.integers(1, 6)), cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 8) * params.clutter)):
        axes = (float(rng.uniform(4, 45)), float(rng.uniform(4, 45)))
        Ellipse(rng.uniform([0, 0], [w, h]), axes, float(rng.uniform(0, 180)), _random_color(rng), 0, 0.0,
                shaded=True).draw(image, no_ids, 0, light)
    for _ in range(int(rng.integers(0, 4) * params.clutter)):
        Polygon(_random_polygon(rng, params, 0.05, 0.3), _random_color(rng), 0, 0.0, shaded=True).draw(
            image, no_ids, 0, light)
    for _ in range(int(rng.integers(0, 4) * params.clutter)):          # bent "limbs" in skin or cloth colours
        style = sample_style(rng)
        color = style.skin if rng.random() < 0.5 else style.shirt
        joint = rng.uniform([0, 0], [w, h])
        radius = float(rng.uniform(2.5, 8))
        for _ in range(int(rng.integers(1, 3))):
            angle = rng.uniform(0, 2 * math.pi)
            end = joint + rng.uniform(15, 45) * np.array([math.cos(angle), math.sin(angle)])
            Capsule(joint, end, radius, color, 0, 0.0).draw(image, no_ids, 0, light)
            joint = end
    return image


def _point(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def _random_polygon(rng: np.random.Generator, params: SynthParams, lo: float, hi: float) -> np.ndarray:
    """A convex polygon (4-7 corners) whose size is lo..hi of the image's shorter side."""
    radius = rng.uniform(lo, hi) * min(params.width, params.height)
    centre = rng.uniform([0, 0], [params.width, params.height])
    angles = np.sort(rng.uniform(0, 2 * math.pi, size=int(rng.integers(4, 8))))
    stretch = rng.uniform(0.4, 1.6, size=2)
    return centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius * stretch   # on an ellipse: convex


def _occluder(rng: np.random.Generator, params: SynthParams) -> Ellipse | Polygon:
    """Something in front of people: a box, a pole, a round thing or a slab."""
    color = _random_color(rng)
    kind = rng.integers(3)
    if kind == 0:
        axes = (float(rng.uniform(0.06, 0.22) * params.height), float(rng.uniform(0.06, 0.22) * params.height))
        return Ellipse(rng.uniform([0, 0], [params.width, params.height]), axes, float(rng.uniform(0, 180)), color,
                       0, 0.0, shaded=True)
    if kind == 1:                                        # a long bar (pole, railing, table edge)
        length = rng.uniform(0.4, 1.2) * params.height
        thick = rng.uniform(0.04, 0.12) * params.height
        box = ((float(rng.uniform(0, params.width)), float(rng.uniform(0, params.height))), (length, thick),
               float(rng.uniform(0, 180)))
        return Polygon(cv2.boxPoints(box).astype(np.float64), color, 0, 0.0, shaded=True)
    return Polygon(_random_polygon(rng, params, 0.08, 0.25), color, 0, 0.0, shaded=True)


def _roll(rng: np.random.Generator, params: SynthParams) -> float:
    draw = rng.random()
    if draw < params.any_roll_prob:
        return rng.uniform(-math.pi, math.pi)
    if draw < params.any_roll_prob + params.wide_roll_prob:
        return math.radians(rng.uniform(-70, 70))
    return math.radians(float(np.clip(rng.normal(0, params.roll_std), -30, 30)))


def _sample_figure(rng: np.random.Generator, params: SynthParams, names: tuple[str, ...],
                   background: np.ndarray) -> PlacedFigure:
    scale = rng.uniform(*params.scale_range)
    head_scale = rng.uniform(0.7, 0.9) if rng.random() < params.small_head_prob else rng.uniform(0.9, 1.1)
    body = sample_body(rng, head_scale)
    style = sample_style(rng)
    centre = (rng.uniform(0.0, 1.0) * params.width, rng.uniform(0.1, 0.9) * params.height)
    if rng.random() < params.faded_figure_prob:
        x, y = int(np.clip(centre[0], 0, params.width - 1)), int(np.clip(centre[1], 0, params.height - 1))
        style = style.faded(tuple(float(c) for c in background[y, x]), rng.uniform(0.3, 0.65))
    yaw = (rng.uniform(0, 2 * math.pi) if params.yaw_spread >= 180.0
           else math.radians(rng.uniform(-params.yaw_spread, params.yaw_spread)))
    figure = place_figure(body, style, names, yaw=yaw, roll=_roll(rng, params),
                          height=scale * params.base_height * params.height, centre=centre)
    figure.depth = scale + rng.normal(0, 0.25)          # bigger figures tend to be nearer
    return figure


def _finish(rng: np.random.Generator, image: np.ndarray, params: SynthParams) -> np.ndarray:
    """Camera effects: exposure, low contrast, noise, blur."""
    alpha, beta = rng.uniform(0.8, 1.2), rng.uniform(-25, 25)
    if rng.random() < params.low_contrast_prob:
        alpha = rng.uniform(0.3, 0.55)
        beta += (1 - alpha) * float(np.mean(image))
    image = cv2.convertScaleAbs(image, alpha=alpha, beta=beta)
    if rng.random() < params.noise_prob:
        noise = (rng.standard_normal(image.shape[:2], dtype=np.float32) * rng.uniform(2, 10)).astype(np.int16)
        image = cv2.add(image, cv2.merge([noise] * 3), dtype=cv2.CV_8U)       # grain in brightness, not colour
    if rng.random() < params.blur_prob:
        k = int(rng.choice([3, 5]))
        image = cv2.GaussianBlur(image, (k, k), 0)
    return image


def render_image(rng: np.random.Generator,
                 params: SynthParams = SynthParams()) -> tuple[np.ndarray, list[SynthPerson]]:
    """One scene: background clutter, 1-4 figures drawn far to near with occluders between them, camera effects.

    Returns the BGR image and the ground truth of every figure (filter with `is_annotated`). Visibility comes from
    an id map drawn with the same shapes: a point is visible when the last thing drawn under it is its own part.
    """
    names = get_skeleton(UNION_SKELETON).names
    head_top, upper_neck = names.index("head_top"), names.index("upper_neck")
    angle = rng.uniform(-math.pi * 0.9, -math.pi * 0.1)                  # light from above
    light = np.array([math.cos(angle), math.sin(angle)])
    image = _background(rng, params, light)
    ids = np.zeros(image.shape[:2], dtype=np.uint16)

    count = 1 + int(rng.choice(len(params.people_weights), p=params.people_weights))
    figures = sorted((_sample_figure(rng, params, names, image) for _ in range(count)), key=lambda f: f.depth)
    occluders = [(int(rng.integers(0, count + 1)), _occluder(rng, params))
                 for _ in range(int(rng.choice(len(params.occluder_weights), p=params.occluder_weights)))]

    boxes, areas = [], []
    layer = np.zeros_like(ids)
    for index, figure in enumerate(figures):
        for k, (position, occluder) in enumerate(occluders):
            if position == index:
                occluder.draw(image, ids, OCCLUDER_ID + k, light)
        layer[:] = 0
        draw_figure(image, layer, figure, (index + 1) * PARTS_PER_FIGURE, light)
        silhouette = (layer > 0).astype(np.uint8)
        boxes.append(cv2.boundingRect(silhouette))
        areas.append(float(cv2.countNonZero(silhouette)))
        np.copyto(ids, layer, where=silhouette.astype(bool))
    for k, (position, occluder) in enumerate(occluders):
        if position == count:
            occluder.draw(image, ids, OCCLUDER_ID + k, light)

    persons = []
    for index, figure in enumerate(figures):
        visible = keypoint_visibility(ids, figure, (index + 1) * PARTS_PER_FIGURE)
        keypoints = np.where(visible[:, None] > 0, figure.keypoints, 0.0).astype(np.float32)
        middle = (figure.keypoints[head_top] + figure.keypoints[upper_neck]) / 2
        half = figure.head_length / 2
        persons.append(SynthPerson(
            keypoints=keypoints, visible=visible, box=np.asarray(boxes[index], dtype=np.float32), area=areas[index],
            head_box=np.concatenate([middle - half, middle + half]).astype(np.float32),
            extent=figure.extent.astype(np.float32), keypoints_3d=figure.points_3d.astype(np.float32),
        ))
    return _finish(rng, image, params), persons


def is_annotated(person: SynthPerson) -> bool:
    """The person filter (see MIN_* above): too small, mostly outside the picture or hidden figures get no labels,
    as in COCO and MPII, where such people are left unannotated."""
    names = get_skeleton(UNION_SKELETON).names
    shared = [names.index(n) for n in shared_names()]
    return (person.area >= MIN_AREA
            and int(np.count_nonzero(person.visible)) >= MIN_LABELLED
            and int(np.count_nonzero(person.visible == 2)) >= MIN_VISIBLE
            and int(np.count_nonzero(person.visible[shared])) >= MIN_SHARED)


@cache
def shared_names() -> tuple[str, ...]:
    """The points both datasets label (shoulders to ankles)."""
    mpii = set(get_skeleton("mpii16").names)
    return tuple(n for n in get_skeleton("coco17").names if n in mpii)

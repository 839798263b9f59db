"""Auditing the existing labels: where a confident source strongly disagrees with a labelled point.

A ground-truth point (labelled, v > 0) is listed against a source when the source's own point has at least
`audit_confidence` and their per-point OKS similarity (COCO's exp(-d^2 / (2 s^2 k^2)), the point's sigma, the
person's area) is below `audit_oks`. A left/right pair whose labels both agree with the source once swapped
(similarity of at least `SWAP_AGREEMENT` each way) while one of them does not as labelled is listed once, as a
left/right swap. The list is sorted by disagreement (1 - similarity), worst first; the worst are drawn.
"""
from __future__ import annotations

from collections.abc import Sequence
import re
from pathlib import Path

import cv2
import numpy as np

from unionpose.apps.annotate.completed import Person
from unionpose.apps.labelling import write_atomically
from unionpose.apps.labelling.fusion import point_similarity
from unionpose.core.constants import BOX_PADDING
from unionpose.core.draw import draw_pose
from unionpose.core.errors import DataError
from unionpose.core.images import load_image
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.skeletons import Skeleton

SWAP_AGREEMENT = 0.5
DISAGREEMENT, SWAP = "disagreement", "left_right_swap"
DRAWING_SIZE = (256, 256)           # (w, h) of a drawn case
LABEL_COLOUR, SOURCE_COLOUR = (60, 200, 60), (40, 40, 230)     # BGR: the label green, the source red


def audit_people(people: Sequence[Person], skeleton: Skeleton, names: Sequence[str], image_names: dict[int, str],
                 min_confidence: float, max_similarity: float) -> list[dict]:
    """Every strong disagreement between a confident source and a labelled point of `people`, worst first."""
    found = []
    pairs = [(a, b) for a, b in skeleton.flip_pairs]
    sigmas = np.asarray(skeleton.sigmas, dtype=np.float64)
    for person in people:
        if person.predictions is None:
            continue
        instance = person.instance
        labelled = instance.annotated & (instance.visible > 0)
        truth = instance.keypoints.astype(np.float64)
        area = np.array([person.area])
        for s, name in enumerate(names):
            points, confidence = person.predictions[0][s], person.predictions[1][s]
            confident = np.isfinite(points).all(axis=1) & (confidence >= min_confidence)
            with np.errstate(invalid="ignore"):
                similarity = point_similarity(truth[None], points[None], sigmas, area)[0]
            flagged = labelled & confident & (similarity < max_similarity)
            swapped: set[int] = set()
            for a, b in pairs:
                if not (labelled[[a, b]].all() and confident[[a, b]].all() and flagged[[a, b]].any()):
                    continue
                crossed = point_similarity(truth[None, [a, b]], points[None, [b, a]], sigmas[[a, b]], area)[0]
                if (crossed >= SWAP_AGREEMENT).all():
                    swapped |= {a, b}
                    worst = a if similarity[a] <= similarity[b] else b
                    found.append(_case(instance, image_names, f"{skeleton.names[a]}<->{skeleton.names[b]}", worst,
                                       name, SWAP, float(similarity[worst]), points, confidence, (a, b)))
            for k in np.flatnonzero(flagged):
                if k not in swapped:
                    found.append(_case(instance, image_names, skeleton.names[k], int(k), name, DISAGREEMENT,
                                       float(similarity[k]), points, confidence, (int(k),)))
    found.sort(key=lambda case: (-case["disagreement"], -case["source_confidence"], case["annotation_id"]))
    return found


def _case(instance, image_names: dict[int, str], keypoint: str, k: int, source: str, kind: str, similarity: float,
          points: np.ndarray, confidence: np.ndarray, indices: tuple[int, ...]) -> dict:
    return {
        "dataset": instance.dataset, "image": image_names.get(instance.image_id, instance.image),
        "annotation_id": instance.ann_id, "keypoint": keypoint, "kind": kind, "source": source,
        "oks": round(similarity, 4), "disagreement": round(1.0 - similarity, 4),
        "label": [[round(float(v), 2) for v in instance.keypoints[i]] + [int(instance.visible[i])] for i in indices],
        "source_point": [[round(float(v), 2) for v in points[i]] for i in indices],
        "source_confidence": round(float(confidence[k]), 4),
    }


def draw_cases(cases: Sequence[dict], people: Sequence[Person], skeleton: Skeleton, folder: Path,
               count: int) -> list[Path]:
    """The `count` worst cases, one picture each: the person's crop with its labels drawn as a skeleton, the accused
    label(s) ringed green, the source's point(s) red, joined by a line. Cases whose image cannot be read are skipped."""
    by_ann = {person.instance.ann_id: person for person in people}
    written = []
    for rank, case in enumerate(cases[:count], start=1):
        instance = by_ann[case["annotation_id"]].instance
        try:
            image = load_image(instance.image, instance.image_size)
        except DataError:
            continue
        width, height = DRAWING_SIZE
        center, scale = box_to_center_scale(instance.box, width / height, BOX_PADDING)
        matrix = get_warp_matrix(center, scale, 0.0, DRAWING_SIZE)
        crop = warp_image(image, matrix, DRAWING_SIZE)
        shown = instance.annotated & (instance.visible > 0)
        labels = np.where(shown[:, None], transform_points(instance.keypoints, matrix), np.nan).astype(np.float32)
        draw_pose(crop, labels, skeleton, radius=2, thickness=1)
        for label, found in zip(case["label"], case["source_point"]):
            a = tuple(int(round(v)) for v in transform_points(np.array([label[:2]]), matrix)[0])
            b = tuple(int(round(v)) for v in transform_points(np.array([found]), matrix)[0])
            cv2.line(crop, a, b, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.circle(crop, a, 6, LABEL_COLOUR, 2, cv2.LINE_AA)
            cv2.circle(crop, b, 6, SOURCE_COLOUR, 2, cv2.LINE_AA)
        text = f"{case['keypoint']} vs {case['source']} oks {case['oks']:.2f}"
        cv2.putText(crop, text, (4, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        safe = re.sub(r"[^A-Za-z0-9_]+", "_", case["keypoint"])
        path = folder / f"{rank:03d}_ann{case['annotation_id']}_{safe}.jpg"
        ok, encoded = cv2.imencode(".jpg", crop)
        if ok:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(path, encoded.tobytes())
            written.append(path)
    return written

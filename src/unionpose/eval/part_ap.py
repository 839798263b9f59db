"""COCO AP on a part of a skeleton: only that part's points and sigmas, as COCO-WholeBody scores body, feet, face and
hands separately. A person with none of the part's points labelled is ignored (pycocotools' rule for people without
keypoints); the object scale (`area`) stays the whole person's."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from unionpose.eval.coco_ap import coco_keypoint_ap
from unionpose.skeletons import Skeleton


def part_ap(truth: Mapping[str, Any], results: Sequence[Mapping[str, Any]], skeleton: Skeleton,
            names: Sequence[str]) -> dict:
    """pycocotools' numbers (`coco_keypoint_ap`) for the points `names` of `skeleton`, from ground truth and results
    in that skeleton. Neither argument is modified."""
    unknown = [name for name in names if not skeleton.has(name)]
    if unknown or not names:
        raise ValueError(f"part_ap: {unknown or 'no points'} not in skeleton {skeleton.name!r}")
    index = [skeleton.index(name) for name in names]

    def keep(flat: Sequence[float]) -> list[float]:
        return np.asarray(flat, dtype=float).reshape(-1, 3)[index].reshape(-1).tolist()

    annotations = []
    for annotation in truth["annotations"]:
        points = keep(annotation["keypoints"])
        labelled = int(np.sum(np.asarray(points[2::3]) > 0))
        annotations.append({**annotation, "keypoints": points, "num_keypoints": labelled})
    subset = {**truth, "annotations": annotations}
    kept = [{**result, "keypoints": keep(result["keypoints"])} for result in results]
    return coco_keypoint_ap(subset, kept, [skeleton.sigmas[k] for k in index], names=list(names))

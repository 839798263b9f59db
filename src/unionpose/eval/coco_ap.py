"""COCO keypoint AP/AR with a skeleton's own sigmas (pycocotools' numbers, computed by faster-coco-eval), and COCO
ground truth in any skeleton."""
from __future__ import annotations

import contextlib
import copy
import gc
import json
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster

from unionpose.core.values import are_plain_numbers, is_finite_number
from unionpose.data.readers.image_records import unique_image_records
from unionpose.eval.coco_oks import GroupKey, OksGroup, keypoint_oks_groups
from unionpose.eval.results import (
    map_results, read_results, results_keypoint_count, skeleton_for_count, validate_results,
)
from unionpose.skeletons import Skeleton, get_skeleton, keypoint_mapping

# pycocotools' `stats` for iouType 'keypoints', in its order.
STAT_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
KEYPOINT_MAX_DETS = 20  # pycocotools' default for keypoints; people per image beyond it are not scored
# pycocotools' area ranges for keypoints (all, medium, large), in squared pixels of the object scale.
KEYPOINT_AREA_RANGES = ([0.0, 1e5 ** 2], [32.0 ** 2, 96.0 ** 2], [96.0 ** 2, 1e5 ** 2])
KEYPOINT_AREA_LABELS = ("all", "medium", "large")

_ANNOTATION_FIELDS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "iscrowd")


class GroundTruthError(ValueError):
    """A COCO ground-truth file is malformed; the message names the file, the annotation and the field."""


def coco_keypoint_ap(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], sigmas: Sequence[float], *,
                     use_area: bool = True, names: Sequence[str] | None = None,
                     gt_name: str = "<ground truth>", results_name: str = "<results>") -> dict:
    """Score keypoint results against a COCO ground-truth dict as pycocotools does (OKS with the given `sigmas`).

    Returns the ten pycocotools numbers (fractions; -1 where a range has no people), plus
    `per_instance` (each labelled person's best OKS over the predictions in its image and which result gave it) and
    `per_keypoint` (the mean keypoint similarity exp(-d^2 / (2 area (2 sigma)^2)), the OKS term, of each labelled
    point against that best prediction, 0 for a person without a prediction: a per-keypoint proxy, not an AP).
    `use_area=False` uses the box area (w*h) as the object scale instead of the annotation's segment area, for
    datasets whose `area` is missing or meaningless. Neither argument is modified. Bad input raises an error naming
    `gt_name` / `results_name`, the record and the field.
    An empty result list gives every number 0 with `empty` set, instead of pycocotools' crash.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    num_keypoints = len(sigmas)
    names = list(names) if names is not None else [f"keypoint_{k}" for k in range(num_keypoints)]
    if len(names) != num_keypoints:
        raise ValueError(f"coco_keypoint_ap: {len(names)} names for {num_keypoints} sigmas")
    with _cyclic_gc_paused():
        return _score(gt, results, sigmas, use_area, names, gt_name, results_name)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Scoring builds hundreds of thousands of dicts and lists (records, indexes, details) that live until it
    returns. Python's cyclic collector, triggered again and again by those allocations, walks the whole growing heap
    each time it reaches its older generations: about a third of the time on 20,000 people, for nothing to collect.
    Paused while scoring and restored after (a caller that disabled it keeps it disabled); anything cyclic left
    behind is collected at its next run."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _score(gt: Mapping[str, Any], results: Sequence[Mapping[str, Any]], sigmas: np.ndarray, use_area: bool,
           names: list[str], gt_name: str, results_name: str) -> dict:
    """`coco_keypoint_ap` once its arguments are checked."""
    num_keypoints = len(sigmas)
    gt = _checked_ground_truth(gt, num_keypoints, use_area, gt_name)
    results = validate_results(results, num_keypoints, (image["id"] for image in gt["images"]),
                               (c["id"] for c in gt["categories"]), source=results_name)
    truth_points = _points(gt["annotations"], num_keypoints)
    result_points = _points(results, num_keypoints)
    if results:
        oks = keypoint_oks_groups(gt["annotations"], truth_points, results, result_points, sigmas, KEYPOINT_MAX_DETS)
        evaluator = _run_cocoeval(gt, results, result_points, sigmas, oks)
        stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats)}
        groups = _scored_groups(gt, oks)
    else:
        stats = {name: 0.0 for name in STAT_NAMES}
        groups = _groups_without_predictions(gt)
    per_instance, per_keypoint = _match_details(gt["annotations"], truth_points, result_points, groups, sigmas, names)
    return {
        "metric": "coco_ap",
        **stats,
        "empty": not results,
        "num_images": len(gt["images"]),
        "num_people": sum(1 for item in per_instance if item["oks"] is not None),
        "num_results": len(results),
        "object_scale": "annotation area" if use_area else "box area",
        "sigmas": sigmas.tolist(),
        "per_keypoint": per_keypoint,
        "per_instance": per_instance,
    }


class _PrecomputedOksEval(COCOeval_faster):
    """faster-coco-eval's keypoint evaluation reading OKS matrices computed beforehand for all images at once
    (`keypoint_oks_groups`, the same values as its own per-image `computeOks`); matching and accumulation are its
    own, in C++."""

    def __init__(self, *args: Any, oks: Mapping[GroupKey, OksGroup], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.precomputed_oks = oks

    def computeOks(self, imgId: int, catId: int) -> np.ndarray | list:  # noqa: N802 (the evaluator's hook)
        group = self.precomputed_oks.get((imgId, catId))
        return group.oks if group is not None and len(group.result_rows) else []


def _points(records: Sequence[Mapping[str, Any]], num_keypoints: int) -> np.ndarray:
    """The records' keypoints as one (N, K, 3) float64 array, converted once for every use."""
    return np.asarray([r["keypoints"] for r in records], dtype=np.float64).reshape(len(records), num_keypoints, 3)


def _run_cocoeval(gt: dict, results: list[dict], result_points: np.ndarray, sigmas: np.ndarray,
                  oks: Mapping[GroupKey, OksGroup]) -> COCOeval_faster:
    """faster-coco-eval, set up as pycocotools' keypoint evaluation: every image and category of the ground truth,
    maxDets 20, the keypoint area ranges, pycocotools' OKS. It gives pycocotools' ten numbers (its matching and
    accumulation ported to C++) in a fraction of the time."""
    coco_gt = COCO()
    coco_gt.dataset = gt
    with warnings.catch_warnings():
        # pycocotools treats a person with annotation id 0 as never matched (ids mark matches, 0 none); it says
        # nothing, and we keep its numbers, so faster-coco-eval's warning about it is not passed on.
        warnings.filterwarnings("ignore", message="Found annotation id 0", category=UserWarning)
        coco_gt.createIndex()
    evaluator = _PrecomputedOksEval(coco_gt, _results_index(coco_gt, results, result_points), iouType="keypoints",
                                    kpt_oks_sigmas=sigmas, print_function=_quiet, oks=oks)
    params = evaluator.params
    params.imgIds = sorted(coco_gt.getImgIds())
    params.catIds = sorted(coco_gt.getCatIds())   # faster-coco-eval's default: only categories with annotations
    params.maxDets = [KEYPOINT_MAX_DETS]
    params.areaRng = [list(bounds) for bounds in KEYPOINT_AREA_RANGES]
    params.areaRngLbl = list(KEYPOINT_AREA_LABELS)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator


def _results_index(coco_gt: COCO, results: list[dict], result_points: np.ndarray) -> COCO:
    """The results as pycocotools' `loadRes` makes them for keypoints, for all results at once: ids numbered from 1
    in list order, each result's box and area the extent of its points (an unmatched result outside an area range
    is ignored by it). Writes into `results`, which are our own clean copies."""
    points = result_points[..., :2]
    low, high = points.min(axis=1), points.max(axis=1)
    size = high - low
    areas = size[:, 0] * size[:, 1]
    boxes = np.concatenate([low, size], axis=1).tolist()
    for number, (record, box, area) in enumerate(zip(results, boxes, areas.tolist()), start=1):
        record.update(id=number, area=area, bbox=box)
    coco_dt = COCO()
    coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "annotations": results,
                       "categories": copy.deepcopy(coco_gt.dataset["categories"])}
    coco_dt.createIndex()
    return coco_dt


def _quiet(*args: Any, **kwargs: Any) -> None:
    """faster-coco-eval's print function: its progress lines and summary table are not ours to print."""


# One image's (and category's) people and results for the per-person details: rows of the annotations, rows of the
# results in OKS order, and the OKS matrix (results x people).
DetailGroup = tuple[list[int], list[int], np.ndarray]


def _scored_groups(gt: dict, oks: Mapping[GroupKey, OksGroup]) -> list[DetailGroup]:
    """The groups of the evaluation, in pycocotools' order (image, then category, by id; only the listed
    categories)."""
    categories = {category["id"] for category in gt["categories"]}
    return [(group.truth_rows, group.result_rows, group.oks) for key, group in sorted(oks.items())
            if key[1] in categories]


def _groups_without_predictions(gt: dict) -> list[DetailGroup]:
    by_image: dict[Any, list[int]] = {}
    for row, annotation in enumerate(gt["annotations"]):
        by_image.setdefault(annotation["image_id"], []).append(row)
    return [(rows, [], np.zeros((0, len(rows)))) for rows in by_image.values()]


def _match_details(annotations: list[dict], truth_points: np.ndarray, result_points: np.ndarray,
                   groups: list[DetailGroup], sigmas: np.ndarray, names: list[str]) -> tuple[list[dict], dict]:
    """Each scored person's best OKS and prediction; then the keypoint similarities of those pairs, all at once."""
    per_instance = []
    truth_rows, predicted_rows, areas = [], [], []  # one per scored person; -1: no prediction in its image
    for people, candidates, oks in groups:
        best = oks.argmax(axis=0) if candidates else None
        for j, row in enumerate(people):
            g = annotations[row]
            record = {"image_id": g["image_id"], "ann_id": g["id"], "oks": None, "result_index": None}
            per_instance.append(record)
            if g.get("iscrowd", 0) or g["num_keypoints"] == 0:
                continue  # pycocotools ignores these people
            truth_rows.append(row)
            areas.append(g["area"])
            if best is not None:
                record["oks"] = float(oks[best[j], j])
                record["result_index"] = candidates[best[j]]
                predicted_rows.append(candidates[best[j]])
            else:
                record["oks"] = 0.0
                predicted_rows.append(-1)
    truth = truth_points[truth_rows]
    has_prediction = np.asarray(predicted_rows, dtype=np.int64) >= 0
    predicted = np.zeros_like(truth)
    predicted[has_prediction] = result_points[np.asarray(predicted_rows, dtype=np.int64)[has_prediction]]
    squared = ((predicted[..., :2] - truth[..., :2]) ** 2).sum(axis=-1)
    scale = np.asarray(areas, dtype=np.float64)[:, None] + np.spacing(1)
    similarity = np.exp(-squared / (2.0 * sigmas) ** 2 / scale / 2) * has_prediction[:, None]
    annotated = truth[..., 2] > 0
    labelled = annotated.sum(axis=0)
    total = np.where(annotated, similarity, 0.0).sum(axis=0)
    mean = [float(t / n) if n else None for t, n in zip(total, labelled)]
    return per_instance, {"name": names, "labelled": labelled.tolist(), "mean KS": mean}


def _checked_ground_truth(gt: Mapping[str, Any], num_keypoints: int, use_area: bool, source: str) -> dict:
    """Validate a COCO keypoint GT dict; return a copy the evaluator may write into (it adds 'ignore' fields),
    with repeated image records read as the dataset reader reads them (identical copies are one image)."""
    validate_ground_truth(gt, source, num_keypoints)
    annotations = []
    for i, annotation in enumerate(gt["annotations"]):
        annotation = dict(annotation)
        if not use_area:
            annotation["area"] = float(annotation["bbox"][2] * annotation["bbox"][3])
        elif "area" not in annotation:
            raise GroundTruthError(f"{source}: annotation {i} (id {annotation['id']}): missing field 'area', the OKS "
                                   f"scale (score with the box area instead: use_area=False, --box-area)")
        annotations.append(annotation)
    return {**gt, "images": unique_image_records(source, gt["images"]), "annotations": annotations}


def validate_ground_truth(gt: Any, source: str, num_keypoints: int | None = None) -> int:
    """Check a COCO keypoint GT dict for what the evaluation needs; returns the keypoint count per person."""
    if not isinstance(gt, Mapping):
        raise GroundTruthError(f"{source}: a COCO ground truth is an object with 'images', 'annotations' and "
                               f"'categories', got {type(gt).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise GroundTruthError(f"{source}: missing list field '{key}'")
    if not gt["categories"]:
        raise GroundTruthError(f"{source}: field 'categories' is empty")
    image_ids = set()
    for i, image in enumerate(gt["images"]):
        if not isinstance(image, Mapping) or "id" not in image:
            raise GroundTruthError(f"{source}: images[{i}]: missing field 'id'")
        image_ids.add(image["id"])
    annotation_ids = set()
    keypoint_rows = []
    for i, annotation in enumerate(gt["annotations"]):
        where = f"{source}: annotation {i}"
        if not isinstance(annotation, Mapping):
            raise GroundTruthError(f"{where}: must be an object")
        where += f" (id {annotation.get('id')})"
        for key in _ANNOTATION_FIELDS:
            if key not in annotation:
                raise GroundTruthError(f"{where}: missing field '{key}'")
        if annotation["id"] in annotation_ids:
            raise GroundTruthError(f"{where}: field 'id' repeats an earlier annotation's id")
        annotation_ids.add(annotation["id"])
        if annotation["image_id"] not in image_ids:
            raise GroundTruthError(f"{where}: field 'image_id' = {annotation['image_id']} is not in 'images'")
        values = annotation["keypoints"]
        if not isinstance(values, list) or len(values) % 3:
            raise GroundTruthError(f"{where}: field 'keypoints' must be a flat list [x, y, v] * K")
        if num_keypoints is None:
            num_keypoints = len(values) // 3
        if len(values) != 3 * num_keypoints:
            raise GroundTruthError(f"{where}: field 'keypoints' has {len(values) // 3} keypoints, expected "
                                   f"{num_keypoints}")
        if not are_plain_numbers(values) and not all(is_finite_number(v) for v in values):
            raise GroundTruthError(f"{where}: field 'keypoints' must hold finite numbers")
        keypoint_rows.append(values)  # checked for NaN and infinities all at once below
        box = annotation["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(is_finite_number(v) for v in box)):
            raise GroundTruthError(f"{where}: field 'bbox' must be [x, y, w, h] of finite numbers, got {box!r}")
        if "area" in annotation and not is_finite_number(annotation["area"]):
            raise GroundTruthError(f"{where}: field 'area' must be a finite number, got {annotation['area']!r}")
    if num_keypoints is None:
        raise GroundTruthError(f"{source}: no annotations, so no keypoint count")
    finite = np.isfinite(np.asarray(keypoint_rows, dtype=np.float64)).all(axis=1) if keypoint_rows else []
    for i, ok in enumerate(finite):
        if not ok:
            raise GroundTruthError(f"{source}: annotation {i} (id {gt['annotations'][i]['id']}): field 'keypoints' "
                                   f"must hold finite numbers")
    return num_keypoints


def read_ground_truth(path: str | Path) -> dict:
    """Read and validate a COCO-format keypoint ground-truth file (COCO, WholeBody: its 'keypoints' hold the body)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    try:
        gt = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GroundTruthError(f"{path}: not valid JSON: {error}") from None
    validate_ground_truth(gt, str(path))
    return gt


def score_results_file(gt_path: str | Path, results_path: str | Path, skeleton: Skeleton | str | None = None,
                       results_skeleton: Skeleton | str | None = None, *, use_area: bool = True) -> dict:
    """Score a COCO results file against a COCO-format GT file with `coco_keypoint_ap`.

    `skeleton` is the GT's (default: decided by its keypoint count, 17 -> coco17; a COCO-WholeBody file's
    'keypoints' hold the body 17). Results with another keypoint count are mapped onto it by name from
    `results_skeleton` (default: decided by their count, e.g. 133 whole-body points -> the body 17).
    """
    gt = read_ground_truth(gt_path)
    num_keypoints = len(gt["annotations"][0]["keypoints"]) // 3
    skeleton = get_skeleton(skeleton) if skeleton else skeleton_for_count(num_keypoints, str(gt_path))
    if skeleton.num_keypoints != num_keypoints:
        raise GroundTruthError(f"{gt_path}: annotations have {num_keypoints} keypoints, skeleton {skeleton.name!r} "
                               f"has {skeleton.num_keypoints}")
    results = read_results(results_path)
    count = results_keypoint_count(results)
    if count is not None and count != num_keypoints:
        source = get_skeleton(results_skeleton) if results_skeleton else skeleton_for_count(count, str(results_path))
        results = map_results(results, source, skeleton, where=str(results_path))
    result = coco_keypoint_ap(gt, results, skeleton.sigmas, use_area=use_area, names=skeleton.names,
                              gt_name=str(gt_path), results_name=str(results_path))
    return {**result, "skeleton": skeleton.name, "ground_truth": str(gt_path), "results_file": str(results_path)}


def build_ground_truth(image_ids: Sequence[int], boxes: np.ndarray, keypoints: np.ndarray, visible: np.ndarray,
                       areas: np.ndarray | None, skeleton: Skeleton, *,
                       ann_ids: Sequence[int] | None = None) -> dict:
    """A COCO GT dict in `skeleton` from arrays: boxes (N, 4) xywh, keypoints (N, K, 2), visible (N, K), areas (N,).

    Several people may share an image id. `areas=None` takes the box area (w*h); COCO's own `area` is the segment
    area, about half the box, so give it when known: OKS depends on it.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    visible = np.asarray(visible)
    n, k = len(image_ids), skeleton.num_keypoints
    if boxes.shape != (n, 4) or keypoints.shape != (n, k, 2) or visible.shape != (n, k):
        raise ValueError(f"build_ground_truth: {n} image ids, boxes {boxes.shape}, keypoints {keypoints.shape}, "
                         f"visible {visible.shape}; expected (N, 4), (N, {k}, 2), (N, {k}) for {skeleton.name}")
    areas = boxes[:, 2] * boxes[:, 3] if areas is None else np.asarray(areas, dtype=np.float64)
    ann_ids = list(range(1, n + 1)) if ann_ids is None else list(ann_ids)
    if areas.shape != (n,) or len(ann_ids) != n:
        raise ValueError(f"build_ground_truth: areas {areas.shape} and {len(ann_ids)} annotation ids for {n} people")
    labelled = visible > 0
    flat = np.concatenate([np.where(labelled[..., None], keypoints, 0.0), visible[..., None]], axis=-1).reshape(n, -1)
    annotations = [
        {"id": int(ann_id), "image_id": int(image_id), "category_id": 1, "iscrowd": 0,
         "bbox": box.tolist(), "area": float(area), "num_keypoints": int(count), "keypoints": row.tolist()}
        for ann_id, image_id, box, area, count, row in zip(ann_ids, image_ids, boxes, areas, labelled.sum(1), flat)
    ]
    images = [{"id": int(i)} for i in dict.fromkeys(int(i) for i in image_ids)]
    return {"images": images, "annotations": annotations, "categories": [_person_category(skeleton)]}


def ground_truth_in_skeleton(gt: Mapping[str, Any], gt_skeleton: Skeleton, target: Skeleton,
                             derived: Mapping[str, Sequence[str]] | None = None, *, truncate: bool = False,
                             source: str = "<ground truth>") -> dict:
    """Re-express a COCO GT dict from `gt_skeleton` in `target`, matched by name; points it lacks get v=0.

    `derived` declares target points computed as the mean of GT points (e.g. the paper's Halpe check:
    `{"thorax": ("left_shoulder", "right_shoulder")}`); such a point is labelled only when all its sources are,
    with the lowest of their visibilities. `truncate=True` reads the leading `gt_skeleton` points of longer
    records (Halpe-136's first 26 are Halpe-26). Boxes, areas and ids are kept; `num_keypoints` is recounted.
    """
    num_keypoints = validate_ground_truth(gt, source)
    k = gt_skeleton.num_keypoints
    if num_keypoints != k and not (truncate and num_keypoints > k):
        hint = " (pass truncate=True to read its leading points)" if num_keypoints > k else ""
        raise GroundTruthError(f"{source}: annotations have {num_keypoints} keypoints, skeleton {gt_skeleton.name!r} "
                               f"has {k}{hint}")
    mapping = keypoint_mapping(gt_skeleton, target, derived=dict(derived) if derived else None)
    annotations = []
    for annotation in gt["annotations"]:
        points = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(-1, 3)[:k]
        labelled = points[:, 2] > 0
        xy = mapping.apply(points[:, :2], axis=0)
        v = mapping.apply(np.where(labelled, points[:, 2], 0.0), axis=0, reduce="min")
        xy[v <= 0] = 0.0
        flat = np.concatenate([xy, v[:, None]], axis=1).reshape(-1)
        annotations.append({**annotation, "keypoints": flat.tolist(), "num_keypoints": int((v > 0).sum())})
    categories = [{**c, "keypoints": list(target.names), "skeleton": _one_based_links(target)}
                  for c in gt["categories"]]
    return {**gt, "annotations": annotations, "categories": categories}


def _person_category(skeleton: Skeleton) -> dict:
    return {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(skeleton.names),
            "skeleton": _one_based_links(skeleton)}


def _one_based_links(skeleton: Skeleton) -> list[list[int]]:
    return [[a + 1, b + 1] for a, b in skeleton.links]  # COCO category skeletons count keypoints from 1


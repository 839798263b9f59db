"""A prediction as the API answers it: the people in JSON, and on request the files `unionpose predict` writes.

Numbers are rounded as `unionpose predict` rounds them in its JSONL (keypoints to 0.001 px, scores to 1e-5), and
the COCO and OpenPose documents come from the same functions as its writers, so the API and the command agree.
"""
from __future__ import annotations

import numpy as np

from unionpose.infer.poses import Poses
from unionpose.infer.sources import Frame
from unionpose.infer.writers import coco_records, image_id, openpose_document
from unionpose.skeletons import Skeleton

DOCUMENTS = ("coco", "openpose")


def parse_formats(text: str) -> set[str]:
    """'coco,openpose' -> the documents to add; unknown names are a ValueError naming the known ones."""
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(wanted - set(DOCUMENTS))
    if unknown:
        raise ValueError(f"formats: unknown {', '.join(unknown)}; known: {', '.join(DOCUMENTS)}")
    return wanted


def prediction(model: str, frame: Frame, poses: Poses, skeleton: Skeleton, documents: set[str]) -> dict:
    """The body of a POST /v1/predict answer (see `schemas.Prediction`)."""
    keypoints = np.round(poses.keypoints.astype(np.float64), 3)
    scores = np.round(poses.keypoint_scores.astype(np.float64), 5)
    people = [{"box": [round(float(v), 2) for v in poses.boxes[n]],
               "box_score": round(float(poses.box_scores[n]), 5), "score": round(float(poses.scores[n]), 5),
               "keypoints": np.concatenate([keypoints[n], scores[n][:, None]], axis=1).tolist()}
              for n in range(len(poses))]
    height, width = frame.image.shape[:2]
    answer = {"model": model, "image": {"name": frame.name, "width": width, "height": height},
              "keypoint_names": list(skeleton.names), "people": people}
    if "coco" in documents:
        answer["coco"] = coco_records(image_id(frame), poses)
    if "openpose" in documents:
        answer["openpose"] = openpose_document(poses, skeleton)
    return answer

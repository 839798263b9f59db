"""Frame-to-frame identities: greedy matching of people to live tracks by OKS or box IoU, giving stable track ids."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unionpose.infer.oks import box_iou_matrix, oks_matrix
from unionpose.infer.scoring import KEYPOINT_SCORE_THRESHOLD


@dataclass
class _Track:
    box: np.ndarray             # (4,) x, y, w, h
    keypoints: np.ndarray       # (K, 2)
    keypoint_scores: np.ndarray  # (K,)
    last_frame: int


class PoseTracker:
    """Gives each person a `track_id` that persists while the person keeps matching its last pose.

    Each frame, the pairs (new person, live track) are taken greedily from the most similar down, while the
    similarity (OKS over the keypoints confident in both, else box IoU; or box IoU alone) is at least `threshold`; unmatched people start new tracks; a track unseen for more than `max_age`
    frames is forgotten (its id is never reused).
    """

    def __init__(self, sigmas: np.ndarray, metric: str = "oks", threshold: float = 0.3, max_age: int = 30,
                 keypoint_threshold: float = KEYPOINT_SCORE_THRESHOLD) -> None:
        if metric not in ("oks", "iou"):
            raise ValueError(f"tracking metric must be 'oks' or 'iou', got {metric!r}")
        self.sigmas = np.asarray(sigmas, dtype=np.float64)
        self.metric = metric
        self.threshold = threshold
        self.max_age = max_age
        self.keypoint_threshold = keypoint_threshold
        self.tracks: dict[int, _Track] = {}
        self.frame = -1
        self._next_id = 0

    def update(self, boxes: np.ndarray, keypoints: np.ndarray, keypoint_scores: np.ndarray) -> np.ndarray:
        """People of the next frame (boxes (N, 4), keypoints (N, K, 2), keypoint scores (N, K)) -> track ids (N,)."""
        self.frame += 1
        self.tracks = {i: t for i, t in self.tracks.items() if self.frame - t.last_frame <= self.max_age}
        ids = np.full(len(boxes), -1, dtype=np.int64)
        track_ids = list(self.tracks)
        if len(boxes) and track_ids:
            similarity = self._similarity(boxes, keypoints, keypoint_scores, [self.tracks[i] for i in track_ids])
            taken = set()
            for flat in np.argsort(-similarity, axis=None, kind="stable"):
                person, track = np.unravel_index(flat, similarity.shape)
                if similarity[person, track] < self.threshold:
                    break
                if ids[person] < 0 and track not in taken:
                    ids[person] = track_ids[track]
                    taken.add(track)
        for person in range(len(boxes)):
            if ids[person] < 0:
                ids[person] = self._next_id
                self._next_id += 1
            self.tracks[int(ids[person])] = _Track(np.asarray(boxes[person], np.float64), keypoints[person],
                                                   keypoint_scores[person], self.frame)
        return ids

    def _similarity(self, boxes: np.ndarray, keypoints: np.ndarray, keypoint_scores: np.ndarray,
                    tracks: list[_Track]) -> np.ndarray:
        track_boxes = np.stack([t.box for t in tracks])
        if self.metric == "iou":
            return box_iou_matrix(boxes, track_boxes)
        track_scores = np.stack([t.keypoint_scores for t in tracks])
        areas = np.asarray(boxes)[:, 2] * np.asarray(boxes)[:, 3]
        oks = oks_matrix(keypoints, np.stack([t.keypoints for t in tracks]), areas,
                         track_boxes[:, 2] * track_boxes[:, 3], self.sigmas, keypoint_scores, track_scores,
                         self.keypoint_threshold)
        # a pair without a keypoint confident in both has no OKS: their boxes decide
        comparable = ((np.asarray(keypoint_scores) > self.keypoint_threshold)[:, None]
                      & (track_scores > self.keypoint_threshold)[None]).any(axis=-1)
        return np.where(comparable, oks, box_iou_matrix(boxes, track_boxes))

"""MediaPipe Holistic landmarks -> COCO-WholeBody-133 (docs/conventions.md): index tables, confidence rule, numpy.

This module never imports MediaPipe, so the core environment can check the mapping. Holistic gives

- pose (33 BlazePose landmarks, each with a 0-1 `visibility`): body 17 in COCO order, the heels, and `foot_index`
  ("the front of the foot", about a quarter foot length behind the big-toe tip) as an *approximate* big toe;
  the small toes have no counterpart, and pose points 17-22 (coarse hand points) map to nothing;
- left and right hand (21 each, the same joints and order as a WholeBody hand). Holistic's `left_hand_landmarks` is
  the person's own left hand (it crops hands from the pose wrists), unlike the `Hands` solution, whose labels assume
  a mirrored selfie image;
- face mesh (468 or 478): 68 of its points in 300-W order give the WholeBody face.

Hands and face carry no score of their own. Rule: a hand point's confidence is the pose visibility of that side's
wrist, a face point's the pose visibility of the nose (the part was found, and the pose says whether its anchor is
in view). Points the expert cannot give stay NaN with confidence 0: they are not annotated, never zeros.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_WHOLEBODY = 133
NUM_POSE = 33
NUM_HAND = 21
NUM_FACE_MESH = 468

# COCO-17 in COCO order, read from the 33 pose landmarks.
BODY17_FROM_POSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
# WholeBody feet 17-22 are left_big_toe, left_small_toe, left_heel, right_big_toe, right_small_toe, right_heel.
FEET_FROM_POSE = {17: 31, 19: 29, 20: 32, 22: 30}     # big toe <- foot_index (approximate), heel <- heel
SMALL_TOES = (18, 21)                                  # no MediaPipe counterpart

# 300-W's 68 face points as face-mesh vertex indices: jaw 17, brows 10, nose 9, eyes 12, outer lips 12, inner lips 8.
FACE68_FROM_MESH = (
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)
FACE_START = 23
LEFT_HAND_START = 91
RIGHT_HAND_START = 112

POSE_NOSE = 0
POSE_LEFT_WRIST = 15
POSE_RIGHT_WRIST = 16


def pose_to_wholebody_index() -> np.ndarray:
    """(133,) int64: the pose landmark each WholeBody point comes from, -1 where the pose gives none."""
    index = np.full(NUM_WHOLEBODY, -1, dtype=np.int64)
    index[:17] = BODY17_FROM_POSE
    for target, source in FEET_FROM_POSE.items():
        index[target] = source
    return index


def expert_coverage() -> np.ndarray:
    """(133,) bool: the WholeBody points Holistic can give at all (everything but the two small toes)."""
    covered = np.ones(NUM_WHOLEBODY, dtype=bool)
    covered[list(SMALL_TOES)] = False
    return covered


@dataclass
class HolisticLandmarks:
    """One Holistic result as arrays, in any one 2-D frame (normalised crop, crop pixels or image pixels).

    A part Holistic did not find is None.
    """

    pose: np.ndarray | None = None              # (33, 2)
    pose_visibility: np.ndarray | None = None   # (33,) in [0, 1]
    left_hand: np.ndarray | None = None         # (21, 2), the person's own left
    right_hand: np.ndarray | None = None        # (21, 2)
    face: np.ndarray | None = None              # (468, 2) or (478, 2) with iris refinement

    def __post_init__(self) -> None:
        expected = {"pose": (NUM_POSE, 2), "pose_visibility": (NUM_POSE,), "left_hand": (NUM_HAND, 2),
                    "right_hand": (NUM_HAND, 2)}
        for field, shape in expected.items():
            value = getattr(self, field)
            if value is not None and np.shape(value) != shape:
                raise ValueError(f"HolisticLandmarks.{field}: expected shape {shape}, got {np.shape(value)}")
        if self.face is not None and (np.ndim(self.face) != 2 or np.shape(self.face)[0] < NUM_FACE_MESH
                                      or np.shape(self.face)[1] != 2):
            raise ValueError(f"HolisticLandmarks.face: expected ({NUM_FACE_MESH}, 2) or (478, 2), "
                             f"got {np.shape(self.face)}")
        if (self.pose is None) != (self.pose_visibility is None):
            raise ValueError("HolisticLandmarks: pose and pose_visibility come together")


def holistic_to_wholebody(landmarks: HolisticLandmarks) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (133, 2) float32 (NaN where not given) and confidences (133,) float32 (0 where not given).

    Without a pose nothing is given: Holistic finds hands and face from the pose, and their confidence rule needs it.
    """
    keypoints = np.full((NUM_WHOLEBODY, 2), np.nan, dtype=np.float32)
    confidence = np.zeros(NUM_WHOLEBODY, dtype=np.float32)
    if landmarks.pose is None:
        return keypoints, confidence
    visibility = np.clip(np.asarray(landmarks.pose_visibility, dtype=np.float32), 0.0, 1.0)
    index = pose_to_wholebody_index()
    given = index >= 0
    keypoints[given] = np.asarray(landmarks.pose, dtype=np.float32)[index[given]]
    confidence[given] = visibility[index[given]]
    parts = (
        (landmarks.left_hand, LEFT_HAND_START, NUM_HAND, visibility[POSE_LEFT_WRIST]),
        (landmarks.right_hand, RIGHT_HAND_START, NUM_HAND, visibility[POSE_RIGHT_WRIST]),
        (None if landmarks.face is None else np.asarray(landmarks.face)[list(FACE68_FROM_MESH)],
         FACE_START, len(FACE68_FROM_MESH), visibility[POSE_NOSE]),
    )
    for points, start, count, score in parts:
        if points is not None:
            keypoints[start:start + count] = points
            confidence[start:start + count] = score
    return keypoints, confidence

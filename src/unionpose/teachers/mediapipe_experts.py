"""MediaPipe Holistic as an offline part expert: person crops in, COCO-WholeBody-133 keypoints + confidences out.

The only module of UnionPose that imports MediaPipe, and only when an expert is built: MediaPipe 0.10.21 forces
numpy<2 and protobuf<5, so it lives in its own environment (`make setup-experts`) and the core never needs it.
Holistic runs at model_complexity=1, the only setting whose models ship inside the 0.10.21 wheel (0 and 2 try a
download in the constructor). It sees one person per call, so people are cropped from their boxes first.
"""
from __future__ import annotations

import cv2
import numpy as np

from unionpose.core.constants import BOX_PADDING
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, transform_points, warp_image
from unionpose.skeletons import Skeleton, get_skeleton
from unionpose.teachers.base import StudentSpace
from unionpose.teachers.coordinates import CoordinateTeacher
from unionpose.teachers.expert_mapping import HolisticLandmarks, holistic_to_wholebody

MEDIAPIPE_VERSION = "0.10.21"
INSTALL_HINT = f"install the extra: pip install 'unionpose[experts]' (MediaPipe {MEDIAPIPE_VERSION}, numpy<2)"
EXPERT_NAME = "mediapipe_holistic"
MODEL_COMPLEXITY = 1              # 0 and 2 download their model at construction: they fail offline
CROP_SIZE = (512, 384)            # (h, w) of the person crop Holistic sees; hands and face are cut from it


def import_mediapipe():
    """The `mediapipe` module, or an ImportError that says how to install the pinned extra."""
    try:
        import mediapipe
    except ImportError as error:
        raise ImportError(f"MediaPipe experts need MediaPipe, which is not importable here ({error}); "
                          f"{INSTALL_HINT}") from error
    if mediapipe.__version__ != MEDIAPIPE_VERSION:
        raise ImportError(f"MediaPipe experts need MediaPipe {MEDIAPIPE_VERSION} (later releases no longer ship "
                          f"their models and download them), found {mediapipe.__version__}; {INSTALL_HINT}")
    return mediapipe


def _points(landmark_list, width: int, height: int) -> np.ndarray:
    """A MediaPipe landmark list -> (N, 2) float32 pixels; normalised coordinates are not clamped to the crop."""
    return np.array([(lm.x * width, lm.y * height) for lm in landmark_list.landmark], dtype=np.float32)


def read_landmarks(result, width: int, height: int) -> HolisticLandmarks:
    """A Holistic result -> arrays in the pixels of the `width` x `height` image it ran on."""
    if result.pose_landmarks is None:
        return HolisticLandmarks()

    def part(landmark_list) -> np.ndarray | None:
        return None if landmark_list is None else _points(landmark_list, width, height)

    return HolisticLandmarks(
        pose=_points(result.pose_landmarks, width, height),
        pose_visibility=np.array([lm.visibility for lm in result.pose_landmarks.landmark], dtype=np.float32),
        left_hand=part(result.left_hand_landmarks),
        right_hand=part(result.right_hand_landmarks),
        face=part(result.face_landmarks),
    )


class HolisticExpert:
    """MediaPipe Holistic (pose 33, hands 21 + 21, face mesh) on person crops, mapped onto COCO-WholeBody-133.

    Called on a batch of RGB uint8 crops it is a `CoordinatePredictor` (keypoints in crop pixels, NaN and confidence 0
    where it gives nothing); `predict_people` crops people from a whole image and answers in image pixels.
    """

    name = EXPERT_NAME

    def __init__(self, min_detection_confidence: float = 0.5, crop_size: tuple[int, int] = CROP_SIZE) -> None:
        mediapipe = import_mediapipe()
        self.min_detection_confidence = min_detection_confidence
        self.crop_size = tuple(crop_size)
        self.skeleton: Skeleton = get_skeleton("coco_wholebody133")
        # static_image_mode: every crop is a new person, no pose tracking (the face/hand state: see predict_crop)
        self._holistic = mediapipe.solutions.holistic.Holistic(
            static_image_mode=True, model_complexity=MODEL_COMPLEXITY, enable_segmentation=False,
            refine_face_landmarks=False, min_detection_confidence=min_detection_confidence)

    @property
    def identity(self) -> str:
        """Everything its predictions depend on (keys teacher caches and pseudo-label progress files)."""
        return (f"{EXPERT_NAME} mediapipe=={MEDIAPIPE_VERSION} model_complexity={MODEL_COMPLEXITY} "
                f"min_detection_confidence={self.min_detection_confidence}")

    def predict_crop(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One RGB uint8 (H, W, 3) crop -> keypoints (133, 2) in its pixels and confidences (133,)."""
        if crop_rgb.dtype != np.uint8 or crop_rgb.ndim != 3 or crop_rgb.shape[2] != 3:
            raise ValueError(f"{EXPERT_NAME}: expected an RGB uint8 (H, W, 3) crop, got {crop_rgb.dtype} "
                             f"{crop_rgb.shape}")
        # Even in static_image_mode Holistic seeds its face and hand regions from the previous call's landmarks (the
        # same crop twice in a row moves face points by ~1.3 px), so a prediction would depend on the crop before
        # it. A blank frame (nobody found) clears that state for ~17 ms; a graph reset would cost ~300 ms.
        self._holistic.process(np.zeros_like(crop_rgb))
        result = self._holistic.process(np.ascontiguousarray(crop_rgb))
        height, width = crop_rgb.shape[:2]
        return holistic_to_wholebody(read_landmarks(result, width, height))

    def __call__(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 crops (N, H, W, 3) -> keypoints (N, 133, 2) in crop pixels and confidences (N, 133)."""
        predictions = [self.predict_crop(crop) for crop in crops_rgb]
        count = self.skeleton.num_keypoints
        keypoints = np.stack([p[0] for p in predictions]) if predictions else np.zeros((0, count, 2), np.float32)
        confidence = np.stack([p[1] for p in predictions]) if predictions else np.zeros((0, count), np.float32)
        return keypoints, confidence

    def predict_people(self, image_bgr: np.ndarray, boxes: np.ndarray, padding: float = BOX_PADDING
                       ) -> tuple[np.ndarray, np.ndarray]:
        """People in a BGR image, one per box (x, y, w, h) -> keypoints (N, 133, 2) in image pixels, confidences.

        Each box, grown by `padding` to the crop's aspect ratio, is warped to `crop_size`; the expert's points go back
        through the inverse warp (points outside the crop stay outside: nothing is clamped).
        """
        height, width = self.crop_size
        keypoints, confidence = [], []
        for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            center, scale = box_to_center_scale(box, width / height, padding)
            crop = warp_image(image_bgr, get_warp_matrix(center, scale, 0.0, (width, height)), (width, height))
            points, scores = self.predict_crop(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
            inverse = get_warp_matrix(center, scale, 0.0, (width, height), inverse=True)
            keypoints.append(transform_points(points, inverse).astype(np.float32))
            confidence.append(scores)
        count = self.skeleton.num_keypoints
        return (np.stack(keypoints) if keypoints else np.zeros((0, count, 2), np.float32),
                np.stack(confidence) if confidence else np.zeros((0, count), np.float32))

    def close(self) -> None:
        self._holistic.close()

    def __enter__(self) -> HolisticExpert:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def holistic_teacher(student: StudentSpace, name: str = "mediapipe", input_size: tuple[int, int] = CROP_SIZE,
                     expert: HolisticExpert | None = None) -> CoordinateTeacher:
    """Holistic as a coordinate teacher for `student`: online it sees the student's crops; a prediction cache is
    built on `input_size` (h, w) crops, large enough for its hand and face models."""
    expert = expert or HolisticExpert()
    identity = f"{expert.identity} crop={input_size[0]}x{input_size[1]}"
    return CoordinateTeacher(name, expert.skeleton, student, expert, identity, input_size=input_size)

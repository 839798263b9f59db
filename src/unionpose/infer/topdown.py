"""Top-down pose inference: person boxes -> affine crops -> model -> SimCC decode -> keypoints in image pixels."""
from __future__ import annotations

from collections import deque
from typing import Iterable, Iterator

import cv2
import numpy as np

from unionpose.core.constants import BOX_PADDING
from unionpose.core.model_description import ModelInfo
from unionpose.core.simcc import SimCCCodec
from unionpose.core.transforms import box_to_center_scale, get_warp_matrix, warp_image
from unionpose.infer.backends import PoseBackend


class TopDownRunner:
    """Runs a pose backend (PyTorch model or ONNX session) on the person boxes of BGR images.

    Crops are batched (`batch_size` per backend call, across images in `predict_many`). With `flip_test`, every crop
    is also run mirrored and the raw logits of both are averaged before decoding (RTMPose's flip test).

    Keypoints are (N, K, 2): x, y. A model with a depth head (`info.depth`) gives (N, K, 3): x, y and the point's
    root-relative depth in `info.depth.unit`, which no crop or image transform changes.
    """

    def __init__(self, backend: PoseBackend, info: ModelInfo, flip_test: bool = False, batch_size: int = 32,
                 padding: float = BOX_PADDING) -> None:
        if flip_test and backend.decoded:
            raise ValueError("flip test needs a model that outputs SimCC logits; this ONNX graph decodes inside "
                             "(export it without --decode, or predict without flip test)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.backend = backend
        self.info = info
        self.skeleton = info.skeleton
        self.flip_test = flip_test
        self.batch_size = batch_size
        self.padding = padding
        height, width = info.input_size
        self.input_size_wh = (width, height)
        self.codec = SimCCCodec(info.input_size, info.sigma, info.split_ratio)
        self._mean = np.asarray(info.mean, dtype=np.float32)
        self._inverse_std = 1.0 / np.asarray(info.std, dtype=np.float32)

    # --- the three steps ---------------------------------------------------------------------------------------
    def crop(self, image_bgr: np.ndarray, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) -> normalised RGB crops (N, 3, H, W) float32 and crop->image affines (N, 2, 3)."""
        boxes = check_boxes(boxes_xywh)
        width, height = self.input_size_wh
        crops = np.empty((len(boxes), 3, height, width), dtype=np.float32)
        to_image = np.empty((len(boxes), 2, 3), dtype=np.float64)
        for i, box in enumerate(boxes):
            center, scale = box_to_center_scale(box, width / height, self.padding)
            to_crop = get_warp_matrix(center, scale, 0.0, self.input_size_wh)
            crop_rgb = cv2.cvtColor(warp_image(image_bgr, to_crop, self.input_size_wh), cv2.COLOR_BGR2RGB)
            crops[i] = ((crop_rgb.astype(np.float32) - self._mean) * self._inverse_std).transpose(2, 0, 1)
            to_image[i] = get_warp_matrix(center, scale, 0.0, self.input_size_wh, inverse=True)
        return crops, to_image

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised crops (N, 3, H, W) -> keypoints (N, K, 2), or (N, K, 3) with depth, in crop pixels, and
        scores (N, K)."""
        if self.backend.decoded:
            keypoints, scores, *depth = self.backend(crops)
            return self._with_depth(keypoints, scores, depth[0] if depth else None)
        if not self.flip_test:
            simcc_x, simcc_y, *simcc_z = self.backend(crops)
            return self._decode(simcc_x, simcc_y, simcc_z[0] if simcc_z else None)
        count = len(crops)
        simcc_x, simcc_y, *simcc_z = self.backend(np.concatenate([crops, crops[..., ::-1]]))
        flipped_x, flipped_y = self._unflip(simcc_x[count:], simcc_y[count:])
        simcc_z = ((simcc_z[0][:count] + simcc_z[0][count:, self.skeleton.flip_indices]) * 0.5 if simcc_z else None)
        return self._decode((simcc_x[:count] + flipped_x) * 0.5, (simcc_y[:count] + flipped_y) * 0.5, simcc_z)

    def _decode(self, simcc_x: np.ndarray, simcc_y: np.ndarray, simcc_z: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
        keypoints, scores = self.codec.decode(simcc_x, simcc_y)
        depth = self.info.depth.decode(simcc_z) if simcc_z is not None and self.info.depth is not None else None
        return self._with_depth(keypoints, scores, depth)

    def _with_depth(self, keypoints: np.ndarray, scores: np.ndarray, depth: np.ndarray | None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Depth as a third keypoint column (a mirror leaves depth as it is: only left and right swap)."""
        if depth is None or self.info.depth is None:
            return keypoints, scores
        return np.concatenate([keypoints, depth[..., None].astype(np.float32)], axis=-1), scores

    def _unflip(self, simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Logits of mirrored crops -> logits in the unmirrored crop's frame and keypoint order.

        Mirroring maps pixel x to W-1-x, i.e. bin b = r*x to r*(W-1-x); reversing the bin axis alone lands on
        r*x + (r-1), so the reversed logits are also moved back by r-1 bins (one bin at split ratio 2), where
        the reference toolbox leaves a half-pixel bias. The vacated last bins repeat the edge value.
        """
        flip = self.skeleton.flip_indices
        simcc_x = simcc_x[:, flip, ::-1]
        shift = int(round(self.codec.split_ratio - 1.0))
        if shift > 0:
            simcc_x = np.concatenate([simcc_x[..., shift:], np.repeat(simcc_x[..., -1:], shift, axis=-1)], axis=-1)
        return simcc_x, simcc_y[:, flip]

    @staticmethod
    def to_image(keypoints_crop: np.ndarray, to_image: np.ndarray) -> np.ndarray:
        """Keypoints (N, K, 2) in crop pixels -> image pixels, with each crop's affine (N, 2, 3); a third (depth)
        column passes through unchanged."""
        points = np.asarray(keypoints_crop, dtype=np.float64)
        matrices = np.asarray(to_image, dtype=np.float64).reshape(len(points), 2, 3)
        moved = points[..., :2] @ matrices[:, :, :2].transpose(0, 2, 1) + matrices[:, None, :, 2]
        return np.concatenate([moved, points[..., 2:]], axis=-1).astype(np.float32)

    # --- whole images ------------------------------------------------------------------------------------------
    def predict(self, image_bgr: np.ndarray, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One BGR image and its person boxes (N, 4) x, y, w, h -> keypoints (N, K, 2) image px, scores (N, K)."""
        return next(self.predict_many([(image_bgr, boxes_xywh)]))

    def predict_many(self, items: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(image, boxes) pairs -> one (keypoints, scores) per pair, in order, crops batched across images.

        Streams: at most about `batch_size` crops are held at a time, so an evaluation over thousands of images
        keeps constant memory.
        """
        pending: deque[tuple[int, np.ndarray]] = deque()   # (number of boxes, crop->image affines) per image
        crops: list[np.ndarray] = []
        results: list[tuple[np.ndarray, np.ndarray]] = []   # per-crop results not yet handed out
        for image, boxes in items:
            image_crops, to_image = self.crop(image, boxes)
            pending.append((len(image_crops), to_image))
            crops.extend(image_crops)
            while len(crops) >= self.batch_size:
                results.extend(self._run(crops[:self.batch_size]))
                del crops[:self.batch_size]
            yield from self._hand_out(pending, results)
        if crops:
            results.extend(self._run(crops))
        yield from self._hand_out(pending, results)

    def _run(self, crops: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        keypoints, scores = self.predict_crops(np.stack(crops))
        return list(zip(keypoints, scores))

    def _hand_out(self, pending: deque, results: list) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        num_keypoints = self.skeleton.num_keypoints
        columns = 2 if self.info.depth is None else 3
        while pending and pending[0][0] <= len(results):
            count, to_image = pending.popleft()
            done = results[:count]
            del results[:count]
            keypoints = np.array([k for k, _ in done], dtype=np.float32).reshape(count, num_keypoints, columns)
            scores = np.array([s for _, s in done], dtype=np.float32).reshape(count, num_keypoints)
            yield self.to_image(keypoints, to_image), scores


def check_boxes(boxes_xywh: np.ndarray) -> np.ndarray:
    """(N, 4) finite boxes with positive width and height, or a clear error naming the bad box."""
    boxes = np.asarray(boxes_xywh, dtype=np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array of x, y, w, h, got shape {boxes.shape}")
    bad = ~(np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0))
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise ValueError(f"box {index} {boxes[index].tolist()} is not a finite x, y, w, h with w, h > 0")
    return boxes

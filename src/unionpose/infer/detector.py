"""A person detector the user supplies as ONNX, in the YOLOX or RTMDet end-to-end export layout (nothing is downloaded).

Expected graph (the layout of the OpenMMLab deployment exports with NMS inside, as rtmlib runs them):

- input: one float32 tensor (1, 3, H, W), BGR channel order. H x W comes from the graph when fixed, else
  `input_size`. The image is resized by r = min(H / h, W / w), keeping its aspect ratio, into the top-left corner of
  an H x W canvas filled with 114. YOLOX takes the raw 0-255 values; RTMDet takes (pixel - mean) / std with BGR
  mean (103.53, 116.28, 123.675) and std (57.375, 57.12, 58.395).
- outputs: `dets` (1, N, 5) as x1, y1, x2, y2, score in the H x W input's pixels, and `labels` (1, N) class ids
  (person = 0, COCO's first class). Other names are accepted in that order. A raw YOLOX head without NMS,
  (1, anchors, 85), is not supported: export with NMS.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from unionpose.core.constants import IMAGE_MEAN_RGB, IMAGE_STD_RGB
from unionpose.core.transforms import clip_box
from unionpose.infer.backends import open_session

LAYOUTS = ("yolox", "rtmdet")
PAD_VALUE = 114
RTMDET_MEAN_BGR = IMAGE_MEAN_RGB[::-1]     # the same ImageNet statistics as the pose model's, in BGR order
RTMDET_STD_BGR = IMAGE_STD_RGB[::-1]


def letterbox(image_bgr: np.ndarray, input_size_hw: tuple[int, int], layout: str) -> tuple[np.ndarray, float]:
    """BGR image -> the detector's (1, 3, H, W) float32 input and the resize ratio r (input px = r * image px)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown detector layout {layout!r}; known: {', '.join(LAYOUTS)}")
    height, width = input_size_hw
    ratio = min(height / image_bgr.shape[0], width / image_bgr.shape[1])
    resized_hw = (max(1, int(image_bgr.shape[0] * ratio)), max(1, int(image_bgr.shape[1] * ratio)))
    canvas = np.full((height, width, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:resized_hw[0], :resized_hw[1]] = cv2.resize(image_bgr, resized_hw[::-1], interpolation=cv2.INTER_LINEAR)
    tensor = canvas.astype(np.float32)
    if layout == "rtmdet":
        tensor = (tensor - np.asarray(RTMDET_MEAN_BGR, np.float32)) / np.asarray(RTMDET_STD_BGR, np.float32)
    return np.ascontiguousarray(tensor.transpose(2, 0, 1)[None]), ratio


class OnnxPersonDetector:
    """Person boxes from an ONNX detector: `detector(image_bgr) -> (boxes (N, 4) x, y, w, h, scores (N,))`."""

    def __init__(self, path: str | Path, layout: str = "rtmdet", score_threshold: float = 0.3,
                 input_size: tuple[int, int] = (640, 640), person_class: int = 0) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown detector layout {layout!r}; known: {', '.join(LAYOUTS)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"detector model not found: {self.path}")
        self.session = open_session(self.path)
        self.layout = layout
        self.score_threshold = score_threshold
        self.person_class = person_class
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 2:
            found = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
            raise ValueError(f"{self.path}: expected one (1, 3, H, W) input and two outputs (dets, labels); got "
                             f"inputs {found[0]}, outputs {found[1]}")
        fixed = inputs[0].shape[2:]
        self.input_size = tuple(fixed) if all(isinstance(v, int) for v in fixed) else tuple(input_size)
        self.input_name = inputs[0].name

    def __call__(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tensor, ratio = letterbox(image_bgr, self.input_size, self.layout)
        dets, labels = self.session.run(None, {self.input_name: tensor})
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, dets.shape[-1])
        if dets.shape[1] != 5:
            raise ValueError(f"{self.path}: the first output should be dets (1, N, 5) = x1, y1, x2, y2, score; got "
                             f"last axis {dets.shape[1]} (a raw detector head without NMS is not supported)")
        labels = np.asarray(labels).reshape(-1)
        keep = (labels == self.person_class) & (dets[:, 4] >= self.score_threshold)
        corners = dets[keep, :4] / ratio
        height, width = image_bgr.shape[:2]
        boxes = np.array([clip_box([x1, y1, x2 - x1, y2 - y1], width, height) for x1, y1, x2, y2 in corners],
                         dtype=np.float64).reshape(-1, 4)
        usable = (boxes[:, 2] > 1) & (boxes[:, 3] > 1)
        return boxes[usable], dets[keep, 4][usable]

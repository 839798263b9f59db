"""The JSON the API answers with, as pydantic models: they validate the responses and document them at /docs."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Person(BaseModel):
    box: list[float] = Field(description="x, y, width, height in image pixels: the box the crop was taken from")
    box_score: float = Field(description="the box's confidence (1 for a given or full-frame box)")
    score: float = Field(description="person score: box score x mean of the keypoint scores above 0.2")
    keypoints: list[list[float]] = Field(description="[x, y, score] per keypoint, in `keypoint_names` order")


class ImageSize(BaseModel):
    name: str
    width: int
    height: int


class Prediction(BaseModel):
    model: str
    image: ImageSize
    keypoint_names: list[str]
    people: list[Person]
    coco: list[dict[str, Any]] | None = Field(
        None, description="with formats=coco: the people as COCO keypoint results, as `unionpose predict` writes "
                          "them (image_id from a COCO-style file name, else 0)")
    openpose: dict[str, Any] | None = Field(
        None, description="with formats=openpose: the image's OpenPose JSON, as `unionpose predict` writes it")


class SkeletonDescription(BaseModel):
    name: str
    keypoint_names: list[str]
    links: list[list[int]] = Field(description="pairs of keypoint indices to join")
    parts: list[str] = Field(description="the skeleton's parts (body, feet, face, left_hand, ...), for toggles")
    point_parts: list[str] = Field(description="each keypoint's part")
    point_colors: list[str] = Field(description="each keypoint's drawing colour, #rrggbb")
    link_colors: list[str] = Field(description="each link's drawing colour, #rrggbb")


class Codec(BaseModel):
    split_ratio: float
    sigma: list[float]


class ModelDescription(BaseModel):
    name: str = Field(description="the name to pass as `model` to /v1/predict")
    file: str = Field(description="the model file's base name")
    format: str = Field(description="safetensors or onnx")
    model_size: str
    input_size: list[int] = Field(description="crop height, width")
    flip_test: bool
    codec: Codec
    skeleton: SkeletonDescription
    metadata: dict[str, str] = Field(description="the file's own metadata fields (training provenance, ...)")


class Limits(BaseModel):
    max_upload_bytes: int
    max_pixels: int
    max_boxes: int
    max_batch: int
    max_queue: int
    max_wait_ms: float


class ModelList(BaseModel):
    models: list[ModelDescription]
    detector: str | None = Field(description="the person detector's file name, or null: one full-frame box per "
                                             "image unless the request gives boxes")
    limits: Limits


class QueueState(BaseModel):
    waiting: int = Field(description="requests queued now")
    model_calls: int = Field(description="batches run since start")
    requests: int = Field(description="requests answered by those batches")


class Health(BaseModel):
    status: str
    models: dict[str, QueueState]

"""The models a server answers with: a name for each, its Predictor, and the description the page draws with.

Models are named at start-up (`NAME=FILE`, else the file's stem) and requests choose among those names only, so no
request can make the server open a file. Model files load without pickle: UnionPose `.safetensors` files and ONNX
graphs are the only formats `load_pose_model` accepts.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from unionpose.core.model_description import ModelInfo
from unionpose.infer.predictor import PersonDetector, Predictor
from unionpose.skeletons import Skeleton


@dataclass(frozen=True)
class ServedModel:
    """One model as the server knows it; `file_name` is the base name only (responses never show server paths)."""

    name: str
    predictor: Predictor
    file_name: str

    @property
    def info(self) -> ModelInfo:
        return self.predictor.runner.info


def parse_model_argument(text: str) -> tuple[str | None, Path]:
    """'student=runs/kd/final.safetensors' -> ('student', path); a bare path -> (None, path)."""
    name, separator, path = text.partition("=")
    if separator and name and "/" not in name and path:
        return name, Path(path)
    return None, Path(text)


def load_models(arguments: Sequence[str], detector: PersonDetector | None = None, flip_test: bool = False,
                device: str = "cpu", batch_size: int = 32) -> list[ServedModel]:
    """Load each `NAME=FILE` or `FILE`; unnamed models take their file's stem, made unique with -2, -3, ..."""
    if not arguments:
        raise ValueError("serve needs at least one model (--model FILE)")
    served: list[ServedModel] = []
    for argument in arguments:
        name, path = parse_model_argument(argument)
        taken = {model.name for model in served}
        if name in taken:
            raise ValueError(f"two models are named {name!r}; name them apart (--model NAME=FILE)")
        if name is None:
            name, count = path.stem, 2
            while name in taken:
                name, count = f"{path.stem}-{count}", count + 1
        predictor = Predictor.from_file(path, flip_test=flip_test, batch_size=batch_size, detector=detector,
                                        device=device)
        served.append(ServedModel(name, predictor, path.name))
    return served


def hex_color(bgr: tuple[int, int, int]) -> str:
    """OpenCV's BGR drawing colour as the page's CSS '#rrggbb'."""
    blue, green, red = bgr
    return f"#{red:02x}{green:02x}{blue:02x}"


def skeleton_description(skeleton: Skeleton) -> dict:
    """What the page needs to draw as `unionpose predict` does: links, parts and the colours of `Skeleton`."""
    parts = [skeleton.part_of(k) for k in range(skeleton.num_keypoints)]
    return {"name": skeleton.name, "keypoint_names": list(skeleton.names),
            "links": [list(link) for link in skeleton.links],
            "parts": list(dict.fromkeys(parts)), "point_parts": parts,
            "point_colors": [hex_color(color) for color in skeleton.point_colors()],
            "link_colors": [hex_color(color) for color in skeleton.link_colors()]}


def model_description(model: ServedModel) -> dict:
    """One entry of GET /v1/models."""
    info = model.info
    return {"name": model.name, "file": model.file_name, "format": Path(model.file_name).suffix.lstrip("."),
            "model_size": info.model_size, "input_size": list(info.input_size),
            "flip_test": model.predictor.runner.flip_test,
            "codec": {"split_ratio": info.split_ratio, "sigma": list(info.sigma)},
            "skeleton": skeleton_description(info.skeleton), "metadata": dict(info.extra)}

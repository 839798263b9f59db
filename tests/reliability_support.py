"""Small inputs the reliability tests share: synthetic data, a tiny training recipe, model files, hashes, images."""
from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import torch
import yaml

from unionpose.models import RTMPose, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import generate


def synthetic_data(folder: Path) -> Path:
    """8 training and 2 validation images of synthetic people (COCO-17 and MPII-16 files), in 0.2 s."""
    generate(folder, num_train=8, num_val=2, seed=0)
    return folder


def tiny_recipe(path: Path, data: Path, output: Path | str, coco: dict | None = None, **train) -> Path:
    """RTMPose-t at 64x64 on the synthetic COCO people: one epoch of three steps of 4 crops, nothing else."""
    recipe = {
        "skeleton": "coco17",
        "model": {"size": "t", "input": [64, 64]},
        "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"),
                            "images": str(data / "images"), **(coco or {})}],
                 "augment": {"enabled": False}},
        "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0, "workers": 0, "val_interval": 0,
                  "log_interval": 1, "ema": False, "device": "cpu", "tensorboard": False, **train},
        "output": str(output),
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def model_file(path: Path, skeleton: str = "coco17", input_size: tuple[int, int] = (64, 64)) -> Path:
    """A randomly initialised RTMPose-t model file (what predict, val and export need, not what they compute)."""
    torch.manual_seed(0)
    target = get_skeleton(skeleton)
    return save_model_file(path, RTMPose("t", target.num_keypoints, input_size), target)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(folder: Path, skip: Path | None = None) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `folder`, except under `skip`."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and (skip is None or skip not in p.parents)}


def png_claiming(width: int, height: int, body: bytes = b"") -> bytes:
    """A PNG whose header says `width` x `height` and whose image data is `body` (none by default): the size a
    decoder would allocate comes from the header alone."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def undecodable_png(width: int, height: int) -> bytes:
    """A PNG that passes every header check (size, IEND at the end) but whose pixel data is not zlib data."""
    return png_claiming(width, height, b"this is not deflate data" * 4)

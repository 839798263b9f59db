"""The images a training run left out under `on_error: skip`: each reported once, with why, and counted.

Images are checked before the first step, so a file found bad mid-run changed under the run (or fails to decode
although its header is sound). The dataset then gives the batch another person of the same dataset and names the
instance it left out in the item's `skipped_image`; loader workers are separate processes, so that field is how
the main process learns of it.
"""
from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from unionpose.core.errors import DataError
from unionpose.core.images import load_image
from unionpose.data.mixture import UnionMixture


class SkippedImages:
    """Instances whose image a run skipped; `record(batch)` after each batch."""

    def __init__(self, mixture: UnionMixture) -> None:
        self.mixture = mixture
        self.instances: set[int] = set()

    def __len__(self) -> int:
        return len(self.instances)

    def record(self, batch: dict[str, torch.Tensor]) -> None:
        for index in batch["skipped_image"].tolist():
            if index >= 0 and index not in self.instances:
                self.instances.add(index)
                tqdm.write(f"skipped (on_error: skip): {self._reason(index)}", file=sys.stderr)

    def _reason(self, index: int) -> str:
        instance = self.mixture[index]
        source = next(e.source for e in self.mixture.datasets if e.start <= index < e.stop)
        try:
            load_image(instance.image, instance.image_size, f"instance {index} (annotation id {instance.ann_id})",
                       source.max_image_pixels)
        except DataError as error:
            return str(error)
        return f"{instance.image}: could not be read in a loader worker (reads now)"

"""Mixing datasets into one union skeleton, with per-point `annotated` masks and per-dataset sampling ratios."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np

from unionpose.data.config import SkeletonSpec, build_skeleton
from unionpose.data.instance import Instance, remap_instances
from unionpose.data.readers import ReadReport
from unionpose.data.sources import DatasetSource, read_source
from unionpose.skeletons import KeypointMapping, Skeleton, keypoint_mapping


@dataclass
class MixtureEntry:
    """One dataset inside a mixture: its instances are `mixture.instances[start:stop]`."""

    source: DatasetSource
    skeleton: Skeleton          # the dataset's native skeleton
    mapping: KeypointMapping    # native -> union
    report: ReadReport
    start: int
    stop: int

    @property
    def dropped(self) -> list[str]:
        """Native points the union skeleton has no place for (their labels are not used)."""
        kept = set(self.mapping.src_index[self.mapping.src_index >= 0].tolist())
        return [name for k, name in enumerate(self.skeleton.names) if k not in kept]


class UnionMixture:
    """Several datasets read and mapped into one union skeleton; indexable like a list of instances.

    The union skeleton defaults to the union of the datasets' skeletons in the order given; a preset name, a
    skeleton file, an explicit `UnionOf` or a `Skeleton` may be given instead.
    """

    def __init__(self, sources: Sequence[DatasetSource], union_skeleton: Skeleton | SkeletonSpec | None = None,
                 verify_images: bool = False) -> None:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names in a mixture must be unique, got {names}")
        if isinstance(union_skeleton, Skeleton):
            self.skeleton = union_skeleton
        else:
            self.skeleton = build_skeleton(union_skeleton, list(sources))
        self.instances: list[Instance] = []
        self.datasets: list[MixtureEntry] = []
        for source in sources:
            native = source.native_skeleton()
            mapping = keypoint_mapping(native, self.skeleton)
            if not mapping.mask.any():
                raise ValueError(f"dataset {source.name!r} ({native.name}) shares no keypoint with the union "
                                 f"skeleton {self.skeleton.name!r}")
            instances, report = read_source(source, verify_images=verify_images)
            start = len(self.instances)
            self.instances += remap_instances(instances, mapping)
            self.datasets.append(MixtureEntry(source, native, mapping, report, start, len(self.instances)))
        self.dataset_ids = np.repeat(np.arange(len(self.datasets)), [e.stop - e.start for e in self.datasets])

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> Instance:
        return self.instances[index]

    def epoch_indices(self, epoch: int, seed: int = 0) -> np.ndarray:
        """Shuffled instance indices for one epoch, deterministic in (seed, epoch).

        Each dataset contributes ratio x its size: whole multiples of every instance, plus a random subset without
        repeats for the fractional part (ratio 1.0: each instance once; 0.5: a random half; 2.0: each twice).
        """
        rng = np.random.default_rng((seed, epoch))
        parts = [np.zeros(0, dtype=np.int64)]
        for entry in self.datasets:
            size = entry.stop - entry.start
            whole, fraction = divmod(entry.source.ratio, 1.0)
            parts += [np.arange(entry.start, entry.stop, dtype=np.int64)] * int(whole)
            extra = int(np.floor(fraction * size + 0.5))
            parts.append(entry.start + rng.choice(size, size=extra, replace=False).astype(np.int64))
        indices = np.concatenate(parts)
        rng.shuffle(indices)
        return indices

    def keypoint_counts(self, entry: MixtureEntry) -> tuple[np.ndarray, np.ndarray]:
        """Per union point, how many of the dataset's instances annotate it and how many see it (visible > 0)."""
        k = self.skeleton.num_keypoints
        if entry.stop == entry.start:
            return np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
        chosen = self.instances[entry.start:entry.stop]
        annotated = np.stack([i.annotated for i in chosen]).sum(axis=0)
        visible = (np.stack([i.visible for i in chosen]) > 0).sum(axis=0)
        return annotated, visible

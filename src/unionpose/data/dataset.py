"""The torch training dataset: one person per item, cropped, augmented and encoded as SimCC targets; and its sampler."""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from unionpose.core.depth import DepthCodec
from unionpose.core.errors import DataError
from unionpose.core.images import MAX_PIXELS, load_image
from unionpose.core.simcc import SimCCCodec
from unionpose.core.transforms import normalise
from unionpose.data.augment import TopDownAugmenter, sample_rng
from unionpose.data.instance import Instance
from unionpose.data.mixture import UnionMixture
from unionpose.skeletons import Skeleton

# A key names one sample of one epoch: (epoch, position in the epoch's order, instance index). The augmentation is
# drawn from (seed, epoch, position) alone, so any worker, any process and a resumed run all see the same crop.
SampleKey = tuple[int, int, int]

# How many other people of the same dataset an item tries, under on_error: skip, when its image cannot be read.
MAX_SUBSTITUTES = 16

# Canonical-name fragments of the points below the waist, for the half-body augmentation; everything else is upper.
LOWER_BODY_WORDS = ("hip", "pelvis", "knee", "ankle", "heel", "toe", "foot")


def half_body_split(skeleton: Skeleton) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(upper, lower) keypoint indices: hips, knees, ankles and feet are lower; head, arms, hands, face upper."""
    lower = tuple(i for i, name in enumerate(skeleton.canonical_names) if any(w in name for w in LOWER_BODY_WORDS))
    upper = tuple(i for i in range(skeleton.num_keypoints) if i not in lower)
    return upper, lower


class TopDownDataset(Dataset):
    """Person instances (in one skeleton) -> dicts of tensors the model and the objective consume.

    Items: image (3, H, W) float32 normalised RGB; target_x (K, Wx), target_y (K, Wy), target_weight (K,) from the
    codec, times the label confidence of pseudo-labelled points; annotated (K,) bool; visible (K,); keypoints (K, 2) crop pixels; matrix (2, 3) image -> crop; center and
    scale of the crop in image pixels; dataset_index, instance_index, flipped. Images are decoded per item (no cache).
    With a `depth_codec` (a model with a depth head) also target_z (K, depth bins) and target_z_weight (K,), which is 0
    wherever the instance has no 3D label (`annotated_z`; 2D sources have none), whatever the point's visibility.

    An item is fetched by a `SampleKey` (training, from `EpochBatchSampler`) or by a plain instance index (evaluation,
    where augmentation is off and nothing is random). From epoch `mild_from_epoch` on, `mild_augmenter` is used
    (RTMPose's gentler last epochs).

    Images pass the image gate with their dataset's `max_image_pixels` when `instances` is a `UnionMixture`. An image
    that cannot be read (damaged or replaced since the run checked it) stops the run with a `DataError`, unless its
    dataset says `on_error: skip`: then the item is another person of that dataset, drawn from the sample's own seed
    (so a resumed run draws the same), and `skipped_image` names the instance left out (-1 when none was), which the
    trainer counts and reports. The batch keeps its size, so every process of a torchrun job steps together.
    """

    def __init__(
        self,
        instances: Sequence[Instance],
        augmenter: TopDownAugmenter,
        codec: SimCCCodec,
        *,
        dataset_names: Sequence[str] = (),
        seed: int = 0,
        mild_augmenter: TopDownAugmenter | None = None,
        mild_from_epoch: int | None = None,
        depth_codec: DepthCodec | None = None,
    ) -> None:
        self.instances = instances
        self.augmenter = augmenter
        self.codec = codec
        self.seed = int(seed)
        self.mild_augmenter = mild_augmenter
        self.mild_from_epoch = mild_from_epoch
        self.depth_codec = depth_codec
        # Default: the order of first appearance, which is the source order of a UnionMixture.
        self.dataset_names = list(dataset_names) or list(dict.fromkeys(instance.dataset for instance in instances))
        self._dataset_index = {name: i for i, name in enumerate(self.dataset_names)}
        entries = instances.datasets if isinstance(instances, UnionMixture) else []
        self.max_pixels = {entry.source.name: entry.source.max_image_pixels for entry in entries}
        self.substitutes = {entry.source.name: (entry.start, entry.stop) for entry in entries
                            if entry.source.on_error == "skip"}
        if augmenter.input_size_hw != codec.input_size_hw:
            raise ValueError(f"augmenter crops {augmenter.input_size_hw} but the codec encodes {codec.input_size_hw}")

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, key: int | SampleKey) -> dict[str, torch.Tensor]:
        epoch, position, index = (0, int(key), int(key)) if isinstance(key, (int, np.integer)) else key
        image, used = self._image(index, epoch, position)
        skipped, index = (index if used != index else -1), used
        instance = self.instances[index]
        augmenter = self.augmenter
        if self.mild_augmenter is not None and self.mild_from_epoch is not None and epoch >= self.mild_from_epoch:
            augmenter = self.mild_augmenter
        rng = sample_rng(self.seed, epoch, position) if augmenter.config.enabled else None
        crop = augmenter(image, instance.box, instance.keypoints, instance.visible, instance.annotated, rng)
        target = self.codec.encode(crop.keypoints, crop.visible, crop.annotated)
        weight = target.weight
        if instance.confidence is not None:   # pseudo-labels: a point counts as much as its label is trusted
            confidence = instance.confidence[augmenter.flip_indices] if crop.flipped else instance.confidence
            weight = (weight * np.clip(confidence, 0.0, 1.0)).astype(np.float32)
        item = self._depth_target(instance, augmenter.flip_indices if crop.flipped else None)
        return item | {
            "image": torch.from_numpy(normalise(crop.image)),
            "target_x": torch.from_numpy(target.x),
            "target_y": torch.from_numpy(target.y),
            "target_weight": torch.from_numpy(weight),
            "annotated": torch.from_numpy(np.asarray(crop.annotated, dtype=bool)),
            "visible": torch.from_numpy(np.asarray(crop.visible, dtype=np.int64)),
            "keypoints": torch.from_numpy(crop.keypoints.astype(np.float32)),
            "matrix": torch.from_numpy(np.asarray(crop.matrix, dtype=np.float64)),
            "center": torch.from_numpy(np.asarray(crop.center, dtype=np.float64)),
            "scale": torch.from_numpy(np.asarray(crop.scale, dtype=np.float64)),
            "dataset_index": torch.tensor(self._dataset_index.get(instance.dataset, -1)),
            "instance_index": torch.tensor(index),
            "flipped": torch.tensor(crop.flipped),
            "skipped_image": torch.tensor(skipped),
        }

    def _depth_target(self, instance: Instance, flip_indices: np.ndarray | None) -> dict[str, torch.Tensor]:
        """target_z and target_z_weight, or nothing without a depth codec. Depth is root-relative camera z, which the
        crop's shift, scale and rotation leave as it is; a mirror swaps left and right points and keeps their z."""
        if self.depth_codec is None:
            return {}
        count = instance.num_keypoints
        if instance.keypoints_3d is None or instance.annotated_z is None:
            depth, annotated_z = np.zeros(count), np.zeros(count, dtype=bool)
        else:
            depth, annotated_z = instance.keypoints_3d[:, 2], instance.annotated_z
        if flip_indices is not None:
            depth, annotated_z = depth[flip_indices], annotated_z[flip_indices]
        target, weight = self.depth_codec.encode(depth, annotated_z)
        return {"target_z": torch.from_numpy(target), "target_z_weight": torch.from_numpy(weight)}

    def _image(self, index: int, epoch: int, position: int) -> tuple[np.ndarray, int]:
        """The RGB image of instance `index`, or under on_error: skip that of a substitute, and whose it is."""
        draws = np.random.default_rng((self.seed, epoch, position, MAX_SUBSTITUTES))
        first_error = None
        for _ in range(MAX_SUBSTITUTES + 1):
            instance = self.instances[index]
            record = f"instance {index} (dataset {instance.dataset!r}, annotation id {instance.ann_id})"
            try:
                image = load_image(instance.image, instance.image_size, record,
                                   self.max_pixels.get(instance.dataset, MAX_PIXELS))
                return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), index
            except DataError as error:
                if instance.dataset not in self.substitutes:
                    raise
                first_error = first_error or error
                index = int(draws.integers(*self.substitutes[instance.dataset]))
        raise DataError(first_error.file, first_error.record, first_error.field,
                        f"{first_error.reason}; and {MAX_SUBSTITUTES} other images of its dataset drawn in its place "
                        "could not be read either")


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """This process's share of each global batch of an epoch, as lists of `SampleKey`s.

    The epoch's order comes from `epoch_indices(epoch)` (a function of the seed and the epoch only); it is cut into
    global batches of `batch_size` (the last partial batch is dropped, so every process steps together), and process
    `rank` takes the `rank`-th contiguous slice of each. So N processes with batch B/N train on exactly the samples one
    process with batch B would. `set_epoch(epoch, start_batch)` picks the epoch and skips the batches a resumed run has
    already done; it runs in the main process, so it also works with persistent loader workers.
    """

    def __init__(self, epoch_indices: Callable[[int], np.ndarray], batch_size: int, *, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"train.batch_size ({batch_size}) must be divisible by the number of processes "
                             f"({world_size})")
        self.epoch_indices = epoch_indices
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0
        self.epoch_size = len(epoch_indices(0))
        self.batches_per_epoch = self.epoch_size // batch_size
        if self.batches_per_epoch < 1:
            raise ValueError(f"an epoch has {self.epoch_size} samples, fewer than one batch of {batch_size}")

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[SampleKey]]:
        order = np.asarray(self.epoch_indices(self.epoch))
        if len(order) != self.epoch_size:
            raise ValueError(f"epoch {self.epoch} has {len(order)} samples, epoch 0 had {self.epoch_size}: the "
                             "schedule needs epochs of one length")
        share = self.batch_size // self.world_size
        for batch in range(self.start_batch, self.batches_per_epoch):
            first = batch * self.batch_size + self.rank * share
            yield [(self.epoch, position, int(order[position])) for position in range(first, first + share)]

"""Skeleton algebra: the union of several skeletons and index mappings between any two, matched by canonical name."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unionpose.skeletons.aliases import canonical
from unionpose.skeletons.skeleton import Skeleton, SkeletonError, _normalise_pairs


def union(*skeletons: Skeleton, name: str | None = None) -> Skeleton:
    """Keep the first skeleton's order, append each new canonical name in order of appearance.

    A new point takes its sigma from the first skeleton that has it; flip pairs, links and parts are merged by name.
    So `union(coco17, mpii16)` is exactly the 21-point order of Khan et al. (2024).
    """
    if not skeletons:
        raise SkeletonError("union() needs at least one skeleton")
    names: list[str] = []
    sigmas: list[float] = []
    position: dict[str, int] = {}
    for skeleton in skeletons:
        for own, sigma in zip(skeleton.names, skeleton.sigmas):
            key = canonical(own)
            if key not in position:
                position[key] = len(names)
                names.append(key)
                sigmas.append(sigma)

    def moved(skeleton: Skeleton, pairs: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
        keys = skeleton.canonical_names
        return [(position[keys[a]], position[keys[b]]) for a, b in pairs]

    flips: list[tuple[int, int]] = []
    links: list[tuple[int, int]] = []
    seen_links: set[frozenset[int]] = set()
    parts: dict[str, list[int]] = {}
    for skeleton in skeletons:
        flips += moved(skeleton, skeleton.flip_pairs)
        for a, b in moved(skeleton, skeleton.links):
            if frozenset((a, b)) not in seen_links:
                seen_links.add(frozenset((a, b)))
                links.append((a, b))
        keys = skeleton.canonical_names
        for part, members in skeleton.part_groups:
            group = parts.setdefault(part, [])
            group += [position[keys[m]] for m in members if position[keys[m]] not in group]
    return Skeleton(
        names=tuple(names),
        sigmas=tuple(sigmas),
        flip_pairs=_normalise_pairs(flips),
        links=tuple(links),
        part_groups=tuple((part, tuple(members)) for part, members in parts.items()),
        name=name or "+".join(s.name for s in skeletons),
        description="union of " + ", ".join(s.name for s in skeletons),
    )


@dataclass(frozen=True)
class KeypointMapping:
    """How to read a `target`-ordered array from a `source`-ordered one.

    `src_index[k]` is the source index of target point k, or -1 when the source lacks it; `mask[k]` says whether the
    source provides target point k (directly or, where declared, derived as the mean of named source points).
    """

    source: Skeleton
    target: Skeleton
    src_index: np.ndarray
    mask: np.ndarray
    derived: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Target points the source cannot give."""
        return [self.target.names[k] for k in np.flatnonzero(~self.mask)]

    def apply(self, array: np.ndarray, axis: int = -2, fill: float = 0.0, reduce: str = "mean") -> np.ndarray:
        """Reorder the keypoint axis of `array` (default axis -2, e.g. (..., K, 2); 1-D arrays use axis 0).

        Points the source lacks are `fill`; derived points take the `reduce` ('mean' for coordinates, 'min' for
        visibility or scores) of their source points.
        """
        array = np.asarray(array)
        if array.ndim == 1:
            axis = 0
        axis = axis % array.ndim
        if array.shape[axis] != self.source.num_keypoints:
            raise ValueError(f"mapping {self.source.name} -> {self.target.name}: axis {axis} of an array shaped "
                             f"{array.shape} should have {self.source.num_keypoints} keypoints")
        moved = np.moveaxis(array, axis, 0)
        out = np.full((self.target.num_keypoints,) + moved.shape[1:], fill, dtype=np.result_type(array, type(fill)))
        direct = self.src_index >= 0
        out[direct] = moved[self.src_index[direct]]
        for k, sources in self.derived.items():
            out[k] = getattr(moved[list(sources)], reduce)(axis=0)
        return np.moveaxis(out, 0, axis)


def keypoint_mapping(source: Skeleton, target: Skeleton,
                     derived: dict[str, tuple[str, ...] | list[str]] | None = None) -> KeypointMapping:
    """Map `source` onto `target` by canonical name.

    `derived` declares target points that the source lacks but can compute as the mean of named source points
    (e.g. `{"thorax": ("left_shoulder", "right_shoulder")}`); nothing is derived unless declared here.
    """
    source_position = {key: i for i, key in enumerate(source.canonical_names)}
    src_index = np.array([source_position.get(key, -1) for key in target.canonical_names], dtype=np.int64)
    rules: dict[int, tuple[int, ...]] = {}
    for point, parts in (derived or {}).items():
        if not target.has(point):
            raise SkeletonError(f"derived point {point!r} is not in target skeleton {target.name!r}")
        k = target.index(point)
        if src_index[k] >= 0:
            raise SkeletonError(f"derived point {point!r}: source skeleton {source.name!r} already has it")
        missing = [p for p in parts if not source.has(p)]
        if missing or not parts:
            raise SkeletonError(f"derived point {point!r}: source skeleton {source.name!r} lacks {missing or parts}")
        rules[k] = tuple(source.index(p) for p in parts)
    mask = src_index >= 0
    mask[list(rules)] = True
    return KeypointMapping(source=source, target=target, src_index=src_index, mask=mask, derived=rules)

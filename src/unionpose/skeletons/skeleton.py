"""The `Skeleton` type: an immutable, validated description of one keypoint layout."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from unionpose.skeletons.aliases import canonical, mirrored, side


class SkeletonError(ValueError):
    """A skeleton definition is inconsistent; the message names the skeleton, the field and the point."""


# Drawing colours (BGR, as OpenCV draws): the person's left in green, right in orange, the middle in blue;
# parts other than the body get their own colour so a whole-body drawing stays readable.
SIDE_COLORS = {"left": (0, 200, 0), "right": (0, 128, 255), "center": (255, 153, 51)}
PART_COLORS = {"face": (255, 255, 255), "left_hand": (0, 255, 170), "right_hand": (255, 0, 170), "hand": (0, 255, 170)}


@dataclass(frozen=True)
class Skeleton:
    """Ordered keypoint names with flip pairs, OKS sigmas, drawing links and part groups.

    Equality compares the layout, not the label: `union(coco17, mpii16) == get_skeleton("coco_mpii21")`.
    """

    names: tuple[str, ...]
    sigmas: tuple[float, ...]
    flip_pairs: tuple[tuple[int, int], ...] = ()
    links: tuple[tuple[int, int], ...] = ()
    part_groups: tuple[tuple[str, tuple[int, ...]], ...] = ()
    name: str = field(default="custom", compare=False)
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    # --- basic views -------------------------------------------------------------------------------------------
    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def parts(self) -> dict[str, tuple[int, ...]]:
        return dict(self.part_groups)

    @property
    def canonical_names(self) -> tuple[str, ...]:
        return tuple(canonical(n) for n in self.names)

    def index(self, name: str) -> int:
        """Index of a keypoint by its own or its canonical name."""
        wanted = canonical(name)
        for i, own in enumerate(self.canonical_names):
            if own == wanted:
                return i
        raise KeyError(f"skeleton {self.name!r} has no keypoint {name!r}")

    def has(self, name: str) -> bool:
        return canonical(name) in self.canonical_names

    @property
    def flip_indices(self) -> np.ndarray:
        """Permutation that swaps left and right: `flipped[k] = original[flip_indices[k]]`."""
        order = np.arange(self.num_keypoints, dtype=np.int64)
        for a, b in self.flip_pairs:
            order[a], order[b] = b, a
        return order

    def part_of(self, index: int) -> str:
        for part, members in self.part_groups:
            if index in members:
                return part
        return "body"

    def point_colors(self) -> list[tuple[int, int, int]]:
        colors = []
        for i, name in enumerate(self.names):
            colors.append(PART_COLORS.get(self.part_of(i), SIDE_COLORS[side(name)]))
        return colors

    def link_colors(self) -> list[tuple[int, int, int]]:
        points = self.point_colors()
        colors = []
        for a, b in self.links:
            if self.part_of(a) in PART_COLORS:
                colors.append(points[a])
            else:  # a limb is drawn in its side's colour; a link across the middle in the middle's
                sa, sb = side(self.names[a]), side(self.names[b])
                colors.append(SIDE_COLORS[sa if sa == sb else "center"])
        return colors

    # --- serialisation -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe description that `from_dict` reads back (pairs and links by name)."""
        return {
            "name": self.name,
            "description": self.description,
            "names": list(self.names),
            "sigmas": [float(s) for s in self.sigmas],
            "flip_pairs": [[self.names[a], self.names[b]] for a, b in self.flip_pairs],
            "links": [[self.names[a], self.names[b]] for a, b in self.links],
            "parts": {part: [self.names[i] for i in members] for part, members in self.part_groups},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Skeleton":
        """Build from the YAML/dict layout (see presets/coco17.yaml); errors name `source` and the field."""
        return _from_dict(data, source)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, width=120)


_KNOWN_FIELDS = {"name", "description", "names", "sigmas", "flip_pairs", "links", "parts"}


def _from_dict(data: Mapping[str, Any], source: str) -> Skeleton:
    if not isinstance(data, Mapping):
        raise SkeletonError(f"{source}: a skeleton must be a mapping with 'names' and 'sigmas', got {type(data).__name__}")
    unknown = set(data) - _KNOWN_FIELDS
    if unknown:
        raise SkeletonError(f"{source}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_FIELDS)}")
    label = str(data.get("name", Path(source).stem))
    where = f"{source} (skeleton {label!r})"
    for key in ("names", "sigmas"):
        if key not in data:
            raise SkeletonError(f"{where}: missing field '{key}'")
    names = data["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise SkeletonError(f"{where}: field 'names' must be a list of non-empty strings")
    sigmas = data["sigmas"]
    if not isinstance(sigmas, list) or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in sigmas):
        raise SkeletonError(f"{where}: field 'sigmas' must be a list of numbers")
    if len(sigmas) != len(names):
        raise SkeletonError(f"{where}: field 'sigmas' has {len(sigmas)} values but there are {len(names)} names")
    _check_unique(names, where)
    position = {canonical(n): i for i, n in enumerate(names)}  # pairs and parts may use any alias of a name

    def pairs(key: str) -> tuple[tuple[int, int], ...]:
        out = []
        for k, pair in enumerate(data.get(key) or []):
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise SkeletonError(f"{where}: {key}[{k}] must be a pair of names, got {pair!r}")
            for end in pair:
                if canonical(str(end)) not in position:
                    raise SkeletonError(f"{where}: {key}[{k}] names unknown point {end!r}{_suggest(str(end), names)}")
            out.append((position[canonical(pair[0])], position[canonical(pair[1])]))
        return tuple(out)

    groups = []
    for part, members in (data.get("parts") or {}).items():
        if isinstance(members, list) and len(members) == 2 and all(isinstance(m, int) for m in members):
            start, stop = members  # a half-open index range [start, stop)
            if not 0 <= start < stop <= len(names):
                raise SkeletonError(f"{where}: parts.{part} range {members} is outside 0..{len(names)}")
            indices = tuple(range(start, stop))
        elif isinstance(members, list) and all(isinstance(m, str) for m in members):
            for m in members:
                if canonical(m) not in position:
                    raise SkeletonError(f"{where}: parts.{part} names unknown point {m!r}{_suggest(m, names)}")
            indices = tuple(position[canonical(m)] for m in members)
        else:
            raise SkeletonError(f"{where}: parts.{part} must be a list of names or an index range [start, stop]")
        groups.append((str(part), indices))
    return Skeleton(
        names=tuple(names),
        sigmas=tuple(float(s) for s in sigmas),
        flip_pairs=_normalise_pairs(pairs("flip_pairs")),
        links=pairs("links"),
        part_groups=tuple(groups),
        name=label,
        description=str(data.get("description", "")),
    )


def _normalise_pairs(pairs: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Flip pairs as (smaller, larger) index, sorted, so equal skeletons compare equal."""
    return tuple(sorted({(min(a, b), max(a, b)) for a, b in pairs}))


def _check_unique(names: Iterable[str], where: str) -> None:
    seen: dict[str, str] = {}
    for n in names:
        c = canonical(n)
        if c in seen:
            same = "" if seen[c] == n else f" (both are {c!r} through the alias table)"
            raise SkeletonError(f"{where}: duplicate keypoint name {n!r}{same}")
        seen[c] = n


def _suggest(word: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=3)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _validate(s: Skeleton) -> None:
    where = f"skeleton {s.name!r}"
    if len(s.sigmas) != len(s.names):
        raise SkeletonError(f"{where}: {len(s.sigmas)} sigmas for {len(s.names)} keypoints")
    _check_unique(s.names, where)
    k = len(s.names)
    for sigma, n in zip(s.sigmas, s.names):
        if not (np.isfinite(sigma) and sigma > 0):
            raise SkeletonError(f"{where}: sigma of {n!r} must be a positive number, got {sigma}")
    partner: dict[int, int] = {}
    for a, b in s.flip_pairs + s.links:
        if not (0 <= a < k and 0 <= b < k):
            raise SkeletonError(f"{where}: pair ({a}, {b}) refers to a point outside 0..{k - 1}")
    for a, b in s.flip_pairs:
        for x, y in ((a, b), (b, a)):
            if x in partner and partner[x] != y:
                raise SkeletonError(f"{where}: {s.names[x]!r} has two flip partners")
            partner[x] = y
        na, nb = s.names[a], s.names[b]
        if a == b:
            raise SkeletonError(f"{where}: {na!r} is paired with itself; leave middle points out of flip_pairs")
        if (side(na) != "center" or side(nb) != "center") and canonical(mirrored(na)) != canonical(nb):
            raise SkeletonError(f"{where}: flip pair ({na!r}, {nb!r}) is not a left/right twin "
                                f"(the twin of {na!r} is {mirrored(na)!r})")
    names = s.canonical_names
    for i, n in enumerate(s.names):
        if side(n) != "center" and i not in partner:
            twin = mirrored(canonical(n))
            if twin in names:
                raise SkeletonError(f"{where}: {n!r} has no flip partner although {s.names[names.index(twin)]!r} "
                                    f"exists; add the pair to flip_pairs")
            raise SkeletonError(f"{where}: flip partner of {n!r} is missing (no point named {mirrored(n)!r})")
    for part, members in s.part_groups:
        for m in members:
            if not 0 <= m < k:
                raise SkeletonError(f"{where}: part {part!r} refers to index {m} outside 0..{k - 1}")

"""Built-in skeletons, shipped as YAML data files in `presets/`, and loading of user skeleton files."""
from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from unionpose.skeletons.skeleton import Skeleton, SkeletonError

# PyYAML's safe loader, in C when libyaml is there: the presets load four times faster (`unionpose` start-up).
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def preset_names() -> list[str]:
    """Names of the built-in skeletons, sorted."""
    folder = resources.files("unionpose.skeletons") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=None)
def _preset(name: str) -> Skeleton:
    text = (resources.files("unionpose.skeletons") / "presets" / f"{name}.yaml").read_text()
    return Skeleton.from_dict(yaml.load(text, Loader=SafeLoader), source=f"preset {name}")


def load_skeleton_file(path: str | Path) -> Skeleton:
    """Read a user skeleton from YAML (same layout as the presets); errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"skeleton file not found: {path}")
    try:
        data = yaml.load(path.read_bytes(), Loader=SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SkeletonError(f"{path}: not valid YAML: {error}") from None
    return Skeleton.from_dict(data, source=str(path))


def get_skeleton(spec: "str | Path | Skeleton") -> Skeleton:
    """A preset by name (`coco17`), a YAML file path, or a union written `coco17+mpii16`."""
    if isinstance(spec, Skeleton):
        return spec
    text = str(spec)
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        return load_skeleton_file(text)
    if "+" in text:
        from unionpose.skeletons.algebra import union

        return union(*(get_skeleton(part) for part in text.split("+")))
    names = preset_names()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SkeletonError(f"unknown skeleton {text!r}{hint} (built-in: {', '.join(names)}; or give a YAML file)")
    return _preset(text)

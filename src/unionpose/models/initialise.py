"""Starting a model from released or earlier weights of the same size, whatever their skeleton and input size.

Nobody trains a union model from scratch when released weights exist (the RTMPose recipes start from a CSPNeXt
backbone pretrained on AIC + COCO; a COCO + MPII model is best started from a COCO RTMPose). Accepted sources:

- a UnionPose model file, or a reference-toolbox RTMPose checkpoint (`.pth`, read weights-only, or `.safetensors`;
  its skeleton is not in the file: the caller names it, or it is inferred where the keypoint count is unambiguous):
  the backbone and the keypoint-independent head tensors are copied; the head tensors whose shape follows the input
  size are resampled by crop geometry (below); the keypoint-specific output channels (the rows of
  `head.keypoint_conv`) are copied by keypoint name through the alias table (`skeletons.keypoint_mapping`); points
  the source lacks keep the fresh initialisation of the model passed in;
- a backbone alone: the toolbox's pretrained CSPNeXt checkpoints (their `backbone.*` keys; the heatmap head they were
  pretrained with is ignored and listed) or a UnionPose backbone file (`models/backbone_file.py`).

Resampling to another input size. The token embedding reads one token per cell of the stride-32 feature map: its
weight, viewed as (hidden, feature h, feature w), is resized bilinearly (half-pixel centres, antialiased when
shrinking) and scaled by the ratio of the token counts, so that a feature map resized with the crop gives the same
embedding. A SimCC classifier has one row per bin: row b of the new classifier is the old classifier read, by linear
interpolation, at the bin that sits at the same place in the crop (`core.simcc.resampled_bin_positions`), so a bin
keeps meaning the same fraction of the crop. For the same input size both are exact copies.

Another model size is refused: its tensors differ in shape, and the error names them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open

from unionpose.core.model_description import MODEL_FILE
from unionpose.core.simcc import resampled_bin_positions
from unionpose.models.backbone_file import BACKBONE_PREFIX, is_backbone_file, read_backbone_file
from unionpose.models.model_file import load_model_file
from unionpose.models.rtmpose import BACKBONE_STRIDE, RTMPose
from unionpose.models.toolbox_weights import (
    convert_toolbox_state_dict, infer_toolbox_architecture, infer_toolbox_size, read_toolbox_state_dict,
)
from unionpose.skeletons import Skeleton, get_skeleton, keypoint_mapping

KEYPOINT_TENSORS = ("head.keypoint_conv.weight", "head.keypoint_conv.bias")     # one row per keypoint
TOKEN_EMBED = "head.token_embed.weight"                                         # (hidden, feature h * w)
CLASSIFIERS = {"head.cls_x.weight": 1, "head.cls_y.weight": 0}                  # -> axis of (height, width)
DEPTH_CLASSIFIER = "head.cls_z.weight"      # the depth head: copied when the source has one of the same bins

# Released toolbox checkpoints do not name their skeleton; these counts identify one (17 could also be PoseTrack's
# 17 points, which the released RTMPose models do not predict; 14 and 21 are ambiguous and not listed).
SKELETON_BY_KEYPOINT_COUNT = {17: "coco17", 16: "mpii16", 133: "coco_wholebody133", 26: "halpe26"}

MODEL_FILE_KIND = "UnionPose model file"
TOOLBOX_MODEL_KIND = "toolbox RTMPose checkpoint"
BACKBONE_FILE_KIND = "UnionPose backbone file"
TOOLBOX_BACKBONE_KIND = "toolbox backbone checkpoint"


@dataclass
class InitRecord:
    """What `initialise_model` did, for the run folder (`init.json`) and the start of training's output.

    Every tensor of the model is in exactly one of `loaded` (copied whole), `resampled` (to the input size),
    `mapped` (keypoint rows copied by name) and `fresh` (left as initialised)."""

    source: str
    kind: str
    source_model: str
    target_model: str
    loaded: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)
    mapped: list[str] = field(default_factory=list)
    keypoints: list[tuple[str, int, int]] = field(default_factory=list)   # (name, source channel, target channel)
    fresh_keypoints: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)                       # keys of the file not used
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the start of a training run."""
        backbone = sum(key.startswith(BACKBONE_PREFIX) for key in self.loaded)
        lines = [f"init from {self.source} ({self.kind}: {self.source_model})",
                 f"  into {self.target_model}: {len(self.loaded)} tensors loaded ({backbone} backbone, "
                 f"{len(self.loaded) - backbone} head)"
                 + (f", resampled to the input size: {', '.join(self.resampled)}" if self.resampled else "")]
        total = len(self.keypoints) + len(self.fresh_keypoints)
        if self.keypoints:
            moved = [f"{name} {source}->{target}" for name, source, target in self.keypoints if source != target]
            order = (f"moved: {', '.join(moved[:6])}" + (", ..." if moved[6:] else "")) if moved else "same order"
            lines.append(f"  keypoint channels by name: {len(self.keypoints)} of {total} ({order})")
        lines.append(f"  fresh: {len(self.fresh_keypoints)} of {total} keypoints"
                     + (f" ({', '.join(self.fresh_keypoints[:8])}{', ...' if self.fresh_keypoints[8:] else ''})"
                        if self.fresh_keypoints else "") + f", {len(self.fresh)} tensors")
        if self.ignored:
            lines.append(f"  ignored {len(self.ignored)} keys of the file: {', '.join(self.ignored[:4])}"
                         + (", ..." if self.ignored[4:] else ""))
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


@dataclass(frozen=True)
class _Weights:
    """A source file's tensors under our key names and what is known of the model they came from."""

    kind: str
    model_size: str
    tensors: dict[str, torch.Tensor]
    skeleton: Skeleton | None = None                 # None: a backbone alone
    input_size: tuple[int, int] | None = None
    split_ratio: float | None = None
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.skeleton is None:
            return f"CSPNeXt-{self.model_size} backbone"
        return _describe(self.model_size, self.skeleton, self.input_size)


def initialise_model(model: RTMPose, skeleton: Skeleton, path: str | Path, *,
                     source_skeleton: str | Skeleton | None = None) -> InitRecord:
    """Load what `path` holds into `model` (predicting `skeleton`), in place, and say what was done.

    `source_skeleton` names the skeleton of a toolbox RTMPose checkpoint (preset name, YAML file or Skeleton); when
    absent it is inferred from the keypoint count where that is unambiguous (SKELETON_BY_KEYPOINT_COUNT). A UnionPose
    model file names its own (a different `source_skeleton` is an error); a backbone alone has none to name.
    """
    if skeleton.num_keypoints != model.num_keypoints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_keypoints} keypoints but the model predicts "
                         f"{model.num_keypoints}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights to start from not found: {path}")
    wanted = get_skeleton(source_skeleton) if source_skeleton is not None else None
    weights = _read_weights(path, model.split_ratio, wanted)
    target = model.state_dict()
    resampled = _resampled_keys(weights, model)
    _refuse_other_sizes(path, weights, model, target, resampled)
    record = InitRecord(source=str(path), kind=weights.kind, source_model=weights.describe(),
                        target_model=_describe(model.size, skeleton, model.input_size),
                        ignored=list(weights.ignored), notes=list(weights.notes))
    with torch.no_grad():
        for key, tensor in target.items():
            if weights.skeleton is None and not key.startswith(BACKBONE_PREFIX):
                record.fresh.append(key)
            elif key in KEYPOINT_TENSORS:
                continue                                     # below, row by row
            elif key == DEPTH_CLASSIFIER and not _same_depth_head(weights, tensor):
                record.fresh.append(key)
                record.notes.append("the depth head starts fresh (the source has none, or other depth bins)")
            elif key in resampled:
                tensor.copy_(_resample(key, weights, model))
                record.resampled.append(key)
            else:
                tensor.copy_(weights.tensors[key])
                record.loaded.append(key)
        if DEPTH_CLASSIFIER in weights.tensors and DEPTH_CLASSIFIER not in target:
            record.ignored.append(DEPTH_CLASSIFIER)              # a 3D model's depth head, into a 2D model
        if weights.skeleton is None:
            record.fresh_keypoints = list(skeleton.names)
        else:
            _copy_keypoint_rows(weights, skeleton, target, record)
    return record


def _same_depth_head(weights: _Weights, tensor: torch.Tensor) -> bool:
    source = weights.tensors.get(DEPTH_CLASSIFIER)
    return source is not None and source.shape == tensor.shape


def _describe(size: str, skeleton: Skeleton, input_size: tuple[int, int] | None) -> str:
    shape = f", input {input_size[0]}x{input_size[1]}" if input_size else ""
    return f"RTMPose-{size}, {skeleton.name} ({skeleton.num_keypoints} keypoints){shape}"


def _read_weights(path: Path, split_ratio: float, source_skeleton: Skeleton | None) -> _Weights:
    """Tell the four kinds of file apart and read one into our key names."""
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, framework="pt") as reader:
                metadata = reader.metadata() or {}
        except (SafetensorError, OSError) as error:
            raise ValueError(f"{path}: not a readable safetensors file (truncated or corrupted?): {error}") from error
        if metadata.get(MODEL_FILE.format_key) == MODEL_FILE.format:
            return _model_file(path, source_skeleton)
        if is_backbone_file(metadata):
            backbone = read_backbone_file(path)
            return _Weights(BACKBONE_FILE_KIND, backbone.model_size, backbone.tensors)
    state = read_toolbox_state_dict(path)
    if "head.cls_x.weight" in state:
        return _toolbox_model(path, state, split_ratio, source_skeleton)
    if not any(key.startswith(BACKBONE_PREFIX) for key in state):
        raise ValueError(f"{path}: neither an RTMPose checkpoint (no head.cls_x.weight) nor a CSPNeXt backbone "
                         f"(no {BACKBONE_PREFIX}* keys)")
    size = infer_toolbox_size(state, path)
    with torch.device("meta"):                      # names and shapes of the source's own size
        layout = RTMPose(size, 1, (BACKBONE_STRIDE, BACKBONE_STRIDE))
    tensors = convert_toolbox_state_dict(state, layout, path, prefix=BACKBONE_PREFIX)
    ignored = sorted(key for key in state if not key.startswith(BACKBONE_PREFIX))
    return _Weights(TOOLBOX_BACKBONE_KIND, size, tensors, ignored=ignored)


def _model_file(path: Path, source_skeleton: Skeleton | None) -> _Weights:
    source, info = load_model_file(path)
    if source_skeleton is not None and source_skeleton != info.skeleton:
        raise ValueError(f"{path}: the model file predicts skeleton {info.skeleton.name!r}, not the "
                         f"{source_skeleton.name!r} named for it (drop model.init_skeleton: the file names its own)")
    return _Weights(MODEL_FILE_KIND, info.model_size, source.state_dict(), info.skeleton, info.input_size,
                    info.split_ratio)


def _toolbox_model(path: Path, state: dict[str, torch.Tensor], split_ratio: float,
                   source_skeleton: Skeleton | None) -> _Weights:
    arch = infer_toolbox_architecture(state, split_ratio, source=path)
    with torch.device("meta"):                      # names and shapes of the source's own architecture
        layout = RTMPose(arch.size, arch.num_keypoints, arch.input_size, split_ratio)
    tensors = convert_toolbox_state_dict(state, layout, path)
    notes = []
    if source_skeleton is None:
        name = SKELETON_BY_KEYPOINT_COUNT.get(arch.num_keypoints)
        if name is None:
            known = ", ".join(f"{count} -> {preset}" for count, preset in SKELETON_BY_KEYPOINT_COUNT.items())
            raise ValueError(f"{path}: a toolbox checkpoint does not name its skeleton and {arch.num_keypoints} "
                             f"keypoints do not identify one ({known}); set model.init_skeleton (--init-skeleton)")
        source_skeleton = get_skeleton(name)
        notes.append(f"skeleton {name} inferred from the keypoint count ({arch.num_keypoints}); set "
                     "model.init_skeleton if the checkpoint predicts another")
    elif source_skeleton.num_keypoints != arch.num_keypoints:
        raise ValueError(f"{path}: the checkpoint predicts {arch.num_keypoints} keypoints but model.init_skeleton "
                         f"{source_skeleton.name!r} has {source_skeleton.num_keypoints}")
    return _Weights(TOOLBOX_MODEL_KIND, arch.size, tensors, source_skeleton, arch.input_size, split_ratio,
                    notes=notes)


def _resampled_keys(weights: _Weights, model: RTMPose) -> set[str]:
    """The head tensors whose meaning follows the input size and differs between source and model."""
    keys: set[str] = set()
    if weights.skeleton is None:            # a backbone alone: no head to resample
        return keys
    if _feature_size(weights.input_size) != _feature_size(model.input_size):
        keys.add(TOKEN_EMBED)
    for key, axis in CLASSIFIERS.items():
        if (weights.input_size[axis], weights.split_ratio) != (model.input_size[axis], model.split_ratio):
            keys.add(key)
    return keys


def _feature_size(input_size: tuple[int, int]) -> tuple[int, int]:
    return input_size[0] // BACKBONE_STRIDE, input_size[1] // BACKBONE_STRIDE


def _resample(key: str, weights: _Weights, model: RTMPose) -> torch.Tensor:
    """One input-size-dependent head tensor of the source, moved to `model`'s input size (module docstring)."""
    weight = weights.tensors[key].float()
    if key == TOKEN_EMBED:
        source, target = _feature_size(weights.input_size), _feature_size(model.input_size)
        grid = weight.reshape(1, weight.shape[0], *source)             # tokens are the feature map, row-major
        resized = F.interpolate(grid, size=target, mode="bilinear", align_corners=False, antialias=True)
        return resized.reshape(weight.shape[0], -1) * (source[0] * source[1] / (target[0] * target[1]))
    axis = CLASSIFIERS[key]
    position = torch.from_numpy(resampled_bin_positions(weights.input_size[axis], weights.split_ratio,
                                                        model.input_size[axis], model.split_ratio))
    lower = position.floor().long()
    upper = (lower + 1).clamp(max=weight.shape[0] - 1)
    fraction = (position - lower).float()[:, None]
    return weight[lower] + (weight[upper] - weight[lower]) * fraction


def _copy_keypoint_rows(weights: _Weights, skeleton: Skeleton, target: dict[str, torch.Tensor],
                        record: InitRecord) -> None:
    """Each keypoint's output channel from the source channel of the same canonical name; the others stay fresh."""
    mapping = keypoint_mapping(weights.skeleton, skeleton)
    for channel, source_channel in enumerate(mapping.src_index.tolist()):
        if source_channel < 0:
            record.fresh_keypoints.append(skeleton.names[channel])
            continue
        for key in KEYPOINT_TENSORS:
            target[key][channel] = weights.tensors[key][source_channel]
        record.keypoints.append((skeleton.names[channel], source_channel, channel))
    if record.keypoints:
        record.mapped = list(KEYPOINT_TENSORS)
    else:
        record.fresh += list(KEYPOINT_TENSORS)
        record.notes.append(f"no keypoint of {weights.skeleton.name} is in {skeleton.name}: every keypoint "
                            "channel starts fresh")


def _refuse_other_sizes(path: Path, weights: _Weights, model: RTMPose, target: dict[str, torch.Tensor],
                        resampled: set[str]) -> None:
    """A ValueError naming the tensors whose shapes differ (another model size), before anything is copied."""
    mismatched = []
    for key, tensor in target.items():
        if key in resampled or key == DEPTH_CLASSIFIER or (weights.skeleton is None
                                                            and not key.startswith(BACKBONE_PREFIX)):
            continue
        source = weights.tensors.get(key)
        compared = slice(1, None) if key in KEYPOINT_TENSORS else slice(None)   # keypoint rows: their shape only
        if source is None or source.shape[compared] != tensor.shape[compared]:
            shape = tuple(source.shape) if source is not None else "absent"
            mismatched.append(f"{key} {shape} vs {tuple(tensor.shape)}")
    if not mismatched:
        return
    shown = ", ".join(mismatched[:4]) + (f", ... ({len(mismatched)} in all)" if mismatched[4:] else "")
    advice = (f"; start from weights of size {model.size}, or set model.size: {weights.model_size}"
              if weights.model_size != model.size else "")
    raise ValueError(f"{path}: {weights.describe()} cannot initialise RTMPose-{model.size} "
                     f"(tensor shapes differ, source vs model: {shown}){advice}")

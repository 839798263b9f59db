"""Reading the reference pose toolbox's RTMPose state dicts and mapping their key names onto ours."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from unionpose.core.constants import SIMCC_SPLIT_RATIO
from unionpose.core.model_description import MODEL_FILE
from unionpose.models.cspnext import STEM_CHANNELS
from unionpose.models.rtmpose import BACKBONE_STRIDE, MODEL_SIZES, RTMPose

# Keys the toolbox saves that are not part of the network (the preprocessor's mean/std buffers).
IGNORED_PREFIXES = ("data_preprocessor.",)
BATCHNORM_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

# Released `.pth` files carry NumPy arrays and scalars in their `meta` (dataset sigmas); these are the only non-tensor
# globals the restricted unpickler may build. NumPy 1 and NumPy 2 spell their functions' module differently.
_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]
_NUMPY_SAFE_GLOBALS = [
    *((function, f"numpy.{core}.multiarray.{name}")
      for function, name in ((_NUMPY_RECONSTRUCT, "_reconstruct"), (_NUMPY_SCALAR, "scalar"))
      for core in ("core", "_core")),
    np.ndarray,
    np.dtype,
    *(type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGUO"),
]


@dataclass(frozen=True)
class ToolboxArchitecture:
    """What a toolbox state dict implies about the network: zoo size, keypoint count and (height, width) input."""

    size: str
    num_keypoints: int
    input_size: tuple[int, int]


def read_toolbox_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a toolbox `.safetensors` state dict or released `.pth` checkpoint, with `module.` stripped and the
    non-model keys (IGNORED_PREFIXES) dropped. A `.pth` is unpickled with `weights_only=True`, never fully."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        try:
            with safe_open(path, framework="pt") as reader:
                if (reader.metadata() or {}).get(MODEL_FILE.format_key) == MODEL_FILE.format:
                    raise ValueError(f"{path}: already a UnionPose model file, not a toolbox state dict")
                state = {key: reader.get_tensor(key) for key in reader.keys()}
        except SafetensorError as error:
            raise ValueError(f"{path}: not a readable safetensors file ({error})") from error
    else:
        try:
            # A file that is no checkpoint at all makes torch warn about its pickle protocol before it refuses it:
            # the refusal (below) is the message.
            with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError depending on the damage
            raise ValueError(f"{path}: cannot be loaded as a weights-only PyTorch checkpoint "
                             f"({_unpickling_reason(error)})") from error
        state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a state dict (or a checkpoint with a 'state_dict' key), "
                             f"found {type(state).__name__}")
    cleaned = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: state dict entry {key!r} is a {type(value).__name__}, not a tensor")
        key = key.removeprefix("module.")
        if not key.startswith(IGNORED_PREFIXES):
            cleaned[key] = value
    return cleaned


def _unpickling_reason(error: Exception) -> str:
    """The informative lines of torch's weights-only refusal, without its advice to load unsafely."""
    boilerplate = ("Weights only load failed", "(1)", "(2)", "Check the documentation", "Please file an issue")
    lines = [line.strip() for line in str(error).splitlines()]
    reason = " ".join(line for line in lines if line and not line.startswith(boilerplate))
    return reason or type(error).__name__


def _conv_norm_act(ours: str, theirs: str) -> dict[str, str]:
    """Our ConvNormAct (conv, norm) against the toolbox's ConvModule (conv, bn)."""
    pairs = {f"{ours}.conv.weight": f"{theirs}.conv.weight"}
    pairs.update({f"{ours}.norm.{leaf}": f"{theirs}.bn.{leaf}" for leaf in BATCHNORM_LEAVES})
    return pairs


def toolbox_key_map(model: RTMPose) -> dict[str, str]:
    """Our state-dict key -> the toolbox's key, for every tensor of `model` (block counts read from the model)."""
    mapping: dict[str, str] = {}
    for i in range(len(model.backbone.stem)):
        mapping.update(_conv_norm_act(f"backbone.stem.{i}", f"backbone.stem.{i}"))
    for index, stage in enumerate(model.backbone.stages):
        ours, theirs = f"backbone.stages.{index}", f"backbone.stage{index + 1}"
        mapping.update(_conv_norm_act(f"{ours}.downsample", f"{theirs}.0"))
        csp_index = 1
        if stage.spp is not None:
            mapping.update(_conv_norm_act(f"{ours}.spp.reduce", f"{theirs}.1.conv1"))
            mapping.update(_conv_norm_act(f"{ours}.spp.fuse", f"{theirs}.1.conv2"))
            csp_index = 2
        csp, their_csp = f"{ours}.csp", f"{theirs}.{csp_index}"
        mapping.update(_conv_norm_act(f"{csp}.main", f"{their_csp}.main_conv"))
        mapping.update(_conv_norm_act(f"{csp}.shortcut", f"{their_csp}.short_conv"))
        mapping.update(_conv_norm_act(f"{csp}.fuse", f"{their_csp}.final_conv"))
        for leaf in ("weight", "bias"):
            mapping[f"{csp}.attention.fc.{leaf}"] = f"{their_csp}.attention.fc.{leaf}"
        for block in range(len(stage.csp.blocks)):
            ours_block, their_block = f"{csp}.blocks.{block}", f"{their_csp}.blocks.{block}"
            mapping.update(_conv_norm_act(f"{ours_block}.conv", f"{their_block}.conv1"))
            mapping.update(_conv_norm_act(f"{ours_block}.depthwise", f"{their_block}.conv2.depthwise_conv"))
            mapping.update(_conv_norm_act(f"{ours_block}.pointwise", f"{their_block}.conv2.pointwise_conv"))
    mapping.update({
        "head.keypoint_conv.weight": "head.final_layer.weight",
        "head.keypoint_conv.bias": "head.final_layer.bias",
        "head.token_norm.gain": "head.mlp.0.g",
        "head.token_embed.weight": "head.mlp.1.weight",
        "head.gau.norm.gain": "head.gau.ln.g",
        "head.gau.proj_in.weight": "head.gau.uv.weight",
        "head.gau.qk_scale": "head.gau.gamma",
        "head.gau.qk_offset": "head.gau.beta",
        "head.gau.proj_out.weight": "head.gau.o.weight",
        "head.gau.residual_scale": "head.gau.res_scale.scale",
        "head.cls_x.weight": "head.cls_x.weight",
        "head.cls_y.weight": "head.cls_y.weight",
    })
    return mapping


def _listing(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def convert_toolbox_state_dict(state: dict[str, torch.Tensor], model: RTMPose,
                               source: str | Path = "<state dict>", prefix: str = "") -> dict[str, torch.Tensor]:
    """The toolbox state dict renamed to `model`'s keys. Every key must map both ways and every shape must match;
    otherwise a ValueError names `source` and lists the offending keys.

    With `prefix` (e.g. "backbone."), only the keys under it are converted, on both sides: the toolbox's pretrained
    backbones come with another head, which the caller reports as ignored."""
    ours_state = {key: value for key, value in model.state_dict().items() if key.startswith(prefix)}
    mapping = {ours: theirs for ours, theirs in toolbox_key_map(model).items() if ours.startswith(prefix)}
    state = {key: value for key, value in state.items() if key.startswith(prefix)}
    unmapped_ours = sorted(set(ours_state) - set(mapping))
    if unmapped_ours:  # a gap in the table above, not in the file
        raise ValueError(f"no toolbox name for our keys: {_listing(unmapped_ours)}")
    theirs_to_ours = {theirs: ours for ours, theirs in mapping.items()}
    problems = []
    unexpected = sorted(set(state) - set(theirs_to_ours))
    if unexpected:
        problems.append(f"keys the {model.size} model does not have: {_listing(unexpected)}")
    missing = sorted(set(theirs_to_ours) - set(state))
    if missing:
        problems.append(f"keys missing for the {model.size} model: {_listing(missing)}")
    mismatched = [f"{theirs} {tuple(state[theirs].shape)} vs {tuple(ours_state[ours].shape)} expected"
                  for theirs, ours in theirs_to_ours.items()
                  if theirs in state and state[theirs].shape != ours_state[ours].shape]
    if mismatched:
        problems.append(f"shape mismatches: {_listing(mismatched)}")
    if problems:
        target = (f"RTMPose-{model.size} with {model.num_keypoints} keypoints at "
                  f"{model.input_size[0]}x{model.input_size[1]}") if not prefix else f"RTMPose-{model.size} {prefix}*"
        raise ValueError(f"{source}: weights do not fit {target}: " + "; ".join(problems))
    return {ours: state[theirs] for theirs, ours in theirs_to_ours.items()}


def infer_toolbox_architecture(state: dict[str, torch.Tensor], split_ratio: float = SIMCC_SPLIT_RATIO,
                               source: str | Path = "<state dict>") -> ToolboxArchitecture:
    """Size from the stem width, keypoints from the head's conv, input size from the SimCC bin counts."""
    needed = ("backbone.stem.2.conv.weight", "head.final_layer.weight", "head.cls_x.weight", "head.cls_y.weight")
    absent = [key for key in needed if key not in state]
    if absent:
        raise ValueError(f"{source}: not an RTMPose state dict (missing {', '.join(absent)})")
    size = infer_toolbox_size(state, source)
    height = state["head.cls_y.weight"].shape[0] / split_ratio
    width = state["head.cls_x.weight"].shape[0] / split_ratio
    if height != int(height) or width != int(width) or height % BACKBONE_STRIDE or width % BACKBONE_STRIDE:
        raise ValueError(f"{source}: SimCC bins {state['head.cls_y.weight'].shape[0]} (y) x "
                         f"{state['head.cls_x.weight'].shape[0]} (x) do not give an input size that is a multiple of "
                         f"{BACKBONE_STRIDE} at split ratio {split_ratio}")
    return ToolboxArchitecture(size, int(state["head.final_layer.weight"].shape[0]), (int(height), int(width)))


def infer_toolbox_size(state: dict[str, torch.Tensor], source: str | Path = "<state dict>") -> str:
    """The zoo size of a toolbox CSPNeXt backbone (alone or in an RTMPose), from the width of its stem."""
    stem = "backbone.stem.2.conv.weight"
    if stem not in state:
        raise ValueError(f"{source}: not a CSPNeXt backbone (no {stem})")
    stem_width = state[stem].shape[0]
    sizes = [name for name, spec in MODEL_SIZES.items() if int(STEM_CHANNELS * spec.widen) == stem_width]
    if not sizes:
        raise ValueError(f"{source}: stem width {stem_width} matches no RTMPose size "
                         f"({', '.join(f'{n}={int(STEM_CHANNELS * s.widen)}' for n, s in MODEL_SIZES.items())})")
    return sizes[0]


def check_toolbox_architecture(arch: ToolboxArchitecture, *, size: str | None = None,
                               num_keypoints: int | None = None, input_size: tuple[int, int] | None = None,
                               source: str | Path = "<state dict>") -> None:
    """Raise a ValueError naming `source` when what the user declared differs from what the weights imply."""
    def hw(pair: tuple[int, int] | None) -> str | None:
        return f"{pair[0]}x{pair[1]}" if pair else None

    declared = {"size": (size, arch.size), "keypoints": (num_keypoints, arch.num_keypoints),
                "input size": (hw(input_size), hw(arch.input_size))}
    conflicts = [f"{name} {wanted} declared but the weights are {found}"
                 for name, (wanted, found) in declared.items() if wanted is not None and wanted != found]
    if conflicts:
        raise ValueError(f"{source}: " + "; ".join(conflicts) +
                         f" (RTMPose-{arch.size}, {arch.num_keypoints} keypoints, input {hw(arch.input_size)})")


def load_toolbox_model(path: str | Path, split_ratio: float = SIMCC_SPLIT_RATIO) -> RTMPose:
    """An RTMPose built to the architecture a toolbox checkpoint implies, with its weights, in eval mode."""
    state = read_toolbox_state_dict(path)
    arch = infer_toolbox_architecture(state, split_ratio, source=path)
    model = RTMPose(arch.size, arch.num_keypoints, arch.input_size, split_ratio)
    model.load_state_dict(convert_toolbox_state_dict(state, model, source=path))
    return model.eval()

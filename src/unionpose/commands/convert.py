"""`unionpose convert`: a reference-toolbox RTMPose checkpoint -> a UnionPose model file; with `--backbone-only`,
the CSPNeXt backbone of any toolbox checkpoint (a pretrained CSPNeXt, an RTMPose) -> a UnionPose backbone file."""
from __future__ import annotations

import argparse
from pathlib import Path

from unionpose.commands.models import parse_input_size

HELP = "convert a reference-toolbox RTMPose checkpoint to a model file (or its backbone to a backbone file)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from unionpose.core.constants import SIMCC_SPLIT_RATIO
    from unionpose.models import MODEL_SIZES

    parser = subparsers.add_parser("convert", help=HELP)
    parser.add_argument("checkpoint", type=Path, help="toolbox state dict: .safetensors or a released .pth")
    parser.add_argument("--out", type=Path, required=True, help="the UnionPose model file to write (.safetensors)")
    parser.add_argument("--backbone-only", action="store_true",
                        help="write only the backbone (`backbone.*` keys; any other head is dropped) as a backbone "
                             "file for model.init, e.g. from the toolbox's pretrained cspnext-*_udp-aic-coco .pth")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--size", choices=list(MODEL_SIZES), help="expected size (checked against the weights)")
    parser.add_argument("--keypoints", type=int, metavar="K", help="expected keypoint count (checked)")
    parser.add_argument("--input", type=parse_input_size, metavar="HxW", help="expected input size (checked)")
    parser.add_argument("--skeleton", default="coco17", help="skeleton of the keypoints, preset or YAML (coco17)")
    parser.add_argument("--split-ratio", type=float, default=SIMCC_SPLIT_RATIO,
                        help=f"SimCC bins per pixel (default {SIMCC_SPLIT_RATIO})")
    parser.add_argument("--sigma", type=float, nargs=2, metavar=("SX", "SY"),
                        help="SimCC sigma in bins the model was trained with (default: the recipe's for the size)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose import __version__
    from unionpose.core.output_paths import check_output_file
    from unionpose.models import (
        RTMPose, check_toolbox_architecture, convert_toolbox_state_dict, infer_toolbox_architecture,
        read_toolbox_state_dict, save_model_file,
    )
    from unionpose.skeletons import get_skeleton

    check_output_file(args.out, overwrite=args.overwrite, inputs=[args.checkpoint])
    state = read_toolbox_state_dict(args.checkpoint)
    if args.backbone_only:
        return _convert_backbone(args, state)
    arch = infer_toolbox_architecture(state, args.split_ratio, source=args.checkpoint)
    check_toolbox_architecture(arch, size=args.size, num_keypoints=args.keypoints, input_size=args.input,
                               source=args.checkpoint)
    skeleton = get_skeleton(args.skeleton)
    if skeleton.num_keypoints != arch.num_keypoints:
        raise ValueError(f"{args.checkpoint}: the weights predict {arch.num_keypoints} keypoints but --skeleton "
                         f"{args.skeleton} has {skeleton.num_keypoints}")
    model = RTMPose(arch.size, arch.num_keypoints, arch.input_size, args.split_ratio)
    model.load_state_dict(convert_toolbox_state_dict(state, model, source=args.checkpoint))
    save_model_file(args.out, model, skeleton, codec_sigma=args.sigma,
                    extra={"source_checkpoint": args.checkpoint.name, "converted_by": f"unionpose {__version__}"})
    height, width = arch.input_size
    print(f"RTMPose-{arch.size}, {arch.num_keypoints} keypoints ({skeleton.name}), input {height}x{width}: "
          f"{len(state)} tensors -> {args.out}")
    return 0


def _convert_backbone(args: argparse.Namespace, state: dict) -> int:
    from unionpose import __version__
    from unionpose.models import RTMPose, convert_toolbox_state_dict, infer_toolbox_size
    from unionpose.models.backbone_file import BACKBONE_PREFIX, save_backbone_file

    if args.keypoints is not None or args.input is not None:
        raise ValueError("--backbone-only: a backbone has no keypoints or input size; drop --keypoints and --input")
    size = infer_toolbox_size(state, args.checkpoint)
    if args.size is not None and args.size != size:
        raise ValueError(f"{args.checkpoint}: size {args.size} declared but the backbone is CSPNeXt-{size}")
    model = RTMPose(size, 1, (32, 32))            # only its backbone is written
    model.load_state_dict(convert_toolbox_state_dict(state, model, args.checkpoint, prefix=BACKBONE_PREFIX),
                          strict=False)
    save_backbone_file(args.out, model, extra={"source_checkpoint": args.checkpoint.name,
                                               "converted_by": f"unionpose {__version__}"})
    dropped = sum(not key.startswith(BACKBONE_PREFIX) for key in state)
    print(f"CSPNeXt-{size} backbone: {len(state) - dropped} tensors -> {args.out} ({dropped} other keys dropped)")
    return 0

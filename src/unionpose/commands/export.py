"""`unionpose export`: a model file -> ONNX (public RTMPose layout, or decoding inside), checked against PyTorch."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export a model file to ONNX and check it against PyTorch"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from unionpose.export.onnx import MAX_OPSET, MIN_OPSET, OPSET

    parser = subparsers.add_parser("export", help=HELP)
    parser.add_argument("--model", type=Path, required=True, help="the UnionPose model file (.safetensors)")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (onnx)")
    parser.add_argument("--decode", action="store_true",
                        help="decode inside the graph: outputs keypoints (N, K, 2) in crop pixels and scores (N, K) "
                             "instead of the SimCC logits simcc_x, simcc_y")
    parser.add_argument("--out", type=Path, help="output path (default: the model file with .onnx); never the model")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--opset", type=int, default=OPSET, choices=range(MIN_OPSET, MAX_OPSET + 1), metavar="N",
                        help=f"ONNX opset, {MIN_OPSET} to {MAX_OPSET} (default {OPSET})")
    parser.add_argument("--no-check", action="store_true", help="skip the PyTorch/ONNXRuntime parity check")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.core.output_paths import check_output_file
    from unionpose.export.onnx import check_parity, export_onnx
    from unionpose.models import load_model_file

    out = check_output_file(args.out or args.model.with_suffix(".onnx"), overwrite=args.overwrite,
                            inputs=[args.model])
    model, info = load_model_file(args.model)
    export_onnx(model, info, out, decode=args.decode, opset=args.opset)
    height, width = info.input_size
    outputs = "keypoints, scores" if args.decode else "simcc_x, simcc_y"
    print(f"{args.model} -> {out}: input 'input' (N, 3, {height}, {width}), outputs {outputs}, "
          f"{info.skeleton.name} ({info.skeleton.num_keypoints} keypoints) in the metadata")
    if args.no_check:
        return 0
    report = check_parity(model, info, out)
    print(report)
    return 0 if report.passed else 1

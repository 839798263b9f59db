"""`unionpose train CONFIG [key.sub=value ...]`: train a model as a recipe says (also under torchrun)."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

HELP = "train a pose model from a YAML recipe (torchrun --nproc_per_node=N -m unionpose train ...)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help=HELP,
        description="Train a pose model from a YAML recipe. Dataset paths in the recipe are relative to its folder; "
                    "the run directory (`output`) is relative to the current folder.")
    parser.add_argument("config", type=Path, help="the YAML recipe")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="override settings, values as YAML scalars (e.g. train.epochs=5 data.train.0.ratio=2)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="continue the run in `output` from its newest checkpoint, or from this checkpoint folder")
    parser.add_argument("--init", type=Path, metavar="PATH",
                        help="weights of the same size to start from (model.init): a model file, a toolbox RTMPose "
                             "or CSPNeXt checkpoint, a backbone file; another skeleton or input size is mapped")
    parser.add_argument("--init-skeleton", metavar="NAME",
                        help="skeleton of a toolbox checkpoint given to --init (model.init_skeleton), when its "
                             "keypoint count does not say")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.engine import load_config, train

    config = load_config(args.config, [*args.overrides, *init_overrides(args.init, args.init_skeleton)])
    result = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":        # under torchrun, rank 0 reports
        summary = {"run_dir": str(result.run_dir), "final_model": str(result.final_model),
                   "best_model": str(result.best_model) if result.best_model else None,
                   "best_metric": result.best_metric, "validation": result.validation, "steps": result.steps,
                   "skipped_images": result.skipped_images}
        print(json.dumps(summary, indent=1))
    return 0


def init_overrides(init: Path | None, init_skeleton: str | None) -> list[str]:
    """`--init` and `--init-skeleton` as overrides; files are taken relative to the current folder (an override in
    the recipe is relative to the recipe's) and quoted, so that no path is read as another YAML value."""
    overrides = []
    if init is not None:
        overrides.append(f"model.init={json.dumps(str(init.resolve()))}")
    if init_skeleton is not None:
        if init_skeleton.endswith((".yaml", ".yml")):
            init_skeleton = str(Path(init_skeleton).resolve())
        overrides.append(f"model.init_skeleton={json.dumps(init_skeleton)}")
    return overrides

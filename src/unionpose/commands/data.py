"""`unionpose data stats|show CONFIG`: what the datasets of a recipe hold in the union skeleton, and how crops look."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from unionpose.commands.models import positive_int

if TYPE_CHECKING:
    from unionpose.data.mixture import UnionMixture

HELP = "inspect the datasets of a recipe"
MAX_PROBLEMS_SHOWN = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help=HELP)
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    _add_stats(actions)
    _add_show(actions)


def _add_stats(actions: argparse._SubParsersAction) -> None:
    stats = actions.add_parser("stats", help="per-dataset counts, and per union keypoint how many annotate / see it")
    stats.add_argument("config", type=Path, help="YAML recipe with `skeleton` and `data.train` / `data.val`")
    stats.add_argument("--split", choices=("train", "val", "all"), default="all", help="which split (default all)")
    stats.add_argument("--verify-images", action="store_true",
                       help="also check every image file's header (exists, not truncated, size as annotated, "
                            "within the pixel limit)")
    _add_pixel_limit(stats)
    stats.set_defaults(func=run_stats)


def _add_pixel_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-image-pixels", type=positive_int, metavar="N",
                        help="refuse images larger than this, from their header (default: each dataset's "
                             "max_image_pixels)")


def _with_pixel_limit(sources: list, max_pixels: int | None) -> list:
    """The datasets with `--max-image-pixels` in place of their own limit, when given."""
    if max_pixels is None:
        return sources
    return [source.model_copy(update={"max_image_pixels": max_pixels}) for source in sources]


def run_stats(args: argparse.Namespace) -> int:
    from unionpose.data.config import load_data_config
    from unionpose.data.mixture import UnionMixture

    config = load_data_config(args.config)
    splits = ("train", "val") if args.split == "all" else (args.split,)
    for split in splits:
        sources = _with_pixel_limit(getattr(config.data, split), args.max_image_pixels)
        if not sources:
            continue
        mixture = UnionMixture(sources, config.skeleton, verify_images=args.verify_images)
        print(format_stats(split, mixture))
    return 0


def _add_show(actions: argparse._SubParsersAction) -> None:
    show = actions.add_parser("show", help="write augmented crops with their keypoint targets drawn, and a sheet")
    show.add_argument("config", type=Path, help="YAML recipe with `skeleton` and `data.train` / `data.val`")
    show.add_argument("--out", type=Path, required=True, help="folder for the PNGs, new or empty")
    show.add_argument("--overwrite", action="store_true", help="write into a used --out folder")
    show.add_argument("--count", type=int, default=8, help="how many crops (default 8), from each dataset in turn")
    show.add_argument("--split", choices=("train", "val"), default="train",
                      help="train: augmented as in training (default); val: plain crops, as evaluation sees them")
    show.add_argument("--seed", type=int, default=0, help="picks the people and their augmentation (default 0)")
    show.add_argument("--mild", action="store_true", help="RTMPose's milder augmentation of the last epochs")
    show.add_argument("--input", type=int, nargs=2, default=(256, 192), metavar=("H", "W"),
                      help="model input size (default 256 192)")
    _add_pixel_limit(show)
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    from unionpose.core.output_paths import check_output_folder
    from unionpose.data.augment import AugmentConfig
    from unionpose.data.config import load_data_config
    from unionpose.data.mixture import UnionMixture
    from unionpose.data.preview import write_previews

    config = load_data_config(args.config)
    sources = _with_pixel_limit(getattr(config.data, args.split), args.max_image_pixels)
    if not sources:
        raise ValueError(f"{args.config}: data.{args.split} lists no datasets")
    check_output_folder(args.out, overwrite=args.overwrite, inputs=[args.config])
    augment = AugmentConfig(enabled=args.split == "train")
    if args.mild:
        augment = augment.mild()
    mixture = UnionMixture(sources, config.skeleton)
    crops, sheet = write_previews(mixture, args.out, count=args.count, seed=args.seed, augment=augment,
                                  input_size_hw=tuple(args.input))
    for crop in crops:
        print(f"{crop.path}: {crop.dataset} annotation {crop.ann_id}, {'flipped, ' if crop.flipped else ''}"
              f"rotation {crop.rotation:+.0f}, {crop.visible_points} visible + {crop.occluded_points} occluded points")
    print(f"contact sheet: {sheet}")
    return 0


def format_stats(split: str, mixture: UnionMixture) -> str:
    skeleton = mixture.skeleton
    lines = [f"== {split}: {len(mixture)} instances, union skeleton {skeleton.name} "
             f"({skeleton.num_keypoints} keypoints)"]
    for entry in mixture.datasets:
        source = entry.source
        lines.append(f"{source.name} ({source.format}, skeleton {entry.skeleton.name}, ratio {source.ratio:g}): "
                     f"{entry.report.summary()}")
        lines.append(f"  annotations: {source.annotations}")
        if entry.dropped:
            lines.append(f"  not in the union (unused): {', '.join(entry.dropped)}")
        for problem in entry.report.problems[:MAX_PROBLEMS_SHOWN]:
            lines.append(f"  skipped: {problem}")
        if len(entry.report.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(entry.report.problems) - MAX_PROBLEMS_SHOWN} more")
    counts = [mixture.keypoint_counts(entry) for entry in mixture.datasets]
    names = [entry.source.name for entry in mixture.datasets]
    width = max(12, *(len(n) + 2 for n in names))
    lines.append("")
    lines.append(f"{'':>4}  {'keypoint':<22}" + "".join(f"{n:>{width}}" for n in names) + "   (annotated / visible)")
    for k, point in enumerate(skeleton.names):
        cells = "".join(f"{f'{int(a[k])} / {int(v[k])}':>{width}}" for a, v in counts)
        lines.append(f"{k:>4}  {point:<22}{cells}")
    return "\n".join(lines) + "\n"

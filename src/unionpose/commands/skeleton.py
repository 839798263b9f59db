"""`unionpose skeleton list | show | union`: inspect presets, draw them, and build unions with their mappings."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unionpose.skeletons import Skeleton

HELP = "list, show, draw and combine keypoint skeletons"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("skeleton", help=HELP)
    verbs = parser.add_subparsers(dest="skeleton_command", metavar="ACTION", required=True)
    verbs.add_parser("list", help="the built-in skeletons").set_defaults(func=run_list)
    show = verbs.add_parser("show", help="one skeleton as a table (index, name, flip partner, sigma, part)")
    show.add_argument("name", help="preset name, YAML file, or A+B for a union")
    show.add_argument("--draw", type=Path, metavar="PNG", help="also draw the template figure with labelled points")
    show.add_argument("--overwrite", action="store_true", help="replace an existing --draw file")
    show.set_defaults(func=run_show)
    combine = verbs.add_parser("union", help="the union of several skeletons and each one's mapping into it")
    combine.add_argument("names", nargs="+", help="preset names or YAML files, in order")
    combine.add_argument("--out", type=Path, metavar="YAML", help="write the union as a skeleton YAML file")
    combine.add_argument("--name", help="name of the union (default: A+B+...)")
    combine.add_argument("--draw", type=Path, metavar="PNG", help="draw the union's template figure")
    combine.add_argument("--overwrite", action="store_true", help="replace existing --out / --draw files")
    combine.set_defaults(func=run_union)


def run_list(args: argparse.Namespace) -> int:
    from unionpose.skeletons import get_skeleton, preset_names

    print(f"{'name':<20} {'K':>4}  parts / description")
    for name in preset_names():
        s = get_skeleton(name)
        parts = ", ".join(f"{p} {len(m)}" for p, m in s.part_groups)
        print(f"{name:<20} {s.num_keypoints:>4}  {parts}  — {s.description}")
    return 0


def format_skeleton_table(skeleton: Skeleton) -> str:
    partner = dict(skeleton.flip_pairs) | {b: a for a, b in skeleton.flip_pairs}
    rows = [f"{skeleton.name}: {skeleton.num_keypoints} keypoints", f"{'idx':>4}  {'name':<22} {'flip':<22} {'sigma':>6}  part"]
    for k, name in enumerate(skeleton.names):
        flip = skeleton.names[partner[k]] if k in partner else "-"
        rows.append(f"{k:>4}  {name:<22} {flip:<22} {skeleton.sigmas[k]:>6.3f}  {skeleton.part_of(k)}")
    return "\n".join(rows)


def _check_outputs(args: argparse.Namespace, names: list[str]) -> None:
    """The --out / --draw files may be written: new (or --overwrite), and none of the skeleton files read."""
    from unionpose.core.output_paths import check_output_file

    inputs = [name for name in names if Path(name).is_file()]
    for path in (getattr(args, "out", None), args.draw):
        if path is not None:
            check_output_file(path, overwrite=args.overwrite, inputs=inputs)


def _draw(skeleton: Skeleton, path: Path) -> None:
    from unionpose.core.atomic import write_image_atomic
    from unionpose.core.draw import draw_skeleton_template

    write_image_atomic(path, draw_skeleton_template(skeleton))
    print(f"drawing written to {path}")


def run_show(args: argparse.Namespace) -> int:
    from unionpose.skeletons import get_skeleton

    _check_outputs(args, [args.name])
    skeleton = get_skeleton(args.name)
    print(format_skeleton_table(skeleton))
    if args.draw:
        _draw(skeleton, args.draw)
    return 0


def run_union(args: argparse.Namespace) -> int:
    from unionpose.core.atomic import write_text_atomic
    from unionpose.skeletons import get_skeleton, keypoint_mapping, union

    _check_outputs(args, args.names)
    sources = [get_skeleton(n) for n in args.names]
    combined = union(*sources, name=args.name)
    print(format_skeleton_table(combined))
    for source in sources:
        mapping = keypoint_mapping(source, combined)
        print(f"\n{source.name} ({source.num_keypoints}) -> {combined.name}: source index i goes to union index")
        forward = keypoint_mapping(combined, source).src_index
        print("  " + ",".join(str(int(i)) for i in forward))
        print(f"  lacks: {', '.join(mapping.missing) or 'nothing'}")
    if args.out:
        write_text_atomic(args.out, combined.to_yaml())
        print(f"\nunion written to {args.out}")
    if args.draw:
        _draw(combined, args.draw)
    return 0

"""`unionpose score`: COCO keypoint AP of an existing results file against a COCO-format ground truth."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "COCO keypoint AP/AR of a results file against a COCO ground truth"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help=HELP)
    parser.add_argument("--gt", type=Path, required=True, metavar="GT_FILE",
                        help="COCO-format keypoint ground truth (COCO, COCO-WholeBody: scores its body points)")
    parser.add_argument("--results", type=Path, required=True, metavar="RESULTS_FILE",
                        help="COCO results list of {image_id, category_id, keypoints [x, y, score]*K, score}")
    parser.add_argument("--skeleton", metavar="NAME",
                        help="skeleton of the ground truth, for its order and sigmas (default: from its keypoint "
                             "count, 17 -> coco17)")
    parser.add_argument("--results-skeleton", metavar="NAME",
                        help="skeleton of the results when their count differs (default: from their count, "
                             "133 -> coco_wholebody133, mapped onto --skeleton by name)")
    parser.add_argument("--box-area", action="store_true",
                        help="use the GT box area (w*h) as the OKS scale instead of the annotation's 'area'")
    parser.add_argument("--per-keypoint", action="store_true", help="also print the per-keypoint table")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every number to this JSON file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.eval import format_keypoint_table, format_result, score_results_file, write_json

    result = score_results_file(args.gt, args.results, args.skeleton, args.results_skeleton,
                                use_area=not args.box_area)
    print(f"{args.results} on {args.gt} ({result['skeleton']}, {len(result['sigmas'])} keypoints)")
    print(format_result(result))
    if args.per_keypoint:
        print()
        print(format_keypoint_table(result))
    if args.json:
        print(f"all numbers written to {write_json(args.json, result)}")
    return 0

"""`unionpose score`: a results file against its ground truth, with that dataset's metric: COCO keypoint AP for a
COCO-format ground truth, MPII PCKh for MPII's (the official `mpii_gt_val.mat` or the toolboxes' JSON list)."""
from __future__ import annotations

import argparse
from pathlib import Path

HELP = "COCO keypoint AP/AR or MPII PCKh of a results file against its ground truth"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("score", help=HELP)
    parser.add_argument("--gt", type=Path, required=True, metavar="GT_FILE",
                        help="COCO-format keypoint ground truth (COCO, COCO-WholeBody: scores its body points), or "
                             "MPII's: the official mpii_gt_val.mat, or the JSON list of people the toolboxes use")
    parser.add_argument("--results", type=Path, required=True, metavar="RESULTS_FILE",
                        help="COCO results list of {image_id, category_id, keypoints [x, y, score]*K, score}; for "
                             "MPII one record per ground-truth person in its order (unionpose val's "
                             "predictions_<dataset>.json), or the official pred.mat")
    parser.add_argument("--head-boxes", type=Path, metavar="MAT",
                        help="MPII JSON ground truth: take the head boxes from the official mpii_gt_val.mat")
    parser.add_argument("--skeleton", metavar="NAME",
                        help="skeleton of the ground truth, for its order and sigmas (default: from its keypoint "
                             "count, 17 -> coco17)")
    parser.add_argument("--results-skeleton", metavar="NAME",
                        help="skeleton of the results when their count differs (default: from their count, "
                             "133 -> coco_wholebody133, mapped onto --skeleton by name)")
    parser.add_argument("--box-area", action="store_true",
                        help="use the GT box area (w*h) as the OKS scale instead of the annotation's 'area'")
    parser.add_argument("--per-keypoint", action="store_true", help="also print the per-keypoint table")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every number to this JSON file (a new one)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unionpose.core.output_paths import check_output_file
    from unionpose.eval import format_keypoint_table, format_result, score_results_file, write_json
    from unionpose.eval.mpii_scoring import is_mpii_ground_truth, score_mpii_results

    inputs = [path for path in (args.gt, args.results, args.head_boxes) if path is not None]
    if args.json:
        check_output_file(args.json, overwrite=args.overwrite, inputs=inputs)
    if not args.gt.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {args.gt}")
    if is_mpii_ground_truth(args.gt):
        result = score_mpii_results(args.gt, args.results, args.head_boxes, args.results_skeleton)
        print(f"{args.results} on {args.gt} (mpii16, PCKh, {result['num_people']} people)")
    else:
        if args.head_boxes is not None:
            raise ValueError(f"--head-boxes is for an MPII ground truth; {args.gt} is a COCO-format file")
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

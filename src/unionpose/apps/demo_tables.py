"""The demo's tables (laid out like Khan et al. 2024, Tables 1, 2 and 5) and the findings read off them."""
from __future__ import annotations

from typing import Any

from unionpose.apps.demo_setup import LABELS, UNTRAINED
from unionpose.eval.tables import headline


def headline_percent(result: dict[str, Any], shared: bool = False) -> float:
    """A dataset's headline number in percent (AP, PCKh@0.5 or PCK); `shared`: on the points the model has."""
    if shared and "shared" in result:
        result = result["shared"]
    return 100.0 * float(headline(result)[1] or 0.0)


def table1_numbers(metrics: dict[str, dict[str, Any]], name: str) -> tuple[float, float, float]:
    """(MPII PCKh, COCO AP, their average) in Table 1's convention: a model lacking MPII points is scored on the
    points it has (the paper's "COCO only, shared 12 points"); COCO AP counts all 17 points, missing ones as misses."""
    pckh, ap = headline_percent(metrics[name]["mpii"], shared=True), headline_percent(metrics[name]["coco"])
    return pckh, ap, (pckh + ap) / 2


def format_tables(metrics: dict[str, dict[str, Any]]) -> str:
    """Tables 1, 2 and 5 from the evaluation's metrics (one entry per model, one result per validation set)."""
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    def table(title: str, head: list[str], rows: list[list[str]]) -> str:
        return "\n".join([title, row(head), row(["---"] * len(head))] + [row(r) for r in rows])

    def numbers(name: str) -> list[str]:
        return [LABELS[name]] + [f"{v:.2f}" for v in table1_numbers(metrics, name)]

    t1 = [numbers(n) for n in ("student_mpii", "student_coco", "unified_kd", "teacher_coco", "teacher_mpii",
                               UNTRAINED) if n in metrics]
    t2 = [[LABELS[n]] + [f"{v:.2f}" for v in (headline_percent(metrics[n]["mpii"]), headline_percent(metrics[n]["coco"]),
                                              (headline_percent(metrics[n]["mpii"]) +
                                               headline_percent(metrics[n]["coco"])) / 2)]
          for n in ("unified", "unified_kd")]
    t5 = [[LABELS[n], f"{headline_percent(metrics[n]['all21']):.2f}"]
          for n in ("student_mpii", "student_coco", "unified", "unified_kd", UNTRAINED) if n in metrics]
    return "\n\n".join([
        table("Table 1 — each dataset on its own keypoints (MPII-like PCKh@0.5 on the points the model has; "
              "COCO-like AP on all 17)", ["model", "MPII PCKh@0.5", "COCO AP", "average"], t1),
        table("Table 2 — unified student without and with distillation",
              ["model", "MPII PCKh@0.5", "COCO AP", "average"], t2),
        table("Table 5 — AP on all 21 points (missing points count as misses)", ["model", "AP (21 points)"], t5),
    ])


def findings(metrics: dict[str, dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """The paper's claims checked on this run's numbers: (claim, holds, the numbers behind it). Computed, never
    asserted: a claim that does not hold is reported as such."""
    mpii_only, coco_only, unified = (table1_numbers(metrics, n) for n in ("student_mpii", "student_coco", "unified_kd"))
    all21 = {n: headline_percent(metrics[n]["all21"]) for n in ("student_mpii", "student_coco", "unified",
                                                                 "unified_kd")}
    checks = []
    if "teacher_coco" in metrics and "teacher_mpii" in metrics:
        teacher_ap = headline_percent(metrics["teacher_coco"]["coco"])
        teacher_pckh = headline_percent(metrics["teacher_mpii"]["mpii"])
        checks += [("the COCO-like teacher is clearly good (COCO-like AP at least 40)", teacher_ap >= 40.0,
                    f"{teacher_ap:.2f}"),
                   ("the MPII-like teacher is clearly good (MPII-like PCKh@0.5 at least 75)", teacher_pckh >= 75.0,
                    f"{teacher_pckh:.2f}")]
    checks += [
        ("merging costs little on COCO-like AP (unified + distillation within 5 AP points of COCO only)",
         unified[1] >= coco_only[1] - 5.0, f"{unified[1]:.2f} vs {coco_only[1]:.2f}"),
        ("merging costs little on MPII-like PCKh (within 3 points of MPII only)",
         unified[0] >= mpii_only[0] - 3.0, f"{unified[0]:.2f} vs {mpii_only[0]:.2f}"),
        ("the unified student's two-dataset average is 10+ points above the MPII-only student's",
         unified[2] >= mpii_only[2] + 10.0, f"{unified[2]:.2f} vs {mpii_only[2]:.2f}"),
        ("the unified student's two-dataset average is 10+ points above the COCO-only student's",
         unified[2] >= coco_only[2] + 10.0, f"{unified[2]:.2f} vs {coco_only[2]:.2f}"),
    ]
    for unified_name in ("unified", "unified_kd"):
        for single in ("student_mpii", "student_coco"):
            checks.append((f"{LABELS[unified_name]}: 21-point AP at least 2x {LABELS[single]}'s",
                           all21[unified_name] >= 2 * all21[single],
                           f"{all21[unified_name]:.2f} vs {all21[single]:.2f}"))
    if UNTRAINED in metrics:
        floor = {d: headline_percent(metrics[UNTRAINED][d]) for d in ("coco", "mpii", "all21")}
        for name in ("student_mpii", "student_coco", "unified", "unified_kd"):
            ratios = {d: headline_percent(metrics[name][d]) / max(floor[d], 1e-9) for d in floor}
            checks.append((f"{LABELS[name]} at least 3x the untrained model on every headline number",
                           all(r >= 3 for r in ratios.values()),
                           ", ".join(f"{d} {headline_percent(metrics[name][d]):.2f} vs {floor[d]:.2f}"
                                     for d in floor)))
    return checks


def format_findings(metrics: dict[str, dict[str, Any]]) -> str:
    lines = ["| claim | holds | numbers |", "| --- | --- | --- |"]
    lines += [f"| {claim} | {'yes' if holds else 'no'} | {numbers} |" for claim, holds, numbers in findings(metrics)]
    return "\n".join(lines)

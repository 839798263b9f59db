"""`unionpose demo`: tables in the paper's conventions, findings computed from the numbers, the shipped weights and
their recipes, and the quick demo end to end (students must clearly beat their untrained starting point)."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import REPO
from unionpose.apps.demo_setup import QUICK_SCALE, STUDENTS, TEACHERS, UNTRAINED
from unionpose.apps.demo_tables import findings, format_tables
from unionpose.apps.demo_weights import WEIGHT_FILES, shipped_weights, weight_paths, weight_recipes
from unionpose.cli import main
from unionpose.engine.config import load_config, validate_config

MODELS = [*TEACHERS, *(s.name for s in STUDENTS), UNTRAINED]


def _result(metric: str, value: float, shared: float | None = None) -> dict:
    result = {"metric": metric, "AP": value} if metric == "coco_ap" else {
        "metric": metric, "thresholds": [0.5, 0.1], "PCKh@0.5": value}
    if shared is not None:
        result["shared"] = {**result, "PCKh@0.5": shared}
    return result


def _metrics(coco: dict[str, float], mpii: dict[str, float], all21: dict[str, float]) -> dict:
    return {name: {"coco": _result("coco_ap", coco.get(name, 0.5)),
                   "mpii": _result("pckh", mpii.get(name, 0.4), shared=0.8 if name == "student_coco" else None),
                   "all21": _result("coco_ap", all21.get(name, 0.3))} for name in MODELS}


def test_tables_follow_the_papers_conventions():
    text = format_tables(_metrics({}, {}, {}))
    # Table 1 scores MPII on the points a model has (the paper's "shared 12 points"); Table 2 on all 16.
    table1, table2, table5 = text.split("\n\n")
    assert "| COCO only | 80.00 | 50.00 | 65.00 |" in table1
    assert "| untrained (pretrained backbone, new head) | 40.00 | 50.00 | 45.00 |" in table1
    assert "| unified, no distillation | 40.00 | 50.00 | 45.00 |" in table2
    assert "| unified + distillation | 30.00 |" in table5


def test_findings_are_computed_from_the_numbers():
    metrics = _metrics(coco={"student_mpii": 0.1, "student_coco": 0.6, "unified_kd": 0.58, UNTRAINED: 0.01},
                       mpii={"student_mpii": 0.7, "unified_kd": 0.6, UNTRAINED: 0.05},
                       all21={"student_mpii": 0.1, "student_coco": 0.25, "unified": 0.45, "unified_kd": 0.5,
                              UNTRAINED: 0.0})
    verdicts = {claim: holds for claim, holds, _ in findings(metrics)}
    assert verdicts["merging costs little on COCO-like AP (unified + distillation within 5 AP points of COCO only)"]
    assert not verdicts["merging costs little on MPII-like PCKh (within 3 points of MPII only)"]     # 60 vs 70
    assert verdicts["the unified student's two-dataset average is 10+ points above the MPII-only student's"]
    assert verdicts["unified, no distillation: 21-point AP at least 2x MPII only's"]
    assert not verdicts["unified, no distillation: 21-point AP at least 2x COCO only's"]               # 45 vs 25


def test_findings_check_the_teachers_against_the_targets():
    metrics = _metrics(coco={"student_mpii": 0.1, "student_coco": 0.6, "unified_kd": 0.58, "teacher_coco": 0.45,
                             "teacher_mpii": 0.1},
                       mpii={"student_mpii": 0.7, "unified_kd": 0.6, "teacher_coco": 0.6, "teacher_mpii": 0.74},
                       all21={"student_mpii": 0.1, "student_coco": 0.25, "unified": 0.45, "unified_kd": 0.5})
    verdicts = {claim: holds for claim, holds, _ in findings(metrics)}
    assert verdicts["the COCO-like teacher is clearly good (COCO-like AP at least 40)"]
    assert not verdicts["the MPII-like teacher is clearly good (MPII-like PCKh@0.5 at least 75)"]       # 74 < 75


def test_the_demo_weight_recipes_are_the_configs_in_the_repository():
    runs = REPO / "runs" / "demo_weights" / "runs"
    recipes = weight_recipes(REPO / "runs" / "demo_weights" / "corpus", runs)
    for name, file in (("pretrain", "pretrain_t21.yaml"), ("teacher_coco", "teacher_coco17.yaml"),
                       ("teacher_mpii", "teacher_mpii16.yaml"), ("teacher_full", "teacher_full21_160x128.yaml")):
        from_file = load_config(REPO / "configs" / "demo" / file).model_dump(mode="json")
        from_code = validate_config(recipes[name]).model_dump(mode="json")
        assert REPO / from_file.pop("output") == runs / name
        from_code.pop("output")
        assert from_file == from_code, name


def test_the_shipped_weights_are_what_the_manifest_says():
    from unionpose.models import read_model_info
    from unionpose.models.backbone_file import read_backbone_file

    paths = weight_paths(shipped_weights())
    assert set(paths) == set(WEIGHT_FILES)
    assert read_model_info(paths["teacher_coco"]).skeleton.name == "coco17"
    assert read_model_info(paths["teacher_mpii"]).skeleton.name == "mpii16"
    larger = read_model_info(paths["teacher_full"])                 # the DWPose benchmark's teacher
    assert (larger.skeleton.name, tuple(larger.input_size)) == ("coco_mpii21", (160, 128))
    assert read_backbone_file(paths["backbone"]).model_size == "t"
    manifest = json.loads((shipped_weights() / "manifest.json").read_text())
    assert manifest["corpus"]["seed"] != 21                     # never the demo's own images
    assert set(manifest["corpus_validation"]) == {"pretrain", "teacher_coco", "teacher_mpii", "teacher_full"}


@pytest.mark.slow
def test_the_shipped_teachers_are_good_on_new_demo_images(tmp_path):
    """Scored on images neither they nor the demo saw (another seed): clearly good, as the demo claims."""
    from unionpose.data.sources import DatasetSource
    from unionpose.eval.evaluate import evaluate_model
    from unionpose.synthetic import PRESETS, generate

    generate(tmp_path, 2, 60, seed=99, params=PRESETS["demo"])
    paths = weight_paths(shipped_weights())
    coco = DatasetSource(name="coco", format="coco", annotations=tmp_path / "coco17_val.json",
                         images=tmp_path / "images", metric="coco_ap")
    mpii = DatasetSource(name="mpii", format="mpii", annotations=tmp_path / "mpii16_val.json",
                         images=tmp_path / "images", metric="pckh")
    full = DatasetSource(name="all21", format="coco", annotations=tmp_path / "full21_val.json",
                         images=tmp_path / "images", skeleton="coco_mpii21", metric="coco_ap")
    ap = evaluate_model(paths["teacher_coco"], [coco], progress=False).datasets["coco"].result["AP"]
    pckh = evaluate_model(paths["teacher_mpii"], [mpii], progress=False).datasets["mpii"].result["PCKh@0.5"]
    ap21 = evaluate_model(paths["teacher_full"], [full], progress=False).datasets["all21"].result["AP"]
    assert ap > 0.3 and pckh > 0.6 and ap21 > 0.3, (ap, pckh, ap21)


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    for title in ("Table 1", "Table 2", "Table 5"):
        assert title in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["metrics"]) == set(MODELS)
    for name, datasets in results["metrics"].items():
        assert set(datasets) == {"coco", "mpii", "all21"}, name
        assert datasets["mpii"]["metric"] == "pckh" and datasets["coco"]["metric"] == "coco_ap"
    # single-dataset students lack the other dataset's points, and the evaluation says so
    assert results["metrics"]["student_coco"]["mpii"]["missing_points"]
    # Learning, not just running: every student clearly above its untrained starting point on its own data.
    metrics = results["metrics"]
    floor = {d: metrics[UNTRAINED][d] for d in ("coco", "mpii")}
    for student, dataset, key in (("student_coco", "coco", "AP"), ("student_mpii", "mpii", "PCKh@0.5"),
                                  ("unified", "coco", "AP"), ("unified", "mpii", "PCKh@0.5"),
                                  ("unified_kd", "coco", "AP"), ("unified_kd", "mpii", "PCKh@0.5")):
        value, untrained = metrics[student][dataset][key], floor[dataset][key]
        assert value > 3 * untrained and value > untrained + 0.05, (student, dataset, value, untrained)
    report = (out / "report.md").read_text()
    for figure in ("figures/learning_curves.png", "figures/loss_terms.png", "figures/keypoints_all21.png",
                   "figures/predictions.png"):
        assert figure in report and (out / figure).is_file()
    assert "## Findings" in report and "crops per second" in report
    assert set(results["seconds"]) >= {"data", "evaluation", "total", *(s.name for s in STUDENTS)}
    curves = [json.loads(line) for line in (out / "runs" / "unified" / "metrics.jsonl").read_text().splitlines()]
    epochs = list(range(1, QUICK_SCALE.student_epochs + 1))
    assert [r["epoch"] for r in curves if r["kind"] == "val"] == epochs           # validated after every epoch
    # a second run reuses every finished stage
    assert main(["demo", "--out", str(out), "--quick"]) == 0
    assert capsys.readouterr().out.count("reused") == len(STUDENTS) + 2


def test_recipes_state_the_batch_size_rule_next_to_the_learning_rate():
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        train = yaml.safe_load(path.read_text()).get("train", {})
        if "lr" in train and path.parent.name in ("synthetic", "demo", "dope"):
            assert "lr_batch_size" in train, path

"""`unionpose annotate`: missing points filled close to the truth, every original record and field kept, the
inputs untouched, resume, the audit, fusion, and the code it shares with `pseudolabel`."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, require

from unionpose.apps.annotate import AnnotateConfig, annotate, parse_sources
from unionpose.apps.labelling import fuse, predict_in_skeleton, progress_path
from unionpose.cli import main
from unionpose.data.readers import read_coco
from unionpose.data.sources import DatasetSource
from unionpose.skeletons import get_skeleton
from unionpose.synthetic import PRESETS, generate

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "unionpose" / "apps" / "demo_weights"
UNION = get_skeleton("coco17+mpii16")
FACE = [UNION.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]


def teacher(name: str) -> Path:
    path = WEIGHTS / f"teacher_{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"the shipped demo teacher {path.name} is not in {WEIGHTS}")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    """Synthetic people of the demo preset: 12 validation images in a COCO-like, an MPII-like and a full file."""
    folder = tmp_path_factory.mktemp("synth")
    generate(folder, num_train=4, num_val=12, seed=3, params=PRESETS["demo"])
    return folder


def run_cli(*argv) -> int:
    return main(["annotate", *map(str, argv), "--quiet"])


# --- fusion and sources ---------------------------------------------------------------------------------------------
def test_fusion_weights_agreeing_sources_and_leaves_out_one_that_disagrees():
    sigmas = np.full(3, 0.05)
    keypoints = np.array([[[[10.0, 10.0], [50.0, 50.0], [np.nan, np.nan]]],      # source a
                          [[[12.0, 10.0], [90.0, 90.0], [np.nan, np.nan]]],      # source b: agrees on 0, not on 1
                          [[[np.nan, np.nan], [51.0, 50.0], [np.nan, np.nan]]]])  # source c: only point 1
    confidence = np.array([[[0.9, 0.4, 0.0]], [[0.3, 0.8, 0.0]], [[0.0, 0.6, 0.0]]])
    fused = fuse(keypoints, confidence, ["a", "b", "c"], sigmas, np.array([100.0 * 100.0]))
    np.testing.assert_allclose(fused.keypoints[0, 0], [(0.9 * 10 + 0.3 * 12) / 1.2, 10.0], rtol=1e-6)
    assert fused.confidence[0, 0] == pytest.approx((0.81 + 0.09) / 1.2)
    np.testing.assert_allclose(fused.keypoints[0, 1], [90.0, 90.0])              # b is the anchor; a and c disagree
    assert fused.confidence[0, 1] == pytest.approx(0.8)
    assert fused.sources[0] == ["a+b", "b", None]
    assert np.isnan(fused.keypoints[0, 2]).all() and fused.confidence[0, 2] == 0.0
    one = fuse(keypoints[:1], confidence[:1], ["a"], sigmas, np.array([1e4]))   # one source: its own points
    np.testing.assert_allclose(one.keypoints[0, :2], keypoints[0, 0, :2], rtol=1e-6)
    np.testing.assert_allclose(one.confidence[0, :2], [0.9, 0.4], rtol=1e-6)


class FixedSource:
    """A source in MPII's skeleton that finds each joint at (joint index, box x)."""

    name, identity = "fixed", "fixed v1"
    skeleton = get_skeleton("mpii16")

    def predict(self, image, boxes, padding=1.25, rows=None):
        count = len(boxes)
        keypoints = np.stack([np.arange(16), np.zeros(16)], axis=1)[None].repeat(count, 0).astype(np.float32)
        keypoints[..., 1] = np.asarray(boxes)[:, :1]
        return keypoints, np.full((count, 16), 0.7, np.float32)

    def close(self):
        pass


def test_sources_are_mapped_onto_the_union_by_keypoint_name():
    boxes = np.array([[5.0, 0, 10, 10], [7.0, 0, 10, 10]])
    keypoints, confidence = predict_in_skeleton([FixedSource()], UNION, np.zeros((8, 8, 3), np.uint8), boxes)
    assert keypoints.shape == (1, 2, 21, 2) and confidence.shape == (1, 2, 21)
    mpii = get_skeleton("mpii16")
    for j, name in enumerate(mpii.names):
        k = UNION.index(name) if UNION.has(name) else [i for i, c in enumerate(UNION.canonical_names)
                                                       if c == mpii.canonical_names[j]][0]
        np.testing.assert_allclose(keypoints[0, :, k], [[j, 5.0], [j, 7.0]])
    assert np.isnan(keypoints[0, :, FACE]).all() and not confidence[0, :, FACE].any()


def test_pseudolabel_labels_through_the_shared_sources_and_fusion(tmp_path, monkeypatch):
    """`pseudolabel` and `annotate` share one path: the pseudo-labeller's expert is a labelling source, fused."""
    from unionpose.apps.pseudolabel import PseudoLabelConfig, labeller as pseudo
    from unionpose.apps.pseudolabel.tasks import Task as ImageTask

    class FakeExpert:
        name, identity = "mediapipe", "fake"
        skeleton = get_skeleton("coco_wholebody133")

        def predict(self, image, boxes, padding=1.25, rows=None):
            keypoints = np.full((len(boxes), 133, 2), np.nan, np.float32)
            keypoints[:, :17] = np.asarray(boxes)[:, None, :2] + np.arange(17)[None, :, None]
            confidence = np.zeros((len(boxes), 133), np.float32)
            confidence[:, :17] = 0.8
            confidence[:, 3] = 0.1                       # given, below min_confidence
            return keypoints, confidence

        def close(self):
            pass

    monkeypatch.setattr(pseudo, "ExpertSource", FakeExpert)
    image = require(FIXTURES / "coco" / "images" / "000000000785.jpg")
    labeller = pseudo.Labeller(PseudoLabelConfig(source=str(image.parent), out=tmp_path / "labels.json"))
    record = labeller(ImageTask("785.jpg", str(image), [[100.0, 50.0, 200.0, 300.0]]))
    labeller.close()
    assert record["status"] == "labelled"
    annotation, = record["annotations"]
    body = np.array(annotation["keypoints"]).reshape(17, 3)
    np.testing.assert_allclose(body[:, :2], np.array([100.0, 50.0]) + np.arange(17)[:, None])
    assert body[3, 2] == 0 and (np.delete(body[:, 2], 3) == 2).all()
    assert annotation["keypoint_confidence"][:17] == [0.8] * 3 + [0.1] + [0.8] * 13
    assert annotation["keypoint_confidence"][17:] == [None] * 116


# --- end to end on synthetic people with the shipped demo teachers ------------------------------------------------
def test_mpii_faces_are_filled_from_the_coco_teacher_close_to_the_truth(synth, tmp_path, capsys):
    mpii = synth / "mpii16_val.json"
    before = digest(mpii)
    out = tmp_path / "out"
    assert run_cli(mpii, "--format", "mpii", "--images", synth / "images", "--name", "mpii", "--out", out,
                   "--teachers", f"coco={teacher('coco17')}", "--skeleton", "coco17+mpii16") == 0
    assert "mpii: " in capsys.readouterr().out
    assert digest(mpii) == before                                            # the input is never changed
    completed = json.loads((out / "mpii.json").read_text())
    records = json.loads(mpii.read_text())
    truth = json.loads((synth / "full21_val.json").read_text())
    assert len(completed["annotations"]) == len(records) == len(truth["annotations"])
    errors, similarities = [], []
    sigmas = np.asarray(UNION.sigmas)
    for annotation, record, person in zip(completed["annotations"], records, truth["annotations"]):
        for key in record:                                                    # every original field, as it was
            assert annotation[key] == record[key]
        points = np.array(annotation["keypoints"]).reshape(21, 3)
        real = np.array(person["keypoints"]).reshape(21, 3)
        sources = annotation["keypoint_source"]
        for j, name in enumerate(get_skeleton("mpii16").names):               # ground truth kept exactly
            k = UNION.canonical_names.index(get_skeleton("mpii16").canonical_names[j])
            assert sources[k] == "gt" and annotation["keypoint_confidence"][k] == 1.0
            assert points[k].tolist() == [*record["joints"][j], record["joints_vis"][j]]
        for k in FACE:
            assert sources[k] == "coco" and 0 <= annotation["keypoint_confidence"][k] <= 1
            if points[k, 2] > 0 and real[k, 2] > 0:
                squared = ((points[k, :2] - real[k, :2]) ** 2).sum()
                errors.append(np.sqrt(squared))
                similarities.append(np.exp(-squared / (2 * person["area"] * (2 * sigmas[k]) ** 2)))
    assert len(errors) > 80
    # measured on these 25 people (111 points): median error 2.2 px, mean per-point OKS 0.69, 80 % at OKS >= 0.5
    assert np.median(errors) < 3.5 and np.mean(similarities) > 0.55 and np.mean(np.array(similarities) >= 0.5) > 0.65
    instances, report = read_coco(out / "mpii.json", None, format="coco", skeleton="coco17+mpii16")
    assert len(instances) == len(records) and not report.skipped
    assert all(instance.annotated.all() and instance.confidence is not None for instance in instances)


def test_an_interrupted_run_resumes_to_the_same_files_and_other_settings_are_refused(synth, tmp_path, capsys):
    data = tmp_path / "data.yaml"
    data.write_text(json.dumps({"skeleton": {"union": ["coco17", "mpii16"]}, "data": {"train": [
        {"name": "coco", "format": "coco", "annotations": str(synth / "coco17_val.json"),
         "images": str(synth / "images")},
        {"name": "mpii", "format": "mpii", "annotations": str(synth / "mpii16_val.json"),
         "images": str(synth / "images")}]}}))
    teachers = [f"coco={teacher('coco17')}", f"mpii={teacher('mpii16')}"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert run_cli(data, "--out", whole, "--teachers", *teachers) == 0
    progress = progress_path(whole / "annotate.json")
    lines = progress.read_text().splitlines()
    assert len(lines) == 1 + 24                                   # the header, then 12 images of each dataset
    cut.mkdir()
    (cut / progress.name).write_text("\n".join(lines[:6]) + "\n" + lines[6][:40])   # killed mid-line
    capsys.readouterr()
    assert run_cli(data, "--out", cut, "--teachers", *teachers) == 0
    assert '"resumed": 5' in capsys.readouterr().out
    for name in ("coco.json", "mpii.json", "coco.audit.json", "mpii.audit.json", "data.yaml"):
        assert (cut / name).read_text().replace(str(cut), "") == (whole / name).read_text().replace(str(whole), "")
    coco = json.loads((whole / "coco.json").read_text())
    assert {s for a in coco["annotations"] for s in a["keypoint_source"]} <= {"gt", "mpii", None}
    assert run_cli(data, "--out", cut, "--teachers", teachers[0]) == 1     # other sources: refused, named
    assert "settings.sources" in capsys.readouterr().err
    # a completed file completed again: nothing left to fill, every point keeps its confidence and source
    again = tmp_path / "again"
    assert run_cli(whole / "data.yaml", "--out", again, "--teachers", teachers[0]) == 0
    twice = json.loads((again / "coco.json").read_text())
    for first, second in zip(coco["annotations"], twice["annotations"]):
        assert second["keypoint_source"] == first["keypoint_source"]
        assert second["keypoint_confidence"] == first["keypoint_confidence"]
        assert second["keypoints"] == first["keypoints"]
    assert main(["data", "stats", str(whole / "data.yaml")]) == 0       # the completed datasets, holes filled
    stats = capsys.readouterr().out
    rows = {line.split()[1]: line.split()[2:] for line in stats.splitlines() if line[:4].strip().isdigit()}
    assert rows["head_top"][0] == rows["nose"][0] == str(len(coco["annotations"]))        # coco: all annotated
    assert rows["nose"][3] == str(len(json.loads((synth / "mpii16_val.json").read_text())))  # mpii too


def test_the_audit_lists_a_left_right_swap_first_and_draws_it(synth, tmp_path):
    data = json.loads((synth / "coco17_val.json").read_text())
    skeleton = get_skeleton("coco17")
    left, right = skeleton.index("left_knee"), skeleton.index("right_knee")
    target = None
    for annotation in data["annotations"]:
        points = np.array(annotation["keypoints"]).reshape(17, 3)
        if points[left, 2] == points[right, 2] == 2 and np.linalg.norm(points[left, :2] - points[right, :2]) > 25:
            points[[left, right]] = points[[right, left]]
            annotation["keypoints"] = points.reshape(-1).tolist()
            target = annotation["id"]
            break
    assert target is not None
    swapped = tmp_path / "coco.json"
    swapped.write_text(json.dumps(data))
    out = tmp_path / "out"
    config = AnnotateConfig(datasets=(DatasetSource(name="coco", format="coco", annotations=swapped,
                                                    images=synth / "images"),),
                            sources=parse_sources([f"coco={teacher('coco17')}"]), out=out, audit_draw=1000,
                            progress=False)
    summary = annotate(config)
    assert summary["datasets"]["coco"]["filled"] == 0        # the teacher's skeleton is the dataset's: no hole
    cases = json.loads((out / "coco.audit.json").read_text())["cases"]
    assert [case["disagreement"] for case in cases] == sorted((case["disagreement"] for case in cases), reverse=True)
    knees = [(rank, case) for rank, case in enumerate(cases, start=1) if case["annotation_id"] == target
             and "knee" in case["keypoint"]]
    assert len(knees) == 1                                   # one case for the pair, not one per knee
    rank, case = knees[0]
    assert (case["kind"], case["keypoint"], case["source"]) == ("left_right_swap", "left_knee<->right_knee", "coco")
    assert case["disagreement"] > 0.9 and [label[:2] for label in case["label"]] == [
        data_point(data, target, left), data_point(data, target, right)]            # as (wrongly) labelled
    assert (out / "audit" / "coco" / f"{rank:03d}_ann{target}_left_knee_right_knee.jpg").is_file()


def data_point(data: dict, ann_id: int, k: int) -> list[float]:
    annotation, = [a for a in data["annotations"] if a["id"] == ann_id]
    return annotation["keypoints"][3 * k:3 * k + 2]


def test_an_onnx_export_named_in_a_recipe_fills_the_points_its_model_file_fills(synth, tmp_path):
    from unionpose.export.onnx import export_onnx
    from unionpose.models import load_model_file, read_model_info

    model_file = teacher("mpii16")
    model, _ = load_model_file(model_file)
    export_onnx(model, read_model_info(model_file), tmp_path / "mpii.onnx")
    (tmp_path / "teachers.yaml").write_text(json.dumps({"teachers": [         # path relative to the recipe
        {"name": "onnx_mpii", "kind": "onnx", "path": "mpii.onnx", "beta": 0.25}]}))
    runs = {}
    for name, teachers in (("file", [f"mpii={model_file}"]), ("onnx", [str(tmp_path / "teachers.yaml")])):
        dataset = DatasetSource(name="coco", format="coco", annotations=synth / "coco17_val.json",
                                images=synth / "images")
        annotate(AnnotateConfig(datasets=(dataset,), sources=parse_sources(teachers), out=tmp_path / name,
                                skeleton="coco17+mpii16", progress=False))
        runs[name] = json.loads((tmp_path / name / "coco.json").read_text())["annotations"]
    filled = 0
    for ours, theirs in zip(runs["file"], runs["onnx"]):
        for k in range(17, 21):                                      # pelvis, thorax, upper neck, head top
            assert (ours["keypoint_source"][k], theirs["keypoint_source"][k]) == ("mpii", "onnx_mpii")
            np.testing.assert_allclose(ours["keypoints"][3 * k:3 * k + 2], theirs["keypoints"][3 * k:3 * k + 2],
                                       atol=0.02)
            assert abs(ours["keypoint_confidence"][k] - theirs["keypoint_confidence"][k]) < 2e-3
            filled += ours["keypoints"][3 * k + 2] > 0
    assert filled > 50


# --- real files --------------------------------------------------------------------------------------------------
def test_real_wholebody_people_get_their_missing_hands_from_a_prediction_cache(tmp_path):
    """A teacher's prediction cache (the `coordinates` kind) fills the hands WholeBody leaves out for some people;
    every other record and field of the real file is kept."""
    from unionpose.data.mixture import UnionMixture
    from unionpose.teachers.cache import TeacherCache, data_identity, save_teacher_cache

    wholebody = require(FIXTURES / "coco" / "coco_wholebody.json")
    source = DatasetSource(name="wholebody", format="coco_wholebody", annotations=wholebody,
                           images=FIXTURES / "coco" / "images")
    skeleton = get_skeleton("coco_wholebody133")
    instances = UnionMixture([source], skeleton).instances
    # the cache: every point of every person at its box's top-left corner + its index, confidence 0.9
    keypoints = np.stack([i.box[:2] + np.stack([np.arange(133), np.zeros(133)], axis=1) for i in instances])
    cache = tmp_path / "hands.safetensors"
    save_teacher_cache(cache, TeacherCache(keypoints.astype(np.float32), np.full((len(instances), 133), 0.9,
                                                                                np.float32),
                                           skeleton, "test-teacher", data_identity(instances)))
    before = digest(wholebody)
    out = tmp_path / "out"
    summary = annotate(AnnotateConfig(datasets=(source,), sources=parse_sources([str(cache)]), out=out,
                                      skeleton="coco_wholebody133", progress=False))
    assert digest(wholebody) == before
    raw = json.loads(wholebody.read_text())
    completed = json.loads((out / "wholebody.json").read_text())
    assert {k: v for k, v in completed.items() if k not in ("annotations", "categories", "info")} == \
        {k: v for k, v in raw.items() if k not in ("annotations", "categories", "info")}
    assert len(completed["annotations"]) == len(raw["annotations"])
    by_ann = {i.ann_id: n for n, i in enumerate(instances)}
    filled_hands = 0
    for original, annotation in zip(raw["annotations"], completed["annotations"]):
        for key in original:
            if key not in ("keypoints", "num_keypoints"):
                assert annotation[key] == original[key], key
        points = np.array(annotation["keypoints"]).reshape(133, 3)
        assert points[:17].reshape(-1).tolist() == original["keypoints"]          # the body as labelled
        if original["id"] not in by_ann:
            continue
        hand = slice(91, 112)
        if original["lefthand_valid"]:
            assert set(annotation["keypoint_source"][hand]) == {"gt"}
            assert points[hand].reshape(-1).tolist() == original["lefthand_kpts"]
        else:
            filled_hands += 1
            assert set(annotation["keypoint_source"][hand]) == {"hands"}
            assert annotation["keypoint_confidence"][91] == 0.9 and points[91, 2] == 2
            np.testing.assert_allclose(points[91, :2], keypoints[by_ann[original["id"]], 91], atol=0.01)
    assert filled_hands >= 3 and summary["datasets"]["wholebody"]["filled"] > 0
    instances_out, _ = read_coco(out / "wholebody.json", None, format="coco", skeleton=out / "skeleton.yaml")
    assert len(instances_out) == len(instances) and all(i.annotated[91:133].all() for i in instances_out)


def test_annotating_real_coco_photos_keeps_every_record(tmp_path):
    """The real COCO fixture (crowd and keypoint-less people included) through the MPII-like teacher."""
    coco = require(FIXTURES / "coco" / "person_keypoints.json")
    out = tmp_path / "out"
    assert run_cli(coco, "--format", "coco", "--images", coco.parent / "images", "--out", out,
                   "--teachers", teacher("mpii16")) == 0
    raw, completed = json.loads(coco.read_text()), json.loads((out / "person_keypoints.json").read_text())
    assert [a["id"] for a in completed["annotations"]] == [a["id"] for a in raw["annotations"]]
    assert completed["images"] == raw["images"] and completed["categories"][0]["keypoints"] == list(UNION.names)
    for original, annotation in zip(raw["annotations"], completed["annotations"]):
        assert annotation["segmentation"] == original["segmentation"]
        assert annotation["keypoints"][:51] == original["keypoints"]
        assert len(annotation["keypoint_confidence"]) == len(annotation["keypoint_source"]) == 21
        kept = original["num_keypoints"] > 0 and not original["iscrowd"]
        assert (annotation["keypoint_source"][20] == "teacher_mpii16") == kept     # head_top, filled or not


# --- the command line --------------------------------------------------------------------------------------------
def test_bad_arguments_and_an_output_over_an_input_are_one_line_errors(synth, tmp_path, capsys):
    coco = tmp_path / "coco.json"
    coco.write_bytes((synth / "coco17_val.json").read_bytes())
    cases = [
        ((coco, "--out", tmp_path / "o", "--teachers", "mediapipe"), "needs --format and --images"),
        ((coco, "--format", "coco", "--images", synth / "images", "--out", tmp_path, "--teachers",
          f"coco={teacher('coco17')}", "--name", "coco"), "is an input of this command"),
        ((coco, "--format", "coco", "--images", synth / "images", "--out", tmp_path / "o", "--teachers",
          f"gt={teacher('coco17')}"), "reserved for ground-truth"),
        ((coco, "--format", "coco", "--images", synth / "images", "--out", tmp_path / "o", "--teachers",
          tmp_path / "absent.onnx"), "absent.onnx"),
        ((coco, "--format", "coco", "--images", synth / "images", "--out", tmp_path / "o", "--teachers",
          teacher("coco17"), "--min-confidence", "1.5"), "min-confidence must be in [0, 1]"),
    ]
    for argv, message in cases:
        assert run_cli(*argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("unionpose annotate: error: ") and message in err and len(err.splitlines()) == 1
    assert digest(coco) == digest(synth / "coco17_val.json") and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_a_student_trains_on_the_completed_datasets_with_the_recipe(synth, tmp_path):
    from unionpose.engine import load_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "annotate" / "unified_t_completed.yaml"
    data = tmp_path / "data.yaml"
    data.write_text(json.dumps({"skeleton": {"union": ["coco17", "mpii16"]}, "data": {"train": [
        {"name": "coco", "format": "coco", "annotations": str(synth / "coco17.json"), "images": str(synth / "images")},
        {"name": "mpii", "format": "mpii", "annotations": str(synth / "mpii16.json"),
         "images": str(synth / "images")}]}}))
    out = tmp_path / "annotated"
    assert run_cli(data, "--out", out, "--teachers", f"coco={teacher('coco17')}", f"mpii={teacher('mpii16')}") == 0
    overrides = [f"data.train.0.annotations={out / 'coco.json'}", f"data.train.1.annotations={out / 'mpii.json'}",
                 f"data.train.0.images={synth / 'images'}", f"data.train.1.images={synth / 'images'}",
                 f"data.val.0.annotations={synth / 'coco17_val.json'}", f"data.val.0.images={synth / 'images'}",
                 f"data.val.1.annotations={synth / 'mpii16_val.json'}", f"data.val.1.images={synth / 'images'}",
                 "model.input=[64, 64]", "train.epochs=1", "train.batch_size=4", "train.workers=0",
                 "train.warmup_iters=1", "train.cosine_from_epoch=null", "train.log_interval=1", "train.val_interval=0",
                 "train.tensorboard=false", "data.mild_last_epochs=0", f"output={tmp_path / 'run'}"]
    config = load_config(recipe, overrides)
    assert [s.annotations for s in config.data.train] == [out / "coco.json", out / "mpii.json"]
    assert main(["train", str(recipe), *overrides]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert losses and all(np.isfinite(losses))
    assert (tmp_path / "run" / "final.safetensors").is_file()

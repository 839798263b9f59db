"""MediaPipe -> COCO-WholeBody-133 mapping, pseudo-label format and progress file: all without MediaPipe (core env)."""
from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES, require

from unionpose.data.readers import read_coco
from unionpose.apps.pseudolabel import (
    PseudoLabelConfig,
    assemble_labels,
    load_pseudolabels,
    read_progress,
    wholebody_annotation,
)
from unionpose.skeletons import get_skeleton, keypoint_mapping
from unionpose.teachers.expert_mapping import (
    FACE68_FROM_MESH,
    HolisticLandmarks,
    expert_coverage,
    holistic_to_wholebody,
    pose_to_wholebody_index,
)

WHOLEBODY = get_skeleton("coco_wholebody133")
POSE = get_skeleton("mediapipe_pose33")
HAND = get_skeleton("mediapipe_hand21")

# docs/conventions.md, copied literally: the tables in the code must say the same.
DOCUMENTED_BODY = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
DOCUMENTED_FACE = {
    "jaw": [162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389],
    "brows": [71, 63, 105, 66, 107, 336, 296, 334, 293, 301],
    "nose": [168, 197, 5, 4, 75, 97, 2, 326, 305],
    "eyes": [33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380],
    "outer_lips": [61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181],
    "inner_lips": [78, 82, 13, 312, 308, 317, 14, 87],
}


def test_body_and_feet_come_from_the_pose_landmarks_of_the_same_name():
    index = pose_to_wholebody_index()
    assert index[:17].tolist() == DOCUMENTED_BODY
    for target in np.flatnonzero(index >= 0):
        pose_name, body_name = POSE.names[index[target]], WHOLEBODY.names[target]
        expected = body_name.replace("big_toe", "foot_index")     # the documented approximation
        assert pose_name == expected, (target, pose_name, body_name)
    # where both skeletons share a name, the name-based mapping agrees with the table
    by_name = keypoint_mapping(POSE, WHOLEBODY).src_index
    shared = by_name >= 0
    assert (index[shared] == by_name[shared]).all() and shared.sum() == 19
    assert [WHOLEBODY.names[k] for k in np.flatnonzero(~expert_coverage())] == ["left_small_toe", "right_small_toe"]
    assert not set(range(17, 23)) & set(index[index >= 0].tolist())     # coarse pose hand points map to nothing


def test_face_table_is_the_300w_list_and_hands_keep_their_order():
    assert list(FACE68_FROM_MESH) == list(itertools.chain(*DOCUMENTED_FACE.values()))
    assert len(set(FACE68_FROM_MESH)) == 68 and max(FACE68_FROM_MESH) < 468
    assert WHOLEBODY.names[23:91] == tuple(f"face_{i}" for i in range(68))
    for side, start in (("left", 91), ("right", 112)):
        assert WHOLEBODY.names[start:start + 21] == tuple(f"{side}_{name}" for name in HAND.names)


def _landmarks(rng, hands=(True, True), face=True) -> HolisticLandmarks:
    return HolisticLandmarks(
        pose=rng.uniform(0, 100, (33, 2)), pose_visibility=rng.uniform(0, 1, 33),
        left_hand=rng.uniform(0, 100, (21, 2)) if hands[0] else None,
        right_hand=rng.uniform(0, 100, (21, 2)) if hands[1] else None,
        face=rng.uniform(0, 100, (468, 2)) if face else None)


def test_holistic_to_wholebody_places_every_part_with_its_confidence_rule():
    rng = np.random.default_rng(0)
    landmarks = _landmarks(rng)
    keypoints, confidence = holistic_to_wholebody(landmarks)
    assert keypoints.shape == (133, 2) and confidence.shape == (133,)
    index = pose_to_wholebody_index()
    body = index >= 0
    np.testing.assert_allclose(keypoints[body], landmarks.pose[index[body]], rtol=1e-6)
    np.testing.assert_allclose(confidence[body], landmarks.pose_visibility[index[body]], rtol=1e-6)
    # Holistic's left hand is the person's left: WholeBody 91-111; right 112-132
    np.testing.assert_allclose(keypoints[91:112], landmarks.left_hand, rtol=1e-6)
    np.testing.assert_allclose(keypoints[112:133], landmarks.right_hand, rtol=1e-6)
    np.testing.assert_allclose(keypoints[23:91], landmarks.face[list(FACE68_FROM_MESH)], rtol=1e-6)
    visibility = landmarks.pose_visibility.astype(np.float32)
    assert (confidence[91:112] == visibility[15]).all() and (confidence[112:133] == visibility[16]).all()
    assert (confidence[23:91] == visibility[0]).all()
    assert np.isnan(keypoints[[18, 21]]).all() and (confidence[[18, 21]] == 0).all()   # small toes: not given


def test_missing_parts_are_not_given_never_zeros():
    rng = np.random.default_rng(1)
    keypoints, confidence = holistic_to_wholebody(_landmarks(rng, hands=(False, True), face=False))
    assert np.isnan(keypoints[91:112]).all() and (confidence[91:112] == 0).all()
    assert np.isnan(keypoints[23:91]).all() and (confidence[23:91] == 0).all()
    assert np.isfinite(keypoints[112:133]).all()
    keypoints, confidence = holistic_to_wholebody(HolisticLandmarks())     # nobody found
    assert np.isnan(keypoints).all() and not confidence.any()
    with pytest.raises(ValueError, match="left_hand: expected shape"):
        HolisticLandmarks(pose=np.zeros((33, 2)), pose_visibility=np.zeros(33), left_hand=np.zeros((20, 2)))


def test_pseudolabels_in_wholebody_format_round_trip_through_the_reader(tmp_path):
    """Real ground-truth people written as if an expert had found them, then read back by the WholeBody reader."""
    images = require(FIXTURES / "coco" / "images")
    people, _ = read_coco(FIXTURES / "coco" / "coco_wholebody.json", images, format="coco_wholebody")
    records = {}
    for person in people:
        keypoints = np.where(person.visible[:, None] > 0, person.keypoints, np.nan).astype(np.float32)
        keypoints[[18, 21]] = np.nan                                      # the expert never gives small toes
        confidence = np.where(np.isfinite(keypoints[:, 0]), 0.9, 0.0).astype(np.float32)
        confidence[5] = 0.1                                               # given, below min_confidence
        name = person.image.rsplit("/", 1)[-1]
        record = records.setdefault(name, {"file_name": name, "status": "labelled", "height": person.image_size[0],
                                           "width": person.image_size[1], "annotations": []})
        annotation = wholebody_annotation(keypoints, confidence, person.box, person.image_size, 0.3)
        record["annotations"].append(annotation)
    config = PseudoLabelConfig(source=str(images), out=tmp_path / "labels.json")
    labels = assemble_labels([records[name] for name in sorted(records)], config, images)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(labels))
    loaded = load_pseudolabels(path)
    assert len(loaded) == len(people)
    for instance in loaded:
        truth, = [p for p in people if p.image == instance.image and np.allclose(p.box, instance.box, atol=0.01)]
        shown = (truth.visible > 0) & (instance.confidence >= 0.3)
        assert ((instance.visible > 0) == shown).all()
        np.testing.assert_allclose(instance.keypoints[shown], truth.keypoints[shown], atol=0.006)
        assert not instance.annotated[[18, 21]].any()                      # null confidence: not annotated
        assert instance.confidence[5] == pytest.approx(0.1) or not truth.visible[5]
        hand_found = (truth.visible[91:112] > 0).any()
        assert instance.annotated[91:112].any() == hand_found
    raw = json.loads(path.read_text())
    assert raw["info"]["expert"] == "mediapipe_holistic" and raw["info"]["mediapipe_version"] == "0.10.21"
    assert all(len(a["keypoint_confidence"]) == 133 for a in raw["annotations"])


def test_progress_file_survives_a_torn_line_and_refuses_other_settings(tmp_path):
    config = PseudoLabelConfig(source=str(tmp_path), out=tmp_path / "labels.json")
    header = {"format": "unionpose-pseudolabel-progress", "version": 1, "settings": config.settings()}
    path = tmp_path / "labels.json.progress.jsonl"
    done = {"file_name": "a.jpg", "status": "nobody", "height": 4, "width": 4, "annotations": []}
    path.write_text(json.dumps({"header": header}) + "\n" + json.dumps(done) + "\n" + '{"file_name": "b.j')
    assert list(read_progress(path, header)) == ["a.jpg"]
    assert path.read_text().endswith("[]}\n")                              # the torn line is cut off
    other = {**header, "settings": {**header["settings"], "stride": 5}}
    with pytest.raises(ValueError, match=r"settings.stride.*5.*1"):
        read_progress(path, other)


def test_the_core_never_imports_mediapipe():
    """Importing every UnionPose module (the expert modules too: they import MediaPipe lazily) leaves it out.
    (`unionpose.__main__` is the command line itself, not a module to import.)"""
    script = (
        "import importlib, pkgutil, sys, unionpose\n"
        "for module in pkgutil.walk_packages(unionpose.__path__, 'unionpose.'):\n"
        "    if module.name != 'unionpose.__main__':\n"
        "        importlib.import_module(module.name)\n"
        "print(len(sys.modules), 'mediapipe' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "False"


@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is not None, reason="MediaPipe is installed here")
def test_experts_without_mediapipe_say_how_to_install_it(tmp_path, capsys):
    from unionpose.cli import main
    from unionpose.teachers.mediapipe_experts import HolisticExpert

    with pytest.raises(ImportError, match=r"pip install 'unionpose\[experts\]' \(MediaPipe 0.10.21, numpy<2\)"):
        HolisticExpert()
    assert main(["pseudolabel", str(tmp_path), "--out", str(tmp_path / "labels.json")]) == 1
    assert "unionpose[experts]" in capsys.readouterr().err

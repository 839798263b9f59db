"""Mixing datasets into the union skeleton: annotated masks, point mapping, sampling ratios, `data stats`."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, FIXTURES, REPO, require
from unionpose.cli import main
from unionpose.data.config import UnionOf, load_data_config
from unionpose.data.instance import remap_instances
from unionpose.data.mixture import UnionMixture
from unionpose.data.readers import read_coco, read_mpii
from unionpose.data.sources import DatasetSource
from unionpose.skeletons import get_skeleton, keypoint_mapping

CONFIG = REPO / "configs/data/coco_mini_mpii_fixture.yaml"
COCO_ONLY = list(range(0, 5))        # nose, eyes, ears: Khan et al. 2024
MPII_ONLY = list(range(17, 21))      # pelvis, thorax, upper_neck, head_top
# MPII index -> unified index (Khan et al. 2024)
MPII_TO_UNIFIED = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]


def source(name: str, fmt: str, annotations: str, images: str, **extra) -> DatasetSource:
    return DatasetSource(name=name, format=fmt, annotations=require(FIXTURES / annotations), images=FIXTURES / images,
                         **extra)


COCO = dict(name="coco", fmt="coco", annotations="coco/person_keypoints.json", images="coco/images")
MPII = dict(name="mpii", fmt="mpii", annotations="mpii/mpii_annotations.json", images="mpii/images")


def test_config_mixture_masks():
    config = load_data_config(require(CONFIG))
    require(DATA / "coco_train_mini")
    assert config.skeleton == UnionOf(union=["coco17", "mpii16"])
    assert config.data.train[0].annotations == DATA / "coco_train_mini/person_keypoints_train2017.json"
    mixture = UnionMixture(config.data.train, config.skeleton)
    assert mixture.skeleton == get_skeleton("coco_mpii21") and len(mixture) == 86 + 5
    coco, mpii = mixture.datasets
    assert (coco.stop - coco.start, mpii.stop - mpii.start) == (86, 5)
    for instance in mixture.instances[coco.start:coco.stop]:
        assert instance.keypoints.shape == (21, 2) and instance.dataset == "coco"
        assert instance.annotated[:17].all() and not instance.annotated[MPII_ONLY].any()
        assert not instance.visible[MPII_ONLY].any()
    for instance in mixture.instances[mpii.start:mpii.stop]:
        assert instance.dataset == "mpii"
        assert not instance.annotated[COCO_ONLY].any() and not instance.visible[COCO_ONLY].any()
        assert instance.annotated[5:].all()
    annotated, visible = mixture.keypoint_counts(coco)
    assert annotated.tolist() == [86] * 17 + [0] * 4
    # visible counts of coco_train_mini's kept people, per COCO point, counted from the file
    assert visible.tolist() == [57, 49, 51, 37, 39, 68, 70, 45, 50, 51, 48, 50, 52, 36, 38, 31, 28, 0, 0, 0, 0]
    annotated, visible = mixture.keypoint_counts(mpii)
    assert annotated.tolist() == [0] * 5 + [5] * 16
    assert visible.tolist() == [0] * 5 + [5] * 10 + [3, 3] + [5] * 4    # two MPII people lack both ankles


def test_mpii_points_land_where_the_paper_puts_them():
    mixture = UnionMixture([source(**MPII)], "coco_mpii21")
    originals, _ = read_mpii(FIXTURES / "mpii/mpii_annotations.json", FIXTURES / "mpii/images")
    for original, mapped in zip(originals, mixture.instances, strict=True):
        for mpii_index, unified_index in enumerate(MPII_TO_UNIFIED):
            np.testing.assert_array_equal(mapped.keypoints[unified_index], original.keypoints[mpii_index])
            assert mapped.visible[unified_index] == original.visible[mpii_index]
        np.testing.assert_array_equal(mapped.box, original.box)


def test_default_union_equals_the_preset():
    by_default = UnionMixture([source(**COCO), source(**MPII)])
    by_preset = UnionMixture([source(**COCO), source(**MPII)], "coco_mpii21")
    assert by_default.skeleton == by_preset.skeleton
    for a, b in zip(by_default.instances, by_preset.instances, strict=True):
        np.testing.assert_array_equal(a.annotated, b.annotated)
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_wholebody_invalid_parts_are_not_annotated_in_the_union():
    wholebody = source("wholebody", "coco_wholebody", "coco/coco_wholebody.json", "coco/images")
    mixture = UnionMixture([wholebody, source(**MPII)])
    skeleton = mixture.skeleton
    assert skeleton.num_keypoints == 133 + 4
    person = next(i for i in mixture.instances if i.ann_id == 442619 and i.dataset == "wholebody")
    left_hand = [skeleton.index(f"left_{n}") for n in ("hand_wrist", "thumb_cmc", "pinky_tip")]
    right_hand = [skeleton.index(f"right_{n}") for n in ("hand_wrist", "thumb_cmc", "pinky_tip")]
    assert not person.annotated[left_hand].any() and person.annotated[right_hand].all()
    assert not person.annotated[[skeleton.index(n) for n in ("pelvis", "thorax", "upper_neck", "head_top")]].any()
    mpii_people = mixture.instances[mixture.datasets[1].start:]
    assert not any(i.annotated[list(skeleton.parts["face"])].any() for i in mpii_people)


def test_halpe_into_the_paper_skeleton():
    halpe = source("halpe", "halpe136", "coco/halpe136.json", "coco/images")
    mixture = UnionMixture([halpe], "coco_mpii21")
    skeleton = mixture.skeleton
    for instance in mixture.instances:      # Halpe's head = head_top; its neck and hip are never labelled
        assert instance.annotated[skeleton.index("head_top")]
        assert not instance.annotated[[skeleton.index(n) for n in ("upper_neck", "pelvis", "thorax")]].any()
        assert instance.annotated[:17].all()
    assert set(mixture.datasets[0].dropped) >= {"left_big_toe", "face_0", "right_pinky_tip"}
    assert "neck" not in mixture.datasets[0].dropped and len(mixture.datasets[0].dropped) == 136 - 20


def test_remap_instances_fills_missing_points():
    instances, _ = read_coco(require(FIXTURES / "crowdpose/test_crowdpose.json"), FIXTURES / "crowdpose/images",
                             "crowdpose")
    mapping = keypoint_mapping(get_skeleton("crowdpose14"), get_skeleton("coco_mpii21"))
    mapped = remap_instances(instances, mapping)
    for original, person in zip(instances, mapped, strict=True):
        assert person.keypoints.dtype == np.float32 and person.visible.dtype == np.int8
        assert not person.annotated[:5].any() and not person.visible[:5].any()
        np.testing.assert_array_equal(person.keypoints[:5], 0)
        np.testing.assert_array_equal(person.keypoints[20], original.keypoints[12])   # head -> head_top
        np.testing.assert_array_equal(person.keypoints[19], original.keypoints[13])   # neck -> upper_neck
        assert not person.annotated[[17, 18]].any()
    assert remap_instances([], mapping) == []


def test_epoch_indices_follow_the_ratios():
    mixture = UnionMixture([source(**COCO, ratio=0.5), source(**MPII, ratio=2.0)])
    coco, mpii = mixture.datasets
    indices = mixture.epoch_indices(epoch=3, seed=7)
    from_coco = indices[(indices >= coco.start) & (indices < coco.stop)]
    from_mpii = indices[(indices >= mpii.start) & (indices < mpii.stop)]
    assert len(indices) == len(from_coco) + len(from_mpii)
    assert len(from_coco) == 6 and len(set(from_coco.tolist())) == 6                # a random half, no repeats
    assert sorted(from_mpii.tolist()) == sorted(list(range(mpii.start, mpii.stop)) * 2)   # each twice
    np.testing.assert_array_equal(indices, mixture.epoch_indices(epoch=3, seed=7))  # deterministic
    assert not np.array_equal(indices, mixture.epoch_indices(epoch=4, seed=7))
    chosen = [frozenset(i for i in mixture.epoch_indices(e, seed=7).tolist() if i < coco.stop) for e in range(6)]
    assert len(set(chosen)) > 1, "the half of COCO should change from epoch to epoch"

    once = UnionMixture([source(**COCO), source(**MPII)])
    np.testing.assert_array_equal(np.sort(once.epoch_indices(0)), np.arange(len(once)))
    assert np.array_equal(once.dataset_ids, [0] * 12 + [1] * 5)


def test_mixture_rejects_duplicate_names_and_disjoint_skeletons():
    with pytest.raises(ValueError, match="unique"):
        UnionMixture([source(**COCO), source(**COCO)])
    with pytest.raises(ValueError, match="shares no keypoint"):
        UnionMixture([source(**MPII)], "face68")


def test_data_stats_command(capsys):
    require(DATA / "coco_train_mini")
    assert main(["data", "stats", str(require(CONFIG)), "--split", "train", "--verify-images"]) == 0
    out = capsys.readouterr().out
    assert "coco (coco, skeleton coco17, ratio 1): read 172, kept 86, skipped 86 (crowd 5, no_keypoints 81)" in out
    assert "mpii (mpii, skeleton mpii16, ratio 1): read 5, kept 5, skipped 0" in out
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 8 and parts[0].isdigit():
            rows[parts[1]] = ((int(parts[2]), int(parts[4])), (int(parts[5]), int(parts[7])))
    assert len(rows) == 21
    for name in ("pelvis", "thorax", "upper_neck", "head_top"):
        assert rows[name][0] == (0, 0) and rows[name][1] == (5, 5)
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear"):
        assert rows[name][1] == (0, 0) and rows[name][0][0] == 86
    assert rows["nose"][0] == (86, 57) and rows["left_ankle"] == ((86, 31), (5, 3))

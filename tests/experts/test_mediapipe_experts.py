"""MediaPipe Holistic as a WholeBody expert on real photos: handedness, flips, face-68 order, the teacher adapter."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import DATA, FIXTURES, require

from unionpose.data.readers import read_coco
from unionpose.skeletons import get_skeleton
from unionpose.teachers import StudentSpace, build_teacher_cache
from unionpose.teachers.mediapipe_experts import HolisticExpert, holistic_teacher

pytest.importorskip("mediapipe")
pytestmark = pytest.mark.experts


LEFT_HAND, RIGHT_HAND, FACE = slice(91, 112), slice(112, 133), slice(23, 91)
LEFT_WRIST, RIGHT_WRIST = 9, 10
# coco_train_mini people whose two hands Holistic finds (checked on every person with >= 10 keypoints)
BOTH_HANDS = (204343, 210845)
# fixture people with a frontal, labelled face in COCO-WholeBody (eye corners 13-17 px apart)
FRONTAL_FACES = (442619, 198196, 230195)


@pytest.fixture(scope="module")
def expert():
    with HolisticExpert() as holistic:
        yield holistic


def _people(annotations, images, ids, format="coco"):
    people, _ = read_coco(require(annotations), require(images), format=format)
    chosen = [p for p in people if p.ann_id in ids]
    assert len(chosen) == len(ids)
    return chosen


@pytest.fixture(scope="module")
def two_handed():
    return _people(DATA / "coco_train_mini" / "person_keypoints_train2017.json", DATA / "coco_train_mini" / "images",
                   BOTH_HANDS)


def test_holistic_hands_are_the_persons_own(expert, two_handed):
    """On a normal photo Holistic's left hand is at the ground-truth left wrist, not the right (docs/conventions.md)."""
    for person in two_handed:
        keypoints, confidence = expert.predict_people(cv2.imread(person.image), person.box[None])
        keypoints, confidence = keypoints[0], confidence[0]
        size = np.sqrt(person.box[2] * person.box[3])
        assert (confidence[LEFT_HAND] > 0).all() and (confidence[RIGHT_HAND] > 0).all()
        for hand_wrist, own, other in ((91, LEFT_WRIST, RIGHT_WRIST), (112, RIGHT_WRIST, LEFT_WRIST)):
            to_own = np.linalg.norm(keypoints[hand_wrist] - person.keypoints[own]) / size
            to_other = np.linalg.norm(keypoints[hand_wrist] - person.keypoints[other]) / size
            assert to_own < 0.1 < to_other, (person.ann_id, hand_wrist, to_own, to_other)


def test_a_mirrored_photo_swaps_the_left_and_right_labels(expert, two_handed):
    """Mirroring the photo makes the person's left hand their right: mapped back (x -> W - x, WholeBody flip
    pairs), the mirrored prediction lands on the original one, part by part."""
    flip = get_skeleton("coco_wholebody133").flip_indices
    for person in two_handed:
        image = cv2.imread(person.image)
        width = image.shape[1]
        mirrored_box = person.box.copy()
        mirrored_box[0] = width - person.box[0] - person.box[2]
        original = expert.predict_people(image, person.box[None])[0][0]
        mirrored = expert.predict_people(np.ascontiguousarray(image[:, ::-1]), mirrored_box[None])[0][0]
        back = mirrored[flip]
        back[:, 0] = width - back[:, 0]
        size = np.sqrt(person.box[2] * person.box[3])
        for part in (slice(0, 17), LEFT_HAND, RIGHT_HAND, FACE):
            error = np.linalg.norm(back[part] - original[part], axis=1).mean() / size
            assert error < 0.05, (person.ann_id, part, error)
        # without the swap, the left hand would be compared with the right one: far apart
        unswapped = mirrored.copy()
        unswapped[:, 0] = width - unswapped[:, 0]
        assert np.linalg.norm(unswapped[LEFT_HAND] - original[LEFT_HAND], axis=1).mean() / size > 0.2


def test_face_68_follows_the_300w_order(expert):
    fixtures = FIXTURES / "coco"
    people = _people(fixtures / "coco_wholebody.json", fixtures / "images", FRONTAL_FACES, "coco_wholebody")
    for person in people:
        keypoints, confidence = expert.predict_people(cv2.imread(person.image), person.box[None])
        face, truth = keypoints[0][FACE], person.keypoints[FACE]
        assert (confidence[0][FACE] > 0.5).all()
        # jaw point 0 is on the person's right = the image's left for a frontal face; the nose tip is below the eyes
        assert face[0, 0] < face[8, 0] < face[16, 0]
        assert face[30, 1] > face[36:48, 1].max()
        assert face[8, 1] > face[57, 1] > face[30, 1]       # chin below the lower lip below the nose tip
        eye_corners = np.linalg.norm(truth[36] - truth[45])
        error = np.linalg.norm(face - truth, axis=1) / eye_corners
        assert error.mean() < 0.15, (person.ann_id, error.mean())      # ~0.06 measured (docs/conventions.md)


def test_body_matches_ground_truth_and_nothing_is_clamped(expert):
    fixtures = FIXTURES / "coco"
    people, _ = read_coco(require(fixtures / "coco_wholebody.json"), fixtures / "images", format="coco_wholebody")
    errors = []
    for person in people:
        keypoints, confidence = expert.predict_people(cv2.imread(person.image), person.box[None])
        keypoints, confidence = keypoints[0], confidence[0]
        if not np.isfinite(keypoints[:17]).all():
            assert not confidence.any()                     # nobody found: nothing is given
            continue
        assert np.isnan(keypoints[[18, 21]]).all()          # small toes never given
        shown = person.visible[:17] > 0
        errors.append(np.linalg.norm(keypoints[:17][shown] - person.keypoints[:17][shown], axis=1).mean()
                      / np.sqrt(person.box[2] * person.box[3]))
    assert len(errors) >= 10 and np.median(errors) < 0.07, errors
    # a person cut by the image edge: the crop is padded, points beyond it are extrapolated, not clamped
    image = cv2.imread(str(fixtures / "images" / "000000000785.jpg"))
    skier = next(p for p in people if p.ann_id == 442619)
    top_half = image[: int(skier.box[1] + skier.box[3] * 0.55)]
    keypoints, _ = expert.predict_people(np.ascontiguousarray(top_half), skier.box[None])
    assert np.nanmax(keypoints[0][13:17, 1]) > top_half.shape[0]     # knees/ankles below the cut


def test_the_expert_works_through_the_coordinate_teacher_adapter(expert):
    """As a teacher of a 133-point student: a cache in image pixels, NaN and confidence 0 where it gives nothing."""
    fixtures = FIXTURES / "coco"
    people = _people(fixtures / "coco_wholebody.json", fixtures / "images", (442619, 531914), "coco_wholebody")
    teacher = holistic_teacher(StudentSpace(get_skeleton("coco_wholebody133"), (256, 192)), expert=expert)
    assert "mediapipe==0.10.21" in teacher.identity and teacher.input_size == (512, 384)
    cache = build_teacher_cache(teacher, people)
    assert cache.keypoints.shape == (2, 133, 2)
    direct = np.stack([expert.predict_people(cv2.imread(p.image), p.box[None])[0][0] for p in people])
    np.testing.assert_allclose(cache.keypoints, direct, atol=0.05, equal_nan=True)
    given = np.isfinite(cache.keypoints).all(axis=2)
    assert (given == (cache.confidence > 0)).all()
    assert given[:, :17].all() and not given[:, [18, 21]].any()
    assert given[1, RIGHT_HAND].all() and not given[1, LEFT_HAND].any()     # only this skier's right hand shows


def test_a_prediction_does_not_depend_on_the_crop_before_it(expert):
    """Holistic carries face and hand regions from call to call; the expert clears them, so order is irrelevant."""
    fixtures = FIXTURES / "coco"
    skier, other = _people(fixtures / "coco_wholebody.json", fixtures / "images", (442619, 531914), "coco_wholebody")
    first = expert.predict_people(cv2.imread(skier.image), skier.box[None])[0]
    again = expert.predict_people(cv2.imread(skier.image), skier.box[None])[0]
    expert.predict_people(cv2.imread(other.image), other.box[None])
    after_other = expert.predict_people(cv2.imread(skier.image), skier.box[None])[0]
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(after_other, first)


def test_nothing_but_the_expert_module_imports_mediapipe():
    """Here MediaPipe is installed: importing every other module still leaves it out of sys.modules. This environment
    has the `train` and `experts` extras only, so the web server's modules (extra `serve`) cannot be imported here;
    they are skipped by name and nothing else may be."""
    script = (
        "import importlib, pkgutil, sys, unionpose\n"
        "skipped = []\n"
        "for module in pkgutil.walk_packages(unionpose.__path__, 'unionpose.'):\n"
        "    if module.name == 'unionpose.__main__':\n"
        "        continue\n"
        "    try:\n"
        "        importlib.import_module(module.name)\n"
        "    except ModuleNotFoundError as error:\n"
        "        if error.name.split('.')[0] not in ('fastapi', 'starlette', 'uvicorn', 'multipart'):\n"
        "            raise\n"
        "        skipped.append(module.name)\n"
        "print(' '.join(skipped))\n"
        "print('mediapipe' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    skipped_line, verdict = result.stdout.splitlines()[-2:]
    assert all(name.startswith("unionpose.apps.serve") for name in skipped_line.split()), skipped_line
    assert verdict == "False"

"""Teachers: crop and bin geometry, mapping by name into the union, checkpoint, ONNX and coordinate adapters, caches."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from conftest import REFERENCE, require
from distill_support import SIZE, coco_mpii_mixture, make_batch, smooth_teacher
from pydantic import ValidationError

from unionpose.core.simcc import SimCCCodec
from unionpose.core.transforms import IMAGE_MEAN_RGB, IMAGE_STD_RGB, box_to_center_scale, get_warp_matrix, warp_image
from unionpose.data.augment import AugmentConfig
from unionpose.export.onnx import export_onnx
from unionpose.models import load_toolbox_model, read_model_info, save_model_file
from unionpose.skeletons import get_skeleton
from unionpose.teachers import (
    BinResampler,
    CachedTeacher,
    CheckpointTeacher,
    CoordinateTeacher,
    OnnxTeacher,
    StudentSpace,
    TeacherCache,
    TeacherSpec,
    build_teacher,
    data_identity,
    load_teacher_cache,
    open_cached_teacher,
    renormalise,
    resize_crops,
    soft_simcc_targets,
)

# Khan et al. 2024: MPII index i -> unified index (docs/conventions.md).
MPII_TO_UNION = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]


@pytest.fixture(scope="module")
def mixture():
    return coco_mpii_mixture()


@pytest.fixture(scope="module")
def batch(mixture):
    return make_batch(mixture, [0, 3, 12, 14])    # two COCO people, two MPII people


@pytest.fixture(scope="module")
def mpii_teacher_file(tmp_path_factory, batch):
    """A tiny MPII-16 teacher as a UnionPose model file."""
    path = tmp_path_factory.mktemp("teachers") / "mpii_t.safetensors"
    return save_model_file(path, smooth_teacher(get_skeleton("mpii16"), batch["image"]), get_skeleton("mpii16"))


def union_space(size=SIZE) -> StudentSpace:
    return StudentSpace(get_skeleton("coco_mpii21"), size)


def centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of a one-channel image, in pixel coordinates."""
    weights = np.clip(image - image.max() * 0.05, 0, None)
    ys, xs = np.indices(image.shape)
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize("point", [(89.6, 71.3), (221.3, 402.6), (350.4, 419.5)])
def test_resampled_teacher_peak_lands_where_the_student_sees_the_same_image_point(point):
    # The paper's MPII case: a 256x192 student crop is resized to 256x256 for the teacher, whose 512 x-bins are read
    # back at the student's 384. A bright dot in the image is found in both crops; a teacher peak at the dot's
    # teacher pixel must come back at the dot's student pixel.
    image = np.zeros((480, 400), np.float32)
    image[int(point[1]), int(point[0])] = 1000.0
    image = cv2.GaussianBlur(image, (0, 0), 3.0)
    center, scale = box_to_center_scale(np.array([100.0, 80.0, 240.0, 330.0]), 192 / 256)
    student_crop = warp_image(image, get_warp_matrix(center, scale, 0.0, (192, 256)), (192, 256))
    teacher_crop = resize_crops(torch.from_numpy(student_crop)[None, None], (256, 256))[0, 0].numpy()
    seen_by_student, seen_by_teacher = centroid(student_crop), centroid(teacher_crop)

    for axis, (student_length, teacher_length) in enumerate([(192, 256), (256, 256)]):
        teacher_bins = torch.arange(teacher_length * 2, dtype=torch.float32)
        teacher_logits = torch.exp(-0.5 * ((teacher_bins - 2 * seen_by_teacher[axis]) / 5.66) ** 2)
        student_logits = BinResampler(teacher_length, 2.0, student_length, 2.0)(teacher_logits)
        assert student_logits.shape == (student_length * 2,)
        peak = float((student_logits * torch.arange(len(student_logits))).sum() / student_logits.sum()) / 2
        assert abs(peak - seen_by_student[axis]) < 0.05, (axis, peak, seen_by_student[axis])
        assert abs(int(student_logits.argmax()) / 2 - seen_by_student[axis]) <= 0.5


def test_same_geometry_resampling_and_normalisation_are_exact():
    logits = torch.randn(2, 3, 128)
    assert torch.equal(BinResampler(64, 2.0, 64, 2.0)(logits), logits)
    pixels = torch.rand(2, 3, 8, 8) * 255
    mean, std = torch.tensor(IMAGE_MEAN_RGB).view(1, 3, 1, 1), torch.tensor(IMAGE_STD_RGB).view(1, 3, 1, 1)
    raw = renormalise((pixels - mean) / std, IMAGE_MEAN_RGB, IMAGE_STD_RGB, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    torch.testing.assert_close(raw, pixels, atol=1e-4, rtol=0)


def test_mpii_teacher_lands_on_the_union_channels_by_name(mpii_teacher_file, batch):
    teacher = CheckpointTeacher.from_file(mpii_teacher_file, union_space())
    output = teacher(batch)
    with torch.no_grad():
        raw_x, raw_y = teacher.model(batch["image"])
    assert output.simcc_x.shape == (4, 21, 128) and output.simcc_y.shape == (4, 21, 128)
    for mpii_index, union_index in enumerate(MPII_TO_UNION):
        assert torch.equal(output.simcc_x[:, union_index], raw_x[:, mpii_index])
        assert torch.equal(output.simcc_y[:, union_index], raw_y[:, mpii_index])
    assert teacher.student_channels[torch.argsort(teacher.teacher_channels)].tolist() == MPII_TO_UNION
    assert output.mask.shape == (4, 21)
    assert not output.mask[:, :5].any() and output.mask[:, 5:].all()   # the face points are COCO's only
    assert not output.simcc_x[:, :5].any()
    assert output.feature is None and teacher(batch, with_feature=True).feature.shape[1] == teacher.feature_channels


def test_teacher_with_another_input_size_is_fed_the_resized_crop(batch, tmp_path):
    skeleton = get_skeleton("coco17")
    model = smooth_teacher(skeleton, torch.nn.functional.interpolate(batch["image"], (96, 64)), size=(96, 64))
    teacher = CheckpointTeacher.from_file(save_model_file(tmp_path / "coco_96x64.safetensors", model, skeleton),
                                          union_space())
    output = teacher(batch, with_feature=True)
    with torch.no_grad():
        raw_x, raw_y = model(resize_crops(batch["image"], (96, 64)))
    assert output.simcc_y.shape == (4, 21, 128)                       # 192 teacher y-bins read at the student's 128
    assert torch.equal(output.simcc_x[:, :17], raw_x)                 # x: same width, bins unchanged
    torch.testing.assert_close(output.simcc_y[:, :17], BinResampler(96, 2.0, 64, 2.0)(raw_y))
    assert output.feature.shape == (4, model.backbone.out_channels, 3, 2)


def test_reference_onnx_teacher_equals_the_same_weights_as_a_checkpoint_teacher(tmp_path):
    folder = require(REFERENCE / "rtmpose-t_coco-256x192")
    model = load_toolbox_model(folder / "model.safetensors")
    coco = get_skeleton("coco17")
    student = StudentSpace(get_skeleton("coco_mpii21"), (256, 192))
    checkpoint = CheckpointTeacher.from_file(save_model_file(tmp_path / "ref.safetensors", model, coco), student)
    onnx = OnnxTeacher(folder / "model.onnx", student, skeleton="coco17")
    batch = {"image": torch.from_numpy(np.load(folder / "input.npy"))}
    ours, theirs = checkpoint(batch), onnx(batch)
    assert torch.equal(ours.mask, theirs.mask)
    for axis in ("x", "y"):
        a, b = getattr(ours, f"simcc_{axis}"), getattr(theirs, f"simcc_{axis}")
        toolbox = torch.from_numpy(np.load(folder / f"simcc_{axis}.npy"))
        scale = toolbox.abs().max()
        # These recipe weights give logits of ~1e-6 (see the reference README): compare relatively.
        assert scale > 0 and (a - b).abs().max() / scale < 1e-3
        assert (b[:, :17] - toolbox).abs().max() / scale < 1e-3
    with pytest.raises(ValueError, match="no backbone feature"):
        onnx(batch, with_feature=True)


def test_exported_onnx_teacher_equals_its_checkpoint_teacher(mpii_teacher_file, batch, tmp_path):
    student = union_space()
    checkpoint = CheckpointTeacher.from_file(mpii_teacher_file, student)
    onnx_path = export_onnx(checkpoint.model, read_model_info(mpii_teacher_file), tmp_path / "mpii.onnx")
    onnx = OnnxTeacher(onnx_path, student)                  # skeleton and input size from the graph's metadata
    assert onnx.skeleton == get_skeleton("mpii16") and onnx.input_size == SIZE
    ours, theirs = checkpoint(batch), onnx(batch)
    assert ours.simcc_x.abs().max() > 0.1                   # order-1 logits: an absolute tolerance means something
    torch.testing.assert_close(theirs.simcc_x, ours.simcc_x, atol=1e-4, rtol=0)
    torch.testing.assert_close(theirs.simcc_y, ours.simcc_y, atol=1e-4, rtol=0)
    assert torch.equal(ours.mask, theirs.mask)
    with pytest.raises(ValueError, match="metadata says skeleton"):
        OnnxTeacher(onnx_path, student, skeleton="coco17")


def test_soft_targets_on_tensors_match_the_codec():
    space = union_space((64, 48))
    codec = SimCCCodec((64, 48))
    keypoints = np.array([[[10.3, 20.7], [47.0, 0.0], [5.0, 5.0], [np.nan, 3.0]]], np.float32)
    confidence = np.array([[0.9, 1.0, 0.0, 0.8]], np.float32)
    expected_x, expected_y = codec.soft_targets_from_coordinates(keypoints, confidence)
    x, y = soft_simcc_targets(torch.from_numpy(keypoints), torch.from_numpy(confidence), space)
    np.testing.assert_allclose(x.numpy(), expected_x, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), expected_y, atol=1e-6)


def test_coordinate_teacher_gives_soft_targets_at_its_points(mpii_teacher_file, batch):
    student = union_space()
    logit_teacher = CheckpointTeacher.from_file(mpii_teacher_file, student)
    expert = CoordinateTeacher("mpii_expert", get_skeleton("mpii16"), student, logit_teacher.predict_crops,
                               identity="test expert: decoded mpii teacher")
    output = expert(batch)
    online = logit_teacher(batch)
    codec = SimCCCodec(SIZE)
    expert_points, expert_scores = codec.decode(output.simcc_x.numpy(), output.simcc_y.numpy())
    teacher_points, teacher_scores = codec.decode(online.simcc_x.numpy(), online.simcc_y.numpy())
    covered = online.mask.numpy() & (teacher_scores > 0)
    assert covered[:, 5:].sum() > 40 and np.array_equal(output.mask.numpy(), covered)
    np.testing.assert_allclose(expert_points[covered], teacher_points[covered], atol=1e-6)
    # The expert sees the crop as uint8 pixels (rounded), hence a tolerance on the scores.
    np.testing.assert_allclose(expert_scores[covered], np.minimum(teacher_scores[covered], 1.0), atol=1e-4)


def test_cache_replays_the_teacher_and_refuses_other_data_or_teachers(mpii_teacher_file, batch, mixture, tmp_path):
    student = union_space()
    online = CheckpointTeacher.from_file(mpii_teacher_file, student, "mpii")
    path = tmp_path / "mpii_predictions.safetensors"
    cached = open_cached_teacher(path, student, mixture.instances, "mpii", source=online)
    assert path.is_file() and len(cached.cache.keypoints) == len(mixture.instances)

    # Without augmentation the cache's crop is the batch's crop, so replaying it gives the online teacher's points.
    codec = SimCCCodec(SIZE)
    replay, live = cached(batch), online(batch)
    replay_points, _ = codec.decode(replay.simcc_x.numpy(), replay.simcc_y.numpy())
    live_points, live_scores = codec.decode(live.simcc_x.numpy(), live.simcc_y.numpy())
    both = replay.mask.numpy() & (live_scores > 0)
    assert both.sum() > 40
    assert np.abs(replay_points[both] - live_points[both]).max() <= 0.5 + 1e-6   # one bin: the cache stores px

    # Reopening checks the header and reuses the file.
    stamp = os.stat(path).st_mtime_ns
    open_cached_teacher(path, student, mixture.instances, "mpii", source=online)
    assert os.stat(path).st_mtime_ns == stamp
    with pytest.raises(ValueError, match="different data"):
        open_cached_teacher(path, student, mixture.instances[:-1], "mpii", source=online)
    other_model = smooth_teacher(get_skeleton("mpii16"), batch["image"], seed=1)
    other = CheckpointTeacher.from_file(save_model_file(tmp_path / "other.safetensors", other_model,
                                                        get_skeleton("mpii16")), student, "mpii")
    with pytest.raises(ValueError, match="different teacher"):
        open_cached_teacher(path, student, mixture.instances, "mpii", source=other)
    with pytest.raises(ValueError, match="not a UnionPose teacher cache"):
        load_teacher_cache(mpii_teacher_file)
    with pytest.raises(ValueError, match="holds 17 instances"):
        cached({**batch, "instance_index": torch.tensor([0, 1, 2, 17])})


def test_cached_points_follow_flips_and_rotations_of_the_crop(mixture):
    # A cache holding the ground truth itself, replayed into augmented (always flipped, rotated, scaled) crops, must
    # give back exactly the keypoints the data pipeline computed for those crops.
    instances = mixture.instances
    cache = TeacherCache(
        keypoints=np.stack([i.keypoints for i in instances]).astype(np.float32),
        confidence=np.stack([(i.visible > 0) for i in instances]).astype(np.float32),
        skeleton=mixture.skeleton, teacher="ground truth", data=data_identity(instances))
    teacher = CachedTeacher("gt", cache, union_space())
    augment = AugmentConfig(flip_prob=1.0, rotation_prob=1.0, half_body_prob=0.0, shift_prob=1.0)
    batch = make_batch(mixture, list(range(len(instances))), augment=augment, seed=3)
    assert batch["flipped"].all()
    output = teacher(batch)
    points, _ = SimCCCodec(SIZE).decode(output.simcc_x.numpy(), output.simcc_y.numpy())
    inside = (batch["visible"] > 0).numpy() & (batch["keypoints"].numpy() >= 0).all(-1) & \
        (batch["keypoints"].numpy() <= SIZE[0] - 1).all(-1)
    assert inside.sum() > 100
    assert np.abs(points[inside] - batch["keypoints"].numpy()[inside]).max() <= 0.25 + 1e-5
    assert output.mask.numpy()[inside].all()


def test_teacher_specs_build_teachers_and_reject_bad_combinations(mpii_teacher_file, tmp_path):
    student = union_space((256, 192))
    spec = TeacherSpec(name="coco_expert", kind="onnx", beta=0.45, skeleton="coco17",
                       path=require(REFERENCE / "rtmpose-t_coco-256x192" / "model.onnx"))
    assert isinstance(build_teacher(spec, student), OnnxTeacher)
    teacher = build_teacher(TeacherSpec(name="mpii_expert", kind="checkpoint", path=mpii_teacher_file, beta=0.25),
                            student)
    assert isinstance(teacher, CheckpointTeacher) and teacher.skeleton.name == "mpii16"
    with pytest.raises(ValueError, match="skeleton"):
        build_teacher(spec.model_copy(update={"skeleton": None}), student)
    with pytest.raises(ValueError, match="predicts skeleton 'mpii16'"):
        build_teacher(TeacherSpec(name="m", kind="checkpoint", path=mpii_teacher_file, beta=1, skeleton="coco17"),
                      student)
    with pytest.raises(ValueError, match="needs the training instances"):
        build_teacher(TeacherSpec(name="m", kind="checkpoint", path=mpii_teacher_file, beta=1, mode="cached",
                                  cache=tmp_path / "c.safetensors"), student)
    for bad, message in [
        ({"typo": 1}, "Extra inputs"),
        ({"mode": "cached"}, "needs `cache`"),
        ({"kind": "coordinates", "mode": "online"}, "cannot run online"),
        ({"kind": "checkpoint", "input": [256, 256]}, "only for ONNX"),
        ({"name": "coco.expert"}, "pattern"),
    ]:
        with pytest.raises(ValidationError, match=message):
            TeacherSpec.model_validate({"name": "t", "kind": "onnx", "path": "t.onnx", "beta": 0.5, **bad})
    assert TeacherSpec(name="e", kind="coordinates", path="e.safetensors", beta=1).mode == "cached"

"""The corpus of bad inputs of issue 14, generated, never committed: images, videos, annotation files of every
supported format, configs, overrides, model files and command-line arguments, each run through a public command.

    python tests/fuzz_corpus.py [FOLDER]     # write every case's inputs and print the cases by category

Every case must end with exit code 1 or 2 and a one-line `unionpose VERB: error: ...` naming the file (and, where
there is one, the record and field) or the argument at fault; no traceback; no file outside the case's `out`
folder touched; no input changed. `tests/test_fuzz_corpus.py` runs them.

A case is a name, a category and a builder: the builder writes the case's own inputs into its folder (beside the
inputs all cases share) and returns the command line. Nothing is written before a case runs, so the list of cases
is known without touching the disk.
"""
from __future__ import annotations

import json
import math
import pickle
import shutil
import struct
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from conftest import DATA, FIXTURES  # noqa: E402
from reliability_support import model_file, png_claiming, synthetic_data, undecodable_png  # noqa: E402

CATEGORIES = ("images", "videos", "annotations", "configs", "overrides", "models", "arguments")


@dataclass(frozen=True)
class Case:
    """One run of a public command on bad input, and what its error line must name."""

    category: str
    name: str
    argv: tuple[str, ...]
    names: tuple[str, ...]     # fragments the error line must hold: the file, the record, the field, the argument
    out: Path                  # the only folder the case may write into (also its working folder)
    inputs: Path               # the case's own inputs (must not change)


@dataclass
class Shared:
    """Inputs every case may read: a model file, a synthetic data set, a photo, a recipe, fixture copies."""

    root: Path
    model: Path = field(init=False)
    data: Path = field(init=False)
    photo: Path = field(init=False)
    fixtures: Path = field(init=False)

    def build(self) -> Shared:
        self.model = model_file(self.root / "model.safetensors")
        self.data = synthetic_data(self.root / "synthetic")
        self.photo = Path(shutil.copy(FIXTURES / "coco/images/000000000785.jpg", self.root / "person.jpg"))
        self.fixtures = self.root / "fixtures"
        for name in ("coco/person_keypoints.json", "coco/coco_wholebody.json", "coco/halpe136.json",
                     "crowdpose/test_crowdpose.json", "aic/test_aic.json", "ochuman/test_ochuman.json",
                     "mpii/mpii_annotations.json", "coco/person_detections.json"):
            (self.fixtures / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(FIXTURES / name, self.fixtures / name)
        shutil.copytree(FIXTURES / "posetrack18/annotations/val", self.fixtures / "posetrack18")
        shutil.copy(DATA / "videos/street_5frames.mp4", self.root / "street.mp4")
        return self

    def recipe(self, path: Path, out: Path, dataset: Path | None = None, **changes) -> Path:
        """A valid one-epoch recipe on the synthetic COCO people (`dataset` another copy of them), `changes`
        replacing whole sections."""
        data = dataset or self.data
        recipe = {"skeleton": "coco17", "model": {"size": "t", "input": [64, 64]},
                  "data": {"train": [{"name": "coco", "format": "coco", "annotations": str(data / "coco17.json"),
                                      "images": str(data / "images")}], "augment": {"enabled": False}},
                  "train": {"epochs": 1, "batch_size": 4, "warmup_iters": 0, "workers": 0, "val_interval": 0,
                            "ema": False, "device": "cpu", "tensorboard": False},
                  "output": str(out / "run")}
        for key, value in changes.items():
            recipe[key] = value
        path.write_text(yaml.safe_dump(recipe))
        return path


Builder = Callable[[Shared, Path, Path], tuple[list[str], tuple[str, ...]]]   # (shared, inputs, out) -> argv, names
CASES: dict[str, tuple[str, Builder]] = {}


def case(category: str, name: str, builder: Builder) -> None:
    assert category in CATEGORIES and name not in CASES, name
    CASES[name] = (category, builder)


def build_case(name: str, shared: Shared, folder: Path | None = None) -> Case:
    """Write case `name`'s inputs under `folder/name` (default `shared.root/cases/name`) and return it."""
    category, builder = CASES[name]
    inputs = (folder or shared.root / "cases") / name
    out = inputs / "out"
    out.mkdir(parents=True)
    argv, names = builder(shared, inputs, out)
    return Case(category, name, tuple(str(a) for a in argv), tuple(names), out, inputs)


# --- images: through predict, data stats --verify-images and train ----------------------------------------------
def _jpeg_frame(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\x00" * 64 + b"\xff\xd9"


def _tiff(width: int, height: int, directory: int = 8) -> bytes:
    entries = [struct.pack("<HHII", 256, 4, 1, width), struct.pack("<HHII", 257, 4, 1, height)]
    return b"II*\x00" + struct.pack("<I", directory) + struct.pack("<H", 2) + b"".join(entries) + b"\x00" * 4


def _bad_images(photo: bytes, width: int, height: int) -> dict[str, bytes]:
    """Bad image files by kind; `width` x `height` is what the annotation declares (for the decode-only failure)."""
    png_signature = b"\x89PNG\r\n\x1a\n"
    return {
        "empty": b"",
        "truncated_jpeg": photo[: len(photo) // 2],
        "truncated_png": png_claiming(width, height, bytes(32))[:-12],
        "png_claims_60000x60000": png_claiming(60000, 60000),
        "png_claims_20000x20000": png_claiming(20000, 20000),
        "png_claims_0x0": png_claiming(0, 0),
        "png_signature_only": png_signature,
        "jpeg_without_frame": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200) + b"\xff\xd9",
        "jpeg_claims_65000x65000": _jpeg_frame(65000, 65000),
        "random_bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "text": b"not an image at all\n",
        "gif": b"GIF89a" + bytes(120),
        "bmp_claims_huge": b"BM" + bytes(12) + struct.pack("<Iii", 40, 100000, -100000) + bytes(40),
        "webp_claims_huge": b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8X" + bytes(8) + b"\xff\xff\xff" * 2,
        "tiff_claims_huge": _tiff(100000, 100000),
        "tiff_directory_outside": _tiff(10, 10, directory=1 << 30),
        "png_undecodable_pixels": undecodable_png(width, height),
    }


IMAGE_KINDS = tuple(_bad_images(b"\xff\xd8", 1, 1))
PASSES_THE_HEADER_CHECK = {"png_undecodable_pixels"}     # fails only when decoded: not a `data stats` case


def _dataset_with_bad_image(shared: Shared, inputs: Path, kind: str) -> tuple[Path, Path]:
    """A copy of the synthetic data whose first training image is replaced by a bad one of `kind`."""
    data = Path(shutil.copytree(shared.data, inputs / "data"))
    first = json.loads((data / "coco17.json").read_text())["images"][0]
    bad = data / "images" / first["file_name"]
    bad.write_bytes(_bad_images(shared.photo.read_bytes(), first["width"], first["height"])[kind])
    return data, bad


def _image_cases() -> None:
    for kind in IMAGE_KINDS:
        def predict(shared: Shared, inputs: Path, out: Path, kind: str = kind):
            image = inputs / f"{kind}.jpg"
            image.write_bytes(_bad_images(shared.photo.read_bytes(), 640, 425)[kind])
            return ["predict", image, "--model", shared.model, "--out", out / "pred", "--quiet"], (image.name,)

        def stats(shared: Shared, inputs: Path, out: Path, kind: str = kind):
            data, bad = _dataset_with_bad_image(shared, inputs, kind)
            config = inputs / "data.yaml"
            config.write_text(yaml.safe_dump({"data": {"train": [{"name": "coco", "format": "coco",
                                                                  "annotations": str(data / "coco17.json"),
                                                                  "images": str(data / "images")}]}}))
            return ["data", "stats", config, "--verify-images"], (str(bad), "image id", "field 'image'")

        def train(shared: Shared, inputs: Path, out: Path, kind: str = kind):
            data, bad = _dataset_with_bad_image(shared, inputs, kind)
            return ["train", shared.recipe(inputs / "recipe.yaml", out, data)], (str(bad), "field 'image'")

        case("images", f"image_{kind}_predict", predict)
        if kind not in PASSES_THE_HEADER_CHECK:
            case("images", f"image_{kind}_data_stats", stats)
        case("images", f"image_{kind}_train", train)


# --- videos -----------------------------------------------------------------------------------------------------
def _video_cases() -> None:
    def video(name: str, content: Callable[[Shared], bytes]) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            path = inputs / name
            path.write_bytes(content(shared))
            return ["predict", path, "--model", shared.model, "--out", out / "pred", "--quiet"], (path.name,)
        return build

    case("videos", "video_empty", video("empty.mp4", lambda s: b""))
    case("videos", "video_random_bytes", video("noise.mp4", lambda s: bytes(range(256)) * 64))
    case("videos", "video_first_2000_bytes", video("cut.mp4", lambda s: (s.root / "street.mp4").read_bytes()[:2000]))
    case("videos", "video_text_as_avi", video("notes.avi", lambda s: b"this is not a video\n" * 10))
    case("videos", "video_only_an_ftyp_box", video("header.mp4", lambda s: struct.pack(">I", 24) + b"ftypisom"
                                                   + bytes(12)))
    case("videos", "video_mkv_of_zeros", video("zeros.mkv", lambda s: bytes(100_000)))

    def folder_named_like_a_video(shared: Shared, inputs: Path, out: Path):
        (inputs / "clip.mp4").mkdir()
        return ["predict", inputs / "clip.mp4", "--model", shared.model, "--out", out / "pred", "--quiet"], \
            ("clip.mp4",)

    def video_among_images(shared: Shared, inputs: Path, out: Path):
        return ["predict", shared.photo, shared.root / "street.mp4", "--model", shared.model, "--out", out / "pred",
                "--quiet"], ("street.mp4",)

    def webcam(device: str) -> Builder:
        return lambda shared, inputs, out: (["predict", device, "--model", shared.model, "--out", out / "pred",
                                             "--quiet"], (device,))

    case("videos", "video_folder_named_mp4", folder_named_like_a_video)
    case("videos", "video_among_images", video_among_images)
    case("videos", "video_webcam_not_a_number", webcam("webcam:front"))


# --- annotation files -------------------------------------------------------------------------------------------
COCO_FILES = {   # format -> (fixture file, skeleton) ; posetrack18 is a folder of per-video files
    "coco": "coco/person_keypoints.json", "coco_wholebody": "coco/coco_wholebody.json",
    "halpe136": "coco/halpe136.json", "crowdpose": "crowdpose/test_crowdpose.json", "aic": "aic/test_aic.json",
    "ochuman": "ochuman/test_ochuman.json", "posetrack18": "posetrack18",
}
NAN = float("nan")


def _set(path: tuple, value) -> Callable[[dict], None]:
    def alter(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
    return alter


COCO_MUTATIONS: dict[str, tuple[Callable[[dict], object] | bytes, tuple[str, ...]]] = {
    # name -> (a change of the parsed file, or the file's bytes; what the error names beyond the file)
    "truncated": (b'{"images": [{"id": 1, "file_na', ("not valid JSON",)),
    "not_utf8": (b"\xff\xfe\x00\x81" * 50, ("not valid JSON",)),
    "empty": (b"", ("not valid JSON",)),
    "a_list": (lambda d: d["annotations"], ("COCO-style object",)),
    "no_images": (lambda d: d.pop("images") and d, ("field 'images'",)),
    "annotations_not_a_list": (_set(("annotations",), {"a": 1}), ("field 'annotations'",)),
    "keypoints_too_short": (_set(("annotations", 0, "keypoints"), lambda v: v[:-3]), ("annotations[0]", "keypoints")),
    "keypoint_nan": (_set(("annotations", 0, "keypoints"), lambda v: [NAN] + v[1:]), ("annotations[0]", "not finite")),
    "bbox_negative": (_set(("annotations", 0, "bbox"), [1, 2, -3, 4]), ("annotations[0]", "field 'bbox'")),
    "unknown_image": (_set(("annotations", 0, "image_id"), 987654321), ("annotations[0]", "field 'image_id'")),
    "repeated_annotation_id": (lambda d: d["annotations"].append(dict(d["annotations"][0])) or d,
                               ("field 'id'", "duplicate annotation id")),
    "conflicting_image_records": (lambda d: d["images"].append({**d["images"][0], "file_name": "other.jpg"}) or d,
                                  ("field 'id'", "duplicate image id")),
    "file_name_leaves_the_folder": (_set(("images", 0, "file_name"), "../../escape.jpg"),
                                    ("images[0]", "field 'file_name'", "leads outside")),
    "height_a_word": (_set(("images", 0, "height"), "tall"), ("images[0]", "field 'height'")),
    "annotation_a_number": (_set(("annotations", 0), 7), ("annotations[0]", "expected an object")),
    "iscrowd_two": (_set(("annotations", 0, "iscrowd"), 2), ("annotations[0]", "field 'iscrowd'")),
    "keypoints_3d_short": (_set(("annotations", 0, "keypoints_3d"), [0.0] * 5),
                           ("annotations[0]", "field 'keypoints_3d'", "expected a list of")),
    "keypoints_3d_nan": (lambda d: d["annotations"][0].update(keypoints_3d=[NAN] * len(d["annotations"][0]
                                                                                   ["keypoints"])) or d,
                         ("annotations[0]", "field 'keypoints_3d'")),
}


def _write_mutated(target: Path, source: Path, mutation) -> None:
    if isinstance(mutation, bytes):
        target.write_bytes(mutation)
        return
    data = json.loads(source.read_text())
    result = mutation(data)
    target.write_text(json.dumps(data if result is None else result))


def _data_stats(inputs: Path, entry: dict) -> list:
    config = inputs / "data.yaml"
    config.write_text(yaml.safe_dump({"data": {"train": [{"name": "set", **entry}]}}))
    return ["data", "stats", config]


def _annotation_cases() -> None:
    for format, fixture in COCO_FILES.items():
        for mutation_name, (mutation, expected) in COCO_MUTATIONS.items():
            def build(shared: Shared, inputs: Path, out: Path, format: str = format, fixture: str = fixture,
                      mutation=mutation, expected: tuple = expected):
                source = shared.fixtures / fixture
                if source.is_dir():                 # PoseTrack18: the first of the per-video files goes bad
                    annotations = Path(shutil.copytree(source, inputs / "annotations"))
                    target = sorted(annotations.glob("*.json"))[0]
                    _write_mutated(target, source / target.name, mutation)
                else:
                    annotations = target = inputs / source.name
                    _write_mutated(target, source, mutation)
                argv = _data_stats(inputs, {"format": format, "annotations": str(annotations),
                                            "images": str(inputs / "images")})
                return argv, (target.name, *expected)

            case("annotations", f"{format}_{mutation_name}", build)

    records = lambda shared: json.loads((shared.fixtures / "mpii/mpii_annotations.json").read_text())  # noqa: E731
    mpii_mutations = {
        "truncated": (b'[{"image": "a.jpg", "joi', ("not valid JSON",)),
        "not_utf8": (b"\x80\x81\x82" * 30, ("not valid JSON",)),
        "an_object": (lambda r: {"people": r}, ("JSON list",)),
        "record_a_string": (lambda r: ["person"] + r, ("record 0", "expected an object")),
        "joints_15": (lambda r: r[0].update(joints=r[0]["joints"][:15]) or r, ("record 0", "field 'joints'")),
        "joints_vis_3": (lambda r: r[0]["joints_vis"].__setitem__(2, 3) or r, ("record 0", "field 'joints_vis'")),
        "scale_negative": (lambda r: r[0].update(scale=-1.0) or r, ("record 0", "field 'scale'")),
        "no_center": (lambda r: r[0].pop("center") and r, ("record 0", "field 'center'")),
        "image_leaves_the_folder": (lambda r: r[0].update(image="/etc/hostname") or r,
                                    ("record 0", "field 'image'", "leads outside")),
        "head_box_inverted": (lambda r: r[0].update(head_box=[50, 50, 10, 10]) or r, ("record 0", "field 'head_box'")),
        "head_size_negative": (lambda r: r[0].update(head_size=-2) or r, ("record 0", "field 'head_size'")),
        "no_image": (lambda r: r[0].pop("image") and r, ("record 0", "field 'image'")),
        "joints_infinite": (lambda r: r[0]["joints"][0].__setitem__(0, math.inf) or r, ("record 0", "finite")),
    }
    for mutation_name, (mutation, expected) in mpii_mutations.items():
        def build(shared: Shared, inputs: Path, out: Path, mutation=mutation, expected: tuple = expected):
            target = inputs / "mpii.json"
            if isinstance(mutation, bytes):
                target.write_bytes(mutation)
            else:
                target.write_text(json.dumps(mutation(records(shared))))
            return _data_stats(inputs, {"format": "mpii", "annotations": str(target),
                                        "images": str(inputs / "images")}), (target.name, *expected)

        case("annotations", f"mpii_{mutation_name}", build)

    for mutation_name, (variables, expected) in _mat_mutations().items():
        def build(shared: Shared, inputs: Path, out: Path, variables=variables, expected: tuple = expected):
            from scipy.io import savemat

            target = inputs / "mpii_gt_val.mat"
            if isinstance(variables, bytes):
                target.write_bytes(variables)
            else:
                savemat(target, variables(records(shared)))
            entry = {"format": "mpii", "annotations": str(shared.fixtures / "mpii/mpii_annotations.json"),
                     "images": str(inputs / "images"), "head_boxes": str(target)}
            return _data_stats(inputs, entry), (target.name, *expected)

        case("annotations", f"mpii_mat_{mutation_name}", build)

    for name, (content, expected) in _box_file_mutations().items():
        def build(shared: Shared, inputs: Path, out: Path, content=content, expected: tuple = expected):
            target = inputs / "boxes.json"
            target.write_bytes(content if isinstance(content, bytes) else json.dumps(content(shared)).encode())
            return ["predict", shared.photo, "--model", shared.model, "--boxes", target, "--out", out / "pred",
                    "--quiet"], (target.name, *expected)

        case("annotations", f"box_file_{name}", build)

    for name, (gt, results, expected, target_name) in _score_mutations().items():
        def build(shared: Shared, inputs: Path, out: Path, gt=gt, results=results, expected: tuple = expected,
                  target_name: str = target_name):
            gt_path, results_path = gt(shared, inputs), results(shared, inputs)
            return ["score", "--gt", gt_path, "--results", results_path, "--json", out / "score.json"], \
                (target_name, *expected)

        case("annotations", f"score_{name}", build)


def _official_variables(records: list) -> dict:
    joints = np.array([r["joints"] for r in records], dtype=np.float64)
    top, neck = joints[:, 9], joints[:, 8]
    corners = np.stack([np.minimum(top, neck) - 10, np.maximum(top, neck) + 10])
    return {"dataset_joints": np.array(("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
                                        "rwri", "relb", "rsho", "lsho", "lelb", "lwri"), dtype=object)[None],
            "jnt_missing": np.zeros((16, len(records))), "pos_gt_src": np.transpose(joints + 1, [1, 2, 0]),
            "headboxes_src": np.transpose(corners + 1, [0, 2, 1])}


def _mat_mutations() -> dict:
    def without(name: str):
        return lambda records: {k: v for k, v in _official_variables(records).items() if k != name}

    def changed(name: str, change):
        return lambda records: {**_official_variables(records), name: change(_official_variables(records)[name])}

    return {
        "text": (b"MATLAB 5.0 MAT-file? no.\n", ("not a MATLAB .mat file",)),
        "empty": (b"", ("not a MATLAB .mat file",)),
        "no_headboxes_src": (without("headboxes_src"), ("field 'headboxes_src'", "missing")),
        "headboxes_flat": (changed("headboxes_src", lambda v: v.reshape(-1)), ("field 'headboxes_src'",)),
        "one_person_short": (lambda r: _official_variables(r[:-1]), ("do not pair",)),
        "head_box_inverted": (changed("headboxes_src", lambda v: v[::-1]), ("person 0", "field 'headboxes_src'")),
        "joint_names_wrong": (changed("dataset_joints", lambda v: v[:, ::-1][:, :15]), ("field 'dataset_joints'",)),
        "people_shuffled": (changed("pos_gt_src", lambda v: v[..., ::-1]), ("person 0", "field 'pos_gt_src'",
                                                                            "do not pair")),
    }


def _box_file_mutations() -> dict:
    detections = lambda s: json.loads((s.fixtures / "coco/person_detections.json").read_text())  # noqa: E731

    def alter(change):
        def content(shared: Shared) -> list:
            records = detections(shared)
            change(records[0])
            return records
        return content

    return {
        "not_json": (b"image_id,bbox\n785,1 2 3 4\n", ("not valid JSON",)),
        "bbox_negative": (alter(lambda d: d.update(bbox=[1, 1, -5, 5])), ("detections[0]", "field 'bbox'")),
        "image_id_text": (alter(lambda d: d.update(image_id="785")), ("detections[0]", "field 'image_id'")),
        "score_missing": (alter(lambda d: d.pop("score")), ("detections[0]", "field 'score'")),
        "record_a_number": (lambda s: [3] + detections(s), ("detections[0]", "expected an object")),
        "ground_truth_without_annotations": (lambda s: {"images": []}, ("field 'images/annotations'",)),
    }


def _score_mutations() -> dict:
    coco = lambda s, i: s.fixtures / "coco/person_keypoints.json"  # noqa: E731

    def results(content) -> Callable[[Shared, Path], Path]:
        def write(shared: Shared, inputs: Path) -> Path:
            path = inputs / "results.json"
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content(shared)).encode())
            return path
        return write

    def perfect(shared: Shared) -> list:
        data = json.loads((shared.fixtures / "coco/person_keypoints.json").read_text())
        return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
                for a in data["annotations"] if a["num_keypoints"]]

    def changed(change) -> Callable[[Shared], list]:
        def content(shared: Shared) -> list:
            records = perfect(shared)
            change(records)
            return records
        return content

    def official(shared: Shared, inputs: Path) -> Path:
        from scipy.io import savemat

        path = inputs / "mpii_gt_val.mat"
        savemat(path, _official_variables(json.loads((shared.fixtures / "mpii/mpii_annotations.json").read_text())))
        return path

    def predictions(variables: dict) -> Callable[[Shared, Path], Path]:
        def write(shared: Shared, inputs: Path) -> Path:
            from scipy.io import savemat

            path = inputs / "pred.mat"
            savemat(path, variables)
            return path
        return write

    def gt_with(change) -> Callable[[Shared, Path], Path]:
        def write(shared: Shared, inputs: Path) -> Path:
            data = json.loads((shared.fixtures / "coco/person_keypoints.json").read_text())
            change(data)
            path = inputs / "gt.json"
            path.write_text(json.dumps(data))
            return path
        return write

    nan_first = lambda r: r[0]["keypoints"].__setitem__(0, NAN)  # noqa: E731
    return {
        "results_not_json": (coco, results(b"[{"), ("not valid JSON",), "results.json"),
        "results_an_object": (coco, results(lambda s: {"results": []}), ("list of records",), "results.json"),
        "results_no_score": (coco, results(changed(lambda r: r[0].pop("score"))), ("result 0", "field 'score'"),
                             "results.json"),
        "results_keypoint_nan": (coco, results(changed(nan_first)), ("result 0", "finite"), "results.json"),
        "results_unknown_image": (coco, results(changed(lambda r: r[1].update(image_id=4242))),
                                  ("result 1", "field 'image_id'"), "results.json"),
        "results_five_points": (coco, results(changed(lambda r: [x.update(keypoints=x["keypoints"][:15]) for x in r])),
                                ("5 keypoints",), "results.json"),
        "results_score_text": (coco, results(changed(lambda r: r[0].update(score="high"))), ("result 0", "score"),
                               "results.json"),
        "ground_truth_conflicting_images": (gt_with(lambda d: d["images"].append({**d["images"][2], "width": 1})),
                                            results(perfect), ("images[4]", "duplicate image id"), "gt.json"),
        "ground_truth_no_categories": (gt_with(lambda d: d.pop("categories")), results(perfect),
                                       ("field 'categories'",), "gt.json"),
        "pred_mat_without_preds": (official, predictions({"pred": np.zeros((5, 16, 2))}), ("field 'preds'",),
                                   "pred.mat"),
        "pred_mat_wrong_shape": (official, predictions({"preds": np.zeros((5, 14, 2))}), ("field 'preds'",),
                                 "pred.mat"),
        "pred_mat_too_few_people": (official, predictions({"preds": np.zeros((3, 16, 2))}), ("3 predicted people",),
                                    "pred.mat"),
        "pred_mat_not_finite": (official, predictions({"preds": np.full((5, 16, 2), np.inf)}), ("finite",),
                                "pred.mat"),
        "mpii_json_results_too_many": (official, results(lambda s: [{"image_id": 0, "category_id": 1, "score": 1.0,
                                                                     "keypoints": [0.0] * 48}] * 7),
                                       ("7 predicted people",), "results.json"),
    }


# --- configs and overrides --------------------------------------------------------------------------------------
def _config_cases() -> None:
    def written(content: bytes | str) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            path = inputs / "recipe.yaml"
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            return ["train", path], (path.name,)
        return build

    def recipe(expected: tuple[str, ...], names_the_recipe: bool = True, **changes) -> Builder:
        """A recipe with `changes`; its error names the recipe file when validation finds it, else (a problem
        found when the run starts: a missing file, a device) what `expected` says."""
        def build(shared: Shared, inputs: Path, out: Path):
            path = shared.recipe(inputs / "recipe.yaml", out, **{k: _resolve(v, shared, inputs) for k, v in
                                                                 changes.items()})
            return ["train", path], ((path.name,) if names_the_recipe else ()) + expected
        return build

    base_data = lambda s, i: {"train": [{"name": "coco", "format": "coco",  # noqa: E731
                                         "annotations": str(s.data / "coco17.json"), "images": str(s.data / "images")}]}
    case("configs", "config_not_yaml", written("train: {epochs: [1,\n"))
    case("configs", "config_a_list", written("- train\n- data\n"))
    case("configs", "config_binary", written(bytes(range(128, 256)) * 4))
    case("configs", "config_empty", written(""))
    case("configs", "config_no_output", written("data: {train: []}\n"))
    case("configs", "config_unknown_section", recipe(("tranin", "unknown key"), tranin={"epochs": 1}))
    case("configs", "config_unknown_key", recipe(("train.epoch", "unknown key"),
                                                 train={"epoch": 3, "device": "cpu"}))
    case("configs", "config_model_size", recipe(("model.size",), model={"size": "xl"}))
    case("configs", "config_input_not_32", recipe(("model.input", "multiples of 32"), model={"input": [100, 64]}))
    case("configs", "config_epochs_zero", recipe(("train.epochs",), train={"epochs": 0}))
    case("configs", "config_epochs_true", recipe(("train.epochs", "boolean"), train={"epochs": True}))
    case("configs", "config_lr_infinite", recipe(("train.lr", "finite"), train={"lr": math.inf}))
    case("configs", "config_lr_text", recipe(("train.lr",), train={"lr": "fast"}))
    case("configs", "config_no_training_data", recipe(("data", "at least one dataset"), data={"train": []}))
    case("configs", "config_dataset_format", recipe(("data.train.0.format",), data=lambda s, i: {
        "train": [{**base_data(s, i)["train"][0], "format": "cocoa"}]}))
    case("configs", "config_annotations_missing", recipe(("absent.json", "not found"), False, data=lambda s, i: {
        "train": [{**base_data(s, i)["train"][0], "annotations": str(i / "absent.json")}]}))
    case("configs", "config_images_missing", recipe(("nowhere", "image file not found"), False, data=lambda s, i: {
        "train": [{**base_data(s, i)["train"][0], "images": str(i / "nowhere")}]}))
    case("configs", "config_teacher_kind", recipe(("teachers.0.kind",), teachers=[
        {"name": "t", "kind": "magic", "path": "t.onnx", "beta": 1.0}]))
    case("configs", "config_teacher_missing", recipe(("teacher.onnx",), False, teachers=lambda s, i: [
        {"name": "t", "kind": "onnx", "path": str(i / "teacher.onnx"), "beta": 1.0}]))
    case("configs", "config_skeleton_unknown", recipe(("skeleton", "coco71"), False, skeleton="coco71"))
    case("configs", "config_skeleton_file_missing", recipe(("mine.yaml",), False,
                                                          skeleton=lambda s, i: str(i / "mine.yaml")))
    case("configs", "config_loss_alpha", recipe(("loss.alpha",), loss={"alpha": 2.0}))
    case("configs", "config_fp16_on_cpu", recipe(("train.precision", "fp16"), False,
                                                 train={"precision": "fp16", "device": "cpu"}))
    case("configs", "config_batch_bigger_than_epoch", recipe(("batch of 512",), False,
                                                            train={"batch_size": 512, "device": "cpu"}))
    case("configs", "config_device_tpu", recipe(("train.device", "tpu"), False, train={"device": "tpu"}))
    case("configs", "config_init_missing", recipe(("start.safetensors",), False, model=lambda s, i: {
        "size": "t", "input": [64, 64], "init": str(i / "start.safetensors")}))

    def folder_as_config(shared: Shared, inputs: Path, out: Path):
        (inputs / "recipe.yaml").mkdir()
        return ["train", inputs / "recipe.yaml"], ("recipe.yaml",)

    case("configs", "config_is_a_folder", folder_as_config)

    overrides = {
        "no_equals": ("train", ("'train'", "key.sub=value")),
        "no_key": ("=3", ("'=3'", "key.sub=value")),
        "into_a_value": ("model.size.deeper=3", ("model.size is a value",)),
        "index_too_big": ("data.train.5.ratio=2", ("data.train.5",)),
        "index_not_a_number": ("data.train.first.ratio=2", ("data.train.first",)),
        "value_not_yaml": ("train.lr=[1, 2", ("not valid YAML",)),
        "replaces_a_section": ("train={epochs: 1}", ("whole section train",)),
        "replaces_data": ("data={train: []}", ("whole section data",)),
        "epochs_true": ("train.epochs=true", ("train.epochs", "boolean")),
        "lr_nan": ("train.lr=.nan", ("train.lr", "finite")),
        "lr_minus_inf": ("train.lr=-.inf", ("train.lr",)),
        "size_xl": ("model.size=xl", ("model.size",)),
        "batch_negative": ("train.batch_size=-1", ("train.batch_size",)),
        "workers_negative": ("train.workers=-1", ("train.workers",)),
        "unknown_key": ("train.epoch=3", ("train.epoch", "unknown key")),
        "ratio_zero": ("data.train.0.ratio=0", ("data.train.0.ratio",)),
        "on_error_maybe": ("data.train.0.on_error=maybe", ("data.train.0.on_error",)),
        "max_pixels_zero": ("data.train.0.max_image_pixels=0", ("data.train.0.max_image_pixels",)),
    }
    for name, (override, expected) in overrides.items():
        def build(shared: Shared, inputs: Path, out: Path, override: str = override, expected: tuple = expected):
            return ["train", shared.recipe(inputs / "recipe.yaml", out), override], expected

        case("overrides", f"override_{name}", build)


def _resolve(value, shared: Shared, inputs: Path):
    return value(shared, inputs) if callable(value) else value


# --- model files ------------------------------------------------------------------------------------------------
class _Marker:
    """A pickle that, if it were ever unpickled, would create the file `path` (nothing may execute)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _model_cases() -> None:
    def model_input(name: str, content: Callable[[Shared, Path], bytes]) -> Callable[[Shared, Path], Path]:
        def write(shared: Shared, inputs: Path) -> Path:
            path = inputs / name
            path.write_bytes(content(shared, inputs))
            return path
        return write

    def safetensors_without_our_metadata(shared: Shared, inputs: Path) -> bytes:
        from safetensors.numpy import save

        return save({"weight": np.zeros((2, 2), np.float32)})

    def metadata_of_another_skeleton(shared: Shared, inputs: Path) -> bytes:
        from safetensors import safe_open
        from safetensors.numpy import save

        with safe_open(shared.model, framework="numpy") as reader:
            metadata = reader.metadata()
            tensors = {key: reader.get_tensor(key) for key in reader.keys()}
        from unionpose.skeletons import get_skeleton

        metadata["skeleton"] = json.dumps(get_skeleton("coco_mpii21").to_dict())
        return save(tensors, metadata=metadata)

    def tiny_onnx(shared: Shared, inputs: Path) -> bytes:
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "identity",
                                  [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
                                  [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 64, 64])])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    models = {
        "safetensors_empty": (model_input("m.safetensors", lambda s, i: b"")),
        "safetensors_random": (model_input("m.safetensors", lambda s, i: bytes(range(256)) * 40)),
        "safetensors_truncated": (model_input("m.safetensors", lambda s, i: s.model.read_bytes()[:5000])),
        "safetensors_header_claims_exabytes": (model_input("m.safetensors",
                                                           lambda s, i: struct.pack("<Q", 1 << 60) + b"{}")),
        "safetensors_header_not_json": (model_input("m.safetensors", lambda s, i: struct.pack("<Q", 8) + b"not json")),
        "safetensors_without_metadata": (model_input("m.safetensors", safetensors_without_our_metadata)),
        "safetensors_skeleton_mismatch": (model_input("m.safetensors", metadata_of_another_skeleton)),
        "safetensors_is_a_pickle": (model_input("m.safetensors",
                                                lambda s, i: pickle.dumps(_Marker(i.parent.parent / "PWNED")))),
        "onnx_empty": (model_input("m.onnx", lambda s, i: b"")),
        "onnx_random": (model_input("m.onnx", lambda s, i: bytes(range(7, 250)) * 20)),
        "onnx_wrong_graph": (model_input("m.onnx", tiny_onnx)),
        "onnx_is_safetensors": (model_input("m.onnx", lambda s, i: s.model.read_bytes())),
        "model_text_suffix": (model_input("m.txt", lambda s, i: b"weights")),
    }
    for name, write in models.items():
        def build(shared: Shared, inputs: Path, out: Path, write=write):
            model = write(shared, inputs)
            return ["predict", shared.photo, "--model", model, "--out", out / "pred", "--quiet"], (model.name,)

        case("models", f"predict_{name}", build)

    def export(write) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            model = write(shared, inputs)
            return ["export", "--model", model, "--out", out / "m.onnx"], (model.name,)
        return build

    case("models", "export_truncated", export(models["safetensors_truncated"]))
    case("models", "export_pickle", export(models["safetensors_is_a_pickle"]))

    def export_folder(shared: Shared, inputs: Path, out: Path):
        (inputs / "m.safetensors").mkdir()
        return ["export", "--model", inputs / "m.safetensors", "--out", out / "m.onnx"], ("m.safetensors",)

    case("models", "export_model_is_a_folder", export_folder)

    def convert(name: str, content: Callable[[Shared, Path], bytes]) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            path = inputs / name
            path.write_bytes(content(shared, inputs))
            return ["convert", path, "--out", out / "converted.safetensors"], (path.name,)
        return build

    case("models", "convert_pickle_payload", convert("ckpt.pth", lambda s, i: pickle.dumps(
        {"state_dict": _Marker(i.parent.parent / "PWNED")})))
    case("models", "convert_empty", convert("ckpt.pth", lambda s, i: b""))
    case("models", "convert_random_zip", convert("ckpt.pth", lambda s, i: b"PK\x03\x04" + bytes(300)))
    case("models", "convert_own_model_file", convert("m.safetensors", lambda s, i: s.model.read_bytes()))

    def val_with(write) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            model = write(shared, inputs)
            config = inputs / "val.yaml"
            config.write_text(yaml.safe_dump({"data": {"val": [{"name": "coco", "format": "coco", "annotations":
                                                                str(shared.data / "coco17_val.json"),
                                                                "images": str(shared.data / "images")}]}}))
            return ["val", "--model", model, "--data", config, "--no-progress"], (model.name,)
        return build

    case("models", "val_random_model", val_with(models["safetensors_random"]))
    case("models", "val_onnx_wrong_graph", val_with(models["onnx_wrong_graph"]))


# --- annotate: its annotation files, teachers and arguments --------------------------------------------------------
def _annotate_cases() -> None:
    def annotate(shared: Shared, out: Path, data: Path, *more, format: str | None = "coco") -> list:
        single = ["--format", format, "--images", shared.data / "images"] if format else []
        return ["annotate", data, *single, "--out", out / "annotated", "--quiet", *more]

    def coco_file(mutation, expected: tuple) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            target = inputs / "coco.json"
            _write_mutated(target, shared.data / "coco17.json", mutation)
            return annotate(shared, out, target, "--teachers", shared.model), (target.name, *expected)
        return build

    for name in ("truncated", "keypoints_too_short", "unknown_image", "annotation_a_number"):
        case("annotations", f"annotate_coco_{name}", coco_file(*COCO_MUTATIONS[name]))

    def mpii_file(shared: Shared, inputs: Path, out: Path):
        records = json.loads((shared.data / "mpii16.json").read_text())
        records[0]["joints"] = records[0]["joints"][:15]
        target = inputs / "mpii.json"
        target.write_text(json.dumps(records))
        return annotate(shared, out, target, "--teachers", shared.model, format="mpii"), \
            (target.name, "record 0", "field 'joints'")

    case("annotations", "annotate_mpii_joints_15", mpii_file)

    def teacher(name: str, content: Callable[[Shared, Path], bytes]) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            path = inputs / name
            path.write_bytes(content(shared, inputs))
            return annotate(shared, out, shared.data / "coco17.json", "--teachers", f"t={path}"), (path.name,)
        return build

    case("models", "annotate_teacher_pickle", teacher("t.safetensors", lambda s, i: pickle.dumps(
        _Marker(i.parent.parent / "PWNED"))))
    case("models", "annotate_teacher_truncated", teacher("t.safetensors", lambda s, i: s.model.read_bytes()[:5000]))
    case("models", "annotate_teacher_onnx_random", teacher("t.onnx", lambda s, i: bytes(range(7, 250)) * 20))
    case("models", "annotate_teacher_text", teacher("t.txt", lambda s, i: b"weights"))

    def teachers_recipe(content: dict | str, expected: tuple) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            path = inputs / "teachers.yaml"
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
            return annotate(shared, out, shared.data / "coco17.json", "--teachers", path), (path.name, *expected)
        return build

    case("configs", "annotate_teachers_recipe_kind", teachers_recipe(
        {"teachers": [{"name": "t", "kind": "magic", "path": "t.onnx", "beta": 1.0}]}, ("teachers[0]", "kind")))
    case("configs", "annotate_teachers_recipe_without_teachers", teachers_recipe({"data": {}}, ("teachers",)))
    case("configs", "annotate_teachers_recipe_not_yaml", teachers_recipe("teachers: [\n", ("not valid YAML",)))

    def data_config(shared: Shared, inputs: Path, out: Path):
        path = inputs / "data.yaml"
        path.write_text(yaml.safe_dump({"data": {"train": [{"name": "tracks", "format": "posetrack18", "annotations":
                                                           str(shared.fixtures / "posetrack18"),
                                                           "images": str(inputs)}]}}))
        return annotate(shared, out, path, "--teachers", shared.model, format=None), ("posetrack18", "not a folder")

    case("configs", "annotate_dataset_folder", data_config)

    def arguments(*more, names: tuple[str, ...], format: str | None = "coco") -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            values = {"model": shared.model, "out": out, "data": shared.data}
            return annotate(shared, out, shared.data / "coco17.json", *(str(a).format(**values) for a in more),
                            format=format), names
        return build

    case("arguments", "annotate_no_teachers", arguments(names=("--teachers",)))
    case("arguments", "annotate_single_file_without_format", arguments("--teachers", "{model}", format=None,
                                                                       names=("coco17.json", "--format")))
    case("arguments", "annotate_teacher_named_gt", arguments("--teachers", "gt={model}", names=("'gt'", "reserved")))
    case("arguments", "annotate_min_confidence_nan", arguments("--teachers", "{model}", "--min-confidence", "nan",
                                                               names=("--min-confidence",)))
    case("arguments", "annotate_audit_oks_two", arguments("--teachers", "{model}", "--audit-oks", "2",
                                                          names=("audit-oks",)))
    case("arguments", "annotate_teacher_missing", arguments("--teachers", "{out}/absent.onnx",
                                                            names=("absent.onnx", "not found")))


# --- command-line arguments -------------------------------------------------------------------------------------
def _argument_cases() -> None:
    def arguments(*argv, names: tuple[str, ...]) -> Builder:
        def build(shared: Shared, inputs: Path, out: Path):
            values = {"model": shared.model, "photo": shared.photo, "out": out / "result", "data": shared.data}
            return [str(a).format(**values) for a in argv], names
        return build

    table = {
        "unknown_command": (("frobnicate",), ("frobnicate",)),
        "predict_no_model": (("predict", "{photo}"), ("--model",)),
        "predict_batch_size_word": (("predict", "{photo}", "--model", "{model}", "--batch-size", "many"),
                                    ("--batch-size",)),
        "predict_batch_size_zero": (("predict", "{photo}", "--model", "{model}", "--batch-size", "0"),
                                    ("--batch-size",)),
        "predict_input_size": (("predict", "{photo}", "--model", "{model}", "--input", "100"), ("--input",)),
        "predict_formats": (("predict", "{photo}", "--model", "{model}", "--formats", "gif", "--out", "{out}",
                             "--quiet"), ("gif",)),
        "predict_threshold_nan": (("predict", "{photo}", "--model", "{model}", "--threshold", "nan"),
                                  ("--threshold",)),
        "predict_nms_word": (("predict", "{photo}", "--model", "{model}", "--nms", "half"), ("--nms",)),
        "predict_max_pixels_zero": (("predict", "{photo}", "--model", "{model}", "--max-image-pixels", "0"),
                                    ("--max-image-pixels",)),
        "predict_max_frames_negative": (("predict", "{photo}", "--model", "{model}", "--max-frames", "-2"),
                                        ("--max-frames",)),
        "predict_detect_every_zero": (("predict", "{photo}", "--model", "{model}", "--detect-every", "0", "--out",
                                       "{out}", "--quiet"), ("detect_every",)),
        "predict_device_tpu": (("predict", "{photo}", "--model", "{model}", "--device", "tpu", "--out", "{out}",
                                "--quiet"), ("device", "tpu")),
        "predict_source_missing": (("predict", "{out}/absent.jpg", "--model", "{model}", "--out", "{out}", "--quiet"),
                                   ("absent.jpg",)),
        "predict_glob_matches_nothing": (("predict", "{out}/*.jpg", "--model", "{model}", "--out", "{out}",
                                          "--quiet"), ("*.jpg",)),
        "predict_out_is_the_model": (("predict", "{photo}", "--model", "{model}", "--out", "{model}", "--quiet"),
                                     ("model.safetensors", "is a file")),
        "models_input": (("models", "--input", "100x100"), ("multiples of 32",)),
        "models_keypoints_zero": (("models", "--keypoints", "0"), ("keypoints", "at least 1")),
        "score_no_results": (("score", "--gt", "{photo}"), ("--results",)),
        "score_results_not_a_list": (("score", "--gt", "{data}/coco17_val.json", "--results",
                                      "{data}/coco17_val.json"), ("coco17_val.json", "list of records")),
        "skeleton_unknown": (("skeleton", "show", "coco71"), ("coco71",)),
        "skeleton_draw_txt": (("skeleton", "show", "coco17", "--draw", "{out}/drawing.txt"), ("drawing.txt",)),
        "synth_too_few": (("synth", "--out", "{out}", "--train", "1", "--val", "0"), ("train=1",)),
        "data_show_config_missing": (("data", "show", "{data}/../recipe_absent.yaml", "--out", "{out}"),
                                     ("recipe_absent.yaml",)),
        "export_opset": (("export", "--model", "{model}", "--opset", "3"), ("--opset",)),
        "convert_size": (("convert", "{model}", "--out", "{out}/c.safetensors", "--size", "xxl"), ("--size",)),
        "val_data_missing": (("val", "--model", "{model}", "--data", "{out}/absent.yaml"), ("absent.yaml",)),
        "train_resume_nothing": (("train", "{out}/absent.yaml", "--resume"), ("absent.yaml",)),
        "export_out_is_the_model": (("export", "--model", "{model}", "--out", "{model}", "--no-check"),
                                    ("model.safetensors", "is an input")),
    }
    for name, (argv, names) in table.items():
        case("arguments", f"cli_{name}", arguments(*argv, names=names))


_image_cases()
_video_cases()
_annotation_cases()
_config_cases()
_model_cases()
_annotate_cases()
_argument_cases()


def counts() -> Counter:
    return Counter(category for category, _ in CASES.values())


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "fuzz_corpus")
    shared = Shared(folder).build()
    for name in CASES:
        built = build_case(name, shared)
        print(f"{built.category:<12} {built.name:<48} unionpose {' '.join(built.argv)}")
    print(f"{len(CASES)} cases: " + ", ".join(f"{category} {count}" for category, count in counts().items()))

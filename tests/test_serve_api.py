"""`unionpose serve`'s HTTP API through FastAPI's test client: every endpoint, every bad input, batching, a full
queue, and answers identical to `unionpose predict` on the fixture images."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from conftest import FIXTURES, require
from unionpose.apps.serve.app import STATIC, create_app
from unionpose.apps.serve.limits import ServeLimits
from unionpose.apps.serve.models import ServedModel, hex_color, load_models, parse_model_argument
from unionpose.cli import main
from unionpose.commands.serve import is_loopback
from unionpose.data.readers.box_file import BoxFile
from unionpose.infer.predictor import Predictor
from unionpose.infer.topdown import TopDownRunner
from unionpose.skeletons import get_skeleton

COCO_IMAGES = FIXTURES / "coco" / "images"


@pytest.fixture(scope="module")
def client(model_file, onnx_file):
    """A server with two models, the first named on the command line's NAME=FILE pattern, and small caps."""
    models = load_models([f"student={model_file}", str(onnx_file)])
    limits = ServeLimits(max_upload_bytes=400_000, max_pixels=2_000_000, max_boxes=20)
    with TestClient(create_app(models, limits)) as test_client:
        yield test_client


def _jpeg(name: str = "000000000785.jpg") -> bytes:
    return require(COCO_IMAGES / name).read_bytes()


def _post(client: TestClient, data: bytes, name: str = "000000000785.jpg", **fields):
    return client.post("/v1/predict", files={"image": (name, data, "image/jpeg")}, data=fields)


def test_models_and_health_describe_what_is_served(client):
    listing = client.get("/v1/models").json()
    student, exported = listing["models"]
    assert (student["name"], student["file"], student["format"]) == ("student", "t.safetensors", "safetensors")
    assert (exported["name"], exported["format"]) == ("t", "onnx")
    coco17 = get_skeleton("coco17")
    for entry in listing["models"]:
        assert entry["input_size"] == [128, 96] and entry["model_size"] == "t"
        assert entry["skeleton"]["keypoint_names"] == list(coco17.names)
        assert entry["skeleton"]["point_colors"] == [hex_color(c) for c in coco17.point_colors()]
        assert entry["skeleton"]["link_colors"] == [hex_color(c) for c in coco17.link_colors()]
        assert entry["skeleton"]["parts"] == ["body"]
    assert listing["detector"] is None and listing["limits"]["max_upload_bytes"] == 400_000
    assert hex_color((0, 128, 255)) == "#ff8000"    # BGR, as OpenCV draws, -> the page's RGB
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and set(health["models"]) == {"student", "t"}


def test_the_page_and_the_docs_load_nothing_from_other_origins(client):
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text and "https://" not in text, name
        assert client.get(f"/static/{name}").status_code == 200
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert set(client.get("/openapi.json").json()["paths"]) == {"/v1/predict", "/v1/models", "/healthz"}


@pytest.mark.parametrize("which, with_boxes", [("model_file", True), ("onnx_file", False)])
def test_predictions_are_those_of_unionpose_predict(client, request, tmp_path, which, with_boxes):
    """Same model, same boxes: the API's people, COCO records and OpenPose documents are the command's files."""
    model = request.getfixturevalue(which)
    detections = require(FIXTURES / "coco" / "person_detections.json")
    boxes_args = ["--boxes", str(detections)] if with_boxes else []
    assert main(["predict", str(require(COCO_IMAGES)), "--model", str(model), *boxes_args, "--formats",
                 "coco,openpose,jsonl", "--out", str(tmp_path), "--quiet"]) == 0
    frames = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()[1:]]
    boxes = BoxFile(detections).lookup if with_boxes else None
    served = "student" if which == "model_file" else "t"
    coco = []
    for frame in frames:
        fields = {"model": served, "formats": "coco,openpose"}
        if boxes is not None:
            found, scores = boxes(frame["name"])
            fields["boxes"] = json.dumps([[*box, score] for box, score in zip(found.tolist(), scores.tolist())])
        answer = _post(client, _jpeg(frame["name"]), frame["name"], **fields).json()
        assert answer["model"] == served and len(answer["people"]) == len(frame["people"])
        for person, expected in zip(answer["people"], frame["people"]):
            assert [point[:2] for point in person["keypoints"]] == expected["keypoints"]
            assert [point[2] for point in person["keypoints"]] == expected["keypoint_scores"]
            assert person["box"] == expected["box"] and person["score"] == expected["score"]
        stem = frame["name"].rsplit(".", 1)[0]
        assert answer["openpose"] == json.loads((tmp_path / "openpose" / f"{stem}_keypoints.json").read_text())
        coco += answer["coco"]
    assert coco == json.loads((tmp_path / "predictions.coco.json").read_text())
    assert sum(len(frame["people"]) for frame in frames) == (33 if with_boxes else 4)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (it would take gigabytes to decode)."""
    header = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + header + b"\0" * 8 + b"IEND\xaeB`\x82"


BAD_UPLOADS = [
    ("empty", b"", {}, 422, "the image file is empty"),
    ("text", b"name,score\nalice,3\n" * 10, {}, 422, "not a JPEG or PNG image"),
    ("truncated", "truncated", {}, 422, "truncated JPEG"),
    ("undecodable PNG", _png_claiming(64, 48), {}, 422, "cannot decode the image"),
    ("pixel bomb", _png_claiming(100_000, 100_000), {}, 413, "megapixels, over the limit of 2"),
    ("too many bytes", b"\xff\xd8" + b"\0" * 500_000 + b"\xff\xd9", {}, 413, "over the upload limit"),
    ("boxes not JSON", "jpeg", {"boxes": "[[1, 2"}, 422, "boxes: not valid JSON"),
    ("boxes of 3 numbers", "jpeg", {"boxes": "[[1, 2, 3]]"}, 422, "expected a JSON list of [x, y, w, h]"),
    ("NaN box", "jpeg", {"boxes": "[[1, 2, NaN, 4]]"}, 422, "expected a JSON list"),
    ("empty box", "jpeg", {"boxes": "[[1, 2, 0, 4]]"}, 422, "is not a finite x, y, w, h with w, h > 0"),
    ("too many boxes", "jpeg", {"boxes": json.dumps([[0, 0, 9, 9]] * 21)}, 422, "over the limit of 20"),
    ("unknown model", "jpeg", {"model": "teacher"}, 422, "unknown model 'teacher'; served: student, t"),
    ("a path for a model", "jpeg", {"model": "../../etc/passwd"}, 422, "unknown model"),
    ("unknown format", "jpeg", {"formats": "coco,mmpose"}, 422, "formats: unknown mmpose"),
    ("negative index", "jpeg", {"index": "-1"}, 422, "greater than or equal to 0"),
]


@pytest.mark.parametrize("case, data, fields, status, message", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_bad_input_gets_a_clear_error_and_the_server_keeps_serving(client, case, data, fields, status, message):
    if data == "jpeg":
        data = _jpeg()
    elif data == "truncated":
        data = _jpeg()[:20_000]
    answer = _post(client, data, **fields)
    assert answer.status_code == status, answer.text
    assert message in json.dumps(answer.json()), answer.text
    assert _post(client, _jpeg()).status_code == 200


def test_a_request_without_an_image_or_with_a_chunked_oversized_body(client):
    missing = client.post("/v1/predict", data={"model": "student"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "image"]
    boundary = "unionpose-test"

    def chunked():   # no Content-Length: the cap has to count the bytes as they arrive
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for _ in range(50):
            yield b"\0" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = client.post("/v1/predict", content=chunked(),
                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 413 and "over the upload limit of 0.4 MiB" in answer.json()["detail"]
    assert _post(client, _jpeg()).status_code == 200


class _GatedBackend:
    """A backend that counts its calls and crops; inside `held()`, each call waits until the block ends."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.decoded = backend.decoded
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.calls.clear()
        self.entered.clear()
        self.gate.clear()
        try:
            yield
        finally:             # released even when the test fails, so that no request hangs
            self.gate.set()

    def __call__(self, crops: np.ndarray):
        self.calls.append(len(crops))
        self.entered.set()
        self.gate.wait(timeout=30)
        return self.backend(crops)


def _gated_server(onnx_file, limits: ServeLimits) -> tuple[TestClient, _GatedBackend]:
    reference = Predictor.from_file(onnx_file)
    backend = _GatedBackend(reference.runner.backend)
    predictor = Predictor(TopDownRunner(backend, reference.runner.info))
    return TestClient(create_app([ServedModel("gated", predictor, onnx_file.name)], limits)), backend


def _in_threads(call, count: int, threads: list[threading.Thread], answers: list) -> None:
    """Start `count` threads running `call`, appended to `threads`; their answers are appended to `answers`."""
    for _ in range(count):
        threads.append(threading.Thread(target=lambda: answers.append(call())))
        threads[-1].start()


def _waiting(client: TestClient) -> int:
    return client.get("/healthz").json()["models"]["gated"]["waiting"]


def test_requests_arriving_together_share_one_model_call(onnx_file):
    client, backend = _gated_server(onnx_file, ServeLimits(max_batch=4, max_wait_ms=100, max_queue=8))
    image = _jpeg()
    threads: list[threading.Thread] = []
    answers: list = []
    with client:
        alone = _post(client, image).json()
        with backend.held():                     # the first call waits, so that four requests gather behind it
            _in_threads(lambda: _post(client, image), 1, threads, answers)
            assert backend.entered.wait(10)
            _in_threads(lambda: _post(client, image), 4, threads, answers)
            _wait_for(lambda: _waiting(client) == 4)
        for thread in threads:
            thread.join(30)
        health = client.get("/healthz").json()["models"]["gated"]
    assert backend.calls == [1, 4]               # one call for the first request, one for the four behind it
    assert health["model_calls"] == 3 and health["requests"] == 6
    assert len(answers) == 5
    for answer in answers:
        assert answer.status_code == 200
        together = answer.json()["people"][0]["keypoints"]
        np.testing.assert_allclose(together, alone["people"][0]["keypoints"], atol=2e-3)


def test_a_full_queue_answers_503_at_once(onnx_file):
    client, backend = _gated_server(onnx_file, ServeLimits(max_batch=1, max_queue=1))
    image = _jpeg()
    threads: list[threading.Thread] = []
    answers: list = []
    with client:
        with backend.held():
            _in_threads(lambda: _post(client, image), 1, threads, answers)
            assert backend.entered.wait(10)      # the first request is in the model
            _in_threads(lambda: _post(client, image), 1, threads, answers)
            _wait_for(lambda: _waiting(client) == 1)
            start = time.perf_counter()
            refused = _post(client, image)
            seconds = time.perf_counter() - start
        for thread in threads:
            thread.join(30)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["detail"] and seconds < 2
    assert [answer.status_code for answer in answers] == [200, 200]


def _wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_models_load_by_name_and_never_by_pickle(model_file, onnx_file, tmp_path, capsys):
    assert parse_model_argument("teacher=runs/a.safetensors") == ("teacher", Path("runs/a.safetensors"))
    assert parse_model_argument("runs/a.safetensors") == (None, Path("runs/a.safetensors"))
    assert parse_model_argument("runs/x=1/a.onnx")[0] is None
    names = [model.name for model in load_models([str(model_file), str(model_file), str(onnx_file)])]
    assert names == ["t", "t-2", "t-3"]
    with pytest.raises(ValueError, match="two models are named 'a'"):
        load_models([f"a={model_file}", f"a={onnx_file}"])
    pickled = tmp_path / "model.pth"
    torch.save({"state_dict": {}}, pickled)
    assert main(["serve", "--model", str(pickled)]) == 1
    assert "a pose model is a UnionPose .safetensors file or an .onnx graph" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "missing.onnx")]) == 1
    assert "pose model not found" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")


def test_the_command_line_loads_neither_torch_nor_the_web_stack_for_help():
    code = ("import sys\nfrom unionpose.cli import build_parser\nbuild_parser('serve')\n"
            "print(sorted(m for m in ('torch', 'fastapi', 'uvicorn') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"

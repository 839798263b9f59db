"""The web application: the page at /, POST /v1/predict, GET /v1/models, GET /healthz, and the API docs at /docs.

Everything the page and the docs load is served from the package (the page's files, and Swagger UI from the
`swagger-ui-bundle-v2` package): nothing comes from a CDN, so both work offline. Requests choose a model by the
name it was given at start-up; no field of a request is ever used as a server path.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import AsyncIterator, Sequence

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from unionpose import __version__
from unionpose.apps.serve.batching import BatchQueue, QueueFullError
from unionpose.apps.serve.body_limit import BodyLimit
from unionpose.apps.serve.limits import ServeLimits
from unionpose.apps.serve.models import ServedModel, model_description
from unionpose.apps.serve.responses import parse_formats, prediction
from unionpose.apps.serve.schemas import Health, ModelList, Prediction
from unionpose.apps.serve.uploads import decode_upload, parse_boxes
from unionpose.infer.sources import Frame

STATIC = Path(__file__).with_name("static")
# The page runs only its own files: no inline script, no other origin (a CDN could not load even by mistake).
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'none'")
ERRORS = {413: {"description": "upload over the byte or pixel limit"},
          422: {"description": "not a JPEG/PNG image, a corrupt one, bad boxes or an unknown model"},
          503: {"description": "the model's queue is full: retry shortly (Retry-After)"}}


def create_app(models: Sequence[ServedModel], limits: ServeLimits = ServeLimits(),
               detector: str | None = None) -> FastAPI:
    """The application for `models` (the first is the default); `detector` names the detector file, if any."""
    if not models:
        raise ValueError("create_app needs at least one model")
    served = {model.name: model for model in models}
    queues = {model.name: BatchQueue(model.predictor.predict_many, limits.max_batch, limits.max_wait_ms / 1000,
                                     limits.max_queue, model.name) for model in models}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for queue in queues.values():
            await queue.start()
        yield
        for queue in queues.values():
            await queue.stop()

    app = FastAPI(title="UnionPose", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Top-down pose estimation with RTMPose models: upload an image, get each person's "
                              "keypoints. The page at / draws them.")
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
    page = (STATIC / "index.html").read_text()

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="UnionPose API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/healthz", response_model=Health, summary="liveness, and each model's queue")
    async def healthz() -> dict:
        return {"status": "ok", "models": {name: {"waiting": queue.waiting, "model_calls": queue.batches,
                                                  "requests": queue.items} for name, queue in queues.items()}}

    @app.get("/v1/models", response_model=ModelList, summary="the served models: skeleton, input size, metadata")
    async def list_models() -> dict:
        return {"models": [model_description(model) for model in models], "detector": detector,
                "limits": asdict(limits)}

    @app.post("/v1/predict", response_model=Prediction, responses=ERRORS, summary="the people in one image")
    async def predict(
        image: UploadFile = File(description="a JPEG or PNG image"),
        boxes: str | None = Form(None, description="JSON [[x, y, w, h], ...] in pixels (a fifth value is the "
                                                   "box score); default: the detector, else the whole image"),
        model: str | None = Form(None, description="a name from GET /v1/models; default: the first"),
        formats: str = Form("", description="add documents: 'coco', 'openpose' or 'coco,openpose'"),
        index: int = Form(0, ge=0, description="the image's place in the client's sequence (a video frame "
                                               "number): COCO image_id when the file name is not a COCO number"),
    ) -> dict:
        chosen = served.get(model or models[0].name)
        if chosen is None:
            raise HTTPException(422, f"unknown model {model!r}; served: {', '.join(served)}")
        queue = queues[chosen.name]
        if queue.waiting >= queue.max_size:   # refuse before spending time on decoding
            raise HTTPException(503, f"model {chosen.name!r} is busy; retry shortly", headers={"Retry-After": "1"})
        try:
            documents = parse_formats(formats)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        name = Path(image.filename or "upload").name or "upload"
        picture = await run_in_threadpool(decode_upload, await image.read(), name, limits.max_pixels)
        box_array, box_scores = parse_boxes(boxes, limits.max_boxes)
        try:
            poses = await queue.submit((picture, box_array, box_scores))
        except QueueFullError as error:
            raise HTTPException(503, str(error), headers={"Retry-After": "1"}) from None
        return prediction(chosen.name, Frame(index, name, picture, float(index)), poses,
                          chosen.predictor.skeleton, documents)

    return app

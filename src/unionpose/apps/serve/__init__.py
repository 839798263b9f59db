"""`unionpose serve`: a local web page and an HTTP API for pose models (needs the `serve` extra).

`app.create_app(models.load_models([...]))` is the FastAPI application and `unionpose serve` runs it with uvicorn.
Requests for one model that arrive together are answered by one model call (`batching.BatchQueue`); uploads are
capped in bytes and pixels (`limits.ServeLimits`); the page (`static/`) draws the people in the skeleton's colours
and compares two models side by side. Nothing is imported here, so the command's help needs no web stack.
"""

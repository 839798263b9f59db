"""A cap on request bodies: an upload over the limit is refused with 413 before it is read in full.

Uploads are parsed by the framework before a route sees them (and spooled to disk when large), so the cap has to act
on the byte stream: a declared Content-Length over the limit is answered at once, and a body sent without one
(chunked) is counted as it arrives and cut off at the limit.
"""
from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(max_bytes: int) -> str:
    return f"the request is over the upload limit of {max_bytes / 2 ** 20:.1f} MiB ({max_bytes} bytes)"


class BodyLimit:
    """ASGI middleware: bodies over `max_bytes` get 413 with a message naming the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            body = json.dumps({"detail": too_large_message(self.max_bytes)}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:   # raised inside the route: the framework answers it as JSON
                    raise HTTPException(413, too_large_message(self.max_bytes))
            return message

        await self.app(scope, counted, send)

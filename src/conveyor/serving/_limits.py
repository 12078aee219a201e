"""Request body size limit, enforced before and while the body is read (HTTP 413)."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit; FastAPI re-raises HTTP errors."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"larger than {limit} bytes")
        self.field = "body"


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (by Content-Length, or while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reply(send, 400, "body: invalid Content-Length header", None)
                    return
                if declared > self.max_bytes:
                    await _reply(send, 413, f"body: larger than {self.max_bytes} bytes", "body")
                    return
        received = 0
        limit = self.max_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _reply(send: Send, status: int, detail: str, field: str | None) -> None:
    body = json.dumps({"detail": detail, "field": field}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""Admission control for the HTTP service: an ASGI middleware that admits at most ``workers + queue`` uploads at
once (before their body is read) and turns the rest away with 503, and the one-line JSON errors it answers with.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Paths whose request bodies are uploads: admitted by the worker-pool gate and size-limited.
UPLOAD_PATHS = frozenset({"/predict", "/timeline"})


class Rejected(Exception):
    """A request refused with an HTTP status and a one-line message (turned into ``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class UploadGate:
    """ASGI middleware for upload requests: admission (503 when full) and the streamed body-size limit (413).

    Admission happens before any of the body is read, so memory held by uploads is bounded by
    ``(workers + queue) * max_upload_bytes``. The counter is only touched from the event loop's thread.
    """

    def __init__(self, app: ASGIApp, *, capacity: int, max_bytes: int) -> None:
        self.app = app
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        limit_mb = self.max_bytes / 2**20
        too_large = f"upload too large (limit {limit_mb:g} MB); send a shorter or compressed clip"
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await _drain_and_reply(receive, send, scope, error_response(413, too_large), budget=4 * self.max_bytes)
            return
        if self.in_flight >= self.capacity:
            busy = error_response(503, f"server busy ({self.capacity} requests in progress); retry shortly",
                          {"Retry-After": "1"})
            await _drain_and_reply(receive, send, scope, busy, budget=self.max_bytes)
            return
        self.in_flight += 1
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise StarletteHTTPException(413, too_large)
            return message

        async def checked_send(message: Message) -> None:
            # Whatever the framework makes of the exception above (FastAPI re-raises it, older versions turn
            # body-parsing errors into 400), the client gets the 413.
            if exceeded:
                if message["type"] == "http.response.start":
                    await error_response(413, too_large)(scope, receive, send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, checked_send)
        finally:
            self.in_flight -= 1


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain_and_reply(receive: Receive, send: Send, scope: Scope, response: JSONResponse, *,
                           budget: int) -> None:
    """Read and discard up to ``budget`` bytes of the body first, so that an ordinary HTTP client that is
    still sending sees the response instead of a reset connection; then answer."""
    seen = 0
    while seen <= budget:
        message = await receive()
        if message["type"] != "http.request":
            break
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await response(scope, receive, send)

"""Admission control for the HTTP service: an ASGI middleware that reads each upload's body against a clock and
a size limit before it may take one of ``workers + queue`` slots (408, 413, 429 and 503 otherwise), and the
one-line JSON errors it answers with.
"""

from __future__ import annotations

import asyncio
import tempfile

from fastapi.responses import JSONResponse
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
    """ASGI middleware for upload requests: the body is read in full, against a clock, before the request may
    take a worker slot.

    - **Slow clients.** The body must keep arriving: at most ``read_timeout`` seconds between two chunks and
      ``body_timeout`` in all, else 408 and the connection is closed. A client that sends headers and a few bytes
      therefore holds nothing for long, and never a worker slot.
    - **One client, few uploads.** A client address may have at most ``per_client`` bodies arriving at once (429
      beyond), so one host cannot fill the server with open uploads.
    - **Size.** Bodies beyond ``max_bytes`` get 413 (from Content-Length, or counted while they stream in). A body is
      spooled to a temporary file past 1 MiB, so what uploads in progress hold in memory stays small.
    - **Admission.** Only a complete body takes one of ``capacity`` slots (workers + queue); beyond, 503 with
      Retry-After.

    The counters are only touched from the event loop's thread.
    """

    def __init__(self, app: ASGIApp, *, capacity: int, max_bytes: int, read_timeout: float = 10.0,
                 body_timeout: float = 60.0, per_client: int = 4) -> None:
        self.app = app
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout
        self.per_client = per_client
        self.in_flight = 0
        self.receiving: dict[str, int] = {}

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
        client = str((scope.get("client") or ("unknown",))[0])
        if self.receiving.get(client, 0) >= self.per_client:
            await error_response(429, f"too many uploads in progress from this client (limit {self.per_client}); "
                                      "wait for one to finish", {"Retry-After": "1"})(scope, receive, send)
            return
        self.receiving[client] = self.receiving.get(client, 0) + 1
        try:
            body = await self._read_body(receive)
        except _TooSlow as exc:
            await error_response(408, str(exc), {"Connection": "close"})(scope, receive, send)
            return
        except _TooLarge:
            await error_response(413, too_large, {"Connection": "close"})(scope, receive, send)
            return
        finally:
            self.receiving[client] -= 1
            if not self.receiving[client]:
                del self.receiving[client]
        with body:
            if body.disconnected:
                return
            if self.in_flight >= self.capacity:
                await error_response(503, f"server busy ({self.capacity} requests in progress); retry shortly",
                                     {"Retry-After": "1"})(scope, receive, send)
                return
            self.in_flight += 1
            try:
                await self.app(scope, body.replay(receive), send)
            finally:
                self.in_flight -= 1

    async def _read_body(self, receive: Receive) -> _Body:
        body = _Body()
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        try:
            while True:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    message = await asyncio.wait_for(receive(), timeout=max(0.0, min(self.read_timeout, left)))
                except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
                    waited = "in all" if left <= self.read_timeout else "for the next part"
                    raise _TooSlow(f"upload too slow: the request body did not arrive in time ({waited}; limits "
                                   f"{self.read_timeout:g} s between parts, {self.body_timeout:g} s in all)") from None
                if message["type"] == "http.disconnect":
                    body.disconnected = True
                    return body
                body.write(message.get("body", b""))
                if body.size > self.max_bytes:
                    raise _TooLarge
                if not message.get("more_body", False):
                    return body
        except BaseException:
            body.close()
            raise


class _TooSlow(Exception):
    pass


class _TooLarge(Exception):
    pass


class _Body:
    """A request body received in full: in memory up to 1 MiB, then in a temporary file."""

    CHUNK = 64 * 1024

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=2**20)
        self.size = 0
        self.disconnected = False

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def replay(self, receive: Receive) -> Receive:
        """A ``receive`` that gives the app the whole body again, then whatever the client sends next."""
        self.file.seek(0)
        done = False

        async def replayed() -> Message:
            nonlocal done
            if done:
                return await receive()
            chunk = self.file.read(self.CHUNK)
            done = self.file.tell() >= self.size
            return {"type": "http.request", "body": chunk, "more_body": not done}

        return replayed

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

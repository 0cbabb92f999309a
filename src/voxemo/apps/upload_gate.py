"""Admission control for the HTTP service: an ASGI middleware that reads each upload's body against a clock and
a size limit before it may take one of ``workers + queue`` slots (408, 413, 429 and 503 otherwise), the one-line
JSON errors it answers with, the name an upload is known by, and the HTTP protocol that gives every client a
deadline for its request head.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import h11
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Paths whose request bodies are uploads: admitted by the worker-pool gate and size-limited.
UPLOAD_PATHS = frozenset({"/predict", "/timeline"})

#: Control characters (C0, DEL, C1), dropped from client file names: a NUL cannot be in a server path, a newline
#: would split one-line messages.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

#: A file extension kept for the temporary copy of an upload (libsndfile detects MP3 partly by name).
_SUFFIX = re.compile(r"\.[a-z0-9]{1,7}")


class Rejected(Exception):
    """A request refused with an HTTP status and a one-line message (turned into ``{"error": message}``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def client_name(filename: str | None) -> str:
    """The uploaded file's base name as the client sent it, used in results and messages: no folders, no control
    characters (a NUL, a newline), at most 200 characters, ``"upload"`` when nothing is left.

    >>> client_name("clips/x.w\\x00v")
    'x.wv'
    """
    if not filename:
        return "upload"
    text = _CONTROL.sub("", filename.encode("utf-8", "replace").decode("utf-8"))  # lone surrogates become "?"
    name = PureWindowsPath(PurePosixPath(text).name).name.strip()
    return name[:200] or "upload"


def upload_suffix(name: str) -> str:
    """The extension of a client file name when it is a plain one (``.wav``, ``.mp3``...), else ``""``."""
    suffix = Path(name).suffix.lower()
    return suffix if _SUFFIX.fullmatch(suffix) else ""


class UploadGate:
    """ASGI middleware for upload requests: the body is read in full, against a clock, before the request may
    take a worker slot.

    - **Slow clients.** The body must keep arriving: at most ``read_timeout`` seconds between two chunks and
      ``body_timeout`` in all, else 408 and the connection is closed. A client that sends headers and a few bytes
      therefore holds nothing for long, and never a worker slot.
    - **One client, few uploads.** A client address may have at most ``per_client`` bodies arriving at once, so one
      host cannot fill the server with open uploads. When it has that many, a new upload takes the place of one
      that has *stalled* (nothing received for ``stalled_after`` seconds, or open that long at an average rate that
      cannot bring its declared length within ``body_timeout``), which gets 408; only when none has stalled does
      the new one get 429. Stalled uploads therefore never lock an address out.
    - **Size.** Bodies beyond ``max_bytes`` get 413 (from Content-Length, or counted while they stream in). A body is
      spooled to a temporary file past 1 MiB, so what uploads in progress hold in memory stays small. A body
      declared too large is read and dropped (so that a client still sending sees the answer) only while it keeps
      arriving within ``read_timeout``, and not at all when the client waits for ``100 Continue``.
    - **Admission.** Only a complete body takes one of ``capacity`` slots (workers + queue); beyond, 503 with
      Retry-After.

    The counters are only touched from the event loop's thread.
    """

    def __init__(self, app: ASGIApp, *, capacity: int, max_bytes: int, read_timeout: float = 10.0,
                 body_timeout: float = 60.0, per_client: int = 4, stalled_after: float = 2.0) -> None:
        self.app = app
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.body_timeout = body_timeout
        self.per_client = per_client
        self.stalled_after = stalled_after
        self.in_flight = 0
        self.receiving: dict[str, list[_Upload]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        limit_mb = self.max_bytes / 2**20
        too_large = f"upload too large (limit {limit_mb:g} MB); send a shorter or compressed clip"
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            response = error_response(413, too_large, {"Connection": "close"})
            if _header(scope, b"expect").lower() == b"100-continue":  # the body has not been sent: do not ask for it
                await response(scope, receive, send)
            else:
                await self._drain_and_reply(receive, send, scope, response, budget=4 * self.max_bytes)
            return
        client = str((scope.get("client") or ("unknown",))[0])
        upload = self._admit(client, length)
        if upload is None:
            await error_response(429, f"too many uploads in progress from this client (limit {self.per_client}); "
                                      "wait for one to finish", {"Retry-After": "1"})(scope, receive, send)
            return
        try:
            body = await self._read_body(receive, upload)
        except _TooSlow as exc:
            await error_response(408, str(exc), {"Connection": "close"})(scope, receive, send)
            return
        except _TooLarge:
            await error_response(413, too_large, {"Connection": "close"})(scope, receive, send)
            return
        finally:
            self._forget(client, upload)
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

    def _admit(self, client: str, length: int | None) -> _Upload | None:
        """Count a new upload from ``client``, in the place of its most stalled one when it has ``per_client``
        already; None when none of those has stalled."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        uploads = self.receiving.setdefault(client, [])
        if len(uploads) >= self.per_client:
            stalled = [u for u in uploads if u.stalled(now, self.stalled_after, self.body_timeout)]
            if not stalled:
                return None
            victim = min(stalled, key=lambda u: u.last_data)
            uploads.remove(victim)
            victim.evicted.set_result(None)
        upload = _Upload(started=now, last_data=now, length=length, evicted=loop.create_future())
        uploads.append(upload)
        return upload

    def _forget(self, client: str, upload: _Upload) -> None:
        uploads = self.receiving.get(client, [])
        if upload in uploads:
            uploads.remove(upload)
        if not uploads:
            self.receiving.pop(client, None)

    async def _read_body(self, receive: Receive, upload: _Upload) -> _Body:
        body = _Body()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        try:
            while True:
                left = deadline - loop.time()
                message = await _receive_within(receive, max(0.0, min(self.read_timeout, left)), upload.evicted)
                if upload.evicted.done():
                    raise _TooSlow(f"upload too slow: it stalled and gave its place to a newer upload from the same "
                                   f"address (at most {self.per_client} at once)")
                if message is None:
                    waited = "in all" if left <= self.read_timeout else "for the next part"
                    raise _TooSlow(f"upload too slow: the request body did not arrive in time ({waited}; limits "
                                   f"{self.read_timeout:g} s between parts, {self.body_timeout:g} s in all)")
                if message["type"] == "http.disconnect":
                    body.disconnected = True
                    return body
                body.write(message.get("body", b""))
                upload.received, upload.last_data = body.size, loop.time()
                if body.size > self.max_bytes:
                    raise _TooLarge
                if not message.get("more_body", False):
                    return body
        except BaseException:
            body.close()
            raise

    async def _drain_and_reply(self, receive: Receive, send: Send, scope: Scope, response: JSONResponse, *,
                               budget: int) -> None:
        """Read and discard up to ``budget`` bytes of the body first, so that an ordinary HTTP client that is
        still sending sees the response instead of a reset connection; then answer. A body that stops arriving
        (``read_timeout`` between parts, ``body_timeout`` in all) is answered at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        seen = 0
        while seen <= budget:
            message = await _receive_within(receive, max(0.0, min(self.read_timeout, deadline - loop.time())))
            if message is None or message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await response(scope, receive, send)


@dataclass(eq=False)
class _Upload:
    """One upload whose body is arriving: what it declared, how far it is, and the future that, once set, tells it
    to give its place up. Compared by identity."""

    started: float
    last_data: float
    length: int | None
    evicted: asyncio.Future[None]
    received: int = 0

    def stalled(self, now: float, after: float, body_timeout: float) -> bool:
        """Nothing received for ``after`` seconds, or open that long at an average rate that cannot bring the
        declared length within ``body_timeout`` seconds of its start."""
        if now - self.last_data >= after:
            return True
        elapsed = now - self.started
        return elapsed >= after and self.length is not None and self.received * body_timeout < self.length * elapsed


async def _receive_within(receive: Receive, timeout: float, stop: asyncio.Future[None] | None = None) -> Message | None:
    """The next ASGI message, or None when none came within ``timeout`` seconds or ``stop`` was set first."""
    task = asyncio.ensure_future(receive())
    waiting: set[asyncio.Future[Any]] = {task} if stop is None else {task, stop}
    try:
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
    return task.result() if task.done() and not task.cancelled() else None


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


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return b""


def _content_length(scope: Scope) -> int | None:
    try:
        return int(_header(scope, b"content-length"))
    except ValueError:
        return None


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for the client's side of the conversation.

    Whenever the server waits for a client to finish sending a request head (on a new connection, or on a kept-alive
    one after a response), or for the rest of a body that the app answered without reading, the client has
    ``head_timeout`` seconds: then the connection is closed, with a 408 when part of a head had arrived. Clients
    that send their headers slowly (slowloris) therefore hold a socket for at most that long. The clock does not run
    while the app works on a request, reads its body (the upload gate has its own limits for that) or holds a
    WebSocket. Build one with :func:`head_timeout_protocol`.
    """

    head_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    _upgraded: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._upgraded = True
        self._stop_watch()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watch()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start the clock when the server is waiting on the client, stop it otherwise."""
        theirs, ours = self.conn.their_state, self.conn.our_state
        waiting = theirs is h11.IDLE or (theirs is h11.SEND_BODY and ours in (h11.DONE, h11.MUST_CLOSE))
        if not waiting or self._upgraded or self.transport.is_closing():
            self._stop_watch()
        elif self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._time_out)

    def _stop_watch(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _time_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:  # part of a request head arrived
            message = json.dumps({"error": f"request head not received within {self.head_timeout:g} s; send the "
                                           "request line and headers at once"}).encode()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(message), message))
        self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HeadTimeoutProtocol]:
    """A :class:`HeadTimeoutProtocol` class with ``head_timeout = seconds``, for ``uvicorn.run(http=...)``."""

    class Timed(HeadTimeoutProtocol):
        head_timeout = seconds

    return Timed

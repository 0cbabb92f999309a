"""The local HTTP service behind ``voxemo serve``: a FastAPI app with upload limits and a bounded worker pool.

Endpoints
---------
``GET /``            the web page (record or drop a file, see the emotion, the probabilities and a timeline)
``GET /health``      status, labels, the model's window length and the limits in force
``POST /predict``    multipart upload in the field ``file`` -> the object ``voxemo predict --json`` prints
``POST /timeline``   multipart upload in the field ``file`` -> :func:`voxemo.inference.timeline.timeline` of the clip
``WS /listen``       live emotion: the client sends PCM chunks, the server answers with stream updates
``GET /docs``        OpenAPI documentation (``/openapi.json``)

Errors are one-line JSON objects ``{"error": "..."}``; no response ever carries a server path or a traceback:

=====  =================================================================================================
 408   the request head did not arrive within ``header_timeout``, or the upload's body paused longer than
       ``read_timeout``, took longer than ``body_timeout``, or stalled while its address was at ``per_client``
 413   the upload is larger than ``max_upload_mb`` (checked while the body streams in, not only from
       Content-Length)
 415   the upload is not a readable audio file (libsndfile's cause is named)
 422   readable but unusable: empty, silent, too short after trimming, longer than ``max_seconds``,
       or the ``file`` field is missing
 429   the client's address already has ``per_client`` uploads arriving, none of them stalled
 503   every worker is busy and the queue is full; ``Retry-After`` says when to try again
=====  =================================================================================================

Inference runs in a pool of ``workers`` threads; at most ``workers + queue`` uploads are admitted at once
(checked before their body is read, so a burst costs at most that many uploads of memory), the rest are
turned away with 503 instead of piling up. Every wait on a client has a deadline: ``header_timeout`` for a request
head, ``read_timeout`` and ``body_timeout`` for an upload's body, ``ws_idle_timeout`` for a ``/listen`` message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import numpy as np
import soundfile as sf
from fastapi import FastAPI, File, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxemo.apps.upload_gate import (
    Rejected,
    UploadGate,
    client_name,
    error_response,
    head_timeout_protocol,
    upload_suffix,
)
from voxemo.core.errors import ConfigError, VoxemoError
from voxemo.core.version import version
from voxemo.inference.loading import resolve_model
from voxemo.inference.stream import MAX_DEFAULT_WINDOW, EmotionStream
from voxemo.inference.timeline import timeline
from voxemo.io.audio import libsndfile_cause

log = logging.getLogger(__name__)


#: The upload field of ``/predict`` and ``/timeline``.
AudioUpload = Annotated[UploadFile, File(description="audio file: WAV, FLAC, OGG/Vorbis, Opus or MP3")]

#: Longest single ``/listen`` chunk, in seconds of audio.
MAX_CHUNK_SECONDS = 10

#: ``/listen`` sample formats: little-endian float32 in [-1, 1] or 16-bit integers.
_PCM_FORMATS: dict[str, np.dtype[Any]] = {"f32": np.dtype("<f4"), "s16": np.dtype("<i2")}


@dataclass(frozen=True)
class ServiceConfig:
    """Limits of the HTTP service.

    Attributes
    ----------
    max_upload_mb : float
        Largest request body accepted, in MiB (multipart overhead included); larger gets 413.
    max_seconds : float
        Longest audio accepted, in seconds (read from the file header before decoding); longer gets 422.
    workers : int
        Threads running inference at the same time.
    queue : int
        Uploads allowed to wait for a worker; beyond ``workers + queue`` in flight, requests get 503.
    read_timeout, body_timeout : float
        An upload's body must arrive with at most ``read_timeout`` seconds between two parts and within
        ``body_timeout`` seconds in all, else 408 (it takes no worker slot while it arrives).
    per_client : int
        Uploads one client address may be sending at once; more get 429, unless one of those has stalled, which then
        gives its place up (408).
    stalled_after : float
        Seconds after which an upload counts as stalled: nothing received for that long, or open that long at an
        average rate that cannot bring its declared length within ``body_timeout``.
    header_timeout : float
        Seconds a client has for a request head (request line and headers), counted from the connection's start or
        the end of the previous response; then the connection is closed (408 when part of a head had arrived).
    ws_idle_timeout : float
        Seconds a ``/listen`` session may go without a message from the client (its first one included); then the
        server sends an error and closes it (code 1001).

    An upload may also decode to at most :attr:`max_samples` samples (all channels; checked from the header before
    decoding, 413 beyond): ``max_seconds`` of 48 kHz stereo.
    """

    max_upload_mb: float = 20.0
    max_seconds: float = 300.0
    workers: int = 2
    queue: int = 16
    read_timeout: float = 10.0
    body_timeout: float = 60.0
    per_client: int = 4
    stalled_after: float = 2.0
    header_timeout: float = 10.0
    ws_idle_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ConfigError(f"ServiceConfig.max_upload_mb={self.max_upload_mb!r} must be positive")
        if not self.max_seconds > 0:
            raise ConfigError(f"ServiceConfig.max_seconds={self.max_seconds!r} must be positive")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"ServiceConfig.workers={self.workers!r} must be an integer >= 1")
        if not isinstance(self.queue, int) or self.queue < 0:
            raise ConfigError(f"ServiceConfig.queue={self.queue!r} must be an integer >= 0")
        if not (self.read_timeout > 0 and self.body_timeout > 0):
            raise ConfigError(f"ServiceConfig.read_timeout={self.read_timeout!r} and body_timeout="
                              f"{self.body_timeout!r} must be positive (seconds)")
        if not isinstance(self.per_client, int) or self.per_client < 1:
            raise ConfigError(f"ServiceConfig.per_client={self.per_client!r} must be an integer >= 1")
        for name in ("stalled_after", "header_timeout", "ws_idle_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"ServiceConfig.{name}={getattr(self, name)!r} must be positive (seconds)")

    @property
    def max_samples(self) -> int:
        """The most samples (frames × channels) an upload may decode to."""
        return int(self.max_seconds * 48000 * 2)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class Service:
    """The model, the limits and the worker pool behind the app; the endpoints call :meth:`predict` and
    :meth:`timeline` from the pool."""

    def __init__(self, model: Any, config: ServiceConfig) -> None:
        self.model = model
        self.config = config
        self.pool = self._new_pool()
        self.streams = 0  # open /listen sessions (touched from the event loop only)

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="voxemo-infer")

    def start(self) -> None:
        """A fresh worker pool when the app starts again after a shutdown (the same app object served twice)."""
        if self.pool._shutdown:  # noqa: SLF001 - ThreadPoolExecutor offers no public way to ask
            self.pool = self._new_pool()

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, upload: UploadFile, work: Callable[[Path, str], dict[str, Any]]) -> dict[str, Any]:
        """Copy the upload to a private temporary file and run ``work(path, client_name)`` in the pool."""
        name = client_name(upload.filename)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._in_tempdir, upload.file, name, work)

    def _in_tempdir(self, src: BinaryIO, name: str, work: Callable[[Path, str], dict[str, Any]]) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="voxemo-upload-") as tmp:
            # Keep the client's extension (libsndfile detects formats by content, MP3 partly by name).
            path = Path(tmp) / ("upload" + upload_suffix(name))
            with open(path, "wb") as dst:
                src.seek(0)
                shutil.copyfileobj(src, dst)
            try:
                self.check_audio(path, name)
                return work(path, name)
            except VoxemoError as exc:
                raise Rejected(422, _rename(str(exc), path, name)) from None

    def warm_up(self) -> None:
        """Classify one second of a synthetic tone, so the first client does not wait for lazy set-up."""
        sr = 16000
        t = np.arange(sr) / sr
        tone = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t) ** 2).astype(np.float32)
        try:
            self.model.predict_proba(tone, sr, speech_check=False)
        except VoxemoError as exc:  # a model that cannot take this signal still serves; say so
            log.warning("warm-up prediction failed: %s", exc)

    def check_audio(self, path: Path, name: str) -> None:
        """Reject empty, non-audio and too long uploads from the header alone, before decoding."""
        if path.stat().st_size == 0:
            raise Rejected(422, f"{name}: empty upload (0 bytes)")
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            cause = _rename(libsndfile_cause(exc), path, name)
            raise Rejected(415, f"{name}: not a readable audio file ({cause})") from None
        seconds = info.frames / info.samplerate if info.samplerate > 0 else 0.0
        if seconds > self.config.max_seconds:
            raise Rejected(422, f"{name}: too long ({seconds:.1f} s > limit {self.config.max_seconds:g} s); "
                                "send a shorter clip")
        # A small compressed file can declare hours of many channels at a high rate: bound what decoding would
        # hold in memory (float32), from the header, before decoding anything.
        samples = info.frames * info.channels
        if info.frames < 0 or samples > self.config.max_samples:  # 0 frames is an empty stream: 422 further on
            declared = ("an unknown length" if info.frames < 0 else
                        f"{seconds:.1f} s × {info.channels} channels × {info.samplerate} Hz = {samples:,} samples")
            raise Rejected(413, f"{name}: decodes to too much audio ({declared}; the limit is "
                                f"{self.config.max_samples:,} samples, {self.config.max_seconds:g} s of 48 kHz "
                                "stereo); send a shorter, mono or lower-rate file")

    def predict(self, path: Path, name: str) -> dict[str, Any]:
        """``predict_file`` of the upload, reported under the client's file name: an emotion, or (200 as well)
        ``{"path", "speech": false, "emotion": null, "reason"}`` for a clip without speech."""
        result = self.model.predict_file(path)
        if "error" in result:
            raise Rejected(422, _rename(result["error"], path, name))
        return {**result, "path": name}

    def timeline(self, path: Path, name: str) -> dict[str, Any]:
        """The emotion timeline of the upload (:func:`voxemo.inference.timeline.timeline`)."""
        return {**timeline(path, self.model).to_dict(), "path": name}

    async def listen(self, ws: WebSocket) -> None:
        """Serve one ``/listen`` session: PCM chunks in, :class:`~voxemo.inference.stream.EmotionStream` updates out.

        Protocol: the client's first message is text ``{"sample_rate": Hz, "format": "f32" | "s16"}`` (format
        defaults to little-endian float32, mono); then binary messages of PCM samples, at most
        ``MAX_CHUNK_SECONDS`` each; then optionally text ``{"end": true}``, after which the server flushes the
        stream, sends the last updates and ``{"done": true}``, and closes. Every update is one text message
        (``{"start", "end", "emotion", "confidence", "probabilities", "speech"}``). A session may stream at
        most ``max_seconds`` of audio, and goes at most ``ws_idle_timeout`` seconds without a message (the server
        closes it with code 1001 then); errors arrive as ``{"error": "..."}`` before the server closes.
        """
        await ws.accept()
        if self.streams >= self.config.workers + self.config.queue:
            await _ws_close(ws, f"server busy ({self.streams} live sessions); retry shortly", 1013)
            return
        self.streams += 1
        loop = asyncio.get_running_loop()
        idle = self.config.ws_idle_timeout
        try:
            try:
                hello = json.loads(await asyncio.wait_for(ws.receive_text(), idle))
                rate, fmt = hello["sample_rate"], hello.get("format", "f32")
                if fmt not in _PCM_FORMATS:
                    raise ValueError(f"format {fmt!r} is not one of {sorted(_PCM_FORMATS)}")
                stream = EmotionStream(self.model, int(rate) if float(rate) == int(rate) else rate)
            except (ValueError, KeyError, TypeError, VoxemoError) as exc:
                await _ws_close(ws, f'bad first message ({exc}); send {{"sample_rate": Hz, "format": "f32"}}', 1003)
                return
            dtype = _PCM_FORMATS[fmt]
            max_samples = int(self.config.max_seconds * stream.sample_rate)
            while True:
                message = await asyncio.wait_for(ws.receive(), idle)
                if message["type"] == "websocket.disconnect":
                    return
                data, text = message.get("bytes"), message.get("text")
                if text is not None:
                    updates = await loop.run_in_executor(self.pool, stream.flush)
                    for u in updates:
                        await ws.send_json(u.to_dict())
                    await ws.send_json({"done": True})
                    await ws.close()
                    return
                if len(data or b"") % dtype.itemsize:
                    await _ws_close(ws, f"chunk of {len(data or b'')} bytes is not whole {fmt} samples "
                                        f"({dtype.itemsize} bytes each)", 1003)
                    return
                chunk = np.frombuffer(data or b"", dtype=dtype)
                if len(chunk) > MAX_CHUNK_SECONDS * stream.sample_rate:
                    await _ws_close(ws, f"chunk of {len(chunk)} samples is longer than {MAX_CHUNK_SECONDS} s", 1009)
                    return
                if stream.position * stream.sample_rate + len(chunk) > max_samples:
                    await _ws_close(ws, f"session longer than the limit of {self.config.max_seconds:g} s", 1009)
                    return
                try:
                    updates = await loop.run_in_executor(self.pool, stream.feed, chunk)
                except VoxemoError as exc:
                    await _ws_close(ws, str(exc), 1003)
                    return
                for u in updates:
                    await ws.send_json(u.to_dict())
        except WebSocketDisconnect:
            return
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            await _ws_close(ws, f"no message for {idle:g} s; closing the idle session (send audio at least every "
                                f"{idle:g} s)", 1001)
        finally:
            self.streams -= 1

    def health(self) -> dict[str, Any]:

        cfg = getattr(self.model, "config", None)
        return {
            "status": "ok",
            "version": version(),
            "classes": [str(c) for c in self.model.classes_],
            "backend": getattr(self.model, "backend", "") or type(self.model).__name__,
            # the timeline's and /listen's window (what the page compares a recording's length with)
            "window_seconds": min(cfg.audio.duration, MAX_DEFAULT_WINDOW) if cfg is not None else None,
            "limits": {"max_upload_mb": self.config.max_upload_mb, "max_seconds": self.config.max_seconds,
                       "workers": self.config.workers, "queue": self.config.queue},
        }


async def _ws_close(ws: WebSocket, message: str, code: int) -> None:
    """Send ``{"error": message}``, then close with ``code`` and the message (cut to 123 bytes) as the reason."""
    with contextlib.suppress(WebSocketDisconnect):  # the client may have gone meanwhile (an idle one, above all)
        await ws.send_json({"error": message})
        await ws.close(code, message.encode()[:123].decode(errors="ignore"))


def _rename(message: str, path: Path, name: str) -> str:
    """Replace the server-side temporary path (and its folder) in a message by the client's file name."""
    return message.replace(str(path), name).replace(str(path.parent) + os.sep, "").replace(str(path.parent), "")


async def _one_file(request: Request) -> None:
    """An upload holds one file: several in the field ``file`` are refused instead of silently using one."""
    files = (await request.form()).getlist("file")  # the form FastAPI already parsed (cached by the request)
    if len(files) > 1:
        raise Rejected(422, f"file: {len(files)} files sent; send one file per request in the field 'file'")


def page_html() -> str:
    """The single-page web client shipped in the package (``voxemo/apps/web/index.html``)."""
    return (resources.files("voxemo.apps") / "web" / "index.html").read_text(encoding="utf-8")


def create_app(model: Any = None, *, backend: str = "auto", max_upload_mb: float = 20.0, max_seconds: float = 300.0,
               workers: int = 2, queue: int = 16, read_timeout: float = 10.0, body_timeout: float = 60.0,
               per_client: int = 4, stalled_after: float = 2.0, header_timeout: float = 10.0,
               ws_idle_timeout: float = 30.0) -> FastAPI:
    """Build the FastAPI app.

    Parameters
    ----------
    model : Classifier, path-like, shipped name or None
        A loaded classifier, or what :func:`voxemo.load_model` takes (resolved once); ``backend`` says how to load it.
    max_upload_mb, max_seconds, workers, queue, read_timeout, body_timeout, per_client, stalled_after, \
    header_timeout, ws_idle_timeout
        See :class:`ServiceConfig`. ``header_timeout`` takes effect when the app runs under :func:`serve`.
    """
    config = ServiceConfig(max_upload_mb=max_upload_mb, max_seconds=max_seconds, workers=workers, queue=queue,
                           read_timeout=read_timeout, body_timeout=body_timeout, per_client=per_client,
                           stalled_after=stalled_after, header_timeout=header_timeout, ws_idle_timeout=ws_idle_timeout)
    model = resolve_model(model, backend)
    service = Service(model, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        # The first prediction pays for lazy imports and allocator warm-up (~1-2 s); pay it before serving.
        await asyncio.get_running_loop().run_in_executor(service.pool, service.warm_up)
        yield
        service.stop()

    # /docs and /redoc with their scripts and styles served from the package, not a CDN: they work offline
    app = FastAPIOffline(title="voxemo", version=service.health()["version"], lifespan=lifespan,
                         description="Speech emotion recognition: upload a clip, get the emotion and its "
                                     "probabilities.")
    app.state.service = service

    _add_error_handlers(app)  # every error as the one JSON shape {"error": "<one line>"}, with its status

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/health", summary="Status, labels and limits")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.post("/predict", summary="Emotion of one uploaded clip",
              responses={413: {"description": "upload too large"}, 415: {"description": "not audio"},
                         422: {"description": "unusable audio"}, 503: {"description": "busy, retry"}})
    async def predict(request: Request, file: AudioUpload) -> dict[str, Any]:
        """The object `voxemo predict --json` prints: path (the uploaded name), emotion, confidence, probabilities."""
        await _one_file(request)
        return await service.run(file, service.predict)

    @app.post("/timeline", summary="Emotion over time for one uploaded clip",
              responses={413: {"description": "upload too large"}, 415: {"description": "not audio"},
                         422: {"description": "unusable audio"}, 503: {"description": "busy, retry"}})
    async def timeline(request: Request, file: AudioUpload) -> dict[str, Any]:
        """Duration, merged segments (start, end, emotion, confidence, probabilities) and the raw windows."""
        await _one_file(request)
        return await service.run(file, service.timeline)

    @app.websocket("/listen")
    async def listen(ws: WebSocket) -> None:
        """Live emotion: see :meth:`Service.listen`."""
        await service.listen(ws)

    app.add_middleware(UploadGate, capacity=config.workers + config.queue, max_bytes=config.max_upload_bytes,
                       read_timeout=config.read_timeout, body_timeout=config.body_timeout, per_client=config.per_client,
                       stalled_after=config.stalled_after)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Rejected)
    async def _rejected(request: Request, exc: Rejected) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')} "
                                   "(send the audio as multipart field 'file')")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, "internal error; the server log has the details")


def serve(host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
    """Run :func:`create_app` under uvicorn (blocking), over HTTP/1.1 with the request-head deadline of
    :class:`~voxemo.apps.upload_gate.HeadTimeoutProtocol`. ``kwargs`` go to :func:`create_app`."""
    import uvicorn

    app = create_app(**kwargs)
    config: ServiceConfig = app.state.service.config
    uvicorn.run(app, host=host, port=port, log_level="info", http=head_timeout_protocol(config.header_timeout))

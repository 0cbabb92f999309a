"""The real service (uvicorn in a subprocess) under attack: slow clients that send headers and a few bytes of
body from several sockets, too many uploads from one host, and a decompression bomb, while normal clients keep
being served; request heads, bodies and /listen sessions that never finish, uploads that stall while their
address needs the place, and file names no file system takes. Request loops are bounded and go to 127.0.0.x only."""

from __future__ import annotations

import contextlib
import io
import json
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import soundfile as sf
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from conftest import load_benchmark, voiced

READ_TIMEOUT = 2.0


loadtest = load_benchmark("loadtest")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict]]:
    info: dict = {}
    with loadtest.running_server("--workers", "2", "--queue", "2", "--max-upload-mb", "2", "--max-seconds", "20",
                                 "--read-timeout", str(READ_TIMEOUT), "--body-timeout", "8", info=info) as url:
        yield url, info
    # peak memory of the whole server over every test in this module
    assert info["peak_rss_mb"] is None or info["peak_rss_mb"] < 1024, info


def _wav(seconds: float = 1.2) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, voiced(seconds, 16000, np.random.default_rng(3)), 16000, format="WAV")
    return buf.getvalue()


def _slow_socket(url: str, source: str) -> socket.socket:
    """Connect from ``source``, send a complete header announcing 1 MB and 4 bytes of body, then nothing."""
    port = int(url.rsplit(":", 1)[1])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
              b"Content-Length: 1000000\r\n\r\n--B\r")
    return s


def _status(s: socket.socket, timeout: float) -> int | None:
    s.settimeout(timeout)
    try:
        first = s.recv(4096).split(b"\r\n", 1)[0]
    except (TimeoutError, OSError):
        return None
    parts = first.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def test_slow_clients_do_not_lock_out_normal_ones(server: tuple[str, dict]) -> None:
    url, _ = server
    slow = [_slow_socket(url, f"127.0.0.{2 + k // 3}") for k in range(18)]  # 6 hosts, 3 sockets each
    try:
        clip, latencies, statuses = _wav(), [], []
        for _ in range(12):  # while the slow sockets are open
            t = time.monotonic()
            r = httpx.post(url + "/predict", files={"file": ("clip.wav", clip, "audio/wav")}, timeout=30)
            latencies.append(time.monotonic() - t)
            statuses.append(r.status_code)
        assert statuses == [200] * 12
        assert statistics.quantiles(latencies, n=20)[-1] < 2.0, latencies  # p95
        # each slow socket was answered 408 once its body stalled for the read timeout, and closed
        answers = [_status(s, READ_TIMEOUT + 10) for s in slow]
        assert answers == [408] * len(slow)
    finally:
        for s in slow:
            s.close()


def test_one_host_may_send_only_a_few_uploads_at_once(server: tuple[str, dict]) -> None:
    url, _ = server
    held = [_slow_socket(url, "127.0.0.20") for _ in range(4)]
    try:
        time.sleep(0.3)  # the four are being received
        fifth = _slow_socket(url, "127.0.0.20")
        assert _status(fifth, 5) == 429
        fifth.close()
        r = httpx.post(url + "/predict", files={"file": ("clip.wav", _wav(), "audio/wav")}, timeout=30)
        assert r.status_code == 200  # other hosts are not affected
    finally:
        for s in held:
            s.close()


def test_decompression_bombs_are_refused_while_others_are_served(server: tuple[str, dict]) -> None:
    """A small FLAC declaring 8 s x 8 channels x 96 kHz, sent 4 times in parallel with normal clients."""
    url, info = server
    buf = io.BytesIO()
    sf.write(buf, np.zeros((8 * 96000, 8), np.int16), 96000, format="FLAC")
    bomb = buf.getvalue()
    results: list[int] = []

    def send_bomb() -> None:
        r = httpx.post(url + "/predict", files={"file": ("bomb.flac", bomb, "audio/flac")}, timeout=30)
        results.append(r.status_code)

    threads = [threading.Thread(target=send_bomb) for _ in range(4)]
    for t in threads:
        t.start()
    ok = [httpx.post(url + "/predict", files={"file": ("clip.wav", _wav(), "audio/wav")}, timeout=30).status_code
          for _ in range(4)]
    for t in threads:
        t.join(60)
    assert results == [413] * 4 and ok == [200] * 4
    assert (loadtest.peak_rss_mb(info["pid"]) or 0) < 1024


# ---- deadlines on every wait for a client, and fair per-address quotas: `serve` with short limits ----

TIGHT = {"workers": 2, "queue": 2, "max_upload_mb": 2, "max_seconds": 20, "read_timeout": 3, "body_timeout": 8,
         "per_client": 4, "stalled_after": 0.5, "header_timeout": 1, "ws_idle_timeout": 1}


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``serve(**TIGHT)`` in a subprocess (its own deadlines need no CLI flag); yields its URL and its log file."""
    port, log = loadtest.free_port(), tmp_path_factory.mktemp("tight") / "server.log"
    code = f"from voxemo.apps.service import serve; serve('127.0.0.1', {port}, **{TIGHT!r})"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield url, log
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    return s


def _watch_until_closed(socks: dict[socket.socket, bytes], seconds: float, every: float = 0.2) -> dict:
    """Send each socket's bytes every ``every`` s (none when empty) until the server closes it or ``seconds`` pass;
    returns ``{socket: (seconds until closed or None, what the server sent)}``."""
    start, got = time.monotonic(), {s: b"" for s in socks}
    closed: dict[socket.socket, float] = {}
    next_send = start
    while len(closed) < len(socks) and time.monotonic() - start < seconds:
        open_ = [s for s in socks if s not in closed]
        if time.monotonic() >= next_send:
            for s in open_:
                if socks[s]:
                    with contextlib.suppress(OSError):
                        s.sendall(socks[s])
            next_send += every
        for s in select.select(open_, [], [], 0.05)[0]:
            try:
                data = s.recv(4096)
            except OSError:  # reset: closed all the same
                data = b""
            got[s] += data
            if not data:
                closed[s] = time.monotonic() - start
    return {s: (closed.get(s), got[s]) for s in socks}


def test_slow_request_heads_are_cut_off(tight: tuple[str, Path]) -> None:
    """30 sockets: 10 send nothing, 10 half a head, 10 a header line every 0.2 s. All are closed after the 1 s
    header timeout (those with part of a head with a 408); a normal client on a kept-alive connection is served."""
    url, _ = tight
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    silent, partial, trickle = ([_connect(url) for _ in range(10)] for _ in range(3))
    for s in partial + trickle:
        s.sendall(head)
    socks = {**dict.fromkeys(silent + partial, b""), **dict.fromkeys(trickle, b"X-Slow: 1\r\n")}
    try:
        with httpx.Client(timeout=10) as client:  # served meanwhile, twice over one connection
            assert [client.get(url + "/health").status_code for _ in range(2)] == [200, 200]
        seen = _watch_until_closed(socks, 8.0)
        assert all(after is not None and after < 5.0 for after, _ in seen.values()), sorted(
            str(after) for after, _ in seen.values())
        assert [seen[s][1] for s in silent] == [b""] * 10
        assert all(seen[s][1].startswith(b"HTTP/1.1 408") and b"request head" in seen[s][1] for s in partial)
    finally:
        for s in socks:
            s.close()


def test_a_body_that_never_comes_is_answered_within_the_read_timeout(tight: tuple[str, Path]) -> None:
    """10 GB declared and nothing sent: 413 once the body has paused for read_timeout (3 s), at once when the
    client waits for 100 Continue; a small body that stops gets 408 in the same time; all are closed."""
    url, _ = tight
    head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
    huge, expecting, stalled = _connect(url), _connect(url), _connect(url)
    huge.sendall(head + b"Content-Length: 10000000000\r\n\r\n")
    expecting.sendall(head + b"Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n")
    stalled.sendall(head + b"Content-Length: 100000\r\n\r\n--B\r")
    try:
        seen = _watch_until_closed(dict.fromkeys([huge, expecting, stalled], b""), 10.0)
        (t_huge, huge_said), (t_expect, expect_said), (t_stalled, stalled_said) = (
            seen[s] for s in (huge, expecting, stalled))
        assert huge_said.startswith(b"HTTP/1.1 413") and t_huge is not None and 2.5 < t_huge < 6, seen
        assert expect_said.startswith(b"HTTP/1.1 413") and t_expect is not None and t_expect < 1.5, seen
        assert stalled_said.startswith(b"HTTP/1.1 408") and t_stalled is not None and t_stalled < 6, seen
    finally:
        for s in (huge, expecting, stalled):
            s.close()


def test_a_body_left_unread_must_keep_coming(tight: tuple[str, Path]) -> None:
    """A request the app answers without reading its body (405 here), whose client then trickles the body forever,
    is closed after the header timeout instead of being held."""
    url, _ = tight
    s = _connect(url)
    s.sendall(b"POST /health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\nx")
    try:
        after, said = _watch_until_closed({s: b"x"}, 8.0)[s]
        assert said.startswith(b"HTTP/1.1 405") and after is not None and after < 5.0, (after, said)
    finally:
        s.close()


def _ws_until_closed(ws: ClientConnection, seconds: float = 8.0) -> tuple[list[dict], int | None, str, float]:
    """Messages received until the server closes: (messages, close code, close reason, seconds it took)."""
    start, messages = time.monotonic(), []
    try:
        while time.monotonic() - start < seconds:
            messages.append(json.loads(ws.recv(timeout=seconds)))
    except ConnectionClosed as exc:
        code, reason = (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")
        return messages, code, reason, time.monotonic() - start
    raise AssertionError(f"still open after {seconds} s: {messages}")


def test_idle_listen_sessions_are_closed(tight: tuple[str, Path]) -> None:
    """ws_idle_timeout = 1 s: a session that never says hello, or stops sending audio, is closed with 1001 and an
    error; one that keeps sending for 2.5 s is not; idle sessions no longer fill the server (capacity 4 here)."""
    ws_url = tight[0].replace("http", "ws") + "/listen"
    chunk = np.zeros(1600, "<f4").tobytes()
    with connect(ws_url) as ws:  # no hello
        messages, code, reason, took = _ws_until_closed(ws)
        assert code == 1001 and "no message for 1 s" in messages[-1]["error"] and "idle" in reason and took < 4
    with connect(ws_url) as ws:  # audio every 0.3 s for 2.5 s, then silence
        ws.send(json.dumps({"sample_rate": 16000}))
        for _ in range(8):
            ws.send(chunk)
            time.sleep(0.3)
        messages, code, _, took = _ws_until_closed(ws)
        assert code == 1001 and "idle" in messages[-1]["error"] and took < 4
    with contextlib.ExitStack() as stack:
        idle = [stack.enter_context(connect(ws_url)) for _ in range(4)]
        with connect(ws_url) as fifth:
            assert _ws_until_closed(fifth)[1] == 1013  # full while they are open
        assert all(_ws_until_closed(ws)[1] == 1001 for ws in idle)
    with connect(ws_url) as ws:  # and served once they are gone
        ws.send(json.dumps({"sample_rate": 16000}))
        ws.send(chunk)
        ws.send(json.dumps({"end": True}))
        assert _ws_until_closed(ws)[0][-1] == {"done": True}


def test_stalled_uploads_do_not_lock_their_address_out(tight: tuple[str, Path]) -> None:
    """Four uploads from one address trickle a byte every 0.2 s (never idle, far too slow for their 1 MB within
    body_timeout): past stalled_after they give their places to that address' normal uploads, which are all served,
    instead of 429 until the four time out."""
    url, _ = tight
    head = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=B\r\n"
            b"Content-Length: 1000000\r\n\r\n--B\r")
    slow = [_connect(url, "127.0.0.40") for _ in range(4)]
    for s in slow:
        s.sendall(head)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.2):
            for s in slow:
                with contextlib.suppress(OSError):
                    s.sendall(b"x")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(1.0)  # past stalled_after (0.5 s), well before read_timeout (3 s)
        clip = _wav()
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.40"), timeout=30) as client:
            statuses = [client.post(url + "/predict", files={"file": ("clip.wav", clip, "audio/wav")}).status_code
                        for _ in range(6)]
        assert statuses == [200] * 6
    finally:
        stop.set()
        trickler.join()
    try:
        answers = [s.recv(4096) if select.select([s], [], [], 0)[0] else b"" for s in slow]
        assert any(a.startswith(b"HTTP/1.1 408") and b"gave its place" in a for a in answers), answers
    finally:
        for s in slow:
            s.close()


@pytest.mark.parametrize("disposition", [b'filename="x.w\0v"', b'filename="a\nb.wav"', b'filename="\x01\x7f"',
                                         b'filename="..\\\\..\\\\x.wav\x00.exe"', b'filename="' + b"\xff" * 300 + b'"'])
def test_any_file_name_gets_an_answer_without_a_server_error(tight: tuple[str, Path], disposition: bytes) -> None:
    url, log = tight
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; ' + disposition +
            b"\r\nContent-Type: audio/wav\r\n\r\n" + _wav() + b"\r\n--B--\r\n")
    r = httpx.post(url + "/predict", content=body, headers={"Content-Type": "multipart/form-data; boundary=B"},
                   timeout=30)
    assert r.status_code < 500, r.text
    assert r.status_code == 200 and "\n" not in r.text and "\\u0000" not in r.text, r.text
    name = r.json()["path"]
    assert name and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name) and len(name) <= 200, name
    assert "Traceback" not in log.read_text() and "null byte" not in log.read_text()

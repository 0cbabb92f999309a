"""The real service (uvicorn in a subprocess) under attack: slow clients that send headers and a few bytes of
body from several sockets, too many uploads from one host, and a decompression bomb, while normal clients keep
being served. Request loops are bounded and go to 127.0.0.x only."""

from __future__ import annotations

import io
import socket
import statistics
import threading
import time
from collections.abc import Iterator

import httpx2 as httpx
import numpy as np
import pytest
import soundfile as sf

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

"""A small, bounded run of ``benchmarks/loadtest.py`` against the real service (uvicorn in a subprocess).

Asserts what the load test reports: zero failed valid requests, and 413/415 for the oversize and garbage
uploads mixed in; speed is only printed, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest

from conftest import load_benchmark, voiced

loadtest = load_benchmark("loadtest")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    # the test's 6 concurrent clients share one address: the per-address limit (4 by default) must admit them
    with loadtest.running_server("--workers", "2", "--queue", "8", "--max-upload-mb", "1", "--per-client", "8") as url:
        yield url


def check(summary: dict, n_valid: int, n_bad: int) -> None:
    print(loadtest.report(summary, "test run"))
    assert summary["valid_sent"] == summary["valid_ok"] == n_valid
    assert summary["valid_failed"] == 0 and summary["skipped"] == 0
    assert summary["statuses"]["oversize"] == {"413": n_bad}
    assert summary["statuses"]["garbage"] == {"415": n_bad}
    assert summary["wrong_status"] == 0
    assert summary["latency_s"]["p50"] <= summary["latency_s"]["p95"] <= summary["latency_s"]["max"]


def test_load_synthetic_clips(server: str, tmp_path: Path) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    clips = []
    for i in range(6):
        clips.append(tmp_path / f"clip{i}.wav")
        sf.write(clips[-1], voiced(1.0 + 0.3 * i, 16000, rng, f0=110 + 20 * i), 16000)
    jobs = loadtest.plan(clips, 24, 6, 1.0)
    check(loadtest.run_load(server, jobs, concurrency=4, max_seconds=120), 24, 4)


@pytest.mark.data
def test_load_real_ravdess_clips(server: str, real_ravdess: Path) -> None:
    clips = loadtest.pick_clips(real_ravdess, 12)
    jobs = loadtest.plan(clips, 36, 9, 1.0)
    summary = loadtest.run_load(server, jobs, concurrency=6, max_seconds=120)
    check(summary, 36, 4)
    assert len(summary["emotions"]) >= 2  # real clips of different emotions do not all get one label


def test_streamed_oversize_upload_is_cut_off(server: str) -> None:
    """Chunked (no Content-Length) and over the limit: real uvicorn answers 413 and keeps serving."""

    def body() -> Iterator[bytes]:
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(200):
            yield b"\0" * 65536
        yield b"\r\n--B--\r\n"

    r = httpx.post(server + "/predict", content=body(), timeout=60,
                   headers={"content-type": "multipart/form-data; boundary=B"})
    assert r.status_code == 413 and "upload too large" in r.json()["error"]
    assert httpx.get(server + "/health", timeout=10).json()["status"] == "ok"

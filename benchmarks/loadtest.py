"""Load test of ``voxemo serve``: concurrent clients posting real clips, with oversize and garbage uploads mixed in.

Starts the real service (uvicorn, in a subprocess, on 127.0.0.1 and a free port) unless ``--url`` points at one,
then sends ``--requests`` valid uploads from ``--concurrency`` client threads, every clip a RAVDESS file, plus
one oversize and one garbage upload after every ``--bad-every`` valid ones. Bounded in count and in time
(``--max-seconds``: requests not started by then are skipped and reported).

Reports throughput of valid requests, their p50/p95/max latency, failures (any valid request that did not get
200, after honouring ``Retry-After`` on 503 up to three times), and the statuses the bad uploads got.

Usage::

    python benchmarks/loadtest.py [--data DIR] [--requests 200] [--concurrency 8] [--workers 2] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np

#: The statuses a bad upload must get.
EXPECTED = {"valid": 200, "oversize": 413, "garbage": 415}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(*args: str, port: int | None = None, timeout: float = 60.0,
                   info: dict[str, Any] | None = None) -> Iterator[str]:
    """Run ``voxemo serve --host 127.0.0.1 --port PORT *args`` in a subprocess; yield its base URL.

    ``info``, if given, receives the server's ``pid``, and when it has stopped its ``peak_rss_mb`` (Linux).
    """
    port = port or free_port()
    cmd = [sys.executable, "-m", "voxemo", "-q", "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    if info is not None:
        info["pid"] = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"voxemo serve exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"voxemo serve did not answer /health within {timeout:g} s")
            time.sleep(0.2)
        yield url
    finally:
        if info is not None:
            info["peak_rss_mb"] = peak_rss_mb(proc.pid)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a running process in MiB (``VmHWM``), None where /proc does not tell."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def pick_clips(root: Path, n: int) -> list[Path]:
    """``n`` clips evenly spaced over the path-sorted corpus (every actor contributes)."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in {".wav", ".flac"})
    if not files:
        raise SystemExit(f"{root}: no .wav/.flac clips found")
    idx = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
    return [files[i] for i in idx]


def plan(clips: Sequence[Path], n_valid: int, bad_every: int, max_upload_mb: float) -> list[tuple[str, str, bytes]]:
    """The request list: ``(kind, file name, body)``, valid clips in turn with bad uploads interleaved."""
    payloads = [(p.name, p.read_bytes()) for p in clips]
    oversize = b"\0" * (int(max_upload_mb * 2**20) + 4096)
    garbage = np.random.default_rng(0).integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes()
    jobs: list[tuple[str, str, bytes]] = []
    for i in range(n_valid):
        name, body = payloads[i % len(payloads)]
        jobs.append(("valid", name, body))
        if bad_every and (i + 1) % bad_every == 0:
            jobs.append(("oversize", "huge.wav", oversize))
            jobs.append(("garbage", "garbage.wav", garbage))
    return jobs


def run_load(url: str, jobs: Sequence[tuple[str, str, bytes]], *, concurrency: int, max_seconds: float,
             retries: int = 3) -> dict[str, Any]:
    """Send ``jobs`` from ``concurrency`` threads (one HTTP client each); return the measurements."""
    deadline = time.monotonic() + max_seconds
    local = threading.local()
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def one(job: tuple[str, str, bytes]) -> None:
        kind, name, body = job
        if time.monotonic() > deadline:
            with lock:
                results.append({"kind": kind, "status": None, "skipped": True})
            return
        client = getattr(local, "client", None) or httpx.Client(timeout=120)
        local.client = client
        t0 = time.perf_counter()
        busy = 0
        while True:
            try:
                r = client.post(url + "/predict", files={"file": (name, body, "application/octet-stream")})
                status, answer = r.status_code, r.json() if r.content else {}
            except httpx.HTTPError as exc:
                status, answer = None, {"error": f"{type(exc).__name__}: {exc}"}
            if status == 503 and busy < retries:
                busy += 1
                time.sleep(float(r.headers.get("retry-after", "1")))
                continue
            break
        with lock:
            results.append({"kind": kind, "status": status, "latency_s": time.perf_counter() - t0, "retries": busy,
                            "emotion": answer.get("emotion"), "error": answer.get("error")})

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    return summarize(results, wall, concurrency)


def summarize(results: list[dict[str, Any]], wall: float, concurrency: int) -> dict[str, Any]:
    valid = [r for r in results if r["kind"] == "valid" and not r.get("skipped")]
    ok = [r for r in valid if r["status"] == 200 and r["emotion"]]
    lat = sorted(r["latency_s"] for r in ok)

    def q(p: float) -> float | None:
        return float(np.percentile(lat, p)) if lat else None

    by_kind = {kind: dict(Counter(str(r["status"]) for r in results if r["kind"] == kind and not r.get("skipped")))
               for kind in EXPECTED}
    wrong = [r for r in results if not r.get("skipped") and r["status"] != EXPECTED[r["kind"]]]
    return {
        "concurrency": concurrency,
        "wall_s": wall,
        "valid_sent": len(valid),
        "valid_ok": len(ok),
        "valid_failed": len(valid) - len(ok),
        "skipped": sum(1 for r in results if r.get("skipped")),
        "retries_after_503": sum(r.get("retries", 0) for r in results),
        "throughput_rps": len(ok) / wall if wall > 0 else 0.0,
        "latency_s": {"p50": q(50), "p95": q(95), "max": lat[-1] if lat else None,
                      "mean": statistics.fmean(lat) if lat else None},
        "statuses": by_kind,
        "wrong_status": len(wrong),
        "wrong_examples": [{k: r[k] for k in ("kind", "status", "error")} for r in wrong[:5]],
        "emotions": dict(Counter(r["emotion"] for r in ok)),
    }


def report(s: dict[str, Any], setup: str) -> str:
    ms = {k: ("-" if v is None else f"{1000 * v:.0f} ms") for k, v in s["latency_s"].items()}
    lines = [
        f"load test: {setup}",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| valid requests (200 / sent) | {s['valid_ok']} / {s['valid_sent']} |",
        f"| failed valid requests | {s['valid_failed']} |",
        f"| throughput (valid) | {s['throughput_rps']:.1f} req/s |",
        f"| latency p50 / p95 / max | {ms['p50']} / {ms['p95']} / {ms['max']} |",
        f"| oversize uploads -> status | {_statuses(s['statuses']['oversize'])} |",
        f"| garbage uploads -> status | {_statuses(s['statuses']['garbage'])} |",
        f"| 503 retries | {s['retries_after_503']} |",
        f"| skipped (time bound) | {s['skipped']} |",
        f"| wall time | {s['wall_s']:.1f} s |",
    ]
    if s.get("server_peak_rss_mb"):
        lines.append(f"| server peak memory (RSS) | {s['server_peak_rss_mb']:.0f} MiB |")
    return "\n".join(lines)


def _statuses(c: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(c.items())) or "-"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("VOXEMO_DATA"), help="RAVDESS folder (default $VOXEMO_DATA)")
    ap.add_argument("--url", help="an already running service; default: start one on 127.0.0.1")
    ap.add_argument("--requests", type=int, default=200, help="valid uploads to send (default 200)")
    ap.add_argument("--clips", type=int, default=100, help="distinct RAVDESS clips to cycle through (default 100)")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--bad-every", type=int, default=10, help="one oversize + one garbage upload per N valid")
    ap.add_argument("--model", help="server --model (default: the shipped model)")
    ap.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="server --backend (default torch)")
    ap.add_argument("--workers", type=int, default=2, help="server inference threads (default 2)")
    ap.add_argument("--queue", type=int, default=16, help="server queue (default 16)")
    ap.add_argument("--max-upload-mb", type=float, default=2.0, help="server upload limit (default 2)")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="stop starting requests after this")
    ap.add_argument("--retries", type=int, default=3, help="retries of a 503 answer, after its Retry-After")
    ap.add_argument("--json", help="also write the summary as JSON")
    args = ap.parse_args(argv)
    if not args.data:
        raise SystemExit("pass --data DIR or set VOXEMO_DATA to a RAVDESS folder")
    clips = pick_clips(Path(args.data), args.clips)
    jobs = plan(clips, args.requests, args.bad_every, args.max_upload_mb)
    # every simulated client shares this machine's address: let the per-address limit admit them all
    server_args = ["--workers", str(args.workers), "--queue", str(args.queue), "--per-client",
                   str(max(4, args.concurrency)), "--max-upload-mb", str(args.max_upload_mb), "--backend", args.backend]
    if args.model:
        server_args += ["--model", args.model]
    info: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(running_server(*server_args, info=info))
        summary = run_load(url, jobs, concurrency=args.concurrency, max_seconds=args.max_seconds,
                           retries=args.retries)
    summary["server_peak_rss_mb"] = info.get("peak_rss_mb")
    setup = (f"{args.requests} valid RAVDESS uploads ({len(clips)} distinct clips), {len(jobs) - args.requests} "
             f"bad ones, {args.concurrency} clients; server --backend {args.backend} --workers {args.workers} "
             f"--queue {args.queue} "
             f"--max-upload-mb {args.max_upload_mb:g}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(report(summary, setup))
    if args.json:
        Path(args.json).write_text(json.dumps({"setup": setup, **summary}, indent=2))
    return 0 if summary["valid_failed"] == 0 and summary["wrong_status"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

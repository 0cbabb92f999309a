"""Feature-extraction throughput, prediction latency and main-job wall time of voxemo, measured in one run.

Every number is a ratio against a baseline timed in the same run on the same machine, so background load
affects both sides alike; absolute clips/s and milliseconds are printed for context only.

Usage::

    python benchmarks/bench.py [--data DIR] [--clips N] [--model DIR] [--main-job-summary PATH] [--json OUT]
                               [--timeline-hours H] [--timeline-only] [--startup-runs N] [--startup-only]

What is measured (see benchmarks/README.md for the reasoning):

1. Feature extraction on ``--clips`` clips spread evenly over the corpus (every actor contributes):
   the naive loop ``librosa.load(sr=22050)`` + ``librosa.feature.melspectrogram`` in one process (as written,
   and with BLAS limited to one thread), and ``voxemo.io.cache.extract_many`` with a fresh cache on all cores
   (cold), the same call again (warm, cache hits), a fresh cache with ``jobs=1`` (per-core cost) and no cache
   at all (``cache_dir=""``: what hashing files and writing cache entries cost).
   Each variant runs ``--repeats`` times, interleaved; the median is reported. The OS file cache is warmed
   first, so "cold" means an empty feature cache, not an empty page cache.
2. Prediction latency per clip with the model loaded: ``clf.predict_proba(path)``, against the floor of
   decoding and resampling the same clip (``soundfile.read`` + ``soxr.resample(..., quality="HQ")``),
   interleaved clip by clip; medians over the clips, for the default ``load_model()`` (ONNX Runtime on the
   shipped model) and for torch on one thread and on its default threads.
3. The main job's wall time, read from the ``summary.json`` of ``voxemo run --out DIR`` (never run here).
5.-6. ONNX Runtime vs torch latency per clip on one thread, and batch throughput of ``voxemo predict`` with
   ``--jobs 1`` vs ``2`` (``bench_backends.py``; ``--backends-only`` runs just these).
4. ``voxemo.inference.timeline`` on a ``--timeline-hours`` recording built from RAVDESS clips with pauses (a
   temporary FLAC), in a fresh process: wall time, real-time factor, and the process's peak RSS
   (``ru_maxrss`` from ``wait4``, spawned by a small wrapper: see ``bench_startup.py``); also how many clips
   got a segment with the clip's own emotion.
7. Start-up of the command in fresh processes (``bench_startup.py``; ``--startup-only`` runs just this):
   ``voxemo --help``, ``voxemo predict CLIP`` with the shipped model and ``python -c "import voxemo"``,
   ``--startup-runs`` interleaved runs each: median and min wall time, CPU time, peak RSS of the process (from
   ``os.wait4``), and which heavy modules (torch, sklearn, pandas, librosa, matplotlib) each one imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from bench_startup import met  # the scripts sit side by side in benchmarks/

#: Targets from the performance issue.
TARGET_COLD_VS_NAIVE = 3.0
TARGET_PREDICT_VS_FLOOR = 2.0
TARGET_TIMELINE_RTF = 100.0
TARGET_TIMELINE_PEAK_MB = 1024.0


# ---- inputs ------------------------------------------------------------------------------------------------
def pick_clips(paths: Sequence[str], n: int) -> list[str]:
    """``n`` paths evenly spaced over the sorted list (RAVDESS sorts by actor, so each actor gets its share)."""
    ordered = sorted(paths)
    if n >= len(ordered):
        return ordered
    idx = np.linspace(0, len(ordered) - 1, n).round().astype(int)
    return [ordered[i] for i in idx]


def warm_page_cache(paths: Sequence[str]) -> int:
    """Read every file once so no variant pays for the first read from disk. Returns the bytes read."""
    total = 0
    for p in paths:
        with open(p, "rb") as f:
            total += len(f.read())
    return total


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    import voxemo

    try:  # torch is in the train extra; --startup-only also runs in a base install
        import torch

        torch_threads: int | str = torch.get_num_threads()
    except ImportError:
        torch_threads = "n/a (torch not installed)"
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads_default": torch_threads,
        "load_avg_1min_start": round(os.getloadavg()[0], 2),
        "voxemo_module": str(Path(voxemo.__file__).parent),
    }
    for dist in ("voxemo", "librosa", "soxr", "soundfile", "torch", "numpy", "scipy"):
        info[f"{dist}_version"] = _version(dist)
    try:
        from threadpoolctl import threadpool_info

        info["blas_threads"] = {d["internal_api"]: d["num_threads"] for d in threadpool_info()
                                if d["user_api"] == "blas"}
    except ImportError:
        info["blas_threads"] = "unknown (threadpoolctl not installed)"
    return info


# ---- 1. feature extraction ---------------------------------------------------------------------------------
def naive_features(paths: Sequence[str], n_mels: int) -> None:
    """The loop a user writes first: load at 22.05 kHz, mel spectrogram, one file at a time."""
    import librosa

    for p in paths:
        y, sr = librosa.load(p, sr=22050)
        librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels)


def naive_features_one_blas_thread(paths: Sequence[str], n_mels: int) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        naive_features(paths, n_mels)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _check(results: Sequence[Any], n: int, what: str) -> None:
    errors = [r for r in results if isinstance(r, str)]
    if len(results) != n or errors:
        raise SystemExit(f"bench: {what} returned {len(results)} results for {n} clips, {len(errors)} errors: "
                         f"{errors[:3]}")


def bench_extraction(paths: Sequence[str], repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    from voxemo.core.config import AudioConfig, FeatureConfig
    from voxemo.io.cache import extract_many

    audio, feats = AudioConfig(), FeatureConfig()
    n = len(paths)
    workers = os.cpu_count() or 1
    seconds: dict[str, list[float]] = {k: [] for k in ("naive", "naive_1blas", "cold_all", "warm_all", "cold_1",
                                                       "nocache_all")}

    # one clip through every path first: lazy imports, librosa's filter caches, first-call costs
    naive_features(paths[:1], feats.n_mels)
    extract_many(paths[:1], audio, feats, cache_dir="", jobs=1, progress=False)

    with tempfile.TemporaryDirectory(prefix="voxemo-bench-") as tmp:
        for r in range(repeats):
            dt, _ = _timed(naive_features, paths, feats.n_mels)
            seconds["naive"].append(dt)
            dt, _ = _timed(naive_features_one_blas_thread, paths, feats.n_mels)
            seconds["naive_1blas"].append(dt)

            cache = Path(tmp) / f"all-{r}"
            dt, cold = _timed(extract_many, paths, audio, feats, cache_dir=cache, jobs=0, progress=False)
            seconds["cold_all"].append(dt)
            _check(cold, n, "voxemo cold")
            dt, warm = _timed(extract_many, paths, audio, feats, cache_dir=cache, jobs=0, progress=False)
            seconds["warm_all"].append(dt)
            _check(warm, n, "voxemo warm")
            # the cache stores float16: a hit must give the cold result up to that rounding
            worst = max(float(np.abs(a - b).max()) for a, b in zip(cold, warm))
            if worst > 0.05:
                raise SystemExit(f"bench: warm cache differs from cold extraction by up to {worst:.3f} dB")

            # the same without the cache (no hashing, no entry files): how much writing the cache costs
            dt, uncached = _timed(extract_many, paths, audio, feats, cache_dir="", jobs=0, progress=False)
            seconds["nocache_all"].append(dt)
            _check(uncached, n, "voxemo without cache")

            cache1 = Path(tmp) / f"one-{r}"
            dt, cold1 = _timed(extract_many, paths, audio, feats, cache_dir=cache1, jobs=1, progress=False)
            seconds["cold_1"].append(dt)
            _check(cold1, n, "voxemo cold jobs=1")
            log(f"extraction repeat {r + 1}/{repeats}: " + ", ".join(
                f"{k} {n / v[-1]:.0f} clips/s" for k, v in seconds.items()))

    rate = {k: n / statistics.median(v) for k, v in seconds.items()}
    return {
        "clips": n,
        "repeats": repeats,
        "workers_all_cores": workers,
        "seconds": seconds,
        "clips_per_s": rate,
        "vs_naive": {k: rate[k] / rate["naive"] for k in rate},
        "vs_naive_1blas": {k: rate[k] / rate["naive_1blas"] for k in rate},
    }


# ---- 2. prediction latency ---------------------------------------------------------------------------------
def decode_floor(path: str, sr_out: int) -> np.ndarray:
    """The least any predictor must do: decode the file and resample it to the model's rate."""
    import soundfile as sf
    import soxr

    y, sr = sf.read(path, dtype="float32", always_2d=False)
    return soxr.resample(y, sr, sr_out, quality="HQ")


def _latency_pass(clf: Any, paths: Sequence[str], sr_out: int) -> dict[str, float]:
    # warm-up: first-call allocations of torch and of the preprocessing
    for _ in range(3):
        clf.predict_proba(paths[0], speech_check=False)
        decode_floor(paths[0], sr_out)
    floor, pred = [], []
    for p in paths:  # interleaved, so background load hits both alike
        t0 = time.perf_counter()
        decode_floor(p, sr_out)
        t1 = time.perf_counter()
        clf.predict_proba(p, speech_check=False)
        t2 = time.perf_counter()
        floor.append(t1 - t0)
        pred.append(t2 - t1)
    f_ms, p_ms = 1e3 * statistics.median(floor), 1e3 * statistics.median(pred)
    return {"floor_ms": f_ms, "predict_ms": p_ms, "ratio": p_ms / f_ms,
            "predict_p90_ms": 1e3 * float(np.percentile(pred, 90))}


def bench_prediction(model: str | None, paths: Sequence[str], log: Callable[[str], None]) -> dict[str, Any]:
    """``predict_proba(path)`` against the decode + resample floor: the default ``load_model()`` (ONNX Runtime
    when the folder has a matching model.onnx, as the shipped one does) and torch with 1 and all threads."""
    import torch

    import voxemo
    from voxemo.core.errors import ModelError

    try:
        default = voxemo.load_model(model)
        torch_clf = voxemo.load_model(model, backend="torch")
    except ModelError as exc:
        return {"skipped": f"{exc} (pass --model DIR, e.g. a folder written by `voxemo train ... --out DIR`)"}
    sr_out = default.config.audio.sample_rate
    passes: dict[str, Any] = {f"default `load_model()`: {default.backend}": _latency_pass(default, paths, sr_out)}
    for threads in sorted({1, torch.get_num_threads()}):
        torch_clf.threads = threads
        passes[f"torch, {threads} thread{'s' if threads > 1 else ''}"] = _latency_pass(torch_clf, paths, sr_out)
    for key, v in passes.items():
        log(f"prediction, {key}: {v['predict_ms']:.2f} ms/clip, floor {v['floor_ms']:.2f} ms")
    return {"model": str(model) if model else "shipped default", "clips": len(paths), "passes": passes}


# ---- 3. main job ---------------------------------------------------------------------------------------------
def main_job(summary: str | None) -> dict[str, Any]:
    if not summary:
        return {"skipped": "not measured (pass --main-job-summary runs/study/summary.json)"}
    p = Path(summary)
    try:
        timings = json.loads(p.read_text())["timings_s"]
        return {"summary": str(p), "total_s": float(timings["total"]), "timings_s": timings}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return {"skipped": f"{p}: no timings_s.total in it ({type(exc).__name__}: {exc}); "
                           "pass the summary.json written by `voxemo run --out DIR`"}


# ---- 4. timeline of a long recording ---------------------------------------------------------------------------
def build_long_recording(paths: Sequence[str], out: Path, hours: float,
                         seed: int = 0) -> list[tuple[str, float, float]]:
    """Write RAVDESS clips in random order, separated by 1-3 s pauses, into one FLAC of ``hours``.

    Faint white noise (-80 dBFS RMS) runs under the whole recording, clips included, as the room noise of one
    long recording would; pauses of noise alone next to clips with their own noise floor would make every
    pause a step in the floor, which no single recording has. The file is written block by block (memory stays
    small). Returns ``(clip, start s, end s)`` per clip.
    """
    import soundfile as sf

    from voxemo.dsp.signal import to_mono

    rng = np.random.default_rng(seed)
    order = [paths[i] for i in rng.permutation(len(paths))]
    sr, total, placed = 48000, hours * 3600.0, []
    t = 0.0
    with sf.SoundFile(str(out), "w", samplerate=sr, channels=1, format="FLAC", subtype="PCM_16") as f:
        i = 0
        while t < total:
            pause = np.zeros(int(rng.uniform(1.0, 3.0) * sr), np.float32)
            y, clip_sr = sf.read(order[i % len(order)], dtype="float32", always_2d=False)
            if clip_sr != sr:
                raise SystemExit(f"bench: {order[i % len(order)]}: expected 48 kHz RAVDESS audio")
            y = to_mono(y)  # a few RAVDESS clips are stereo
            pause += np.float32(1e-4) * rng.standard_normal(len(pause)).astype(np.float32)
            y = y + np.float32(1e-4) * rng.standard_normal(len(y)).astype(np.float32)
            f.write(pause)
            t += len(pause) / sr
            placed.append((order[i % len(order)], t, t + len(y) / sr))
            f.write(y)
            t += len(y) / sr
            i += 1
    return placed


_TIMELINE_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from voxemo import load_model
from voxemo.inference.timeline import timeline
model = load_model(sys.argv[2] if len(sys.argv) > 2 else None)
try:  # this process's own high-water RSS; getrusage(SELF) also counts the parent's memory at the fork
    startup_rss = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
except (OSError, StopIteration):
    startup_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
result = timeline(sys.argv[1], model)
t2 = time.perf_counter()
json.dump({"startup_s": t1 - t0, "timeline_s": t2 - t1, "duration": result.duration,
           "startup_rss_mb": startup_rss / 1024, "segments": [s.to_dict() for s in result.segments]}, sys.stdout)
"""


def bench_timeline(paths: Sequence[str], hours: float, model: str | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Time ``voxemo.inference.timeline`` on a long recording in a fresh process; its peak RSS from ``wait4``.

    The process is spawned by ``bench_startup``'s tiny wrapper: spawned from this one (hundreds of MB), its
    ``ru_maxrss`` would start at this process's RSS, whatever the timeline itself used.
    """
    import soundfile as sf
    from bench_startup import run_measured

    import voxemo

    with tempfile.TemporaryDirectory(prefix="voxemo-bench-") as tmp:
        path = Path(tmp) / "long.flac"
        t0 = time.perf_counter()
        placed = build_long_recording(paths, path, hours)
        log(f"timeline: wrote {len(placed)} clips, {hours:g} h, into {path.stat().st_size >> 20} MiB of FLAC in "
            f"{time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        with sf.SoundFile(str(path)) as f:
            for _ in f.blocks(blocksize=480000, dtype="float32"):
                pass
        decode_s = time.perf_counter() - t0
        cmd = [sys.executable, "-c", _TIMELINE_CHILD, str(path), *([model] if model else [])]
        run = run_measured(cmd)
        wall, peak_mb = run["wall_s"], run["peak_mb"]
        if run["rc"]:
            raise SystemExit(f"bench: timeline subprocess failed: {run['stderr'].strip().splitlines()[-1:]}")
        child = json.loads(run["stdout"])
    log(f"timeline: {child['duration']:.0f} s of audio in {child['timeline_s']:.1f} s "
        f"({child['duration'] / child['timeline_s']:.0f}x real time), peak RSS {peak_mb:.0f} MB")

    # how the segments line up with the clips: found, and same emotion as the clip classified whole
    clf = voxemo.load_model(model)
    segs = child["segments"]
    starts = np.array([s["start"] for s in segs])
    found = agree = 0
    for clip, a, b in placed:
        lo, hi = np.searchsorted(starts, a - 5.0), np.searchsorted(starts, b)
        inside = [s for s in segs[lo:hi] if s["start"] < b and s["end"] > a]
        if not inside:
            continue
        found += 1
        longest = max(inside, key=lambda s: s["end"] - s["start"])
        agree += longest["emotion"] == clf.predict(clip)
    return {"hours": hours, "audio_s": child["duration"], "clips": len(placed), "segments": len(segs),
            "timeline_s": child["timeline_s"], "startup_s": child["startup_s"], "process_wall_s": wall,
            "decode_only_s": decode_s, "realtime_factor": child["duration"] / child["timeline_s"],
            "startup_rss_mb": child["startup_rss_mb"],
            "realtime_factor_with_startup": child["duration"] / wall, "peak_rss_mb": peak_mb,
            "clips_with_segment": found, "clips_same_emotion_as_whole": agree}


def render_timeline(tl: dict[str, Any]) -> list[str]:
    return [
        f"## 4. Timeline of a {tl['hours']:g}-hour recording",
        "",
        f"{tl['clips']} RAVDESS clips in random order with 1-3 s pauses, -80 dBFS noise throughout, one 48 kHz FLAC, "
        "`voxemo.inference.timeline(path)` with the shipped model in a fresh process (default settings: 3 s "
        "windows, 1.5 s hop, WebRTC VAD).",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| audio | {tl['audio_s']:.0f} s |",
        f"| timeline wall time (model loaded) | {tl['timeline_s']:.1f} s |",
        f"| real-time factor | {tl['realtime_factor']:.0f}x |",
        f"| process wall time incl. imports and model load | {tl['process_wall_s']:.1f} s "
        f"({tl['realtime_factor_with_startup']:.0f}x) |",
        f"| for comparison: decoding the FLAC alone, block by block | {tl['decode_only_s']:.1f} s |",
        f"| peak RSS of the process | {tl['peak_rss_mb']:.0f} MB |",
        f"| of which after imports and model load, before the timeline | {tl['startup_rss_mb']:.0f} MB |",
        f"| speech segments / clips | {tl['segments']} / {tl['clips']} |",
        f"| clips overlapped by a segment | {tl['clips_with_segment']} "
        f"({tl['clips_with_segment'] / tl['clips']:.1%}) |",
        f"| longest segment's emotion = the clip's whole-file prediction | {tl['clips_same_emotion_as_whole']} "
        f"({tl['clips_same_emotion_as_whole'] / max(tl['clips_with_segment'], 1):.1%}) |",
        "",
    ]


# ---- report --------------------------------------------------------------------------------------------------
def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# voxemo benchmark",
        "",
        f"- machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}; "
        f"1-min load average {m['load_avg_1min_start']} at start, {m['load_avg_1min_end']} at end",
        f"- threads: torch {m['torch_threads_default']} by default, BLAS {m['blas_threads']}",
        f"- versions: voxemo {m['voxemo_version']} ({m['voxemo_module']}), librosa {m['librosa_version']}, "
        f"soxr {m['soxr_version']}, soundfile {m['soundfile_version']}, torch {m['torch_version']}, "
        f"numpy {m['numpy_version']}, scipy {m['scipy_version']}",
        f"- command: `{result['command']}`; total benchmark time {result['bench_seconds']:.0f} s",
        "",
    ]
    ex = result["extraction"]
    n, w = ex["clips"], ex["workers_all_cores"]
    names = {
        "naive": "naive loop: `librosa.load` + `melspectrogram`, 1 process",
        "naive_1blas": "naive loop, BLAS limited to 1 thread",
        "cold_all": f"voxemo `extract_many`, empty cache, all cores ({w} workers)",
        "warm_all": f"voxemo `extract_many`, warm cache (hits), all cores ({w} workers)",
        "cold_1": "voxemo `extract_many`, empty cache, `jobs=1`",
        "nocache_all": "voxemo `extract_many`, no cache (`cache_dir=\"\"`), all cores",
    }
    lines += [
        f"## 1. Feature extraction: {n} clips, median of {ex['repeats']} interleaved runs",
        "",
        "| variant | clips/s | ms/clip | vs naive | vs naive, 1 BLAS thread |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, label in names.items():
        r = ex["clips_per_s"][k]
        lines.append(f"| {label} | {r:.1f} | {1e3 / r:.2f} | {ex['vs_naive'][k]:.2f}x | "
                     f"{ex['vs_naive_1blas'][k]:.2f}x |")
    lines.append("")

    pr = result["prediction"]
    lines += ["## 2. Prediction latency per clip, model loaded", ""]
    if "skipped" in pr:
        lines += [f"not measured: {pr['skipped']}", ""]
    else:
        lines += [
            f"Model: {pr['model']}; medians over {pr['clips']} clips. Floor = `soundfile.read` + "
            "`soxr.resample(..., quality='HQ')` of the same clip.",
            "",
            "| classifier | floor ms | `predict_proba` ms | p90 ms | ratio to floor |",
            "|---|---:|---:|---:|---:|",
        ]
        for key, v in pr["passes"].items():
            lines.append(f"| {key} | {v['floor_ms']:.2f} | {v['predict_ms']:.2f} | {v['predict_p90_ms']:.2f} | "
                         f"{v['ratio']:.2f}x |")
        lines.append("")

    mj = result["main_job"]
    lines += ["## 3. Main job (`voxemo run`)", ""]
    if "skipped" in mj:
        lines += [mj["skipped"], ""]
    else:
        lines += [f"From `{mj['summary']}`:", "", "| phase | wall s |", "|---|---:|"]
        lines += [f"| {k} | {float(v):.1f} |" for k, v in mj["timings_s"].items()]
        lines.append("")

    if "timeline" in result:
        lines += render_timeline(result["timeline"])

    if "backends" in result:
        from bench_backends import render_backends

        lines += render_backends(result["backends"], result["batch"])

    if "startup" in result:
        from bench_startup import render_startup

        lines += render_startup(result["startup"])

    t = result["targets"]
    lines += ["## Targets", "", "| target | measured | status |", "|---|---:|---|"]
    lines.append(f"| cold voxemo >= {TARGET_COLD_VS_NAIVE:g}x naive clips/s | {t['cold_vs_naive']:.2f}x | "
                 f"{met(t['cold_vs_naive'] >= TARGET_COLD_VS_NAIVE)} |")
    lines.append(f"| same, against the naive loop on 1 BLAS thread | {t['cold_vs_naive_1blas']:.2f}x | "
                 f"{met(t['cold_vs_naive_1blas'] >= TARGET_COLD_VS_NAIVE)} |")
    for key, ratio in t.get("predict_vs_floor", {}).items():
        lines.append(f"| `predict_proba` <= {TARGET_PREDICT_VS_FLOOR:g}x floor, {key} | "
                     f"{ratio:.2f}x | {met(ratio <= TARGET_PREDICT_VS_FLOOR)} |")
    if "main_job_total_s" in t:
        lines.append(f"| main job wall time | {t['main_job_total_s']:.0f} s | measured |")
    lines += timeline_targets(t)
    from bench_startup import startup_target_rows

    lines += startup_target_rows(t)
    return "\n".join(lines) + "\n"


def timeline_targets(t: dict[str, Any]) -> list[str]:
    if "timeline_rtf" not in t:
        return []
    return [f"| timeline faster than {TARGET_TIMELINE_RTF:g}x real time | {t['timeline_rtf']:.0f}x | "
            f"{met(t['timeline_rtf'] >= TARGET_TIMELINE_RTF)} |",
            f"| timeline peak memory under {TARGET_TIMELINE_PEAK_MB:g} MB | {t['timeline_peak_mb']:.0f} MB | "
            f"{met(t['timeline_peak_mb'] < TARGET_TIMELINE_PEAK_MB)} |"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="RAVDESS folder or zip (default: $VOXEMO_DATA, else a downloaded copy)")
    p.add_argument("--clips", type=int, default=200, help="clips to time, spread over the actors (default 200)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per extraction variant (default 3)")
    p.add_argument("--model", help="model folder for the latency test (default: the model shipped with voxemo)")
    p.add_argument("--main-job-summary", metavar="PATH", help="summary.json written by `voxemo run --out DIR`")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON to this file")
    p.add_argument("--batch-clips", type=int, default=2880,
                   help="inputs for the batch throughput test, the corpus repeated as needed (default 2880)")
    p.add_argument("--backends-only", action="store_true", help="run only the ONNX and batch benchmarks (5-6)")
    p.add_argument("--timeline-hours", type=float, default=1.0,
                   help="length of the recording for the timeline benchmark (default 1; 0 skips it)")
    p.add_argument("--timeline-only", action="store_true", help="run only the timeline benchmark")
    p.add_argument("--startup-runs", type=int, default=7,
                   help="interleaved fresh-process runs per command in the start-up benchmark (default 7; 0 skips it)")
    p.add_argument("--startup-only", action="store_true",
                   help="run only the start-up benchmark (section 7; no torch or librosa needed)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.clips < 2 or args.repeats < 1:
        raise SystemExit("bench: --clips must be >= 2 and --repeats >= 1")

    from voxemo.core.errors import VoxemoError
    from voxemo.corpus import load_ravdess
    from voxemo.corpus.download import resolve_ravdess

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    try:
        records = load_ravdess(resolve_ravdess(args.data, download_if_missing=False, progress=False))
    except VoxemoError as exc:
        raise SystemExit(f"bench: {exc}") from None
    paths = pick_clips([str(r.path) for r in records], args.clips)
    result: dict[str, Any] = {"command": " ".join(["python benchmarks/bench.py", *(argv or sys.argv[1:])]),
                              "machine": machine_info()}
    log(f"{len(paths)} clips from {len(records)}; warming the OS file cache ({warm_page_cache(paths) >> 20} MiB)")
    from bench_backends import bench_backends, bench_batch, render_backends

    batch_paths = sorted(str(r.path) for r in records)
    if args.startup_only:
        from bench_startup import bench_startup, render_startup, startup_target_rows, startup_targets

        if args.startup_runs < 1:
            raise SystemExit("bench: --startup-only needs --startup-runs >= 1")
        st = bench_startup(batch_paths, args.startup_runs, log)
        m = result["machine"]
        print("\n".join(["# voxemo benchmark: start-up only", "",
                         f"- machine: {m['cpu_count']} CPUs, {m['platform']}, Python {m['python']}",
                         f"- versions: voxemo {m['voxemo_version']} ({m['voxemo_module']}), numpy "
                         f"{m['numpy_version']}, scipy {m['scipy_version']}, torch {m['torch_version']}",
                         f"- command: `{result['command']}`", "", *render_startup(st),
                         "## Targets", "", "| target | measured | status |", "|---|---:|---|",
                         *startup_target_rows(startup_targets(st))]))
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": m, "startup": st}, indent=2) + "\n")
        return 0
    if args.backends_only:
        warm_page_cache(batch_paths)
        be, ba = bench_backends(args.model, paths, log), bench_batch(args.model, batch_paths, args.batch_clips, log)
        if args.json:
            Path(args.json).write_text(json.dumps({"backends": be, "batch": ba}, indent=2) + "\n")
        m = result["machine"]
        print("\n".join(["# voxemo benchmark: backends and batch", "",
                         f"- machine: {m['cpu_count']} CPUs, {m['platform']}; 1-min load average "
                         f"{m['load_avg_1min_start']} at start, {os.getloadavg()[0]:.2f} at end",
                         f"- command: `{result['command']}`", "", *render_backends(be, ba)]), end="")
        return 0

    if args.timeline_hours > 0:
        result["timeline"] = bench_timeline([str(r.path) for r in records], args.timeline_hours, args.model, log)
    if args.timeline_only:
        if "timeline" not in result:
            raise SystemExit("bench: --timeline-only needs --timeline-hours > 0")
        tl = result["timeline"]
        targets = {"timeline_rtf": tl["realtime_factor"], "timeline_peak_mb": tl["peak_rss_mb"]}
        print("\n".join(["# voxemo benchmark: timeline only", "", f"- machine: {result['machine']['cpu_count']} "
                         f"CPUs, {result['machine']['platform']}; command: `{result['command']}`", "",
                         *render_timeline(tl), "## Targets", "", "| target | measured | status |", "|---|---:|---|",
                         *timeline_targets(targets)]))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0

    if args.startup_runs > 0:  # before the sections whose worker pools and threads load the cores
        from bench_startup import bench_startup

        result["startup"] = bench_startup(batch_paths, args.startup_runs, log)
    result["extraction"] = bench_extraction(paths, args.repeats, log)
    result["prediction"] = bench_prediction(args.model, paths, log)
    result["main_job"] = main_job(args.main_job_summary)
    warm_page_cache(batch_paths)
    result["backends"] = bench_backends(args.model, paths, log)
    result["batch"] = bench_batch(args.model, batch_paths, args.batch_clips, log)

    ex = result["extraction"]
    targets: dict[str, Any] = {"cold_vs_naive": ex["vs_naive"]["cold_all"],
                               "cold_vs_naive_1blas": ex["vs_naive_1blas"]["cold_all"]}
    if "skipped" not in result["prediction"]:
        targets["predict_vs_floor"] = {k: v["ratio"] for k, v in result["prediction"]["passes"].items()}
    if "total_s" in result["main_job"]:
        targets["main_job_total_s"] = result["main_job"]["total_s"]
    if "timeline" in result:
        targets["timeline_rtf"] = result["timeline"]["realtime_factor"]
        targets["timeline_peak_mb"] = result["timeline"]["peak_rss_mb"]
    if "startup" in result:
        from bench_startup import startup_targets

        targets.update(startup_targets(result["startup"]))
    result["targets"] = targets
    result["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    result["bench_seconds"] = time.perf_counter() - t_start

    print(render(result), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

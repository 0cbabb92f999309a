"""Benchmark parts for the inference backends and batch prediction, run by ``bench.py`` (sections 5 and 6).

5. ONNX Runtime against torch, both on one thread, per clip with the model loaded: the whole
   ``predict_proba(path)`` (decode, features, network) and the network alone on that clip's windows, timed
   alternately clip by clip (each goes first on every other clip); medians. The ONNX file is exported from the
   same model into a temporary folder.
6. Batch throughput of ``voxemo predict`` (``voxemo.inference.batch.predict_stream`` over a manifest of real clips, the
   corpus listed again as often as needed for ``--batch-clips``) with ``jobs=1`` and ``jobs=2``, alternately
   (1, 2, 2, 1): files/s end to end, worker start-up included, as a user sees it; medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def bench_backends(model: str | None, paths: Sequence[str], log: Callable[[str], None]) -> dict[str, Any]:
    import torch

    from voxemo.core.errors import ModelError
    from voxemo.dsp.features import pad_value, segment_frames, windows
    from voxemo.inference.loading import load_model
    from voxemo.inference.torch_backend import export_onnx

    try:
        torch_clf = load_model(model, backend="torch")
    except ModelError as exc:
        return {"skipped": str(exc)}
    previous = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="voxemo-bench-onnx-") as tmp:
        onnx_clf = load_model(export_onnx(torch_clf, Path(tmp) / "model.onnx"), backend="onnx")
        cfg = torch_clf.config
        n_frames, fill = segment_frames(cfg.audio, cfg.features), pad_value(cfg.features)
        clips = [(p, windows(torch_clf.features(p), n_frames, fill=fill)) for p in paths]
        for _ in range(3):  # warm-up: first-call allocations of both runtimes
            for clf in (torch_clf, onnx_clf):
                clf.predict_proba(paths[0], speech_check=False)
                clf.segment_proba(clips[0][1])
        times: dict[str, list[float]] = {k: [] for k in ("torch_clip", "onnx_clip", "torch_net", "onnx_net")}
        worst = 0.0
        try:
            torch.set_num_threads(1)
            pair = [("torch", torch_clf), ("onnx", onnx_clf)]
            for i, (p, wins) in enumerate(clips):  # alternately, who goes first too: background load hits both alike
                for name, clf in pair if i % 2 else pair[::-1]:
                    t0 = time.perf_counter()
                    clf.predict_proba(p, speech_check=False)
                    t1 = time.perf_counter()
                    clf.segment_proba(wins)
                    t2 = time.perf_counter()
                    times[f"{name}_clip"].append(t1 - t0)
                    times[f"{name}_net"].append(t2 - t1)
                worst = max(worst, float(np.abs(torch_clf.segment_proba(wins) - onnx_clf.segment_proba(wins)).max()))
        finally:
            torch.set_num_threads(previous)
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    log(f"backends: torch {ms['torch_clip']:.2f} ms/clip (network {ms['torch_net']:.2f}), onnx "
        f"{ms['onnx_clip']:.2f} ms/clip (network {ms['onnx_net']:.2f}); max |diff| {worst:.1e}")
    return {"clips": len(paths), "median_ms": ms, "max_abs_diff": worst,
            "onnx_vs_torch_clip": ms["onnx_clip"] / ms["torch_clip"],
            "onnx_vs_torch_net": ms["onnx_net"] / ms["torch_net"]}


def bench_batch(model: str | None, paths: Sequence[str], n: int, log: Callable[[str], None],
                jobs: Sequence[int] = (1, 2), repeats: int = 2) -> dict[str, Any]:
    """``n`` inputs (``paths`` in order, repeated as often as needed), ``repeats`` runs per job count; medians."""
    from voxemo.core.errors import ModelError
    from voxemo.inference.batch import MIN_PARALLEL, predict_stream
    from voxemo.inference.loading import load_model
    from voxemo.io.discovery import expand_inputs

    try:
        clf = load_model(model)
    except ModelError as exc:
        return {"skipped": str(exc)}
    seconds: dict[int, list[float]] = {j: [] for j in jobs}
    first: dict[int, list[float]] = {j: [] for j in jobs}
    with tempfile.TemporaryDirectory(prefix="voxemo-bench-batch-") as tmp:
        manifest = Path(tmp) / "clips.csv"
        paths = [paths[i % len(paths)] for i in range(n)]
        manifest.write_text("path\n" + "".join(f"{p}\n" for p in paths))
        reference = None
        for j in [*jobs, *reversed(jobs)] * ((repeats + 1) // 2):  # A B B A ...: a drifting load hits both alike
            if len(seconds[j]) == repeats:
                continue
            t0 = time.perf_counter()
            stamps, results = [], []
            for result in predict_stream(expand_inputs([manifest]), clf, model=model, jobs=j):
                stamps.append(time.perf_counter() - t0)
                results.append(result)
            errors = [r for r in results if r.failed]
            if len(results) != len(paths) or errors:
                raise SystemExit(f"bench: batch jobs={j} gave {len(results)} results, {len(errors)} errors")
            if reference is None:
                reference = results
            elif results != reference:
                raise SystemExit(f"bench: batch jobs={j} results differ from jobs={jobs[0]}")
            seconds[j].append(stamps[-1])
            first[j].append(stamps[0])
            log(f"batch jobs={j}: {len(paths) / stamps[-1]:.1f} files/s, first result after {stamps[0]:.2f} s")
    runs = {str(j): {"seconds": seconds[j], "files_per_s": len(paths) / statistics.median(seconds[j]),
                     "runs_files_per_s": [len(paths) / t for t in seconds[j]],
                     "first_result_s": statistics.median(first[j])} for j in jobs}
    for r in runs.values():
        r["vs_jobs1"] = r["files_per_s"] / runs[str(jobs[0])]["files_per_s"]
    return {"clips": len(paths), "distinct": len(set(paths)), "repeats": repeats, "min_parallel": MIN_PARALLEL,
            "backend": clf.backend, "jobs": runs}


def render_backends(be: dict[str, Any], ba: dict[str, Any]) -> list[str]:
    """Markdown for sections 5 and 6 of the report."""
    lines = ["## 5. ONNX Runtime vs torch, one thread, per clip", ""]
    if "skipped" in be:
        lines += [f"not measured: {be['skipped']}", ""]
    else:
        ms = be["median_ms"]
        lines += [
            f"Medians over {be['clips']} clips, timed alternately; max |probability difference| "
            f"{be['max_abs_diff']:.1e}.",
            "",
            "| backend | `predict_proba(path)` ms | network alone ms |",
            "|---|---:|---:|",
            f"| torch | {ms['torch_clip']:.2f} | {ms['torch_net']:.2f} |",
            f"| onnxruntime | {ms['onnx_clip']:.2f} | {ms['onnx_net']:.2f} |",
            f"| onnx / torch | {be['onnx_vs_torch_clip']:.2f}x | {be['onnx_vs_torch_net']:.2f}x |",
            "",
        ]
    backend = ba.get("backend", "torch")
    lines += [f"## 6. Batch prediction throughput (`voxemo predict --jobs N`, {backend})", ""]
    if "skipped" in ba:
        lines += [f"not measured: {ba['skipped']}", ""]
    else:
        lines += [
            f"{ba['clips']} inputs from a CSV manifest ({ba['distinct']} distinct clips); with fewer than "
            f"{ba['min_parallel']} inputs `predict` stays in one process. End to end includes starting the workers "
            f"(a fork server imports voxemo and the {backend} runtime once); this process predicts the first files "
            "meanwhile.",
            "",
            "| jobs | files/s (median) | each run | vs jobs 1 | first result s |",
            "|---|---:|---|---:|---:|",
        ]
        for j, r in ba["jobs"].items():
            each = ", ".join(f"{x:.0f}" for x in r["runs_files_per_s"])
            lines.append(f"| {j} | {r['files_per_s']:.1f} | {each} | {r['vs_jobs1']:.2f}x | "
                         f"{r['first_result_s']:.2f} |")
        lines.append("")
    return lines

"""Batch prediction on one machine and on Ray, in one run: ``voxemo predict`` over the same inputs with the local
engine (``--jobs 1``, ``--jobs 2``) and with ``--engine ray`` on a Ray runtime on this machine; and the driver's
peak memory while it lists 10^6 inputs.

Usage::

    python benchmarks/bench_ray.py --data ../shared/data/ravdess [--inputs 2880] [--repeats 1] [--json out.json]

1. **Per-file cost, one thread.** ``clf.predict_proba(path)`` (decode, features, network) and
   ``clf.predict_result(path)`` (what ``voxemo predict`` does per file: that, plus the speech-or-not check) with
   the shipped model, alternately clip by clip over ``--clips`` clips spread over the corpus; files/s from the
   summed times.
2. **End to end over ``--inputs`` inputs** (the corpus listed again as often as needed, in a CSV manifest), each
   run a :func:`voxemo.inference.batch.predict_batch` call writing JSON lines to a file, as ``voxemo predict
   MANIFEST --output FILE`` does, model load and worker start-up included: local ``jobs=1``, local ``jobs=2``,
   ``engine="ray"`` starting its own Ray runtime (``ray.init(num_cpus=2)``, what a user without a cluster gets), and
   ``engine="ray"`` on a runtime already running (what a job on a running cluster sees). The runs are interleaved
   (A B C D, then D C B A with ``--repeats 2``); medians. Every run's output must equal the first run's byte for
   byte. Overhead per file is ``workers * wall / inputs`` minus the one-thread ``predict_result`` time of
   section 1: what the engine, its processes and the output add to each file.
3. **The driver's memory while listing** ``--paths`` synthetic paths from a JSON-lines manifest, in a fresh
   process: peak RSS (``VmHWM``) after importing voxemo, after iterating :func:`voxemo.io.discovery.expand_inputs`
   over all of them (what every engine's driver does), and, for contrast, after holding them all in a list.

The targets (issue 14): local ``--jobs 2`` at least 85% of twice the one-thread ``predict_proba`` rate; Ray at
least 85% of the local ``--jobs 2`` rate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_LOCAL = 0.85  # jobs=2 files/s / (2 x one-thread predict_proba files/s)
TARGET_RAY = 0.85  # ray files/s / local jobs=2 files/s

_LISTING = """
import json, sys
def hwm():
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
from voxemo.io.discovery import expand_inputs
out = {"imports_mb": hwm()}
n = 0
for _ in expand_inputs([sys.argv[1]]):
    n += 1
out.update(streamed_mb=hwm(), n=n)
if sys.argv[2] == "list":
    held = list(expand_inputs([sys.argv[1]]))
    out.update(held_mb=hwm())
print(json.dumps(out))
"""


def per_file(paths: list[str], clf: Any) -> dict[str, float]:
    spent = {"predict_proba": 0.0, "predict_result": 0.0}
    for i, p in enumerate(paths):
        order = ["predict_proba", "predict_result"][:: 1 if i % 2 else -1]
        for name in order:
            t0 = time.perf_counter()
            getattr(clf, name)(p, **({"speech_check": False} if name == "predict_proba" else {}))
            spent[name] += time.perf_counter() - t0
    return {name: len(paths) / s for name, s in spent.items()}


def end_to_end(manifest: Path, tmp: Path, repeats: int) -> dict[str, Any]:
    import ray

    from voxemo.inference.batch import predict_batch

    runs: dict[str, dict[str, Any]] = {
        "local --jobs 1": {"jobs": 1, "engine": "local"}, "local --jobs 2": {"jobs": 2, "engine": "local"},
        "ray, own runtime": {"jobs": 2, "engine": "ray"}, "ray, runtime up": {"jobs": 2, "engine": "ray", "up": True}}
    order = list(runs)
    order = (order + order[::-1]) * ((repeats + 1) // 2)
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    reference = None
    for name in order:
        if len(seconds[name]) == repeats:
            continue
        spec = runs[name]
        if spec.get("up"):
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        try:
            out = tmp / "out.jsonl"
            t0 = time.perf_counter()
            summary = predict_batch([manifest], output=out, jobs=spec["jobs"], engine=spec["engine"])
            seconds[name].append(time.perf_counter() - t0)
        finally:
            if spec.get("up"):
                ray.shutdown()
        text = out.read_bytes()
        if summary.failed or (reference is not None and text != reference):
            raise SystemExit(f"bench: {name} gave {summary.failed} failures or other results than the first run")
        reference = reference or text
        print(f"{name}: {summary.predicted / seconds[name][-1]:.1f} files/s", file=sys.stderr, flush=True)
    n = reference.count(b"\n") if reference else 0
    return {"inputs": n, "runs": {k: {"seconds": v, "files_per_s": n / statistics.median(v),
                                      "workers": runs[k]["jobs"]} for k, v in seconds.items()}}


def listing_memory(n_paths: int, tmp: Path) -> dict[str, Any]:
    manifest = tmp / "million.jsonl"
    with open(manifest, "w") as f:
        for i in range(n_paths):
            f.write(json.dumps({"path": f"/archive/calls/{i // 10000:04d}/call-{i:08d}.wav"}) + "\n")
    res = subprocess.run([sys.executable, "-c", _LISTING, str(manifest), "list"], capture_output=True, text=True,
                         check=True)
    return json.loads(res.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("VOXEMO_DATA", "../shared/data/ravdess"))
    p.add_argument("--inputs", type=int, default=2880)
    p.add_argument("--clips", type=int, default=240, help="clips for the one-thread per-file cost")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--paths", type=int, default=1_000_000, help="synthetic paths for the listing memory (0: skip)")
    p.add_argument("--json", help="also write the raw numbers here")
    args = p.parse_args(argv)

    from voxemo.core.parallel import limit_threads
    from voxemo.core.reproducible import pin_cpu_kernels

    pin_cpu_kernels()
    from voxemo.inference.loading import load_model
    from voxemo.io.discovery import find_audio

    corpus = [str(x) for x in find_audio(Path(args.data))]
    if not corpus:
        raise SystemExit(f"bench: no audio under {args.data}")
    load_start = os.getloadavg()[0]
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_1min_start": round(load_start, 2)}}
    clf = load_model(None)
    step = max(1, len(corpus) // args.clips)
    limit_threads()  # one BLAS thread, as in every worker: "one thread" per file
    result["per_file"] = per_file(corpus[::step][: args.clips], clf)
    with tempfile.TemporaryDirectory(prefix="voxemo-bench-ray-") as tmp_name:
        tmp = Path(tmp_name)
        manifest = tmp / "inputs.csv"
        manifest.write_text("path\n" + "".join(corpus[i % len(corpus)] + "\n" for i in range(args.inputs)))
        result["batch"] = end_to_end(manifest, tmp, args.repeats)
        if args.paths:
            result["listing"] = listing_memory(args.paths, tmp)
    result["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def render(r: dict[str, Any]) -> str:
    pf, ba, m = r["per_file"], r["batch"], r["machine"]
    proba, res = pf["predict_proba"], pf["predict_result"]
    runs = ba["runs"]
    j2 = runs["local --jobs 2"]["files_per_s"]
    lines = [f"One thread, per file: predict_proba {proba:.1f} files/s ({1e3 / proba:.2f} ms), predict_result "
             f"{res:.1f} files/s ({1e3 / res:.2f} ms; the speech check is the difference)", "",
             f"`voxemo predict` over {ba['inputs']:,} inputs ({m['cpus']} CPUs, 1-min load {m['load_avg_1min_start']}"
             f" at start, {m['load_avg_1min_end']} at end):", "",
             "| run | files/s | overhead per file | vs local --jobs 2 |", "|---|---:|---:|---:|"]
    for name, run in runs.items():
        fps = run["files_per_s"]
        overhead = 1e3 * (run["workers"] / fps - 1 / res)
        lines.append(f"| {name} | {fps:.1f} | {overhead:+.2f} ms | {fps / j2:.2f}x |")
    local_ratio = j2 / (2 * proba)
    ray_ratio = runs["ray, own runtime"]["files_per_s"] / j2
    lines += ["", f"- local --jobs 2 vs 2 x one-thread predict_proba: {j2:.1f} / {2 * proba:.1f} = "
              f"**{local_ratio:.2f}** (target {TARGET_LOCAL}: {'met' if local_ratio >= TARGET_LOCAL else 'missed'}); "
              f"vs 2 x one-thread predict_result: {j2 / (2 * res):.2f}",
              f"- ray (own runtime) vs local --jobs 2: **{ray_ratio:.2f}** (target {TARGET_RAY}: "
              f"{'met' if ray_ratio >= TARGET_RAY else 'missed'}); runtime already up: "
              f"{runs['ray, runtime up']['files_per_s'] / j2:.2f}"]
    if "listing" in r:
        li = r["listing"]
        lines += [f"- driver listing {li['n']:,} paths from a manifest: peak RSS {li['imports_mb']:.0f} MB after "
                  f"imports, {li['streamed_mb']:.0f} MB after streaming them all "
                  f"(+{li['streamed_mb'] - li['imports_mb']:.1f} MB); holding them in a list: {li['held_mb']:.0f} MB"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

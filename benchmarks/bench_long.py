"""Memory of one long input: peak RSS of ``voxemo predict`` and ``voxemo timeline`` on a long 48 kHz stereo float
recording (RAVDESS clips end to end), against ``voxemo predict`` of one short clip in the same run (the process'
own floor: interpreter, model, runtime), so the difference is what the long input costs.

    python benchmarks/bench_long.py --data ../shared/data/ravdess --seconds 299,599

Each command runs in a fresh process (its peak is ``ru_maxrss`` of that process alone); prints a markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 48000


def build(clips: list[Path], seconds: float, out: Path) -> Path:
    """A stereo 32-bit float WAV of ``seconds`` at 48 kHz: the clips mixed to mono, end to end, on both channels."""
    parts, total = [], 0
    while total < seconds * RATE:
        for c in clips:
            y, sr = sf.read(str(c), dtype="float32", always_2d=True)
            if sr != RATE:
                raise SystemExit(f"{c}: {sr} Hz, expected {RATE}")
            parts.append(y.mean(axis=1))
            total += len(parts[-1])
    y = np.concatenate(parts)[: int(seconds * RATE)]
    sf.write(str(out), np.stack([y, y], axis=1), RATE, subtype="FLOAT")
    return out


def peak_mb(args: list[str]) -> float:
    """Peak RSS (MB) of ``voxemo ARGS`` run in a process of its own."""
    code = ("import resource, subprocess, sys; "
            "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
            "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "voxemo", *args], capture_output=True,
                         text=True, check=True)
    rc, kb = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"voxemo {' '.join(args)} exited with {rc}")
    return int(kb) / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ravdess"), help="RAVDESS folder")
    ap.add_argument("--seconds", default="299,599", help="lengths of the long inputs (comma-separated)")
    ap.add_argument("--model", help="model folder or name (default: the shipped default)")
    args = ap.parse_args(argv)
    clips = sorted(args.data.glob("Actor_0[1-4]/*.*"))[:120]
    if not clips:
        raise SystemExit(f"no RAVDESS clips under {args.data}")
    model = ["--model", args.model] if args.model else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        floor = peak_mb(["-q", "predict", *model, str(clips[0])])
        for seconds in (float(s) for s in args.seconds.split(",")):
            long = build(clips, seconds, Path(tmp) / f"long{seconds:g}.wav")
            for command in ("predict", "timeline"):
                mb = peak_mb(["-q", command, *model, str(long)])
                rows.append((seconds, command, mb, mb - floor))
    print(f"one short clip (the floor): {floor:.0f} MB\n")
    print("| input (48 kHz stereo float) | command | peak RSS | above the floor |")
    print("|---|---|---:|---:|")
    for seconds, command, mb, above in rows:
        print(f"| {seconds:g} s | voxemo {command} | {mb:.0f} MB | {above:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

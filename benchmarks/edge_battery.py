"""The edge battery (issue trust-2): odd files, arguments, manifests, outputs and non-speech through the real command
line, each in a fresh process, checked for what a user must never see. Prints a markdown table:

    python benchmarks/edge_battery.py --data ../shared/data/ravdess

Per case: the exit code, whether stderr/stdout held a traceback or a NaN, whether every error is one line naming its
input, and the case's own expectation (e.g. "5 of 5 good manifest rows predicted", "no speech"). The service's
timeouts and uploads are exercised by ``tests/test_service_attacks.py`` (real sockets against a server it starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


@dataclass
class Case:
    name: str
    args: list[str]
    expect: Callable[[subprocess.CompletedProcess[str]], bool]
    what: str
    shell_suffix: str = ""


def voxemo(args: list[str], suffix: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "voxemo", *args]
    if suffix:
        line = " ".join(f"'{a}'" for a in cmd) + " " + suffix
        return subprocess.run(line, shell=True, capture_output=True, text=True, timeout=600, errors="replace")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, errors="replace")


def rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def nonspeech(kind: str, seconds: float = 3.0) -> np.ndarray:
    """Voice-like non-speech: a sine sweep, a siren, a bark-like burst train, an engine's hum."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SR)) / SR
    if kind == "chirp":
        y = np.sin(2 * np.pi * (100 * t + (3000 / seconds) * t**2 / 2))
    elif kind == "siren":
        f = 900 + 400 * np.sin(2 * np.pi * 0.3 * t)
        y = sum(np.sin(2 * np.pi * k * np.cumsum(f) / SR) / k for k in (1, 2, 3))
    elif kind == "bark":
        y = np.zeros_like(t)
        for start in np.arange(0.1, seconds - 0.3, 0.4):
            n = int(0.15 * SR)
            i = int(start * SR)
            tt = np.arange(n) / SR
            f0 = 600 * np.exp(-tt * 4)
            burst = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in (1, 2, 3, 4))
            y[i : i + n] += (burst + 0.3 * rng.normal(size=n)) * np.hanning(n)
    else:  # engine hum
        f0 = 40 * (1 + 0.05 * np.sin(2 * np.pi * 0.2 * t))
        y = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / SR) / k for k in range(1, 12)) + 0.2 * rng.normal(size=len(t))
    return (0.5 * y / np.abs(y).max()).astype(np.float32)


def build(tmp: Path, clips: list[Path]) -> list[Case]:
    clip = str(clips[0])
    y, sr = sf.read(clip, dtype="float32")
    sf.write(tmp / "huge.wav", (y.astype(np.float64) * 1e30).astype(np.float32), sr, subtype="FLOAT")
    sf.write(tmp / "many.wav", np.zeros((1600, 80), np.float32), SR)
    os.mkfifo(tmp / "fifo.wav")
    os.symlink(tmp / "loop.wav", tmp / "loop.wav")
    (tmp / "existing.wav").write_bytes(b"x")
    good = [str(c).encode() for c in clips[:5]]
    bad = [b"/tmp/" + b"a" * 300 + b".wav", b"/tmp/caf\xe9.wav", b"/tmp/x\x00y.wav", b'"/tmp/' + b"b" * 200_000 + b'"']
    lines = [b"path"] + [x for g, b in zip(good, bad + [b""]) for x in ((g, b) if b else (g,))]
    (tmp / "bad.csv").write_bytes(b"\n".join(lines) + b"\n")
    with zipfile.ZipFile(tmp / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ravdess/Actor_01/03-01-01-01-01-01-01.wav", b"\0" * (300 << 20))
    for kind in ("chirp", "siren", "bark", "engine"):
        sf.write(tmp / f"{kind}.wav", nonspeech(kind), SR)
    one_line = lambda r: all(len(e.splitlines()) == 1 for e in r.stderr.split("voxemo: error: ")[1:])  # noqa: E731
    predicted = lambda r, n: sum("emotion" in x and x.get("speech") for x in rows(r.stdout)) == n  # noqa: E731
    no_speech = lambda r: rows(r.stdout) and rows(r.stdout)[0].get("speech") is False  # noqa: E731
    return [
        Case("float samples of 1e30", ["predict", "--json", str(tmp / "huge.wav")], lambda r: predicted(r, 1),
             "an emotion, finite probabilities"),
        Case("adapt on 5 clips + the 1e30 file", ["-q", "adapt", *map(str, clips[:5]), str(tmp / "huge.wav"), "--out",
             str(tmp / "m3"), "--min-seconds", "1", "--jobs", "1"],
             lambda r: r.returncode == 0 and "NaN" not in (tmp / "m3" / "adaptation.json").read_text(),
             "adapted, no NaN in adaptation.json"),
        Case("manifest: 5 good rows, 4 bad", ["predict", "--json", "--jobs", "1", str(tmp / "bad.csv")],
             lambda r: predicted(r, 5) and sum("error" in x for x in rows(r.stdout)) == 4,
             "5 predicted, 4 one-line errors"),
        Case("a FIFO, a symlink loop, 80 channels, /dev/zero",
             ["predict", "--json", str(tmp / "fifo.wav"), str(tmp / "loop.wav"), str(tmp / "many.wav"), "/dev/zero"],
             lambda r: sum("error" in x for x in rows(r.stdout)) == 4, "4 one-line errors with the cause"),
        Case("--jobs -3", ["predict", "--jobs", "-3", clip], lambda r: r.returncode == 2, "usage error"),
        Case("--min-seconds nan", ["adapt", clip, "--out", str(tmp / "o"), "--min-seconds", "nan"],
             lambda r: r.returncode == 2, "usage error"),
        Case("--prior-seconds -5", ["adapt", clip, "--out", str(tmp / "o"), "--prior-seconds", "-5"],
             lambda r: r.returncode == 2, "usage error"),
        Case("adapt --out an existing file", ["-q", "adapt", *map(str, clips[:5]), "--out", str(tmp / "existing.wav"),
             "--min-seconds", "1", "--jobs", "1"], lambda r: r.returncode == 2 and one_line(r), "one line"),
        Case("adapt --out /proc/x", ["-q", "adapt", *map(str, clips[:5]), "--out", "/proc/x", "--min-seconds", "1",
             "--jobs", "1"], lambda r: r.returncode == 2 and one_line(r), "one line"),
        Case("--output /dev/full", ["-q", "predict", "--json", "--output", "/dev/full", clip],
             lambda r: r.returncode == 2 and "No space left" in r.stderr, "one line: no space left"),
        Case("stdout closed", ["-q", "predict", clip], lambda r: r.returncode == 0, "a warning, exit 0",
             shell_suffix=">&-"),
        Case("zip bomb (300 MB of zeros in 0.3 MB)", ["corpus", str(tmp / "bomb.zip")],
             lambda r: r.returncode != 0 and one_line(r) and not (tmp / "bomb").exists(), "refused, nothing written"),
        *(Case(f"{kind} (voice-like non-speech)", ["predict", "--json", str(tmp / f"{kind}.wav")], no_speech,
               "no speech") for kind in ("chirp", "siren", "bark", "engine")),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/ravdess"), help="RAVDESS folder")
    args = ap.parse_args(argv)
    clips = sorted(args.data.glob("Actor_01/*.*"))[:8]
    if not clips:
        raise SystemExit(f"no RAVDESS clips under {args.data}")
    print("| case | exit | traceback | NaN | expected | met |")
    print("|---|---:|---|---|---|---|")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in build(Path(tmp), clips):
            r = voxemo(case.args, case.shell_suffix)
            text = r.stdout + r.stderr
            trace = "Traceback" in text
            nan = "NaN" in r.stdout or "nan" in r.stdout.split()
            try:
                met = bool(case.expect(r)) and not trace and not nan
            except (OSError, ValueError) as exc:
                met = False
                text += str(exc)
            failed += not met
            print(f"| {case.name} | {r.returncode} | {'yes' if trace else 'no'} | {'yes' if nan else 'no'} | "
                  f"{case.what} | {'yes' if met else '**no**'} |", flush=True)
    print(f"\n{failed} case(s) not met")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

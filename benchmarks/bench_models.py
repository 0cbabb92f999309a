"""What each shipped model costs per clip, measured in one run so the ratios hold on a busy machine.

    python benchmarks/bench_models.py [--models default,fast,voice] [--clips 60] [--data DIR ...]
        [--encoder-f32 FILE SHA256] [--seconds S]

For each clip (real speech, read from the corpora given; default: RAVDESS and Emo-DB from ../shared/data), every
model's ``predict_proba(path, speech_check=False)`` (decode, resample, trim, log-mel, network, head: the model's
cost; the speech check, on by default, adds the same few ms to every model) on one thread, the models taking
turns in a rotating order; for the whisper model also its encoder alone on the same clip's own windows (log-mel
computed beforehand: the ratio is what preprocessing and the head add); then the Whisper encoder alone on a 4-s
log-mel window (int8 as shipped, and the float32 build given by ``--encoder-f32``, e.g. one written by
``experiments/build_whisper_encoder.py --float32``) on one and two threads. ``--seconds S`` first repeats each
clip's audio to S seconds (a temporary WAV), for longer speech than the corpora's 2-4 s clips. Prints a markdown
table of medians and ratios to the default model, and a second of each model's ``predict_result(path)`` (what every
user-facing path calls: the same plus the speech-or-not check) against its ``predict_proba(path,
speech_check=False)``, timed in the same rotation (issue house-2's bar: at most 1.3x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from voxemo.corpus.sources import load_source
from voxemo.dsp.scoring import clip_windows
from voxemo.inference.encoders import ENCODERS, encode, encoder_session
from voxemo.inference.loading import load_model
from voxemo.inference.probe_backend import ProbeClassifier

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="default,fast,voice")
    ap.add_argument("--seconds", type=float, default=0.0, help="repeat each clip's audio to this length first")
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--data", nargs="*", default=[str(SHARED / "ravdess"), str(SHARED / "emodb")])
    ap.add_argument("--encoder-f32", nargs=2, metavar=("FILE", "SHA256"))
    args = ap.parse_args()
    recs = [r for d in args.data for r in load_source(d, None, progress=False)]
    paths = [recs[i].path for i in np.random.default_rng(0).choice(len(recs), args.clips, replace=False)]
    tmp = tempfile.TemporaryDirectory()
    if args.seconds:
        paths = [_repeated(p, args.seconds, Path(tmp.name) / f"{i}.wav") for i, p in enumerate(paths)]
    names = args.models.split(",")
    models = {n: load_model(n) for n in names}
    for clf in models.values():  # warm-up: sessions, first-call allocations
        clf.predict_proba(paths[0], speech_check=False)
    times: dict[str, list[float]] = {n: [] for n in names}
    checked: dict[str, list[float]] = {n: [] for n in names}
    probes = {n: clf for n, clf in models.items() if isinstance(clf, ProbeClassifier)}
    for n in probes:
        times[f"{n}: encoder alone"] = []
    seconds = []
    for i, p in enumerate(paths):
        order = names[i % len(names):] + names[: i % len(names)]
        for n in order:
            t0 = time.perf_counter()
            models[n].predict_proba(p, speech_check=False)
            times[n].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            models[n].predict_result(p)
            checked[n].append(time.perf_counter() - t0)
        for n, clf in probes.items():
            spec = clf.features(p)
            wins = clip_windows([spec], clf.config)[0]
            t0 = time.perf_counter()
            clf.window_features(wins)
            times[f"{n}: encoder alone"].append(time.perf_counter() - t0)
        seconds.append(spec.shape[-1] * clf.config.features.hop_length / clf.config.audio.sample_rate
                       if probes else 0.0)
    base = statistics.median(times[names[0]])
    print(f"{args.clips} clips, one thread, medians" + (f"; speech after trimming {statistics.median(seconds):.2f} s"
                                                       if probes else "") + "\n")
    print(f"| model | ms per clip | x {names[0]} |\n|---|---:|---:|")
    for n in times:
        m = statistics.median(times[n])
        print(f"| {n} | {m * 1e3:.1f} | {m / base:.2f} |")
    print("\n| model | predict_proba, no speech check (ms) | predict_result (ms) | ratio |\n|---|---:|---:|---:|")
    for n in names:
        raw, res = statistics.median(times[n]), statistics.median(checked[n])
        print(f"| {n} | {raw * 1e3:.1f} | {res * 1e3:.1f} | {res / raw:.2f} |")

    window = np.full((1, 80, 400), -80.0, np.float32)
    window[:, :, :] = np.random.default_rng(0).uniform(-60, 0, (1, 80, 400))
    files = {"int8 (shipped)": (str(ENCODERS["whisper-base"].path()), ENCODERS["whisper-base"].sha256)}
    if args.encoder_f32:
        files["float32"] = (args.encoder_f32[0], args.encoder_f32[1])
    rows = []
    for threads in (1, 2):
        sessions = {k: encoder_session(f, sha, threads) for k, (f, sha) in files.items()}
        enc: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(3):
            for s in sessions.values():
                encode(s, window)
        for i in range(30):
            for k in (list(sessions) if i % 2 else list(sessions)[::-1]):
                t0 = time.perf_counter()
                encode(sessions[k], window)
                enc[k].append(time.perf_counter() - t0)
        rows += [(k, threads, statistics.median(v)) for k, v in enc.items()]
    print("\nWhisper encoder alone, one 4-s window\n\n| file | threads | ms |\n|---|---:|---:|")
    for k, threads, m in rows:
        print(f"| {k} | {threads} | {m * 1e3:.1f} |")


def _repeated(path: str, seconds: float, out: Path) -> str:
    """``path``'s audio repeated to ``seconds`` and written to ``out``."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    sf.write(out, np.tile(y, (int(np.ceil(seconds * sr / len(y))), 1))[: int(seconds * sr)], sr)
    return str(out)


if __name__ == "__main__":
    main()

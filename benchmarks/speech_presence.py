"""Speech or not, measured: false "speech" on a synthetic non-speech set, false "no speech" on real corpora.

The non-speech set (written to ``--out``, default ``$TMPDIR/voxemo_speech_presence_set/``): noise colours, single
tones, chords, synthesised melodies, plucked strings (Karplus-Strong), clicks and impulse trains, mains hum with
harmonics, silence with ±1 LSB dither, DTMF digits and mixtures (hum + noise, tone + noise), 1-6 s, at 8 to 48 kHz and
peak levels from -40 to -1 dBFS, from a fixed seed. A category of melodies with vibrato (sung-like notes) is a
stress test outside the specified set and is reported on its own row. Then voice-like non-speech, a pitch that
moves as a voice's does: chirps (sine sweeps), sirens (wail, yelp, hi-lo), bark-like burst trains and engine hum,
drawn from a second generator (``seed + 1``) after all the others, so the earlier clips stay bit-identical.

Every clip goes through :func:`voxemo.dsp.speech.speech_presence` (the decision) and, with ``--predict``, through
``Classifier.predict_result`` (the whole path ``voxemo predict`` takes: decode, checks, speech, emotion).

Development split (used to choose the thresholds in :class:`voxemo.dsp.speech.SpeechConfig`): non-speech clips
with an even index, and the first half of each corpus' sorted speakers; the table reports all data and the
held-out half separately.

    python benchmarks/speech_presence.py --data ../shared/data --predict

prints a markdown table; ``--csv FILE`` also writes every clip's measurements.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from voxemo.dsp.speech import speech_presence

RATES = (8000, 16000, 22050, 44100, 48000)
NOTE = 2.0 ** (1 / 12)


def _level(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    peak = 10 ** (rng.uniform(-40, -1) / 20)
    return (peak * y / max(float(np.max(np.abs(y))), 1e-12)).astype(np.float32)


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.arange(len(spec)), 1.0)
    spec = spec / (np.sqrt(f) if kind == "pink" else f)  # pink: 1/f power; brown: 1/f^2 power
    y = np.fft.irfft(spec, n)
    return y - y.mean()


def _adsr(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    a, r = int(rng.uniform(0.005, 0.05) * sr), int(rng.uniform(0.02, 0.2) * sr)
    env = np.ones(n)
    env[: min(a, n)] = np.linspace(0, 1, min(a, n))
    if r < n:
        env[n - r :] *= np.linspace(1, 0, r)
    return env * np.exp(-rng.uniform(0, 3) * np.arange(n) / sr)


def _additive(f0: float, n: int, sr: int, rng: np.random.Generator, vibrato: float = 0.0) -> np.ndarray:
    t = np.arange(n) / sr
    rate = rng.uniform(4.5, 6.5)
    freq = f0 * (1 + vibrato * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3)))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    amps = rng.uniform(0.1, 1, 8) / np.arange(1, 9) ** rng.uniform(0.5, 2)
    return np.asarray(sum(a * np.sin(k * phase) for k, a in enumerate(amps, 1) if k * f0 < sr / 2.2))


def _melody(n: int, sr: int, rng: np.random.Generator, *, vibrato: float = 0.0) -> np.ndarray:
    y = np.zeros(n)
    pos, base = 0, rng.uniform(110, 440)
    beat = rng.uniform(0.12, 0.5)
    while pos < n:
        length = int(beat * sr * rng.choice([0.5, 1, 1, 2]))
        f0 = base * NOTE ** rng.choice([0, 2, 4, 5, 7, 9, 11, 12, -5, -3])
        seg = min(length, n - pos)
        if rng.random() > 0.15:  # some rests
            y[pos : pos + seg] = _additive(f0, seg, sr, rng, vibrato) * _adsr(seg, sr, rng)
        pos += length
    return y


def _pluck(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    period = max(2, int(round(sr / f0)))
    buf = rng.uniform(-1, 1, period)
    out = np.empty(n)
    decay = rng.uniform(0.990, 0.999)
    for i in range(n):  # Karplus-Strong: a delay line with an averaging low-pass
        out[i] = buf[i % period]
        buf[i % period] = decay * 0.5 * (buf[i % period] + buf[(i + 1) % period])
    return out


def _plucks(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    pos, base, beat = 0, rng.uniform(82, 330), rng.uniform(0.15, 0.6)
    while pos < n:
        seg = min(int(beat * sr * 2), n - pos)
        for f in (base * NOTE ** rng.choice([0, 3, 4, 7, 12]),) * (1 + int(rng.random() < 0.3)):
            y[pos : pos + seg] += _pluck(f * rng.uniform(0.999, 1.001), seg, sr, rng)
        pos += int(beat * sr)
    return y


def _clicks(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    if rng.random() < 0.5:  # a regular train, 1 to 200 clicks per second
        step = max(1, int(sr / np.exp(rng.uniform(np.log(1), np.log(200)))))
        idx = np.arange(int(rng.integers(0, step)), n, step)
    else:  # random clicks, 2 to 30 per second
        idx = rng.integers(0, n, int(n / sr * rng.uniform(2, 30)))
    width = int(rng.integers(1, 8))
    for i in idx:
        y[i : i + width] = rng.choice([-1, 1]) * np.hanning(width + 2)[1:-1][: len(y[i : i + width])]
    return y


CHORDS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 11), (0, 5, 9), (0, 7, 12, 16))
DTMF_LOW, DTMF_HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)


def _dtmf(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    y = np.zeros(n)
    pos, on, off = 0, int(rng.uniform(0.05, 0.3) * sr), int(rng.uniform(0.05, 0.3) * sr)
    t = np.arange(on) / sr
    while pos < n:
        tone = np.sin(2 * np.pi * rng.choice(DTMF_LOW) * t) + np.sin(2 * np.pi * rng.choice(DTMF_HIGH) * t)
        seg = min(on, n - pos)
        y[pos : pos + seg] = tone[:seg]
        pos += on + off
    return y


def _hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    mains = rng.choice([50.0, 60.0])
    return np.asarray(sum(rng.uniform(0.05, 1) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3))
                          for k in range(1, int(rng.integers(2, 12)))))


def _harmonics(freq: np.ndarray, sr: int, amps: np.ndarray) -> np.ndarray:
    """Partials ``k * freq`` (``freq`` in Hz per sample) with amplitudes ``amps[k - 1]``, each only while below
    ``sr / 2.2`` (no aliasing)."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return np.asarray(sum(a * np.sin(k * phase) * (k * freq < sr / 2.2) for k, a in enumerate(amps, 1)))


def _chirp(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A sine sweep, linear or exponential, up or down, over the whole clip or repeated every 0.3-2 s; a quarter of
    the sweeps carry a few harmonics."""
    lo = np.exp(rng.uniform(np.log(50), np.log(800)))
    hi = min(np.exp(rng.uniform(np.log(2 * lo), np.log(8 * lo + 3000))), sr / 2.5)
    hi = max(hi, 1.5 * lo)
    period = n if rng.random() < 0.6 else int(rng.uniform(0.3, 2.0) * sr)
    u = (np.arange(n) % period) / period  # 0..1 along each sweep
    u = u if rng.random() < 0.5 else 1 - u  # up or down
    freq = lo + (hi - lo) * u if rng.random() < 0.5 else lo * (hi / lo) ** u
    n_harm = 1 if rng.random() < 0.75 else int(rng.integers(2, 5))
    return _harmonics(freq, sr, rng.uniform(0.2, 1, n_harm) / np.arange(1, n_harm + 1))


def _siren(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """An emergency siren: a wail (f0 swept between a low of 450-800 Hz and a high of 1000-1600 Hz at 0.1-0.5 Hz,
    sinusoidally or as a rise and a faster fall), a yelp (the same sweep at 2-5 Hz) or a hi-lo (the two tones
    alternating every 0.3-0.7 s), with 2-5 harmonics as a horn's, plus a little noise."""
    t = np.arange(n) / sr
    lo, hi = rng.uniform(450, 800), rng.uniform(1000, 1600)
    variant = rng.choice(["wail", "yelp", "hi-lo"])
    if variant == "hi-lo":
        half = rng.uniform(0.3, 0.7)
        freq = np.where((t // half) % 2 == 0, hi, lo) * 0.75 ** (rng.random() < 0.5)
    else:
        rate = rng.uniform(0.1, 0.5) if variant == "wail" else rng.uniform(2, 5)
        cycle = (rate * t + rng.uniform(0, 1)) % 1
        if rng.random() < 0.5:
            shape = 0.5 - 0.5 * np.cos(2 * np.pi * cycle)  # smooth up and down
        else:
            shape = np.minimum(cycle / 0.7, (1 - cycle) / 0.3)  # rise, then a faster fall (a sawtooth-like wail)
        freq = lo + (hi - lo) * np.clip(shape, 0, 1)
    n_harm = int(rng.integers(2, 6))
    y = _harmonics(freq, sr, rng.uniform(0.3, 1, n_harm) / np.arange(1, n_harm + 1) ** rng.uniform(0.5, 1.5))
    return y + rng.uniform(0.0, 0.1) * np.std(y) * rng.standard_normal(n)


def _barks(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A dog-bark-like train: 80-250 ms bursts, 2-5 per second, each a harmonic sound whose f0 starts at 300-900 Hz
    and falls fast, plus noise, under a sharp-attack, decaying envelope."""
    y = np.zeros(n)
    rate = rng.uniform(2, 5)
    pos = int(rng.uniform(0, 0.3) * sr)
    while pos < n:
        m = min(int(rng.uniform(0.08, 0.25) * sr), n - pos)
        t = np.arange(m) / sr
        f_start = rng.uniform(300, 900)
        freq = f_start * (1 - rng.uniform(0.3, 0.6) * (1 - np.exp(-t / rng.uniform(0.02, 0.08))))
        n_harm = int(rng.integers(3, 9))
        burst = _harmonics(freq, sr, rng.uniform(0.2, 1, n_harm) / np.arange(1, n_harm + 1) ** rng.uniform(0.3, 1.2))
        burst = burst + rng.uniform(0.1, 0.6) * np.std(burst) * rng.standard_normal(m)
        attack = np.minimum(1, t / rng.uniform(0.003, 0.015))
        y[pos : pos + m] = burst * attack * np.exp(-t / rng.uniform(0.03, 0.12))
        pos += int(sr / rate * rng.uniform(0.7, 1.3))
    return y


def _engine(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Engine hum: a harmonic series on an f0 of 20-120 Hz whose rpm drifts slowly (±2-20%), amplitude modulated at
    0.5-10 Hz, over pink or brown noise."""
    t = np.arange(n) / sr
    f0 = rng.uniform(20, 120)
    drift = rng.uniform(0.02, 0.2) * np.sin(2 * np.pi * rng.uniform(0.03, 0.3) * t + rng.uniform(0, 6.3))
    if rng.random() < 0.5:  # revving: a slow ramp as well
        drift = drift + rng.uniform(-0.2, 0.2) * t / t[-1]
    n_harm = int(rng.integers(6, 30))
    amps = rng.uniform(0.2, 1, n_harm) / np.arange(1, n_harm + 1) ** rng.uniform(0.5, 1.5)
    y = _harmonics(f0 * (1 + drift), sr, amps)
    y = y * (1 + rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * rng.uniform(0.5, 10) * t))
    noise = _noise(str(rng.choice(["pink", "brown"])), n, rng)
    return y + rng.uniform(0.05, 0.4) * np.std(y) * noise / np.std(noise)


#: Voice-like non-speech, added later: drawn from their own generator after the others so that every earlier clip
#: stays bit-identical.
VOICE_LIKE = {"chirp": (24, _chirp), "siren": (24, _siren), "bark-like bursts": (24, _barks),
              "engine hum": (20, _engine)}


def nonspeech_set(seed: int = 0) -> Iterator[tuple[str, str, np.ndarray, int]]:
    """(category, name, signal, sample rate) of every clip of the non-speech set."""
    yield from _first_set(seed)
    rng = np.random.default_rng(seed + 1)
    for category, (count, make) in VOICE_LIKE.items():
        for i in range(count):
            sr = int(rng.choice(RATES))
            n = int(rng.uniform(1.0, 6.0) * sr)
            name = category.replace(" ", "_").replace("-", "_")
            yield category, f"{name}_{i:02d}", _level(make(n, sr, rng), rng), sr


def _first_set(seed: int) -> Iterator[tuple[str, str, np.ndarray, int]]:
    rng = np.random.default_rng(seed)
    counts = {"white noise": 20, "pink noise": 20, "brown noise": 20, "tone": 30, "chord": 20, "synth melody": 25,
              "plucked strings": 20, "clicks": 20, "hum": 16, "dither silence": 16, "DTMF": 20, "hum + noise": 12,
              "tone + noise": 12, "melody with vibrato (stress test)": 16}
    for category, count in counts.items():
        for i in range(count):
            sr = int(rng.choice(RATES))
            n = int(rng.uniform(1.0, 6.0) * sr)
            t = np.arange(n) / sr
            if category.endswith("noise") and "+" not in category:
                y = _noise(category.split()[0], n, rng)
            elif category == "tone":
                y = np.sin(2 * np.pi * np.exp(rng.uniform(np.log(50), np.log(min(4000, sr / 2.5)))) * t)
            elif category == "chord":
                root = rng.uniform(80, 500)
                shape = CHORDS[int(rng.integers(len(CHORDS)))]
                y = sum(_additive(root * NOTE**k, n, sr, rng) for k in shape)
                y = y * _adsr(n, sr, rng) if rng.random() < 0.5 else y
            elif category == "synth melody":
                y = _melody(n, sr, rng)
            elif category == "plucked strings":
                y = _plucks(n, sr, rng)
            elif category == "clicks":
                y = _clicks(n, sr, rng)
            elif category == "hum":
                y = _hum(n, sr, rng)
            elif category == "dither silence":
                y = rng.integers(-1, 2, n) / 32768.0
                yield category, f"dither_{i:02d}", y.astype(np.float32), sr
                continue
            elif category == "DTMF":
                y = _dtmf(n, sr, rng)
            elif category == "hum + noise":
                y = _hum(n, sr, rng) + rng.uniform(0.05, 0.5) * _noise(str(rng.choice(["white", "pink"])), n, rng)
            elif category == "tone + noise":
                f = np.exp(rng.uniform(np.log(100), np.log(3000)))
                y = np.sin(2 * np.pi * f * t) + rng.uniform(0.05, 0.5) * _noise("white", n, rng)
            else:
                y = _melody(n, sr, rng, vibrato=rng.uniform(0.01, 0.04))
            name = category.replace(" + ", "_").replace(" ", "_").split("_(")[0]
            yield category, f"{name}_{i:02d}", _level(np.asarray(y, np.float64), rng), sr


def write_set(out: Path, seed: int = 0) -> list[tuple[str, Path]]:
    """Write the non-speech set as 16-bit WAV files under ``out``; (category, path) per clip."""
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for category, name, y, sr in nonspeech_set(seed):
        path = out / f"{name}.wav"
        sf.write(str(path), y, sr, subtype="PCM_16")
        clips.append((category, path))
    return clips


def corpus_clips(data: Path) -> list[tuple[str, Path, bool]]:
    """(corpus, path, in the development half) of every clip of RAVDESS, Emo-DB and TurEV-DB."""
    from voxemo.corpus import load_corpus

    clips = []
    for name, folder in (("RAVDESS", "ravdess"), ("Emo-DB", "emodb"), ("TurEV-DB", "turevdb")):
        utts = load_corpus(data / folder)
        # TurEV-DB's speaker is the first part of the file name (SPEAKER_EMOTION_WORD), not a folder
        speaker = {u.path: Path(u.path).name.split("_")[0] if folder == "turevdb" else u.speaker for u in utts}
        speakers = sorted(set(speaker.values()))
        dev = set(speakers[: len(speakers) // 2])
        clips += [(name, Path(u.path), speaker[u.path] in dev) for u in utts]
    return clips


def measure(path: Path, model: object | None) -> dict[str, object]:
    from voxemo.io.audio import load_audio

    y, sr = load_audio(path)
    p = speech_presence(y, sr)
    row: dict[str, object] = {"path": str(path), **p.to_dict()}
    if model is not None:
        result = model.predict_result(path)  # type: ignore[attr-defined]
        row["emotion"] = result.to_dict().get("emotion")
        row["predict_speech"] = result.to_dict().get("speech")
    return row


def _rate(k: int, n: int) -> str:
    return f"{100 * k / n:.1f}% ({k}/{n})" if n else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data"),
                    help="folder holding ravdess/, emodb/, turevdb/")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "voxemo_speech_presence_set",
                    help="where the non-speech set is written (default: in the temporary folder)")
    ap.add_argument("--predict", action="store_true", help="also run the whole predict path (voxemo.load_model())")
    ap.add_argument("--no-corpora", action="store_true", help="the non-speech set only")
    ap.add_argument("--csv", type=Path, help="write every clip's measurements here")
    args = ap.parse_args(argv)
    model = None
    if args.predict:
        from voxemo import load_model

        model = load_model()
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    for i, (category, path) in enumerate(write_set(args.out)):
        rows.append({"set": "non-speech", "group": category, "dev": i % 2 == 0, **measure(path, model)})
    if not args.no_corpora:
        for corpus, path, dev in corpus_clips(args.data):
            rows.append({"set": "speech", "group": corpus, "dev": dev, **measure(path, model)})
    seconds = time.perf_counter() - t0
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[-1]))
            w.writeheader()
            w.writerows(rows)
    print(table(rows, predicted=model is not None))
    print(f"\n{len(rows)} clips in {seconds:.0f} s", file=sys.stderr)
    return 0


def table(rows: list[dict[str, object]], *, predicted: bool) -> str:
    groups: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        groups[(str(r["set"]), str(r["group"]))].append(r)
    head = "| set | category / corpus | clips | wrong decision: all | held-out half |"
    if predicted:
        head += " `predict_result` wrong: all |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])

    def wrong(r: dict[str, object]) -> bool:
        return bool(r["speech"]) if r["set"] == "non-speech" else not r["speech"]

    def wrong_predict(r: dict[str, object]) -> bool:
        return r["emotion"] is not None if r["set"] == "non-speech" else r["predict_speech"] is not True

    for (kind, group), rs in groups.items():
        held = [r for r in rs if not r["dev"]]
        k, kh = sum(map(wrong, rs)), sum(map(wrong, held))
        what = "false speech" if kind == "non-speech" else "false no speech"
        line = f"| {kind} ({what}) | {group} | {len(rs)} | {_rate(k, len(rs))} | {_rate(kh, len(held))} |"
        kp = sum(map(wrong_predict, rs)) if predicted else 0
        if predicted:
            line += f" {_rate(kp, len(rs))} |"
        lines.append(line)
        key = kind + (" (stress test)" if "stress" in group else "")
        for j, v in enumerate((len(rs), k, len(held), kh, kp)):
            totals[key][j] += v
    for key, (n, k, nh, kh, kp) in totals.items():
        line = f"| **{key}, all** | | {n} | **{_rate(k, n)}** | {_rate(kh, nh)} |"
        lines.append(line + (f" **{_rate(kp, n)}** |" if predicted else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

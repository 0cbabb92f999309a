"""Speech or not, before emotion: the decision (voxemo.dsp.speech) and every path that reports it (predict_result,
the CLI, batch CSV and --resume, the service, the timeline and the stream); the uncertain outcome."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.errors import ConfigError
from voxemo.dsp.speech import NO_SPEECH, SpeechConfig, speech_presence
from voxemo.inference.loading import load_model
from voxemo.inference.output import ResultWriter
from voxemo.inference.results import NoSpeech, Prediction, Uncertain
from voxemo.inference.stream import EmotionStream
from voxemo.inference.timeline import timeline

SR = 16000


def _t(seconds: float, sr: int) -> np.ndarray:
    return np.arange(int(seconds * sr)) / sr


def _norm(y: np.ndarray, peak: float = 0.3) -> np.ndarray:
    return (peak * y / np.max(np.abs(y))).astype(np.float32)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    return np.fft.irfft(spec / np.sqrt(np.maximum(np.arange(len(spec)), 1.0)), n)


def _pluck(f0: float, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    period = int(round(sr / f0))
    buf = list(rng.uniform(-1, 1, period))
    out = np.empty(n)
    for i in range(n):
        out[i] = buf[i % period]
        buf[i % period] = 0.996 * 0.5 * (buf[i % period] + buf[(i + 1) % period])
    return out


def _melody(sr: int) -> np.ndarray:
    notes = [220.0, 247.0, 277.0, 330.0, 294.0, 220.0, 370.0, 330.0]
    parts = []
    for f in notes:
        t = _t(0.3, sr)
        env = np.minimum(1, t / 0.01) * np.exp(-3 * t)
        parts.append(env * sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 6)))
    return np.concatenate(parts)


def _dtmf(sr: int) -> np.ndarray:
    t = _t(0.2, sr)
    gap = np.zeros(int(0.1 * sr))
    pairs = [(697, 1209), (770, 1336), (852, 1477), (941, 1336), (697, 1633)]
    return np.concatenate([np.concatenate([np.sin(2 * np.pi * a * t) + np.sin(2 * np.pi * b * t), gap])
                           for a, b in pairs])


def _partials(freq: np.ndarray, sr: int, amps: list[float] | np.ndarray) -> np.ndarray:
    """Partials ``k * freq`` (Hz per sample) with amplitudes ``amps[k - 1]``, each only while below ``sr / 2.2``."""
    phase = 2 * np.pi * np.cumsum(freq) / sr
    return np.asarray(sum(a * np.sin(k * phase) * (k * freq < sr / 2.2) for k, a in enumerate(amps, 1)))


def _barks(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A train of 100-200 ms bursts, about three a second: six partials on an f0 that starts at 450-750 Hz and falls
    by 45% within ~100 ms, plus noise, under a sharp attack and a 60 ms decay."""
    y = np.zeros(int(2.5 * sr))
    pos = int(0.1 * sr)
    while pos < len(y):
        t = _t(rng.uniform(0.1, 0.2), sr)[: len(y) - pos]
        burst = _partials(rng.uniform(450, 750) * (1 - 0.45 * (1 - np.exp(-t / 0.04))), sr, 1 / np.arange(1, 7) ** 0.7)
        burst = burst + 0.3 * np.std(burst) * rng.standard_normal(len(t))
        y[pos : pos + len(t)] = burst * np.minimum(1, t / 0.008) * np.exp(-t / 0.06)
        pos += int(rng.uniform(0.25, 0.4) * sr)
    return y


def _engine(t: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Engine hum: 20 partials on a 45 Hz f0 drifting by ±8%, amplitude modulated at 3 Hz, over pink noise."""
    y = _partials(45 * (1 + 0.08 * np.sin(2 * np.pi * 0.2 * t)), sr, 1 / np.arange(1, 21))
    pink = _pink(len(t), rng)
    return y * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)) + 0.2 * np.std(y) * pink / np.std(pink)


def nonspeech(rng: np.random.Generator, sr: int = SR) -> dict[str, np.ndarray]:
    """One clip per category of the benchmark's non-speech set (other parameters than the benchmark's)."""
    t = _t(2.5, sr)
    clicks = np.zeros(len(t))
    clicks[:: sr // 8] = 1.0
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8))
    return {
        "white noise": _norm(rng.standard_normal(len(t))),
        "pink noise": _norm(_pink(len(t), rng)),
        "brown noise": _norm(np.cumsum(rng.standard_normal(len(t))) - np.cumsum(rng.standard_normal(len(t))).mean()),
        "tone 440 Hz": _norm(np.sin(2 * np.pi * 440 * t)),
        "tone 150 Hz": _norm(np.sin(2 * np.pi * 150 * t)),
        "chord": _norm(sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0))),
        "plucked strings": _norm(np.concatenate([_pluck(f, sr // 2, sr, rng) for f in (196, 247, 294, 392, 330)])),
        "synth melody": _norm(_melody(sr)),
        "clicks": _norm(clicks, 0.8),
        "hum": _norm(hum),
        "hum + noise": _norm(hum + 0.3 * rng.standard_normal(len(t))),
        "dither": (rng.integers(-1, 2, len(t)) / 32768).astype(np.float32),
        "DTMF": _norm(_dtmf(sr)),
        # voice-like: a pitch that moves (drawn after the others, which stay as they were)
        "chirp 100-3100 Hz": _norm(_partials(100 + 1200 * t, sr, [1.0])),
        "chirp falling": _norm(_partials(1800 * (150 / 1800) ** (t / t[-1]), sr, [1.0, 0.3])),
        "siren wail": _norm(_partials(1025 + 375 * np.sin(2 * np.pi * 0.4 * t), sr, [1.0, 0.5, 0.3])),
        "siren yelp": _norm(_partials(650 + 750 * ((3.5 * t) % 1), sr, [1.0, 0.5, 0.3])),
        "bark-like bursts": _norm(_barks(sr, rng)),
        "engine hum": _norm(_engine(t, sr, rng)),
    }


CATEGORIES = list(nonspeech(np.random.default_rng(0)))


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("nonspeech")
    out = {}
    for name, y in nonspeech(np.random.default_rng(1)).items():
        out[name] = folder / (name.replace(" ", "_").replace("+", "and") + ".wav")
        sf.write(str(out[name]), y, SR, subtype="PCM_16")
    return out


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "voiced.wav"
    sf.write(str(path), voiced(2.0, SR, np.random.default_rng(3)), SR)
    return path


# ---- the decision --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("sr", [8000, 22050, 48000])
def test_nonspeech_is_not_speech(category: str, sr: int) -> None:
    y = nonspeech(np.random.default_rng(2), sr)[category]
    p = speech_presence(y, sr)
    assert p.speech is False, (category, p)
    assert p.reason.startswith(NO_SPEECH)


@pytest.mark.parametrize(("category", "why"), [("chirp 100-3100 Hz", "unbroken"), ("chirp falling", "unbroken"),
                                               ("siren wail", "unbroken"), ("bark-like bursts", "bark")])
def test_voice_like_nonspeech_says_why(category: str, why: str) -> None:
    p = speech_presence(nonspeech(np.random.default_rng(4), 44100)[category], 44100)
    assert not p.speech and why in p.reason, p
    assert set(p.to_dict()) >= {"unbroken", "level_range", "f0", "fall", "decay"}


def test_each_voice_like_rule_alone(rng: np.random.Generator) -> None:
    wail = nonspeech(rng)["siren wail"]
    no_runs = SpeechConfig(unbroken_seconds=100.0)  # no run is that long: the level rule has to catch the siren
    p = speech_presence(wail, SR, no_runs)
    assert not p.speech and "steady level" in p.reason and p.level_range < 3, p
    assert speech_presence(wail, SR, no_runs.replace(min_level_range=0.0)).speech  # a moving pitch, as a voice's
    barks = nonspeech(rng)["bark-like bursts"]
    assert speech_presence(barks, SR, SpeechConfig(bark_decay=1.0)).speech  # without the bark rule: speech


def test_a_voice_whose_pitch_moves_is_speech(rng: np.random.Generator) -> None:
    for sr, f0, seconds in ((16000, 150.0, 2.0), (8000, 220.0, 0.4), (44100, 110.0, 3.0)):
        p = speech_presence(voiced(seconds, sr, rng, f0=f0), sr)
        assert p.speech and p.reason == "" and p.speech_seconds > 0.1 and p.movement >= 0.1, p
    stereo = np.stack([voiced(1.0, SR, rng)] * 2, axis=1)
    assert speech_presence(stereo, SR).speech


def test_the_decision_is_pure_and_level_independent(rng: np.random.Generator) -> None:
    y = voiced(1.5, SR, rng)
    assert speech_presence(y, SR) == speech_presence(y.copy(), SR)
    assert speech_presence(0.05 * y / 0.3, SR).speech  # -26 dBFS peak: quiet speech is still speech
    assert not speech_presence(np.zeros(SR, np.float32), SR).speech
    assert "too short" in speech_presence(np.zeros(10, np.float32), SR).reason
    assert not speech_presence(np.full(SR, np.nan, np.float32), SR).speech


def test_speech_config_validates() -> None:
    with pytest.raises(ConfigError):
        SpeechConfig(clarity=1.5)
    with pytest.raises(ConfigError):
        SpeechConfig(min_move=2.0, max_jump=1.0)
    for bad in ({"max_unbroken": 0.0}, {"bark_decay": 1.5}, {"unbroken_seconds": 0.0}, {"min_level_range": -1.0},
                {"unbroken_movement": 1.5}):
        with pytest.raises(ConfigError):
            SpeechConfig(**bad)
    assert SpeechConfig.from_dict({"clarity": 0.6}) == SpeechConfig()  # configs saved before these fields load


@pytest.mark.data
def test_real_speech_is_speech(real_ravdess: Path, model: Any) -> None:
    clips = sorted(real_ravdess.rglob("*.flac"))[::97]  # 15 clips over actors and emotions
    for path in clips:
        y, sr = sf.read(str(path), dtype="float32")
        assert speech_presence(y, sr).speech, path
        result = model.predict_result(path)
        assert isinstance(result, Prediction) and result.to_dict()["speech"] is True


# ---- predict_result, predict_file, the uncertain outcome -------------------------------------------------------------
def test_predict_result_says_no_speech(model: Any, clips: dict[str, Path]) -> None:
    for name, path in clips.items():
        result = model.predict_result(path)
        assert isinstance(result, NoSpeech) and not result.failed, (name, result)
        d = model.predict_file(path)
        assert d == {"path": str(path), "speech": False, "emotion": None, "reason": result.reason}
        assert d["reason"].startswith("no speech found")


def test_uncertain_below_the_chosen_confidence(model: Any, speech_wav: Path) -> None:
    plain = model.predict_result(speech_wav)
    assert isinstance(plain, Prediction)
    assert model.predict_result(speech_wav, min_confidence=plain.confidence) == plain  # not below: a label
    result = model.predict_result(speech_wav, min_confidence=1.0)
    assert isinstance(result, Uncertain) and not result.failed
    d = result.to_dict()
    assert d["emotion"] is None and d["uncertain"] is True and d["speech"] is True
    assert d["confidence"] == plain.confidence and d["probabilities"] == plain.probabilities
    assert "below 1" in d["reason"]


# ---- the command line ------------------------------------------------------------------------------------------------
def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_says_no_speech_and_exits_0(clips: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "predict", "--json", "--jobs", "1", str(clips["white noise"]),
                         str(clips["tone 440 Hz"]))
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["speech"] for r in rows] == [False, False]
    assert all(r["emotion"] is None and r["reason"].startswith("no speech found") for r in rows)


def test_cli_human_and_uncertain_lines(clips: dict[str, Path], speech_wav: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "predict", "--jobs", "1", "--min-confidence", "1", str(clips["chord"]), str(speech_wav))
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == [str(clips["chord"]), "no speech", "-"]
    assert lines[1][:2] == [str(speech_wav), "uncertain"]
    code, out, _ = run(capsys, "predict", "--json", "--jobs", "1", "--min-confidence", "1", str(speech_wav))
    row = json.loads(out)
    assert code == 0 and row["uncertain"] is True and row["emotion"] is None
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--min-confidence", "1.5", str(speech_wav)])
    assert exited.value.code == 2 and "'1.5' is not a probability" in capsys.readouterr().err


def test_csv_rows_and_resume(clips: dict[str, Path], speech_wav: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.csv"
    code, _, err = run(capsys, "predict", "--jobs", "1", "--output", str(out), str(clips["hum"]))
    assert code == 0 and "1 without speech" in err
    code, _, err = run(capsys, "predict", "--jobs", "1", "--output", str(out), "--resume", str(clips["hum"]),
                       str(speech_wav))
    assert code == 0 and "skipped 1 already there (0 failed)" in err
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["path"] for r in rows] == [str(clips["hum"]), str(speech_wav)]
    assert rows[0]["speech"] == "false" and rows[0]["emotion"] == "" and rows[0]["error"] == ""
    assert rows[0]["reason"].startswith("no speech found")
    assert rows[1]["speech"] == "true" and rows[1]["emotion"] and rows[1]["reason"] == ""


def test_timeline_cli_json_says_no_speech(clips: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "timeline", "--json", str(clips["white noise"]))
    doc = json.loads(out)
    assert code == 0 and doc["speech"] is False and doc["segments"] == [] and doc["reason"] == NO_SPEECH


# ---- the service, the timeline, the stream ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(model: Any) -> Iterator[Any]:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from voxemo.apps.service import create_app

    with TestClient(create_app(model, max_upload_mb=2, max_seconds=20)) as c:
        yield c


@pytest.mark.parametrize("category", ["white noise", "synth melody", "DTMF", "dither"])
def test_service_predict_says_no_speech_with_200(client: Any, clips: dict[str, Path], category: str) -> None:
    r = client.post("/predict", files={"file": ("upload.wav", clips[category].read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert r.json() == {"path": "upload.wav", "speech": False, "emotion": None, "reason": r.json()["reason"]}
    r = client.post("/timeline", files={"file": ("upload.wav", clips[category].read_bytes(), "audio/wav")})
    assert r.status_code == 200 and r.json()["segments"] == [] and r.json()["speech"] is False


@pytest.mark.parametrize("category", ["white noise", "pink noise", "synth melody", "plucked strings", "hum + noise",
                                      "tone 150 Hz", "DTMF", "clicks"])
def test_timeline_of_nonspeech_has_no_segments(model: Any, clips: dict[str, Path], category: str) -> None:
    result = timeline(clips[category], model)
    assert result.segments == [] and result.speech is False, (category, result.windows[:3])
    assert all(not w.speech and w.emotion is None for w in result.windows)


def test_timeline_finds_speech_between_noise(model: Any, make_wav: Callable[..., Path],
                                             rng: np.random.Generator) -> None:
    noise = (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)
    y = np.concatenate([noise, voiced(3.0, SR, rng), noise])
    result = timeline(make_wav("mixed.wav", y, SR), model)
    assert result.speech is True and result.segments
    # the VAD takes the noise for speech too; every window wholly inside the noise fails the speech check (a window
    # that holds some of the voice passes it: the timeline's resolution is the window)
    noise_only = [w for w in result.windows if w.end <= 3.0 or w.start >= 6.0]
    assert noise_only and not any(w.speech for w in noise_only), noise_only
    assert any(s.start < 6.0 and s.end > 3.0 for s in result.segments)


def test_stream_of_noise_and_music_gives_no_speech(model: Any, rng: np.random.Generator) -> None:
    clips = nonspeech(rng)
    stream = EmotionStream(model, SR)
    updates: list[dict[str, Any]] = []
    for name in ("white noise", "synth melody", "hum"):
        y = np.tile(clips[name], 2)
        for i in range(0, len(y), 4000):
            updates += stream.feed(y[i : i + 4000])
    updates += stream.flush()
    assert updates and all(not u.speech and u.emotion is None for u in updates)
    assert stream.speech == model.speech  # the stream takes the model's thresholds


def test_no_speech_result_json_is_one_line() -> None:
    buf = io.StringIO()
    ResultWriter(buf, "json", ["calm"]).write(NoSpeech("a.wav", "no speech found: noise"))
    assert json.loads(buf.getvalue()) == {"path": "a.wav", "speech": False, "emotion": None,
                                          "reason": "no speech found: noise"}


def test_a_bark_train_whose_bursts_swell_and_fade_is_not_speech() -> None:
    """A high, fast-falling burst is a bark whatever its envelope (``bark_steep_fall``), not only when it dies away."""
    sr, t = 22050, _t(2.5, 22050)
    y = np.zeros_like(t)
    for start in np.arange(0.1, 2.2, 0.33):
        n, i = int(0.18 * sr), int(start * sr)
        f0 = 700 * np.exp(-np.arange(n) / sr * 5)
        y[i : i + n] += _partials(f0, sr, [1, 0.5, 0.3]) * np.hanning(n)
    p = speech_presence(_norm(y), sr)
    assert not p.speech and "bark" in p.reason and p.decay < SpeechConfig().bark_decay

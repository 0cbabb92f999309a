"""The streaming API: VAD utterances, the window grid, chunk-size invariance, same preprocessing as predict,
and ``voxemo listen`` with sounddevice replaced by a fake (there is no audio hardware here)."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import numpy as np
import pytest

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.apps.listen import listen
from voxemo.core.errors import AudioError, ConfigError, VoxemoError
from voxemo.dsp.vad import SpeechTracker, VadConfig
from voxemo.inference.loading import load_model
from voxemo.inference.stream import EmotionStream, Update

#: Seconds of (silence, speech) in the synthetic recording; speech at 1-3 s and 5-9.2 s.
LAYOUT = [(1.0, 2.0), (2.0, 4.2)]
TAIL = 1.3
TOL = 0.25  # seconds: VAD frames are 30 ms, plus 0.1 s padding and the hangover of a decaying voice


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


def recording(sr: int, rng: np.random.Generator, noise: float = 1e-4) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Voice-like bursts between pauses, with faint noise everywhere; returns the signal and the true spans."""
    parts, spans, t = [], [], 0.0
    for pause, speech in LAYOUT:
        parts += [np.zeros(int(pause * sr), np.float32), voiced(speech, sr, rng)]
        spans.append((t + pause, t + pause + speech))
        t += pause + speech
    parts.append(np.zeros(int(TAIL * sr), np.float32))
    y = np.concatenate(parts)
    return (y + noise * rng.standard_normal(len(y))).astype(np.float32), spans


def run(stream: EmotionStream, chunks: list[np.ndarray]) -> list[Update]:
    out = []
    for c in chunks:
        out += stream.feed(c)
    return out + stream.flush()


def utterances(updates: list[Update]) -> list[tuple[float, float]]:
    """Spans of consecutive speech updates."""
    spans: list[list[float]] = []
    previous_speech = False
    for u in updates:
        if u.speech:
            if previous_speech:
                spans[-1][1] = max(spans[-1][1], u.end)
            else:
                spans.append([u.start, u.end])
        previous_speech = u.speech
    return [(a, b) for a, b in spans]


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_vad_finds_the_speech(model: Any, rng: np.random.Generator, sr: int) -> None:
    y, truth = recording(sr, rng)
    found = utterances(run(EmotionStream(model, sr), [y]))
    assert len(found) == len(truth)
    for (a, b), (ta, tb) in zip(found, truth):
        assert abs(a - ta) < TOL and abs(b - tb) < TOL, (found, truth)


def test_updates_tile_the_stream(model: Any, rng: np.random.Generator) -> None:
    y, _ = recording(16000, rng)
    stream = EmotionStream(model, 16000)
    updates = run(stream, [y])
    assert updates[0].start == 0.0 and updates[-1].end == pytest.approx(len(y) / 16000, abs=1e-3)
    pauses = [u for u in updates if not u.speech]
    assert all(u.end - u.start <= stream.hop + 1e-6 for u in pauses)
    for a, b in zip(updates, updates[1:]):  # a pause starts where the previous utterance ends, and vice versa
        if a.speech != b.speech:
            assert b.start == pytest.approx(a.end, abs=1e-6)
    for u in updates:
        json.dumps(u.to_dict())
        assert set(u.to_dict()) == {"start", "end", "emotion", "confidence", "probabilities", "speech"}
        if u.speech:
            assert u.emotion in stream.classes and set(u.probabilities) == set(stream.classes)
            assert sum(u.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
            assert u.confidence == max(u.probabilities.values())
        else:
            assert u.emotion is None and u.probabilities == {}


def test_silence_gives_no_speech(model: Any, rng: np.random.Generator) -> None:
    y = (1e-4 * rng.standard_normal(5 * 16000)).astype(np.float32)
    updates = run(EmotionStream(model, 16000), [y])
    assert updates and not any(u.speech for u in updates)
    assert sum(u.end - u.start for u in updates) == pytest.approx(5.0, abs=1e-3)


def test_chunk_sizes_do_not_change_the_updates(model: Any, rng: np.random.Generator) -> None:
    sr = 44100  # resampled to both the model's rate and the VAD's
    y, _ = recording(sr, rng)
    stereo = np.stack([y, 0.5 * y], axis=1)
    whole = run(EmotionStream(model, sr), [stereo])
    cuts = np.sort(rng.choice(len(y), size=400, replace=False))
    pieces = run(EmotionStream(model, sr), np.split(stereo, cuts))
    tiny = run(EmotionStream(model, sr), [stereo[:50], stereo[50:51], stereo[51:3000], stereo[3000:]])
    assert len(whole) > 5
    for other in (pieces, tiny):
        assert [(u.start, u.end, u.speech, u.emotion) for u in other] == \
               [(u.start, u.end, u.speech, u.emotion) for u in whole]
        for a, b in zip(whole, other):  # batch sizes differ, so allow float rounding in the network
            for c in a.probabilities:
                assert b.probabilities[c] == pytest.approx(a.probabilities[c], abs=2e-4)


def test_updates_arrive_while_feeding(model: Any, rng: np.random.Generator) -> None:
    y, truth = recording(16000, rng)
    stream = EmotionStream(model, 16000, window=1.0, hop=0.5)
    live: list[tuple[float, Update]] = []
    for start in range(0, len(y), 1600):
        for u in stream.feed(y[start : start + 1600]):
            live.append((stream.position, u))
    assert any(u.speech for _, u in live)
    # a window is reported within hop + VAD latency of its end, not held back to the end of the stream
    assert all(pos - u.end < 1.0 for pos, u in live if u.speech)


def test_window_grid_inside_a_long_utterance(model: Any, rng: np.random.Generator) -> None:
    y, truth = recording(22050, rng)
    updates = run(EmotionStream(model, 22050, window=2.0, hop=1.0), [y])
    long = [u for u in updates if u.speech and u.start > truth[1][0] - TOL]
    starts = [u.start for u in long]
    assert all(u.end - u.start == pytest.approx(2.0, abs=1e-3) for u in long)
    assert np.allclose(np.diff(starts[:-1]), 1.0, atol=1e-3)  # the grid ...
    assert 0 < starts[-1] - starts[-2] <= 1.0 + 1e-3  # ... and the last window, aligned with the end
    assert long[-1].end == pytest.approx(truth[1][1], abs=TOL)
    short = [u for u in updates if u.speech and u.end < truth[0][1] + TOL]
    # about 2 s of speech with 2 s windows: one grid window, plus an end-aligned one if more than MIN_TAIL is left
    assert len(short) in (1, 2) and all(u.end - u.start == pytest.approx(2.0, abs=1e-3) for u in short)
    assert short[0].start == pytest.approx(truth[0][0], abs=TOL)
    assert short[-1].end == pytest.approx(truth[0][1], abs=TOL)


def test_short_utterance_is_one_window(model: Any, rng: np.random.Generator) -> None:
    y, truth = recording(16000, rng)
    updates = run(EmotionStream(model, 16000), [y])  # 3 s windows; the first utterance lasts 2 s
    first = [u for u in updates if u.speech and u.end < truth[0][1] + TOL]
    assert len(first) == 1
    assert first[0].start == pytest.approx(truth[0][0], abs=TOL)
    assert first[0].end == pytest.approx(truth[0][1], abs=TOL)


def test_windows_use_the_classifiers_own_preprocessing(model: Any, rng: np.random.Generator) -> None:
    sr = model.config.audio.sample_rate  # no resampling, so the window's samples are the input's
    y, _ = recording(sr, rng)
    for u in [u for u in run(EmotionStream(model, sr), [y]) if u.speech]:
        expected = model.predict_proba(y[round(u.start * sr) : round(u.end * sr)], sr=sr)
        got = np.array([u.probabilities[c] for c in model.classes_])
        assert np.allclose(got, expected, atol=2e-4)


def test_integer_pcm_is_scaled(model: Any, rng: np.random.Generator) -> None:
    y, _ = recording(16000, rng)
    as_float = run(EmotionStream(model, 16000), [y])
    as_int16 = run(EmotionStream(model, 16000), [np.round(y * 32767).astype(np.int16)])
    a, b = utterances(as_int16), utterances(as_float)  # quantisation may move a VAD decision by a frame
    assert len(a) == len(b) == len(LAYOUT)
    assert np.allclose(a, b, atol=0.1)


def test_bad_chunks_and_settings(model: Any) -> None:
    stream = EmotionStream(model, 16000)
    assert stream.feed(np.zeros(0, np.float32)) == []
    with pytest.raises(AudioError, match="non-finite"):
        stream.feed(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="dtype"):
        stream.feed(np.array(["a", "b"]))
    stream.flush()
    with pytest.raises(VoxemoError, match="already flushed"):
        stream.feed(np.zeros(10, np.float32))
    with pytest.raises(ConfigError, match="hop"):
        EmotionStream(model, 16000, window=2.0, hop=3.0)
    with pytest.raises(ConfigError, match="window"):
        EmotionStream(model, 16000, window=0.1)
    with pytest.raises(ConfigError, match="sample_rate"):
        EmotionStream(model, 0)
    with pytest.raises(ConfigError, match="aggressiveness"):
        VadConfig(aggressiveness=5)
    with pytest.raises(ConfigError, match="hangover"):
        VadConfig(hangover=0.15, pad=0.1)


def test_speech_tracker_events_do_not_depend_on_push_sizes(rng: np.random.Generator) -> None:
    y, truth = recording(16000, rng)
    a = SpeechTracker()
    whole = a.push(y) + a.finish()
    b = SpeechTracker()
    parts = [e for p in np.array_split(y, 97) for e in b.push(p)] + b.finish()
    assert whole == parts
    assert [k for k, _ in whole] == ["start", "end", "start", "end"]
    blip = np.zeros(16000 * 2, np.float32)
    blip[16000 : 16000 + 960] = voiced(0.06, 16000, rng)  # 60 ms: a click, not speech
    c = SpeechTracker()
    assert [k for k, _ in c.push(blip) + c.finish()] in ([], ["start", "drop"])
    blip[16000 : 16000 + 4000] = voiced(0.25, 16000, rng)  # starts, but is shorter than min_speech
    d = SpeechTracker(VadConfig(min_speech=1.0))
    assert [k for k, _ in d.push(blip) + d.finish()] == ["start", "drop"]


def test_energy_gate_rejects_a_step_in_the_noise_floor(model: Any, rng: np.random.Generator) -> None:
    sr = 16000
    hiss = (1e-3 * rng.standard_normal(2 * sr)).astype(np.float32)  # 2-4 s: noise 40 dB below the voice
    gap = np.zeros(sr // 2, np.float32)
    y = np.concatenate([voiced(2, sr, rng), gap, hiss, gap, voiced(2, sr, rng)])
    found = {g: utterances(run(EmotionStream(model, sr, vad=VadConfig(gate_db=g)), [y])) for g in (0, 35)}
    assert any(2.5 < (a + b) / 2 < 4.5 for a, b in found[0])  # the WebRTC VAD alone takes the hiss for speech
    assert len(found[35]) == 2 and not any(2.5 < (a + b) / 2 < 4.5 for a, b in found[35])


def test_dropped_utterance_is_reported_as_a_pause(model: Any, rng: np.random.Generator) -> None:
    blip = np.zeros(16000 * 3, np.float32)
    blip[16000 : 16000 + 4000] = voiced(0.25, 16000, rng)
    updates = run(EmotionStream(model, 16000, vad=VadConfig(min_speech=1.0)), [blip])
    assert not any(u.speech for u in updates)
    assert [u.start for u in updates[1:]] == [u.end for u in updates[:-1]]
    assert updates[-1].end == 3.0


# ---- voxemo listen, with a fake sounddevice ----------------------------------------------------------------------
def fake_sounddevice(y: np.ndarray, sr: int, *, fail: str = "") -> types.ModuleType:
    """A stand-in for the sounddevice module that 'records' ``y`` in 100 ms blocks."""
    sd = types.ModuleType("sounddevice")

    class PortAudioError(Exception):
        pass

    def query_devices(device: Any = None, kind: str | None = None) -> dict[str, Any]:
        if fail == "device":
            raise PortAudioError("Error querying device -1")
        return {"name": "fake mic", "default_samplerate": float(sr)}

    class InputStream:
        def __init__(self, *, callback: Any, blocksize: int, channels: int, samplerate: int, **kw: Any) -> None:
            assert channels == 1 and samplerate == sr
            self.callback, self.blocksize = callback, blocksize

        def __enter__(self) -> InputStream:
            for i in range(0, len(y), self.blocksize):
                self.callback(y[i : i + self.blocksize, None], self.blocksize, None, None)
            return self

        def __exit__(self, *exc: Any) -> None:
            return None

    sd.PortAudioError = PortAudioError  # type: ignore[attr-defined]
    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.InputStream = InputStream  # type: ignore[attr-defined]
    return sd


def test_listen_gives_the_stream_updates(model: Any, rng: np.random.Generator,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sr = 48000
    y, _ = recording(sr, rng)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(y, sr))
    heard: list[Update] = []
    seconds = listen(model, heard.append, seconds=len(y) / sr)
    assert seconds == pytest.approx(len(y) / sr)
    expected = run(EmotionStream(model, sr), [y])
    assert [(u.start, u.end, u.emotion) for u in heard] == \
           [(u.start, u.end, u.emotion) for u in expected]


def test_listen_cli_prints_one_line_per_window_and_stops_on_ctrl_c(
        rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    y, truth = recording(16000, rng)
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(y, 16000))
    assert main(["listen", "--seconds", str(len(y) / 16000)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert err == "" and len(lines) > 4
    speech = [ln for ln in lines if "(no speech)" not in ln]
    assert len(speech) == 3 and all(ln.split()[4] in model_classes() for ln in speech)

    assert main(["listen", "--json", "--seconds", "2.5"]) == 0  # stops early: only the first utterance
    updates = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert updates[-1]["end"] == pytest.approx(2.5, abs=0.11) and sum(u["speech"] for u in updates) == 1

    calls = {"n": 0}
    real_feed = EmotionStream.feed

    def interrupted_feed(self: EmotionStream, chunk: np.ndarray) -> list[Update]:
        calls["n"] += 1
        if calls["n"] == 40:  # Ctrl-C after 4 s of audio
            raise KeyboardInterrupt
        return real_feed(self, chunk)

    monkeypatch.setattr(EmotionStream, "feed", interrupted_feed)
    assert main(["listen", "--json"]) == 0
    updates = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert updates and updates[-1]["end"] == pytest.approx(3.9, abs=0.11)  # the interrupted block is not fed


def model_classes() -> list[str]:
    return [str(c) for c in load_model().classes_]


@pytest.mark.parametrize("problem", ["no portaudio", "no device"])
def test_listen_without_audio_hardware_is_a_one_line_error(
        problem: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if problem == "no portaudio":
        monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails like a missing PortAudio
    else:
        monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(np.zeros(10, np.float32), 16000,
                                                                         fail="device"))
    assert main(["listen", "--seconds", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert ("microphone" if problem == "no portaudio" else "no usable audio input device") in err

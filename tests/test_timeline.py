"""Timelines of files: segments where the speech is, the same updates as the streaming API, CSV and plot,
bad files, ``voxemo timeline``, and real RAVDESS clips joined by pauses."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.errors import AudioError
from voxemo.inference.loading import load_model
from voxemo.inference.stream import EmotionStream, Update
from voxemo.inference.timeline import Timeline, merge_segments, timeline
from voxemo.reports.plots import plot_timeline
from voxemo.reports.timeline import write_csv

TOL = 0.25


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


def speech_file(make_wav: Callable[..., Path], rng: np.random.Generator, sr: int = 16000,
                name: str = "talk.flac") -> tuple[Path, np.ndarray, list[tuple[float, float]]]:
    """1 s pause, 2 s voice, 2 s pause, 4.2 s voice, 1.3 s pause (faint noise throughout)."""
    parts, spans, t = [], [], 0.0
    for pause, speech in [(1.0, 2.0), (2.0, 4.2)]:
        parts += [np.zeros(int(pause * sr), np.float32), voiced(speech, sr, rng)]
        spans.append((t + pause, t + pause + speech))
        t += pause + speech
    y = np.concatenate([*parts, np.zeros(int(1.3 * sr), np.float32)])
    y = (y + 1e-4 * rng.standard_normal(len(y))).astype(np.float32)
    return make_wav(name, y, sr), y, spans


def test_segments_are_where_the_speech_is(model: Any, make_wav: Callable[..., Path],
                                          rng: np.random.Generator) -> None:
    path, y, spans = speech_file(make_wav, rng)
    result = timeline(path, model)
    assert result.path == str(path) and result.duration == pytest.approx(len(y) / 16000, abs=1e-3)
    segs = result.segments
    assert segs[0].start == pytest.approx(spans[0][0], abs=TOL)
    assert segs[-1].end == pytest.approx(spans[1][1], abs=TOL)
    for s in segs:  # every segment lies inside one of the spoken spans
        assert any(a - TOL <= s.start < s.end <= b + TOL for a, b in spans), (s, spans)
        assert s.emotion in model.classes_ and s.confidence == s.probabilities[s.emotion]
    covered = sorted({i for s in segs for i, (a, b) in enumerate(spans) if s.start < b and s.end > a})
    assert covered == [0, 1]
    json.dumps(result.to_dict())


def test_file_through_the_stream_api_equals_the_timeline(model: Any, make_wav: Callable[..., Path],
                                                         rng: np.random.Generator) -> None:
    path, y, _ = speech_file(make_wav, rng, sr=22050, name="talk.wav")
    result = timeline(path, model, window=2.0, hop=0.5)
    stream = EmotionStream(model, 22050, window=2.0, hop=0.5)
    y_file, _ = sf.read(str(path), dtype="float32")  # the file's samples (WAV quantises to 16 bits)
    updates = stream.feed(y_file) + stream.flush()
    assert [(u.start, u.end, u.emotion) for u in result.windows] == \
           [(u.start, u.end, u.emotion) for u in updates]
    assert result.segments == merge_segments(result.windows)


def test_silent_file_has_no_segments(model: Any, make_wav: Callable[..., Path]) -> None:
    path = make_wav("silence.wav", np.zeros(16000 * 4, np.float32), 16000)
    result = timeline(path, model)
    assert result.segments == [] and result.duration == 4.0
    assert not any(w.speech for w in result.windows)


def test_merge_joins_same_emotion_and_splits_overlaps() -> None:
    def w(start: float, end: float, emotion: str, p: float) -> Update:
        other = "sad" if emotion == "calm" else "calm"
        return Update(start, end, emotion, p, {emotion: p, other: round(1 - p, 4)}, speech=True)

    pause = Update(4.5, 5.0)
    segs = merge_segments([w(0, 3, "calm", 0.8), w(1.5, 4.5, "calm", 0.6), pause, w(5, 8, "calm", 0.9),
                           w(6.5, 9.5, "sad", 0.7), w(8, 11, "sad", 0.9)])
    assert [(s.start, s.end, s.emotion, s.windows) for s in segs] == \
           [(0, 4.5, "calm", 2), (5, 7.25, "calm", 1), (7.25, 11, "sad", 2)]
    assert segs[0].probabilities == {"calm": 0.7, "sad": 0.3} and segs[0].confidence == 0.7
    assert merge_segments([pause]) == []


def test_csv_and_plot(model: Any, make_wav: Callable[..., Path], rng: np.random.Generator, tmp_path: Path) -> None:
    path, _, _ = speech_file(make_wav, rng)
    result = timeline(path, model)
    buf = io.StringIO()
    write_csv(result, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(rows) == len(result.segments) > 0
    assert list(rows[0])[:4] == ["start", "end", "emotion", "confidence"] and set(model.classes_) <= set(rows[0])
    assert float(rows[0]["start"]) == result.segments[0].start
    png = plot_timeline(result, tmp_path / "figs" / "timeline.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    empty = plot_timeline(Timeline("x.wav", 3.0, [], []), tmp_path / "e.png")
    assert empty.stat().st_size > 0


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("corrupt", "not a readable audio file"),
    ("no samples", "contains no audio samples"),
    ("nan", "non-finite"),
    ("folder", "is a directory"),
])
def test_bad_files_are_one_line_errors(case: str, message: str, model: Any, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "corrupt":
        path.write_bytes(b"this is not audio" * 100)
    elif case == "no samples":
        sf.write(str(path), np.zeros(0, np.float32), 16000)
    elif case == "nan":
        y = np.full(16000, 0.1, np.float32)
        y[8000] = np.nan
        sf.write(str(path), y, 16000, subtype="FLOAT")
    elif case == "folder":
        path.mkdir()
    with pytest.raises(AudioError, match=message) as info:
        timeline(path, model)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert main(["timeline", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().count("\n") == 0 and message in err and "Traceback" not in err


def test_cli_outputs(make_wav: Callable[..., Path], rng: np.random.Generator, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    path, _, _ = speech_file(make_wav, rng)
    assert main(["timeline", str(path), "--json", "--plot", str(tmp_path / "t.png")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"path", "duration", "speech", "segments"} and doc["segments"] and doc["speech"] is True
    assert set(doc["segments"][0]) >= {"start", "end", "emotion", "probabilities"}
    assert (tmp_path / "t.png").stat().st_size > 10_000
    assert main(["timeline", str(path), "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["start", "end", "emotion"] and len(rows) == len(doc["segments"]) + 1
    assert main(["timeline", str(path), "--window", "2", "--hop", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "start\tend\temotion\tconfidence" and all(len(ln.split("\t")) == 4 for ln in lines[1:])
    silent = make_wav("quiet.wav", np.zeros(16000, np.float32), 16000)
    assert main(["timeline", str(silent)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no speech found" in err
    assert main(["timeline", str(path), "--hop", "9"]) == 2
    assert "hop" in capsys.readouterr().err
    assert main(["timeline", str(path), "--plot", str(tmp_path / "t.png" / "x.png")]) == 2
    assert "cannot write the plot" in capsys.readouterr().err


@pytest.mark.data
def test_real_clips_joined_by_pauses(model: Any, real_ravdess: Path, tmp_path: Path) -> None:
    """Clips the shipped model gets right when classified whole keep their emotion inside a long recording."""
    candidates = sorted(real_ravdess.glob("Actor_1[0-4]/03-01-0[1-8]-02-01-01-*.*"))
    chosen: dict[str, Path] = {}
    for clip in candidates:  # one clip per emotion, among those predicted right and confidently when whole
        probs = model.predict_proba(clip)
        emotion = str(model.classes_[int(probs.argmax())])
        truth = model.classes_[int(clip.name.split("-")[2]) - 1]
        if emotion == truth and probs.max() > 0.6 and emotion not in chosen:
            chosen[emotion] = clip
    assert {"angry", "sad", "happy"} <= set(chosen), chosen
    rng = np.random.default_rng(0)
    parts, spans, t, sr = [], [], 0.0, 48000
    for emotion, clip in chosen.items():
        y, clip_sr = sf.read(str(clip), dtype="float32")
        assert clip_sr == sr
        pause = rng.uniform(1.5, 3.0)
        parts += [np.zeros(int(pause * sr), np.float32), y]
        spans.append((emotion, t + pause, t + pause + len(y) / sr))
        t += pause + len(y) / sr
    path = tmp_path / "session.flac"
    sf.write(str(path), np.concatenate(parts), sr)
    result = timeline(path, model)
    for emotion, a, b in spans:
        inside = [s for s in result.segments if s.start < b and s.end > a]
        assert inside, (emotion, a, b, result.segments)
        assert all(a - TOL <= s.start and s.end <= b + TOL for s in inside)
        longest = max(inside, key=lambda s: s.end - s.start)
        assert longest.emotion == emotion, (emotion, inside)
    assert len(result.segments) >= len(spans)


def test_a_sample_rate_the_stream_cannot_take_is_an_error_naming_the_file(make_wav, tmp_path) -> None:
    """A 500 Hz file: the timeline's one-line error names the file and the cause."""
    from voxemo.core.errors import AudioError

    low = make_wav("low.wav", (0.1 * np.sin(np.arange(5000) / 3)).astype(np.float32), 500)
    with pytest.raises(AudioError, match=r"low\.wav: sample rate 500 Hz is outside 1000\.\.384000 Hz"):
        timeline(low)

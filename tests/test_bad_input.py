"""Bad and unusual input: every case gives a valid prediction or a one-line error naming the file and the cause.

Each case is checked twice: through the Python API (``EmotionClassifier.predict_file``) and through
``voxemo predict --json``, which must print one JSON object per input, exit 1 when an input failed and never
show a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import voxemo
from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.errors import AudioError
from voxemo.core.labels import EMOTIONS
from voxemo.inference.loading import predict_paths
from voxemo.io.audio import load_audio

SR = 16000
HAS_MP3 = "MP3" in sf.available_formats()
NO_MP3 = pytest.mark.skipif(not HAS_MP3, reason=f"libsndfile {sf.__libsndfile_version__} cannot write MP3")
OK = None  # expected outcome: a valid prediction
Builder = Callable[[Path, np.random.Generator], Path]


def _speech(rng: np.random.Generator, sr: int = SR, seconds: float = 1.5) -> np.ndarray:
    return voiced(seconds, sr, rng)


def _write(path: Path, y: np.ndarray, sr: int = SR, **kw: Any) -> Path:
    sf.write(str(path), y, sr, **kw)
    return path


def _cut(path: Path, n_bytes: int | None = None) -> Path:
    """Keep the first ``n_bytes`` of ``path`` (half of it by default), as a download cut short would."""
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: len(data) // 2 if n_bytes is None else n_bytes])
    return out


def _text(d: Path, rng: np.random.Generator) -> Path:
    p = d / "notes.wav"
    p.write_text("these are meeting notes, not audio\n")
    return p


def _garbage(d: Path, rng: np.random.Generator) -> Path:
    p = d / "noise.flac"
    p.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


def _empty(d: Path, rng: np.random.Generator) -> Path:
    p = d / "empty.wav"
    p.touch()
    return p


def _nan(d: Path, rng: np.random.Generator) -> Path:
    y = _speech(rng)
    y[1000:1010] = np.nan
    return _write(d / "nan.wav", y, subtype="FLOAT")


def _empty_dir(d: Path, rng: np.random.Generator) -> Path:
    folder = d / "no_audio"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing to hear here\n")
    return folder


def _case(name: str, build: Builder, expected: Any, *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(build, expected, id=name, marks=marks)


def _subtype(st: str) -> Builder:
    return lambda d, r: _write(d / f"speech_{st}.wav", _speech(r), subtype=st)


# Each case: builder(tmp_path, rng) -> path, and the expected outcome: OK, or a regex for the cause in the error.
# A folder's expected cause is (API, CLI): predict_file refuses a folder, the CLI walks it and finds nothing.
CASES = [
    *[_case(f"wav-{st.lower()}", _subtype(st), OK)
      for st in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")],
    _case("8khz", lambda d, r: _write(d / "phone.wav", _speech(r, 8000), 8000), OK),
    _case("96khz", lambda d, r: _write(d / "studio.wav", _speech(r, 96000), 96000, subtype="PCM_24"), OK),
    _case("stereo", lambda d, r: _write(d / "stereo.wav", np.stack([_speech(r), 0.5 * _speech(r)], axis=1)), OK),
    _case("6-channel", lambda d, r: _write(d / "surround.wav", np.stack([_speech(r)] * 6, axis=1)), OK),
    _case("flac", lambda d, r: _write(d / "speech.flac", _speech(r)), OK),
    _case("ogg-vorbis", lambda d, r: _write(d / "speech.ogg", _speech(r), format="OGG", subtype="VORBIS"), OK),
    _case("mp3", lambda d, r: _write(d / "speech.mp3", _speech(r), format="MP3"), OK, NO_MP3),
    # libsndfile reads the frames a cut WAV still holds: a shorter but valid clip.
    _case("wav-cut-in-half", lambda d, r: _cut(_write(d / "speech.wav", _speech(r))), OK),
    _case("wav-header-only", lambda d, r: _cut(_write(d / "speech.wav", _speech(r)), 44), r"no audio samples"),
    _case("wav-cut-inside-header", lambda d, r: _cut(_write(d / "speech.wav", _speech(r)), 20),
          r"not a readable audio file \(.*fmt"),
    _case("flac-cut-in-half", lambda d, r: _cut(_write(d / "speech.flac", _speech(r))),
          r"not a readable audio file|no audio samples"),
    _case("ogg-cut-in-half", lambda d, r: _cut(_write(d / "speech.ogg", _speech(r), format="OGG", subtype="VORBIS")),
          r"not a readable audio file|no audio samples"),
    _case("empty-file", _empty, r"empty file \(0 bytes\)"),
    _case("text-named-wav", _text, r"not a readable audio file \(Format not recognised"),
    _case("random-bytes-flac", _garbage, r"not a readable audio file"),
    _case("0.05s-clip", lambda d, r: _write(d / "blip.wav", _speech(r, seconds=0.05)), r"too short"),
    _case("silence", lambda d, r: _write(d / "silence.wav", np.zeros(int(1.5 * SR), np.float32)), r"silent"),
    _case("float-nan", _nan, r"non-finite samples \(NaN"),
    _case("missing-path", lambda d, r: d / "does_not_exist.wav", r"no such file"),
    _case("dir-without-audio", _empty_dir, (r"is a directory", r"contains no audio files")),
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> voxemo.EmotionClassifier:
    return voxemo.load_model(tiny_model_dir)


def check_prediction(res: dict[str, Any], path: Path) -> None:
    assert set(res) == {"path", "emotion", "confidence", "probabilities", "speech"}, res
    assert res["speech"] is True
    assert res["path"] == str(path)
    probs = res["probabilities"]
    assert list(probs) == list(EMOTIONS)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)  # each rounded to 4 decimals
    assert probs[res["emotion"]] == max(probs.values())  # the top class (ties possible after rounding)
    assert res["confidence"] == probs[res["emotion"]]


def check_error(res: dict[str, Any], path: Path, cause: str) -> None:
    assert set(res) == {"path", "error"}, res
    assert res["path"] == str(path)
    msg = res["error"]
    assert isinstance(msg, str) and msg.strip() and "\n" not in msg and "\r" not in msg, msg
    assert path.name in msg, msg
    assert re.search(cause, msg, re.IGNORECASE), msg
    assert "Traceback" not in msg


def run_cli(capsys: pytest.CaptureFixture[str], model_dir: Path, *paths: Path) -> tuple[int, list[dict], str]:
    code = main(["predict", "--json", "--model", str(model_dir), *map(str, paths)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out and "Traceback" not in err
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_bad_input(build: Builder, expected: Any, tmp_path: Path, rng: np.random.Generator,
                   model: voxemo.EmotionClassifier, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = build(tmp_path, rng)
    api_cause, cli_cause = expected if isinstance(expected, tuple) else (expected, expected)

    res = model.predict_file(path)
    if api_cause is OK:
        check_prediction(res, path)
    else:
        check_error(res, path, api_cause)

    code, lines, _ = run_cli(capsys, tiny_model_dir, path)
    assert len(lines) == 1
    if cli_cause is OK:
        check_prediction(lines[0], path)
        assert lines[0] == res  # the CLI prints exactly what the API returns
        assert code == 0
    else:
        check_error(lines[0], path, cli_cause)
        assert code == 1


def test_batch_goes_on_past_failures(tmp_path: Path, rng: np.random.Generator, model: voxemo.EmotionClassifier,
                                     tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good1 = _write(tmp_path / "a_good.wav", _speech(rng))
    empty = _empty(tmp_path, rng)
    folder = tmp_path / "folder"
    folder.mkdir()
    good2 = _write(folder / "b_good.flac", _speech(rng), subtype="PCM_16")
    bad_in_folder = _text(folder, rng)  # found by the walk because of its .wav name, then fails to decode
    (folder / "ignored.txt").write_text("not audio, not walked\n")
    missing = tmp_path / "missing.wav"
    no_audio = _empty_dir(tmp_path, rng)
    silent = _write(tmp_path / "z_silent.wav", np.zeros(SR, np.float32))
    inputs = [good1, empty, folder, missing, no_audio, silent]
    expected = [(good1, OK), (empty, "empty file"), (good2, OK), (bad_in_folder, "not a readable audio"),
                (missing, "no such file"), (no_audio, "no audio files"), (silent, "silent")]

    code, lines, err = run_cli(capsys, tiny_model_dir, *inputs)
    assert code == 1
    assert [r["path"] for r in lines] == [str(p) for p, _ in expected]
    for res, (path, cause) in zip(lines, expected, strict=True):
        if cause is OK:
            check_prediction(res, path)
        else:
            check_error(res, path, cause)
    assert err == ""

    # the library generator gives the same results, one per file, in the same order
    assert [r.to_dict() for r in predict_paths(inputs, model)] == lines

    # human output: predictions on stdout, one "voxemo: error: ..." line per failure on stderr, still exit 1
    code = main(["predict", "--model", str(tiny_model_dir), *map(str, inputs)])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(good1), str(good2)]
    err_lines = err.splitlines()
    assert len(err_lines) == 5 and all(line.startswith("voxemo: error: ") for line in err_lines)
    assert "Traceback" not in out + err


def test_all_good_batch_exits_zero(tmp_path: Path, rng: np.random.Generator, tiny_model_dir: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    paths = [_write(tmp_path / f"clip{i}.wav", _speech(rng)) for i in range(3)]
    code, lines, err = run_cli(capsys, tiny_model_dir, *paths)
    assert code == 0 and err == ""
    for res, path in zip(lines, paths, strict=True):
        check_prediction(res, path)


@pytest.mark.parametrize(("name", "make", "cause"), [
    ("nan", lambda r: np.where(np.arange(SR) == 100, np.nan, _speech(r, seconds=1.0)).astype(np.float32),
     "non-finite"),
    ("inf", lambda r: np.where(np.arange(SR) == 100, np.inf, _speech(r, seconds=1.0)).astype(np.float32),
     "non-finite"),
    ("empty", lambda r: np.zeros(0, np.float32), "no samples"),
    ("empty-stereo", lambda r: np.zeros((0, 2), np.float32), "no samples"),
    ("silent", lambda r: np.zeros(SR, np.float32), "silent"),
    ("near-silent", lambda r: 1e-7 * _speech(r, seconds=1.0), "silent"),
    ("too-short", lambda r: _speech(r, seconds=0.05), "too short"),
    ("3-d", lambda r: np.ones((10, 2, 2), np.float32), "1-D or \\(samples, channels\\)"),
])
def test_predict_proba_bad_arrays_raise_audio_error(name: str, make: Callable[[np.random.Generator], np.ndarray],
                                                    cause: str, rng: np.random.Generator,
                                                    model: voxemo.EmotionClassifier) -> None:
    with pytest.raises(AudioError, match=cause) as info:
        model.predict_proba(make(rng), sr=SR)
    assert "\n" not in str(info.value)


def test_predict_proba_array_needs_valid_rate(rng: np.random.Generator, model: voxemo.EmotionClassifier) -> None:
    y = _speech(rng)
    with pytest.raises(AudioError, match="sample rate"):
        model.predict_proba(y)
    for bad in (0, -16000, 16000.5):
        with pytest.raises(AudioError, match="sample rate"):
            model.predict_proba(y, sr=bad)  # type: ignore[arg-type]
    probs = model.predict_proba(np.stack([y, y], axis=1), sr=SR)  # (n, channels) is fine
    assert probs.shape == (len(EMOTIONS),) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_predict_proba_on_bad_file_raises_audio_error(tmp_path: Path, rng: np.random.Generator,
                                                      model: voxemo.EmotionClassifier) -> None:
    for path in (_text(tmp_path, rng), _empty(tmp_path, rng), tmp_path / "missing.wav", _nan(tmp_path, rng)):
        with pytest.raises(AudioError, match=re.escape(path.name)):
            model.predict_proba(path)


def test_too_long_file_is_rejected_before_decoding(tmp_path: Path, model: voxemo.EmotionClassifier,
                                                   capsys: pytest.CaptureFixture[str], tiny_model_dir: Path) -> None:
    # 601 s at 100 Hz is 120 kB on disk but longer than the default max_duration of 600 s
    path = _write(tmp_path / "lecture.wav", np.zeros(601 * 100, np.int16), 100)
    with pytest.raises(AudioError, match="too long") as info:
        load_audio(path, max_duration=600)
    assert path.name in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(AudioError, match="too long"):
        load_audio(_write(tmp_path / "two.wav", _speech(np.random.default_rng(0), seconds=2.0)), max_duration=1.0)
    assert load_audio(path)[0].shape == (60100,)  # no limit: read as is

    assert model.config.audio.max_duration == 600
    check_error(model.predict_file(path), path, "too long")
    code, lines, _ = run_cli(capsys, tiny_model_dir, path)
    assert code == 1
    check_error(lines[0], path, "too long")

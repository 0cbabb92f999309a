"""Property-based tests (hypothesis) of the audio readers on random bytes and on real files with corrupted
headers: every outcome is decoded audio or an AudioError whose one-line message names the file, never another
exception, a traceback or a hang."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import voiced
from voxemo.core.config import AudioConfig, FeatureConfig
from voxemo.core.errors import AudioError
from voxemo.dsp.features import extract
from voxemo.inference.timeline import timeline
from voxemo.io.audio import load_audio, open_audio

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _clip(fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, voiced(0.5, 16000, np.random.default_rng(0)), 16000, format=fmt)
    return buf.getvalue()


CLIPS = {"WAV": _clip("WAV"), "FLAC": _clip("FLAC"), "OGG": _clip("OGG")}


def _read_everything(data: bytes, suffix: str) -> None:
    """Decode ``data`` as a file the three ways voxemo does (whole, features, in blocks) and check the outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(data)
        for read in (lambda: load_audio(path, max_duration=600),
                     lambda: extract(*load_audio(path), AudioConfig(), FeatureConfig(), name=str(path)),
                     lambda: open_audio(path).close()):
            try:
                out = read()
            except AudioError as exc:
                message = str(exc)
                assert message.startswith(str(path)) and "\n" not in message and "Traceback" not in message
            else:
                if isinstance(out, tuple):
                    y, sr = out
                    assert y.dtype == np.float32 and sr > 0


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".bin"]))
def test_random_bytes_are_audio_or_a_one_line_error(data: bytes, suffix: str) -> None:
    _read_everything(data, suffix)


@SETTINGS
@given(st.sampled_from(sorted(CLIPS)), st.data())
def test_corrupted_headers_are_audio_or_a_one_line_error(fmt: str, data: st.DataObject) -> None:
    clip = bytearray(CLIPS[fmt])
    header = min(len(clip), 64)
    for _ in range(data.draw(st.integers(1, 6), label="n_changes")):
        where = data.draw(st.integers(0, header - 1), label="offset")
        clip[where] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(header, len(clip)), label="truncate_at")
    _read_everything(bytes(clip[:cut]), "." + fmt.lower())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 43), st.integers(0, 255))
def test_timeline_of_a_corrupted_wav_is_a_result_or_a_one_line_error(offset: int, value: int) -> None:
    clip = bytearray(CLIPS["WAV"])
    clip[offset] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.wav"
        path.write_bytes(bytes(clip))
        try:
            result = timeline(path)
        except AudioError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        else:
            assert result.path == str(path) and result.duration >= 0

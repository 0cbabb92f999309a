"""Pure signal processing and feature functions, on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tone, voiced
from voxemo.core.config import AudioConfig, FeatureConfig
from voxemo.core.errors import AudioError
from voxemo.dsp.features import extract, fix_frames, pad_value, prepare_signal, segment_frames, windows
from voxemo.dsp.signal import frame_power, peak_dbfs, rms_dbfs, to_mono, trim


def test_trim_removes_surrounding_silence():
    sr = 22050
    y = tone(440, seconds=1.0, sr=sr, silence=0.5)
    yt, (start, end) = trim(y, top_db=30)
    assert abs(len(yt) / sr - 1.0) < 0.1
    assert abs(start / sr - 0.5) < 0.1 and abs(end / sr - 1.5) < 0.1


@pytest.mark.parametrize("n", [0, 1, 100, 511, 512, 513, 2047, 2048, 2049, 5000, 44100, 66150])
@pytest.mark.parametrize("sizes", [(2048, 512), (1024, 256), (2048, 1024), (1000, 300)])
def test_frame_power_and_trim_match_librosa(n: int, sizes: tuple[int, int], rng: np.random.Generator) -> None:
    """Every length around the frame and hop sizes, speech-like bursts between silences and a faint noise floor:
    the same frame energies as librosa.feature.rms and the same cut as librosa.effects.trim."""
    import librosa

    frame, hop = sizes
    envelope = np.repeat(rng.choice([0.0, 1e-3, 0.3, 1.0], size=n // 400 + 1), 400)[:n]
    y = (rng.standard_normal(n) * envelope).astype(np.float32)
    if n:
        y[: n // 4] = 0.0  # leading digital silence
    expected = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)[0] ** 2
    np.testing.assert_allclose(frame_power(y, frame, hop), expected, rtol=1e-4, atol=1e-12)
    for top_db in (20, 35, 60):
        want = librosa.effects.trim(y, top_db=top_db, frame_length=frame, hop_length=hop)[1]
        yt, got = trim(y, top_db=top_db, frame_length=frame, hop_length=hop)
        assert got == tuple(int(i) for i in want) and len(yt) == got[1] - got[0]


def test_trim_disabled_returns_input():
    y = tone(silence=0.2)
    yt, idx = trim(y, top_db=0)
    assert yt is y and idx == (0, len(y))


def test_levels_of_full_scale_sine():
    y = tone(100, seconds=1.0, amp=1.0)
    assert abs(peak_dbfs(y)) < 0.01
    assert abs(rms_dbfs(y) + 3.01) < 0.05
    assert peak_dbfs(np.zeros(10)) == float("-inf")


def test_to_mono_averages_channels():
    y = np.stack([np.ones(5), -np.ones(5), np.ones(5)], axis=1)
    assert np.allclose(to_mono(y), 1 / 3)


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000, 96000])
def test_prepare_signal_resamples_to_target(sr, rng):
    y = voiced(1.0, sr, rng)
    out = prepare_signal(y, sr, AudioConfig(top_db=0))
    assert abs(len(out) - 22050) <= 2 and out.dtype == np.float32


def test_features_do_not_depend_on_gain(rng):
    y = voiced(1.5, 16000, rng)
    a = extract(y, 16000, AudioConfig(), FeatureConfig())
    b = extract(0.05 * y, 16000, AudioConfig(), FeatureConfig())
    assert a.shape == b.shape and a.shape[0] == 64
    assert np.max(np.abs(a - b)) < 0.5  # dB; only the soxr/float rounding differs


def test_features_are_bounded_db(rng):
    spec = extract(voiced(1.0, 22050, rng), 22050, AudioConfig(), FeatureConfig(top_db=70))
    assert spec.max() == pytest.approx(0.0, abs=1e-4) and spec.min() >= -70.0001


def test_utterance_norm_centres_each_bin(rng):
    spec = extract(voiced(1.0, 22050, rng), 22050, AudioConfig(), FeatureConfig(utterance_norm=True))
    assert np.allclose(spec.mean(axis=1), 0, atol=1e-3)
    assert pad_value(FeatureConfig(utterance_norm=True)) == 0.0 and pad_value(FeatureConfig()) == -80.0


@pytest.mark.parametrize("bad, match", [
    (np.zeros(22050, np.float32), "silent"),
    (np.full(22050, np.nan, np.float32), "non-finite"),
    (np.zeros(0, np.float32), "no samples"),
])
def test_prepare_signal_rejects_bad_signals(bad, match):
    with pytest.raises(AudioError, match=match):
        prepare_signal(bad, 22050, AudioConfig())


def test_prepare_signal_rejects_too_short(rng):
    with pytest.raises(AudioError, match="too short"):
        prepare_signal(voiced(0.05, 22050, rng), 22050, AudioConfig())


def test_fix_frames_pads_and_crops():
    spec = np.arange(12, dtype=np.float32).reshape(2, 6)
    padded = fix_frames(spec, 10, fill=-80)
    assert padded.shape == (2, 10) and padded[0, 0] == -80 and np.array_equal(padded[:, 2:8], spec)
    assert np.array_equal(fix_frames(spec, 4, fill=0), spec[:, 1:5])
    assert np.array_equal(fix_frames(spec, 4, offset=2, fill=0), spec[:, 2:6])
    assert np.array_equal(fix_frames(spec, 8, offset=0, fill=-1)[:, :6], spec)


def test_windows_cover_the_whole_clip():
    spec = np.random.default_rng(0).standard_normal((3, 25)).astype(np.float32)
    w = windows(spec, 10, fill=-80)
    assert w.shape[1:] == (3, 10)
    assert np.array_equal(w[0], spec[:, :10]) and np.array_equal(w[-1], spec[:, -10:])
    assert windows(spec[:, :7], 10, fill=-80).shape == (1, 3, 10)


def test_segment_frames_matches_duration():
    assert segment_frames(AudioConfig(duration=3.0), FeatureConfig(hop_length=512)) == 130


def test_power_spectrogram_matches_librosa_stft(rng):
    import librosa

    from voxemo.dsp.features import power_spectrogram

    y = voiced(1.0, 22050, rng)
    ours = power_spectrogram(y, 1024, 512)
    ref = np.abs(librosa.stft(y, n_fft=1024, hop_length=512, center=True, pad_mode="constant")) ** 2
    assert ours.shape == ref.shape
    assert np.allclose(ours, ref, rtol=1e-3, atol=1e-6 * ref.max())


def test_logmel_matches_librosa_melspectrogram_in_db(rng):
    """The whole log-mel against librosa's own pipeline: within float32 rounding of the STFT, at every level."""
    import librosa

    from voxemo.dsp.features import logmel

    f = FeatureConfig()
    for y in (voiced(1.3, 22050, rng), 0.01 * voiced(0.4, 22050, rng), tone(300, seconds=0.7, sr=22050, silence=0.2)):
        mel = librosa.feature.melspectrogram(y=y, sr=22050, n_fft=f.n_fft, hop_length=f.hop_length, n_mels=f.n_mels,
                                             fmin=f.fmin, fmax=f.fmax, power=2.0, pad_mode="constant")
        ref = librosa.power_to_db(mel, ref=np.max, top_db=f.top_db)
        ours = logmel(y, 22050, f)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        assert ours.max() == 0.0 and ours.min() >= -f.top_db
        assert np.abs(ours - ref).max() < 0.01  # dB


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"), [
    (22050, 1024, 64, 0.0, None), (22050, 2048, 128, 0.0, 8000.0), (16000, 512, 40, 20.0, 7600.0),
    (8000, 256, 32, 0.0, None), (48000, 2048, 80, 0.0, 1000.0),
])
def test_mel_filterbank_is_librosas_bit_for_bit(sr: int, n_fft: int, n_mels: int, fmin: float,
                                                 fmax: float | None) -> None:
    import librosa

    from voxemo.dsp.mel import mel_filterbank

    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    assert ours.dtype == np.float32
    assert np.array_equal(ours, librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))


@pytest.mark.parametrize("n_fft", [256, 400, 1023, 1024, 2048])
def test_hann_window_is_scipys_bit_for_bit(n_fft: int) -> None:
    import scipy.signal

    from voxemo.dsp.features import _hann

    assert np.array_equal(_hann(n_fft), scipy.signal.get_window("hann", n_fft, fftbins=True).astype(np.float32))

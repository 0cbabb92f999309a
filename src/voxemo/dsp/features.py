"""The one preprocessing path shared by training and prediction.

``signal -> mono -> checks -> resample (soxr) -> trim -> log-mel -> fixed-length windows``.
All functions here are pure: arrays in, arrays out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import scipy.fft
from scipy import sparse

from voxemo.core.config import AudioConfig, FeatureConfig
from voxemo.core.errors import AudioError
from voxemo.dsp.mel import mel_filterbank
from voxemo.dsp.signal import check_signal, resample, to_full_scale, to_mono, trim

#: Bumped whenever the feature computation changes, so cached features are never reused across versions.
FEATURE_VERSION = 1
#: STFT frames computed at once by :func:`logmel` (bounds its memory on long recordings)
STFT_BLOCK = 4096


def prepare_signal(y: np.ndarray, sr: int, audio: AudioConfig, *, name: str = "signal",
                   full_scale: bool = True) -> np.ndarray:
    """Downmix, validate, resample to ``audio.sample_rate`` and trim silence.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
    sr : int
        Sample rate of ``y`` in Hz.

    Returns
    -------
    np.ndarray, shape (m,), float32 at ``audio.sample_rate``.

    Raises
    ------
    AudioError
        Non-finite, silent, or shorter than ``audio.min_duration`` seconds after trimming.
    """
    mono = to_mono(np.asarray(y))
    check_signal(mono, sr, name=name)
    out = resample(to_full_scale(mono) if full_scale else mono, int(sr), audio.sample_rate)
    out, _ = trim(out, top_db=audio.top_db)
    seconds = len(out) / audio.sample_rate
    if seconds < audio.min_duration:
        raise AudioError(
            f"{name}: too short ({seconds:.2f} s of sound after trimming, need at least {audio.min_duration:g} s)"
        )
    return out


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> sparse.csr_matrix:
    # Sparse on purpose: each FFT bin feeds at most two triangular filters (~3% of the dense matrix is non-zero),
    # and scipy's single-threaded product avoids a multithreaded BLAS call that, with feature workers or a
    # training run already on every core, spins for tens of milliseconds per clip. Same values up to float32
    # rounding.
    basis = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)  # librosa.filters.mel, bit for bit
    return sparse.csr_matrix(basis)


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    """The periodic Hann window of ``scipy.signal.get_window("hann", n_fft)``, computed the same way (so bit for bit
    the same) without importing scipy.signal, half a second of every fresh process' start."""
    fac = np.linspace(-np.pi, np.pi, n_fft + 1)
    return (0.5 + 0.5 * np.cos(fac))[:-1].astype(np.float32)


def power_spectrogram(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """``|STFT|**2`` of a mono signal ``y`` (n,), frames centred on every ``hop_length``-th sample (zero padding,
    periodic Hann window).

    The same as ``np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length, center=True)) ** 2`` up to float32
    rounding, and about 2.5x faster: librosa windows the frames in float64. After :func:`logmel` the two differ
    by at most ~1e-3 dB, at the -80 dB floor, well below the float16 resolution of the feature cache.

    Returns
    -------
    np.ndarray, shape (1 + n_fft // 2, 1 + n // hop_length), float32 for float32 input.
    """
    return _frame_power(_frames(y, n_fft, hop_length), n_fft)


def _frames(y: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """The centred, zero-padded STFT frames of ``y`` as a strided view, (n_frames, n_fft)."""
    return np.lib.stride_tricks.sliding_window_view(np.pad(y, n_fft // 2), n_fft)[::hop_length]


def _frame_power(frames: np.ndarray, n_fft: int) -> np.ndarray:
    return (np.abs(scipy.fft.rfft(frames * _hann(n_fft), axis=-1)) ** 2).T


def logmel(y: np.ndarray, sr: int, features: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram in dB relative to its loudest bin, floored at ``-features.top_db``.

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames), float32 with values in ``[-top_db, 0]``. Being relative to the
    clip's maximum, it does not change when the signal's gain does.
    """
    basis = _mel_basis(sr, features.n_fft, features.n_mels, features.fmin, features.fmax)
    frames = _frames(y, features.n_fft, features.hop_length)
    mel = np.empty((features.n_mels, len(frames)), np.float32 if y.dtype == np.float32 else np.float64)
    for start in range(0, len(frames), STFT_BLOCK):  # in blocks: a long recording's whole STFT would be GBs
        block = frames[start : start + STFT_BLOCK]
        mel[:, start : start + len(block)] = basis @ _frame_power(block, features.n_fft)
    # librosa.power_to_db(mel, ref=np.max, top_db=...) written out: the same float32 operations, without loading
    # librosa's spectrum module (about a second of imports and JIT in every fresh process)
    amin = np.float32(1e-10)
    db = 10.0 * np.log10(np.maximum(mel, amin)) - 10.0 * np.log10(np.maximum(mel.max(initial=0.0), amin))
    return np.maximum(db, db.max() - features.top_db).astype(np.float32, copy=False)


def extract(y: np.ndarray, sr: int, audio: AudioConfig, features: FeatureConfig, *, name: str = "signal",
            augment: Callable[[np.ndarray, int], np.ndarray] | None = None, full_scale: bool = True) -> np.ndarray:
    """Signal at any rate and channel count -> log-mel of the trimmed speech, shape (n_mels, n_frames).

    ``augment(signal, sample_rate)``, used only for training copies, transforms the prepared (resampled, trimmed)
    signal before the spectrogram. ``full_scale=False``: ``y`` was brought to full scale before it was resampled
    (:func:`voxemo.io.audio.load_resampled`), so it is not scaled again.
    """
    signal = prepare_signal(y, sr, audio, name=name, full_scale=full_scale)
    if augment is not None:
        signal = augment(signal, audio.sample_rate)
    spec = logmel(signal, audio.sample_rate, features)
    if features.utterance_norm:
        spec = spec - spec.mean(axis=1, keepdims=True)
    if not np.isfinite(spec).all():  # a last guard: no NaN ever reaches a model, a cache or an answer
        raise AudioError(f"{name}: its spectrogram is not finite (the samples overflow)")
    return spec


def pad_value(features: FeatureConfig) -> float:
    """The feature value of silence, used to pad segments: the dB floor, or 0 after utterance normalisation."""
    return 0.0 if features.utterance_norm else -features.top_db


def segment_frames(audio: AudioConfig, features: FeatureConfig) -> int:
    """Number of spectrogram frames in one fixed-length segment of ``audio.duration`` seconds."""
    return int(round(audio.duration * audio.sample_rate / features.hop_length)) + 1


def fix_frames(spec: np.ndarray, n_frames: int, *, offset: int | None = None, fill: float) -> np.ndarray:
    """Cut or pad ``spec`` (n_mels, t) along time to exactly ``n_frames``.

    ``offset`` is where the crop starts (t > n_frames) or where the spectrogram is placed inside the padding
    (t < n_frames); ``None`` centres it. Padding uses ``fill`` (the features' silence floor).
    """
    t = spec.shape[1]
    if t == n_frames:
        return spec
    if t > n_frames:
        start = (t - n_frames) // 2 if offset is None else int(np.clip(offset, 0, t - n_frames))
        return spec[:, start : start + n_frames]
    start = (n_frames - t) // 2 if offset is None else int(np.clip(offset, 0, n_frames - t))
    out = np.full((spec.shape[0], n_frames), fill, dtype=spec.dtype)
    out[:, start : start + t] = spec
    return out


def windows(spec: np.ndarray, n_frames: int, *, fill: float, hop_fraction: float = 0.5,
            pad: bool = True) -> np.ndarray:
    """Cover the whole spectrogram with fixed-length windows.

    A spectrogram no longer than ``n_frames`` gives one centred, padded window (with ``pad=False``, itself: one
    window of its real length); a longer one gives windows every ``hop_fraction * n_frames`` frames, the last
    aligned with the end, so nothing is dropped.

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, n_frames)
    """
    t = spec.shape[1]
    if t <= n_frames:
        return (fix_frames(spec, n_frames, fill=fill) if pad else spec)[None]
    hop = max(1, int(n_frames * hop_fraction))
    starts = list(range(0, t - n_frames + 1, hop))
    if starts[-1] != t - n_frames:
        starts.append(t - n_frames)
    return np.stack([spec[:, s : s + n_frames] for s in starts])


def config_digest(audio: AudioConfig, features: FeatureConfig) -> str:
    """Short hash of everything that determines a clip's features (segment duration does not: it is applied
    after the cache, so changing it reuses the entries)."""
    audio_part = {k: v for k, v in audio.to_dict().items() if k in ("sample_rate", "top_db", "min_duration")}
    blob = json.dumps({"v": FEATURE_VERSION, "audio": audio_part, "features": features.to_dict()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

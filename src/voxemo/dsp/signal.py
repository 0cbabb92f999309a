"""Pure signal operations applied before feature extraction: downmix, checks, resampling, silence trimming and
levels. Every function takes and returns NumPy arrays; none touches a file (reading lives in :mod:`voxemo.io.audio`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import soxr

from voxemo.core.errors import AudioError

#: Peak amplitude below which a signal counts as silent (-100 dBFS).
SILENCE_PEAK = 1e-5


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels: ``(n,)`` stays, ``(n, channels)`` becomes ``(n,)`` float32."""
    if y.ndim == 1:
        return y.astype(np.float32, copy=False)
    if y.ndim != 2:
        raise AudioError(f"expected a 1-D or (samples, channels) array, got shape {y.shape}")
    return y.mean(axis=1, dtype=np.float32)


def check_signal(y: np.ndarray, sr: int, *, name: str = "signal") -> None:
    """Raise :class:`AudioError` when ``y`` holds non-finite samples, is empty or is silent."""
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AudioError(f"{name}: sample rate {sr!r} must be a positive integer (Hz)")
    if y.size == 0:
        raise AudioError(f"{name}: no samples")
    peak = peak_level(y)  # NaN and inf propagate: one check covers them
    if not np.isfinite(peak):
        raise AudioError(f"{name}: contains non-finite samples (NaN or inf)")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{name}: silent (peak {20 * np.log10(peak) if peak > 0 else -np.inf:.0f} dBFS)")


def to_full_scale(y: np.ndarray) -> np.ndarray:
    """``y`` scaled down so that its peak is 1 when it exceeds full scale, else ``y`` itself.

    Integer files cannot leave [-1, 1]; float files can, by a little (an overshoot) or absurdly (a corrupt or
    mis-scaled file: samples of 1e30 overflow every power computed from them). Either way the content is the same
    sound at another gain, so voxemo hears it at full scale instead of failing or computing infinities.

    >>> to_full_scale(np.array([0.5, -4.0], np.float32)).tolist()
    [0.125, -1.0]
    """
    peak = peak_level(y)
    if not peak > 1.0 or not np.isfinite(peak):  # non-finite samples are check_signal's to refuse
        return y
    return scale_down(y, peak)


def peak_level(y: np.ndarray) -> float:
    """The largest absolute sample (0 for no samples; NaN or inf when a sample is), without an ``|y|`` copy."""
    return float(max(y.max(initial=0.0), -y.min(initial=0.0)))


def scale_down(y: np.ndarray, peak: float) -> np.ndarray:
    """``y`` divided by ``peak`` (in float64, back to float32): what :func:`to_full_scale` does above full scale."""
    return (y.astype(np.float64) / peak).astype(np.float32)


def resample(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono signal from ``sr`` to ``target_sr`` Hz with soxr (high quality)."""
    if sr == target_sr:
        return y.astype(np.float32, copy=False)
    return soxr.resample(y, sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def resample_blocks(blocks: Iterable[np.ndarray], sr: int, rates: Iterable[int], *,
                    peak: float = 1.0) -> dict[int, np.ndarray]:
    """One mono signal arriving in consecutive blocks (float32, at ``sr`` Hz), divided by ``peak`` when that is above
    1 (as :func:`to_full_scale` does the whole signal), resampled to each of
    ``rates`` as it arrives (soxr's stream, high quality: the same samples as :func:`resample` of the whole signal),
    so a long recording never has to be held at its own rate."""
    streams = {int(r): None if int(r) == sr else soxr.ResampleStream(sr, int(r), 1, dtype="float32", quality="HQ")
               for r in rates}
    parts: dict[int, list[np.ndarray]] = {r: [] for r in streams}
    pending: np.ndarray | None = None
    for block in blocks:  # one block behind, so that the last one is known as the last
        if pending is not None:
            _feed(streams, parts, pending, peak, last=False)
        pending = block
    if pending is not None:
        _feed(streams, parts, pending, peak, last=True)
    return {r: np.concatenate(p) if p else np.zeros(0, np.float32) for r, p in parts.items()}


def _feed(streams: dict[int, Any], parts: dict[int, list[np.ndarray]], block: np.ndarray, peak: float, *,
          last: bool) -> None:
    x = scale_down(block, peak) if peak > 1.0 else block
    for rate, stream in streams.items():
        parts[rate].append(x.astype(np.float32, copy=True) if stream is None else
                           stream.resample_chunk(np.ascontiguousarray(x, np.float32), last=last))


def row_power(rows: np.ndarray, block: int = 1 << 13) -> np.ndarray:
    """Mean square of every row of ``rows`` (frames, one per row) in float64, ``block`` rows at a time: the values of
    ``np.mean(np.square(rows, dtype=np.float64), axis=1)`` without a float64 copy of a long signal."""
    return np.concatenate([np.mean(np.square(rows[i : i + block], dtype=np.float64), axis=1)
                           for i in range(0, len(rows), block)] or [np.zeros(0)])


def frame_power(y: np.ndarray, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Mean square of every centred, zero-padded frame: ``librosa.feature.rms(y=y, ...)[0] ** 2``, in float64.

    librosa frames the signal and squares every frame (each sample four times over at the default sizes); here
    each sample is squared once, summed per hop and the hops summed per frame, which is 3-8x faster. Falls back
    to librosa when the frame is not a whole number of hops.

    Returns
    -------
    np.ndarray, shape (1 + len(y) // hop_length,)
    """
    half, per_frame = frame_length // 2, frame_length // hop_length
    if frame_length % hop_length or half % hop_length:
        import librosa  # only for frames that are not a whole number of hops

        rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=hop_length)[0]
        return np.square(rms, dtype=np.float64)
    n_frames = 1 + len(y) // hop_length
    hops = n_frames + per_frame - 1  # the padded signal, whole hops that any frame touches
    squares = np.zeros(hops * hop_length)
    kept = min(len(y), len(squares) - half)
    squares[half : half + kept] = np.square(y[:kept], dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(squares.reshape(hops, hop_length).sum(axis=1))])
    return (cumulative[per_frame : per_frame + n_frames] - cumulative[:n_frames]) / frame_length


def trim(
    y: np.ndarray, *, top_db: float, frame_length: int = 2048, hop_length: int = 512
) -> tuple[np.ndarray, tuple[int, int]]:
    """Remove leading and trailing parts quieter than ``top_db`` dB below the loudest frame.

    The same cut as ``librosa.effects.trim`` (frame RMS in dB against the loudest frame, :func:`frame_power`),
    computed faster. Returns the trimmed signal and ``(start, end)`` in samples of the input. ``top_db=0``
    returns ``y``; a signal with no frame above the threshold (all zeros) trims to nothing.
    """
    if top_db <= 0:
        return y, (0, len(y))
    power = frame_power(y, frame_length, hop_length)
    floor = 1e-10  # librosa's amplitude floor (1e-5) squared
    loud = np.flatnonzero(10.0 * np.log10(np.maximum(power, floor) / max(float(power.max()), floor)) > -top_db)
    if loud.size == 0:
        return y[:0], (0, 0)
    start, end = int(loud[0]) * hop_length, min(len(y), (int(loud[-1]) + 1) * hop_length)
    return y[start:end], (start, end)


def peak_dbfs(y: np.ndarray) -> float:
    """Peak level in dBFS (``-inf`` for an all-zero signal)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dBFS (``-inf`` for an all-zero signal)."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")

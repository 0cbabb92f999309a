"""The mel filterbank: librosa's ``filters.mel`` (Slaney's mel scale and area normalisation) in plain NumPy.

Written out because importing ``librosa.filters`` pulls in scipy.signal and numba, about 0.6 s of every fresh
process' start (a one-clip ``voxemo predict`` took 1.2 s with it). The operations are librosa's own, in the same
order, so the weights are bit for bit the same (``tests/test_features.py`` compares them with librosa).
"""

from __future__ import annotations

import numpy as np

_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: float) -> float:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (``librosa.hz_to_mel``, ``htk=False``)."""
    if hz >= _MIN_LOG_HZ:
        return float(_MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP)
    return hz / _F_SP


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel` for an array of mels."""
    hz = _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    hz[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return hz


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, area-normalised (Slaney): shape (n_mels, 1 + n_fft // 2), float32.

    >>> mel_filterbank(22050, 1024, 64).shape
    (64, 513)
    """
    fmax = float(sr) / 2 if fmax is None else fmax
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    enorm = 2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]  # in place, in float32, as librosa does
    return weights

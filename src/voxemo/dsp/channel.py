"""Transmission channels a recording may have passed through, simulated: the narrowband telephone line of a call
centre (8 kHz, 300-3400 Hz, 8-bit mu-law, ITU-T G.711). Used to test a model on telephone audio and to train it
with telephone copies; never applied at prediction. Pure functions of a signal.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from voxemo.core.errors import ConfigError
from voxemo.dsp.signal import resample

#: the channels :func:`simulate` knows ("wideband" leaves the signal as it is)
CHANNELS = ("wideband", "telephone")

TELEPHONE_RATE = 8000
TELEPHONE_BAND = (300.0, 3400.0)
MU = 255.0


@lru_cache(maxsize=4)
def _band_pass(rate: int, low: float, high: float) -> np.ndarray:
    from scipy.signal import butter  # imported here: only telephone simulation needs scipy.signal

    return np.asarray(butter(4, [low, high], btype="bandpass", fs=rate, output="sos"))


def mu_law(y: np.ndarray, mu: float = MU) -> np.ndarray:
    """8-bit mu-law encoding and decoding (G.711's companding curve, 256 levels) of a signal in [-1, 1]:
    fine steps for quiet samples, coarse ones for loud samples.

    >>> [round(float(v), 3) for v in mu_law(np.array([0.0, 0.5, -1.0], np.float32))]
    [0.0, 0.497, -1.0]
    """
    x = np.clip(np.asarray(y, dtype=np.float64), -1.0, 1.0)
    companded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    levels = np.round((companded + 1.0) / 2.0 * 255.0) / 255.0 * 2.0 - 1.0  # 256 codes
    return (np.sign(levels) * np.expm1(np.abs(levels) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` (mono, at ``sr`` Hz) as it would arrive over a narrowband telephone line, returned at ``sr`` again:
    resampled to 8 kHz, band-passed to 300-3400 Hz (4th-order Butterworth), mu-law coded.

    >>> y = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32) * 0.5
    >>> z = telephone(y, 16000)
    >>> z.shape, bool(np.abs(z[4000:12000]).max() > 0.4)
    ((16000,), True)
    """
    from scipy.signal import sosfilt

    narrow = resample(np.asarray(y, dtype=np.float32), sr, TELEPHONE_RATE)
    narrow = sosfilt(_band_pass(TELEPHONE_RATE, *TELEPHONE_BAND), narrow).astype(np.float32)
    out = resample(mu_law(narrow), TELEPHONE_RATE, sr)
    return np.ascontiguousarray(out[: len(y)] if len(out) >= len(y) else np.pad(out, (0, len(y) - len(out))))


def simulate(y: np.ndarray, sr: int, channel: str) -> np.ndarray:
    """``y`` through ``channel`` (one of :data:`CHANNELS`), at the same rate."""
    if channel == "wideband":
        return np.asarray(y, dtype=np.float32)
    if channel == "telephone":
        return telephone(y, sr)
    raise ConfigError(f"channel={channel!r} is not one of {', '.join(CHANNELS)}")

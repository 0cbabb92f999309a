"""Waveform augmentation of training clips: pitch shift, time stretch, equalisation, gain, additive noise and a
telephone line.

Pure functions of a signal and a seeded :class:`numpy.random.Generator`: parameters are drawn here, so a copy is
the same in every process and on every run, and the transforms themselves (audiomentations' signalsmith-stretch
pitch shift and time stretch, and its 7-band parametric EQ under a seed drawn here) are deterministic given them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from voxemo.core.config import AugmentConfig
from voxemo.dsp.channel import telephone


def draw_params(aug: AugmentConfig, rng: np.random.Generator) -> dict[str, Any]:
    """The transforms one augmented copy applies, each family with probability ``aug.p``.

    >>> from voxemo.core.config import AugmentConfig
    >>> sorted(draw_params(AugmentConfig(p=1.0), np.random.default_rng(0)))
    ['gain_db', 'noise_snr_db', 'pitch_semitones', 'stretch_rate']
    >>> draw_params(AugmentConfig(p=0.0), np.random.default_rng(0))
    {}
    """
    params: dict[str, Any] = {}
    # Draw every value whether or not its family is used, so switching one family off does not change the others.
    use = rng.random(4) < aug.p
    pitch = rng.uniform(-aug.pitch_semitones, aug.pitch_semitones)
    rate = rng.uniform(1 - aug.stretch, 1 + aug.stretch)
    gain = rng.uniform(-aug.gain_db, aug.gain_db)
    snr = rng.uniform(*aug.noise_snr_db) if aug.noise_snr_db is not None else 0.0
    if use[0] and aug.pitch_semitones > 0:
        params["pitch_semitones"] = float(pitch)
    if use[1] and aug.stretch > 0:
        params["stretch_rate"] = float(rate)
    if use[2] and aug.gain_db > 0:
        params["gain_db"] = float(gain)
    if use[3] and aug.noise_snr_db is not None:
        params["noise_snr_db"] = float(snr)
    if aug.eq_db > 0:  # drawn only when configured, so that copies made without it stay as they were
        use_eq, eq_seed = rng.random() < aug.p, int(rng.integers(0, 2**31))
        if use_eq:
            params["eq_db"], params["eq_seed"] = float(aug.eq_db), eq_seed
    if aug.telephone > 0 and rng.random() < aug.telephone:  # drawn only when configured, as the EQ
        params["telephone"] = True
    return params


@contextmanager
def _seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed Python's and NumPy's global generators (audiomentations' filters draw from them), then restore them."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def apply_params(y: np.ndarray, sr: int, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Apply drawn transforms to a mono float32 signal: pitch shift, time stretch, a random 7-band EQ (bands cut or
    boosted by up to ``eq_db``, like another microphone or room), gain, then noise at the SNR."""
    from audiomentations import PitchShift, SevenBandParametricEQ, TimeStretch  # imported here: only training needs it

    out = np.asarray(y, dtype=np.float32)
    if "pitch_semitones" in params:
        s = params["pitch_semitones"]
        out = PitchShift(min_semitones=s, max_semitones=s, p=1.0)(samples=out, sample_rate=sr)
    if "stretch_rate" in params:
        r = params["stretch_rate"]
        out = TimeStretch(min_rate=r, max_rate=r, leave_length_unchanged=False, p=1.0)(samples=out, sample_rate=sr)
    if "eq_db" in params:
        with _seeded_global_rngs(int(params["eq_seed"])):
            eq = SevenBandParametricEQ(min_gain_db=-params["eq_db"], max_gain_db=params["eq_db"], p=1.0)
            out = eq(samples=out, sample_rate=sr)
    if "gain_db" in params:
        out = out * np.float32(10 ** (params["gain_db"] / 20))
    if "noise_snr_db" in params:
        rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
        noise_rms = rms / 10 ** (params["noise_snr_db"] / 20)
        out = out + rng.standard_normal(len(out)).astype(np.float32) * np.float32(noise_rms)
    if params.get("telephone"):
        out = telephone(out, sr)
    return np.ascontiguousarray(out, dtype=np.float32)


def augment_signal(y: np.ndarray, sr: int, aug: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of ``y`` (mono, at ``sr``).

    >>> from voxemo.core.config import AugmentConfig
    >>> y = np.sin(2 * np.pi * 220 * np.arange(22050) / 22050).astype(np.float32)
    >>> z = augment_signal(y, 22050, AugmentConfig(p=1.0, stretch=0.2), np.random.default_rng(1))
    >>> z.dtype, 0.75 * len(y) < len(z) < 1.3 * len(y)
    (dtype('float32'), True)
    """
    return apply_params(y, sr, draw_params(aug, rng), rng)


def augment_digest(aug: AugmentConfig) -> str:
    """Short hash of an augmentation config (without ``copies``: copy i is the same whatever the count; without
    ``eq_db`` or ``telephone`` while off, so copies cached before those families existed still count)."""
    fields = {k: v for k, v in aug.to_dict().items()
              if k != "copies" and not (k in ("eq_db", "telephone") and not v)}
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
